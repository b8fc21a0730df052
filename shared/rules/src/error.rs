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
    #[error("{} problem(s) in rules file:\n{}", .0.len(), .0.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<RuleIssue>),
}

impl RulesError {
    /// Every problem found.
    pub fn issues(&self) -> Vec<RuleIssue> {
        match self {
            RulesError::Syntax(issue) => vec![issue.clone()],
            RulesError::Invalid(issues) => issues.clone(),
        }
    }
}
