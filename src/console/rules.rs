//! The console's published rules ([`MemoryRules`]: versions with who, when
//! and why; a publish conditional on the version read) and a rules text's
//! problems located at their lines ([`problems`]).

use chrono::{DateTime, Utc};
use kairos_rules::{RuleIssue, RuleSet, RulesError};
use std::sync::{Arc, Mutex, MutexGuard};

/// One published version of the rules.
#[derive(Debug)]
pub struct Version {
    /// What names it on pages and in forms: locally the number, on AWS the
    /// S3 object version id (`none` before anything was published).
    pub id: String,
    /// Locally 1, 2, 3… in publish order; on AWS the version's sequence
    /// (`kairos-seq`), which records carry as the version that decided them.
    pub number: u64,
    /// When it was published.
    pub at: DateTime<Utc>,
    /// Who published it.
    pub by: String,
    /// Why (required).
    pub message: String,
    /// The rules file as published.
    pub text: String,
    /// The compiled rules.
    pub rules: RuleSet,
}

/// Why a publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The rules do not compile: nothing invalid is published.
    #[error("not published: {0}")]
    Invalid(RulesError),
    /// No message given.
    #[error("not published: a message saying why is required")]
    NoMessage,
    /// Another publish came after the version the editor read.
    #[error("not published: version {current} was published after version {read}, which you edited; reload the rules and apply your change again")]
    Conflict {
        /// The version the editor read.
        read: String,
        /// The version in force now.
        current: String,
    },
    /// A rollback to a version that does not exist.
    #[error("no version {0}")]
    NoSuchVersion(String),
    /// Where the rules live failed (S3); retrying may help.
    #[error("not published: {0}")]
    Backend(String),
}

/// Published rules in memory, newest last.
#[derive(Debug)]
pub struct MemoryRules {
    versions: Mutex<Vec<Arc<Version>>>,
}

impl MemoryRules {
    /// Version 1 from `text` (which must compile).
    pub fn new(text: &str, by: &str, message: &str, at: DateTime<Utc>) -> Result<MemoryRules, RulesError> {
        let rules = RuleSet::from_yaml(text)?;
        let first = Version {
            id: "1".into(),
            number: 1,
            at,
            by: by.to_string(),
            message: message.to_string(),
            text: text.to_string(),
            rules,
        };
        Ok(MemoryRules {
            versions: Mutex::new(vec![Arc::new(first)]),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Version>>> {
        self.versions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The version in force.
    pub fn current(&self) -> Arc<Version> {
        let versions = self.lock();
        Arc::clone(versions.last().expect("version 1 always exists"))
    }

    /// Version `number`, if published.
    pub fn get(&self, number: u64) -> Option<Arc<Version>> {
        self.lock().iter().find(|v| v.number == number).cloned()
    }

    /// Every version, newest first.
    pub fn history(&self) -> Vec<Arc<Version>> {
        self.lock().iter().rev().cloned().collect()
    }

    /// Publishes `text` if it compiles, `message` is given and `base` (the
    /// version the editor read) is still the version in force: checked and
    /// appended under one lock, so of two publishes from the same version
    /// only the first succeeds.
    pub fn publish(
        &self,
        text: &str,
        by: &str,
        message: &str,
        base: u64,
        at: DateTime<Utc>,
    ) -> Result<Arc<Version>, PublishError> {
        let rules = RuleSet::from_yaml(text).map_err(PublishError::Invalid)?;
        if message.trim().is_empty() {
            return Err(PublishError::NoMessage);
        }
        let mut versions = self.lock();
        let current = versions.last().map_or(0, |v| v.number);
        if current != base {
            return Err(PublishError::Conflict {
                read: base.to_string(),
                current: current.to_string(),
            });
        }
        let version = Arc::new(Version {
            id: (current + 1).to_string(),
            number: current + 1,
            at,
            by: by.to_string(),
            message: message.trim().to_string(),
            text: text.to_string(),
            rules,
        });
        versions.push(Arc::clone(&version));
        Ok(version)
    }
}

/// One problem of a rules text, at its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when it could be located.
    pub line: Option<usize>,
    /// The problem as the rules crate words it (segment, field path, what was expected).
    pub text: String,
}

/// Every problem of `text` (none: it compiles), each located at its line.
pub fn problems(text: &str) -> Vec<Problem> {
    match RuleSet::from_yaml(text) {
        Ok(_) => Vec::new(),
        Err(err) => err.issues().iter().map(|issue| locate(text, issue)).collect(),
    }
}

fn locate(text: &str, issue: &RuleIssue) -> Problem {
    let line = stated_line(&issue.message).or_else(|| line_of(text, &issue.path));
    Problem {
        line,
        text: issue.to_string(),
    }
}

/// A line the YAML reader named itself (`… at line 3 column 5`).
fn stated_line(message: &str) -> Option<usize> {
    let rest = &message[message.find("line ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The line of a field path such as `segments[3].rule.all[1].within` in a
/// YAML text: each key found in its parent's block (block style), each
/// index as the n-th `-` item; where the text switches to flow style
/// (`{ … }`), the first line of the block that names the key. The deepest
/// line found is returned.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut block = Block {
        start: 0,
        end: lines.len(),
        indent: -1,
    };
    let mut found: Option<usize> = None;
    for token in path.split('.').filter(|t| !t.is_empty()) {
        let (key, indexes) = split_token(token);
        if !key.is_empty() {
            match find_key(&lines, &block, key) {
                Some(next) => {
                    found = Some(next.start - 1);
                    block = next;
                }
                None => {
                    let loose = (block.start..block.end).find(|&l| names(lines[l], key));
                    return loose.or(found).map(|l| l + 1);
                }
            }
        }
        for index in indexes {
            match find_item(&lines, &block, index) {
                Some(next) => {
                    found = Some(next.start);
                    block = next;
                }
                None => return found.map(|l| l + 1),
            }
        }
    }
    found.map(|l| l + 1)
}

/// Lines `start..end` to search for children, indented more than `indent`
/// (an item's block starts at its own `- ` line, which may hold a key).
struct Block {
    start: usize,
    end: usize,
    indent: isize,
}

/// `all[1][2]` → (`all`, [1, 2]).
fn split_token(token: &str) -> (&str, Vec<usize>) {
    let key = token.split('[').next().unwrap_or(token);
    let indexes = token
        .split('[')
        .skip(1)
        .filter_map(|i| i.trim_end_matches(']').parse().ok())
        .collect();
    (key, indexes)
}

/// Leading spaces, and the column where the line's key starts (after `- `s).
fn columns(line: &str) -> (isize, isize) {
    let lead = line.len() - line.trim_start_matches(' ').len();
    let mut rest = &line[lead..];
    let mut col = lead;
    while let Some(r) = rest.strip_prefix('-') {
        let trimmed = r.trim_start_matches(' ');
        col += 1 + r.len() - trimmed.len();
        rest = trimmed;
    }
    (lead as isize, col as isize)
}

fn content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

fn find_key(lines: &[&str], block: &Block, key: &str) -> Option<Block> {
    let at = (block.start..block.end).find(|&l| {
        let (_, col) = columns(lines[l]);
        let rest = lines[l][col as usize..].trim_start_matches(['"', '\'']);
        content(lines[l])
            && col > block.indent
            && rest.starts_with(key)
            && rest[key.len()..].trim_start_matches(['"', '\'']).starts_with(':')
    })?;
    let (_, col) = columns(lines[at]);
    let end = (at + 1..block.end)
        .find(|&l| {
            let (lead, _) = columns(lines[l]);
            let dash = lines[l].trim_start().starts_with('-');
            content(lines[l]) && (lead < col || (lead == col && !dash))
        })
        .unwrap_or(block.end);
    // The key's children start on the next line.
    Some(Block {
        start: at + 1,
        end,
        indent: col,
    })
}

/// The `index`-th `-` item directly inside `block`.
fn find_item(lines: &[&str], block: &Block, index: usize) -> Option<Block> {
    let inside = block.start..block.end;
    let dash = inside
        .clone()
        .find(|&l| content(lines[l]) && lines[l].trim_start().starts_with('-'))?;
    let (lead, _) = columns(lines[dash]);
    let items: Vec<usize> = inside
        .filter(|&l| content(lines[l]) && columns(lines[l]).0 == lead && lines[l].trim_start().starts_with('-'))
        .collect();
    let start = *items.get(index)?;
    let end = items.get(index + 1).copied().unwrap_or(block.end);
    Some(Block {
        start,
        end,
        indent: lead,
    })
}

/// Whether a line names `key` anywhere (flow style: `{ type: x, within: 7d }`).
fn names(line: &str, key: &str) -> bool {
    let pattern = format!("{key}:");
    line.match_indices(&pattern)
        .any(|(i, _)| i == 0 || !line[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
scores: []
segments:
  - id: a
    name: A
    rule: { event: { type: email.clicked, within: 7d } }

  - id: b
    name: B
    # a comment
    rule:
      all:
        - consent: subscribed
        - event:
            type: page.viewed
            within: 24h
segments_note: x
";

    #[test]
    fn block_paths_are_found_key_by_key_and_item_by_item() {
        assert_eq!(line_of(TEXT, "segments[1]"), Some(7));
        assert_eq!(line_of(TEXT, "segments[1].name"), Some(8));
        assert_eq!(line_of(TEXT, "segments[1].rule.all[1].event.within"), Some(15));
        assert_eq!(line_of(TEXT, "segments[1].rule.all[0]"), Some(12));
        assert_eq!(line_of(TEXT, "segments_note"), Some(16));
    }

    #[test]
    fn flow_style_falls_back_to_the_line_naming_the_key() {
        assert_eq!(line_of(TEXT, "segments[0].rule.event.within"), Some(5));
        assert_eq!(line_of(TEXT, "segments[0].rule.event.nothing"), Some(5));
        assert_eq!(line_of(TEXT, "segments[5]"), Some(2), "no such item: its list");
    }

    #[test]
    fn problems_carry_their_lines_and_a_publish_needs_the_version_read() {
        let valid = TEXT.replace("segments_note: x\n", "");
        let broken = valid.replace("within: 24h", "within: soon");
        let found = problems(&broken);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, Some(15), "{found:?}");
        assert!(found[0].text.contains("segment `b`"), "{found:?}");
        let syntax = problems("segments:\n  - id: [\n");
        assert!(syntax[0].line.is_some(), "{syntax:?}");
        let at = DateTime::from_timestamp(0, 0).unwrap();
        let rules = MemoryRules::new(&valid, "me", "first", at).unwrap();
        assert!(matches!(
            rules.publish(&valid, "me", "", 1, at),
            Err(PublishError::NoMessage)
        ));
        assert!(matches!(
            rules.publish(&broken, "me", "m", 1, at),
            Err(PublishError::Invalid(_))
        ));
        assert_eq!(rules.publish(&valid, "me", "second", 1, at).unwrap().number, 2);
        match rules.publish(&valid, "you", "stale", 1, at) {
            Err(PublishError::Conflict { read, current }) if (read.as_str(), current.as_str()) == ("1", "2") => {}
            other => panic!("{other:?}"),
        }
        let history: Vec<u64> = rules.history().iter().map(|v| v.number).collect();
        assert_eq!(history, [2, 1]);
    }
}
