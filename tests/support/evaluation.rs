//! [`Evaluation`]: the evaluate function's parts over the stack (compiled
//! rules, the contact store, the write-back queue), as the deployed function
//! builds them once, so a test asks for them instead of assembling them.

use super::Stack;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use kairos_evaluate::Evaluator;
use kairos_rules::RuleSet;
use kairos_store::{DynamoContacts, SqsQueue};

/// Compiled rules, the template's table and its write-back queue.
pub struct Evaluation {
    /// The rules in force.
    pub rules: RuleSet,
    /// The contact store over the template's table.
    pub store: DynamoContacts,
    /// The template's write-back queue.
    pub queue: SqsQueue,
}

impl Evaluation {
    /// The per-contact logic over these parts.
    pub fn evaluator(&self) -> Evaluator<'_, DynamoContacts, SqsQueue> {
        Evaluator::new(&self.rules, &self.store, &self.queue)
    }

    /// The evaluate handler on `batch` as of `now`.
    pub async fn handle(&self, batch: SqsEvent, now: DateTime<Utc>) -> SqsBatchResponse {
        kairos_evaluate::handle(batch, &self.evaluator(), now).await
    }
}

/// The example rules the evaluate function embeds (`rules/segments.yaml`).
pub fn default_rules() -> RuleSet {
    RuleSet::from_yaml(kairos_evaluate::DEFAULT_RULES).expect("the embedded rules compile")
}

impl Stack {
    /// The evaluate function's parts under the rules of `yaml`.
    pub fn evaluation(&self, yaml: &str) -> Evaluation {
        Evaluation {
            rules: RuleSet::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}")),
            store: self.store(),
            queue: self.queue("WritebackQueue"),
        }
    }
}
