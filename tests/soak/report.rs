//! The soak's printed figures: throughput, faults by kind, retries, dead
//! letters, mismatches, and what a million events cost at list prices.

use crate::arrivals::Traffic;
use crate::check::Findings;
use crate::cost::{price, Lambda};
use crate::pipeline::{Deployment, MEMORY_MB};
use crate::Run;

/// Prints everything (to stderr, shown with `--nocapture`).
pub fn print(deployment: &Deployment, traffic: &Traffic, run: &Run, findings: &Findings) {
    let counters = deployment.counters.lock().unwrap();
    let secs = run.elapsed.as_secs_f64();
    eprintln!(
        "\nsoak: {} events ({} deliveries with copies and late ones) of {} contacts",
        traffic.events,
        traffic.arrivals.len(),
        traffic.contacts
    );
    eprintln!(
        "pipeline (ingest → evaluate → write-back, sweep every simulated hour) on one core: {secs:.1} s, {:.0} events/s",
        traffic.events as f64 / secs
    );
    eprintln!(
        "  of which the sweep {:.1} s (the memory due index scans every record per query)",
        counters.sweep.busy.as_secs_f64()
    );
    let units = deployment.contacts.units();
    eprintln!(
        "contact writes: {} saves ({:.2} per event, {:.0} bytes on average), {} outbox clears",
        units.saves,
        units.saves as f64 / traffic.events.max(1) as f64,
        units.saved_bytes as f64 / units.saves.max(1) as f64,
        units.clears
    );
    eprintln!(
        "  of which {} with audit entries (a transaction: record and audit item, each billed twice)",
        units.transactions
    );
    eprintln!(
        "contact reads: {} strongly consistent, {} eventually consistent ({} read units, {} of them \
         eventually consistent reads, which would be {} read strongly)",
        units.strong_reads,
        units.eventual_reads,
        units.read(),
        units.eventual_halves as f64 / 2.0,
        units.eventual_halves
    );
    eprintln!(
        "  cold days of event ids: {} writes ({:.3} per save), {} reads ({:.4} per event)",
        units.cold_writes,
        units.cold_writes as f64 / units.saves.max(1) as f64,
        units.cold_reads,
        units.cold_reads as f64 / traffic.events.max(1) as f64
    );
    record_bytes(&deployment.contacts.bytes(), units.saves);
    eprintln!("faults injected:");
    for (kind, n) in &run.faults {
        eprintln!("  {:<48} {n:>9}", kind.name());
    }
    eprintln!(
        "retries: {} client requests again, {} evaluate messages, {} write-back messages; {} invocations crashed",
        counters.client_retries, counters.evaluate_retries, counters.writeback_retries, counters.crashed
    );
    eprintln!(
        "dead letters: events {} ({} malformed injected), write-back {} messages / {} writes ({} permanent errors injected)",
        run.events_dead.len(),
        run.malformed.len(),
        run.writeback_dead.len(),
        findings.writeback_dead_writes,
        deployment.permanent.lock().unwrap().len() + deployment.permanent_crashed.lock().unwrap().len()
    );
    eprintln!(
        "checked {} contacts: mismatches {} (memberships {}, destinations {:?}, stale writes {:?}, dead letters {}); repeated writes (lost answers retried, no change in effect) {:?}",
        findings.contacts,
        findings.mismatches(),
        findings.membership_mismatches.len(),
        findings.destination_mismatches.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>(),
        findings.stale_writes,
        findings.events_dead_unexpected.len()
            + findings.events_dead_missing.len()
            + findings.writeback_dead_unexpected.len()
            + findings.writeback_dead_missing.len(),
        findings.repeats,
    );
    cost_table(deployment, traffic.events, &counters);
}

/// One line of the table: what, units per million events, dollars per million events.
struct Row {
    what: String,
    units: f64,
    dollars: f64,
}

/// The cost per million events, behind the front door, and the HTTP API apart.
fn cost_table(deployment: &Deployment, events: usize, counters: &crate::pipeline::Counters) {
    let per_million = 1e6 / events.max(1) as f64;
    let (contacts, ledger) = (deployment.contacts.units(), deployment.ledger.units());
    let sqs = deployment.events.bill().total() + deployment.writeback.bill().total();
    let mut rows = vec![
        row(
            "DynamoDB write units, contact records",
            contacts.write,
            per_million,
            price::WRU_PER_MILLION,
        ),
        row(
            "DynamoDB write units, contact records: transactions' second unit",
            contacts.transaction_write,
            per_million,
            price::WRU_PER_MILLION,
        ),
        row(
            "DynamoDB write units, audit items (transactional, x2)",
            contacts.audit_write,
            per_million,
            price::WRU_PER_MILLION,
        ),
        row(
            "DynamoDB write units, segment counters (transactional, x2)",
            contacts.counter_write,
            per_million,
            price::WRU_PER_MILLION,
        ),
        row(
            "DynamoDB write units, cold days of event ids",
            contacts.cold_write,
            per_million,
            price::WRU_PER_MILLION,
        ),
        Row {
            what: "DynamoDB read units, cold days of event ids".into(),
            units: contacts.cold_read_halves as f64 / 2.0 * per_million,
            dollars: contacts.cold_read_halves as f64 / 2.0 * per_million * price::RRU_PER_MILLION / 1e6,
        },
        row(
            "DynamoDB write units, due index",
            contacts.index_write,
            per_million,
            price::WRU_PER_MILLION,
        ),
        row(
            "DynamoDB write units, delivery ledger",
            ledger.write,
            per_million,
            price::WRU_PER_MILLION,
        ),
        Row {
            what: "DynamoDB read units (records, index, ledger)".into(),
            units: (contacts.read() + ledger.read()) * per_million,
            dollars: (contacts.read() + ledger.read()) * per_million * price::RRU_PER_MILLION / 1e6,
        },
        row(
            "SQS requests (send, receive, delete, visibility)",
            sqs,
            per_million,
            price::SQS_PER_MILLION,
        ),
    ];
    for (name, lambda) in [
        ("ingest", &counters.ingest),
        ("evaluate", &counters.evaluate),
        ("write-back", &counters.writeback),
        ("sweep", &counters.sweep),
    ] {
        rows.extend(lambda_rows(name, lambda, per_million));
    }
    let total: f64 = rows.iter().map(|r| r.dollars).sum();
    eprintln!("\ncost per million events (us-east-1 on-demand list prices, arm64 Lambda at {MEMORY_MB} MB):");
    eprintln!("  {:<56} {:>14} {:>10}", "", "units / M", "$ / M");
    for r in &rows {
        eprintln!("  {:<56} {:>14.0} {:>10.4}", r.what, r.units, r.dollars);
    }
    eprintln!("  {:<56} {:>14} {:>10.4}", "total behind the front door", "", total);
    eprintln!("  HTTP API requests, apart (per million events):");
    for per_request in [1usize, 10, 100, 2000] {
        let dollars = price::HTTP_API_PER_MILLION / per_request as f64;
        eprintln!(
            "    {per_request:>5} events per request: {:>10.0} requests {dollars:>10.4} $",
            1e6 / per_request as f64
        );
    }
    let sent = counters.api_requests as f64 * per_million;
    eprintln!(
        "    this run ({} per request, client retries included): {sent:.0} requests",
        crate::REQUEST_EVENTS
    );
}

/// Where the saved records' bytes go: the average save's bytes by part,
/// and the same for the heavy saves (4 KiB and more).
fn record_bytes(bytes: &crate::cost::Bytes, saves: u64) {
    let heavy = bytes.by_units[3] + bytes.by_units[4];
    eprintln!(
        "  saves by write units (1, 2, 3, 4, 5+): {:?}; bytes per save by part (all saves | the {heavy} of 4 KiB and more):",
        bytes.by_units
    );
    let total: u64 = bytes.parts.iter().map(|(_, b)| b).sum();
    for (name, sum) in &bytes.parts {
        let heavy_sum = bytes.heavy.iter().find(|(n, _)| n == name).map_or(0, |(_, b)| *b);
        eprintln!(
            "    {name:<44} {:>8.0} B {:>5.1}% | {:>8.0} B",
            *sum as f64 / saves.max(1) as f64,
            100.0 * *sum as f64 / total.max(1) as f64,
            heavy_sum as f64 / heavy.max(1) as f64
        );
    }
}

fn row(what: &str, units: u64, per_million: f64, price: f64) -> Row {
    let units = units as f64 * per_million;
    Row {
        what: what.into(),
        units,
        dollars: units * price / 1e6,
    }
}

/// Invocations and GB-seconds of one function (measured time, each invocation rounded up to 1 ms).
fn lambda_rows(name: &str, lambda: &Lambda, per_million: f64) -> [Row; 2] {
    let invocations = lambda.invocations as f64 * per_million;
    let gb_s = lambda.gb_seconds(MEMORY_MB) * per_million;
    [
        Row {
            what: format!("Lambda {name}: invocations"),
            units: invocations,
            dollars: invocations * price::LAMBDA_REQUESTS_PER_MILLION / 1e6,
        },
        Row {
            what: format!(
                "Lambda {name}: GB-s ({:.3} ms measured per invocation)",
                lambda.busy.as_secs_f64() * 1e3 / lambda.invocations.max(1) as f64
            ),
            units: gb_s,
            dollars: gb_s * price::LAMBDA_ARM_GB_SECOND,
        },
    ]
}
