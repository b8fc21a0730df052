//! The `kairos` command line's library: the embedded demo and the operator and local-development tools.
//!
//! Main items: [`demo::run`], which drives the real ingest, evaluate and
//! write-back handlers over in-memory adapters and writes a timeline, and
//! [`local::create`], which creates the template's table and queues on a
//! local endpoint (moto server), [`replay::replay`], the backtest (over a file or,
//! day by day, the event archive: [`archive::play`]), [`diff`], who a rules change
//! moves in and out of each segment on that history, [`rebuild`], contact states
//! recomputed from the archive into a table, and
//! [`normalize::normalize`], a provider webhook body to canonical events,
//! [`dlq`], the write-back dead letters (show, redrive), [`erase`], an operator's erasure, [`sequences`],
//! send-time decisions on a history (`kairos decide`, `kairos sequences report`), [`samples::generate`],
//! the `events/` payloads for a given time, [`inspect::inspect`], a stored
//! contact in human terms, and for `make watch` [`local::poll`] (the queues
//! chained to the functions as on AWS) and [`local::receive`] (the webhook
//! receiver).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut out = Vec::new();
//! let summary = kairos::demo::run(kairos_evaluate::DEFAULT_RULES, kairos::demo::DEFAULT_EVENTS, kairos::demo::DEFAULT_DESTINATIONS, &mut out).await.unwrap();
//! assert!(summary.transitions > 0);
//! # });
//! ```

pub mod archive;
pub mod console;
pub mod demo;
pub mod diff;
pub mod dlq;
pub mod erase;
pub mod inspect;
pub mod local;
pub mod normalize;
pub mod publish;
pub mod rebuild;
pub mod replay;
pub mod samples;
pub mod sequences;
