//! Write-back against local servers that enforce each CRM's documented
//! request shapes, authentication and limits (`tests/support/crm/`): contract
//! tests with the vendors' realistic answers, a storm per CRM (10,000
//! transitions, 30% 429s and some 5xx, on a virtual clock), API calls per
//! 1,000 transitions, and the handler over moto SQS with two destinations.

#[path = "../support/mod.rs"]
mod support;

mod calls;
mod handler;
mod harness;
mod hubspot;
mod pipedrive;
mod salesforce;

/// A storm's outcome, printed for the closing report.
fn print(crm: &str, transitions: usize, calls: usize, report: &harness::Report, too_many: usize, unavailable: usize) {
    eprintln!(
        "storm {crm}: {transitions} transitions, {calls} API calls ({too_many} answered 429, {unavailable} 5xx), \
         {} invocations, most receives of a message {}, {} dead letters, {} past maxReceiveCount, {} h virtual",
        report.invocations,
        report.most_receives,
        report.dead_letters,
        report.redriven_to_dlq,
        report.virtual_secs / 3600
    );
}
