//! Write-back over the stack: destinations built from a destinations file as
//! the function builds them (real HTTP), and the handler run on received
//! messages with the stack's ledger, contacts, dead-letter queue and queue.

use super::{sqs_event, Stack};
use aws_lambda_events::sqs::SqsBatchResponse;
use kairos_store::{MemoryLookups, SqsQueue};
use kairos_writeback::file::{parse, DestinationDef};
use kairos_writeback::http::ReqwestTransport;
use kairos_writeback::{build, AnyDestination, Clock, Config, Destination, Parts, SystemClock, Writeback};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Destinations as the function has them, over real HTTP.
pub type Destinations = Vec<AnyDestination<ReqwestTransport, Arc<MemoryLookups>>>;

/// Builds the destinations of `file` with these `(parameter, value)` secrets.
pub async fn destinations(file: &str, secrets: &[(&str, &str)]) -> Destinations {
    destinations_on(file, secrets, Arc::new(SystemClock)).await
}

/// [`destinations`] on a given clock (a `ManualClock` compresses time).
pub async fn destinations_on(file: &str, secrets: &[(&str, &str)], clock: Arc<dyn Clock>) -> Destinations {
    let parsed = parse(file, None).unwrap_or_else(|e| panic!("{e}"));
    let secrets: HashMap<String, String> = secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let transport = |_: &DestinationDef, timeout: Duration| ReqwestTransport::new(Config::http_client(timeout));
    let parts = Parts {
        secrets: &secrets,
        transport,
        lookups: Arc::new(MemoryLookups::default()),
        clock,
    };
    build(&parsed, parts).await.unwrap_or_else(|e| panic!("{e}"))
}

impl Stack {
    /// The write-back handler on `messages` (from the write-back queue), with
    /// a minute to go, dead letters to the template's write-back DLQ.
    pub async fn writeback<D: Destination>(
        &self,
        destinations: &[D],
        messages: &[aws_sdk_sqs::types::Message],
    ) -> SqsBatchResponse {
        let (ledger, contacts) = (self.ledger(), self.store());
        let dead_letters = SqsQueue::new(self.sqs.clone(), self.url("WritebackDeadLetterQueue"));
        let queue = self.queue("WritebackQueue");
        let wb = Writeback {
            destinations,
            ledger: &ledger,
            contacts: &contacts,
            dead_letters: &dead_letters,
            redelivery: &queue,
            clock: &SystemClock,
        };
        let deadline = SystemClock.now_ms() + 60_000;
        kairos_writeback::handle(sqs_event(messages), deadline, &wb).await
    }
}
