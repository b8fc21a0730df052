use std::fmt;

/// One problem in a rules file, located by segment and field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleIssue {
    /// The id of the segment it is in, when known.
    pub segment: Option<String>,
    /// The field path, e.g. `segments[3].rule.all[1].within`.
    pub path: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for RuleIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.segment {
            Some(id) => write!(f, "segment `{id}`: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Why a rules file did not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// The file is not YAML (or JSON), or its top level is not a rules file.
    #[error("{0}")]
    Syntax(RuleIssue),
    /// Some scores or segments do not read (an unknown field, a value of the
    /// wrong type) or are invalid; every problem is listed.
    #[error("{} in rules file:\n{}", count(.0.len(), "problem"), .0.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<RuleIssue>),
}

/// `1 problem`, `3 problems`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

impl RulesError {
    /// The problems, in file order: by score, then by segment (each item's own
    /// in the order they were found), then those of the file as a whole.
    pub(crate) fn invalid(mut issues: Vec<RuleIssue>) -> RulesError {
        issues.sort_by_key(|issue| item_order(&issue.path));
        RulesError::Invalid(issues)
    }

    /// Every problem found.
    pub fn issues(&self) -> Vec<RuleIssue> {
        match self {
            RulesError::Syntax(issue) => vec![issue.clone()],
            RulesError::Invalid(issues) => issues.clone(),
        }
    }
}

/// Where the item a path is in comes in the file: `scores[i]` before
/// `segments[j]`, each by index, then `sending`, `sequences[k]`, then anything else.
fn item_order(path: &str) -> (u8, usize) {
    let index = |rest: &str| rest.split(']').next().and_then(|i| i.parse().ok());
    if let Some(i) = path.strip_prefix("scores[").and_then(index) {
        (0, i)
    } else if let Some(i) = path.strip_prefix("segments[").and_then(index) {
        (1, i)
    } else if path.starts_with("sending") {
        (2, 0)
    } else if let Some(i) = path.strip_prefix("sequences[").and_then(index) {
        (3, i)
    } else {
        (4, 0)
    }
}
