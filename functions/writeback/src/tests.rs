//! The handler over in-memory adapters and a local receiver: fan-out to
//! several destinations, collapse, ledger, dead letters, redelivery delays.

mod file_tests;
mod handler_tests;
mod webhook_tests;
