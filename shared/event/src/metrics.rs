//! Metrics as CloudWatch Embedded Metric Format (EMF): each function gathers
//! its counts and samples over one invocation in a [`Metrics`] and writes
//! them with [`Metrics::emit`] as JSON lines on stdout, which CloudWatch Logs
//! turns into metrics: no API call, no added latency, nothing to fail.
//!
//! A document holds one value per dimension, so an invocation writes one line
//! per distinct set of dimension values it recorded (usually one: the
//! function's; plus one per source, reason or destination that had counts),
//! each line every metric of that set. Counts add up within the invocation;
//! samples (lags, in milliseconds) are kept as value arrays, from which
//! CloudWatch computes percentiles (p99), at most [`MAX_VALUES`] per line.
//!
//! Only a process that called [`enable`] writes them (each function's `main`
//! does): the CLI runs the same handlers in process, and its standard output
//! is its own.
//!
//! The namespace is `KAIROS_METRICS_NAMESPACE` (default [`DEFAULT_NAMESPACE`]);
//! every line carries the `Function` dimension. Format reference:
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>
//!
//! ```
//! use kairos_event::metrics::{Metrics, Unit};
//!
//! let mut metrics = Metrics::with_namespace("Kairos", "ingest");
//! metrics.count("EventsReceived", &[("Source", "sendgrid")], 3);
//! metrics.count("EventsRejected", &[("Source", "sendgrid"), ("Reason", "malformed")], 1);
//! metrics.sample("LagToEvaluationMs", Unit::Milliseconds, &[], 42.0);
//! let lines = metrics.lines(1_796_000_000_000);
//! assert_eq!(lines.len(), 3); // three sets of dimension values
//! assert!(lines.iter().any(|l| l.contains(r#""EventsRejected":1"#)));
//! ```

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The namespace when `KAIROS_METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "Kairos";

/// Most values one metric may carry in one EMF document (the format's limit).
pub const MAX_VALUES: usize = 100;

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things.
    Count,
    /// A duration in milliseconds.
    Milliseconds,
    /// A duration in seconds.
    Seconds,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One set of dimension values (beyond `Function`), in the order given.
type Dimensions = Vec<(String, String)>;

/// One metric's unit and values within a set of dimension values.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    unit: Unit,
    /// A count: one value, the sum; samples: each value.
    values: Vec<f64>,
    sum: bool,
}

/// The metrics of one invocation of one function.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    namespace: String,
    function: String,
    sets: BTreeMap<Dimensions, BTreeMap<String, Series>>,
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Makes [`Metrics::emit`] write in this process (a Lambda function's `main`).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// The namespace from `KAIROS_METRICS_NAMESPACE`, read once.
pub fn namespace() -> &'static str {
    static NAMESPACE: OnceLock<String> = OnceLock::new();
    NAMESPACE.get_or_init(|| {
        std::env::var("KAIROS_METRICS_NAMESPACE")
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
    })
}

impl Metrics {
    /// Empty metrics of `function` under the configured [`namespace`].
    pub fn new(function: &str) -> Metrics {
        Metrics::with_namespace(namespace(), function)
    }

    /// Empty metrics of `function` under `namespace`.
    pub fn with_namespace(namespace: &str, function: &str) -> Metrics {
        Metrics {
            namespace: namespace.to_string(),
            function: function.to_string(),
            sets: BTreeMap::new(),
        }
    }

    /// Adds `n` to the count `name` under `dimensions` (recorded even when 0,
    /// so a rate has its denominator).
    pub fn count(&mut self, name: &str, dimensions: &[(&str, &str)], n: u64) {
        let series = self.series(name, dimensions, Unit::Count, true);
        match series.values.first_mut() {
            Some(total) => *total += n as f64,
            None => series.values.push(n as f64),
        }
    }

    /// Records one sample of `name` (a lag, a lateness) under `dimensions`.
    pub fn sample(&mut self, name: &str, unit: Unit, dimensions: &[(&str, &str)], value: f64) {
        self.series(name, dimensions, unit, false).values.push(value);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    fn series(&mut self, name: &str, dimensions: &[(&str, &str)], unit: Unit, sum: bool) -> &mut Series {
        let key = dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.sets
            .entry(key)
            .or_default()
            .entry(name.to_string())
            .or_insert_with(|| Series {
                unit,
                values: Vec::new(),
                sum,
            })
    }

    /// The EMF documents, one JSON line per set of dimension values (more
    /// when a metric holds over [`MAX_VALUES`] samples), stamped
    /// `timestamp_ms` (unix milliseconds).
    pub fn lines(&self, timestamp_ms: i64) -> Vec<String> {
        let mut lines = Vec::new();
        for (dimensions, metrics) in &self.sets {
            let chunks = metrics
                .values()
                .map(|s| s.values.len().div_ceil(MAX_VALUES))
                .max()
                .unwrap_or(0);
            for chunk in 0..chunks.max(1) {
                let document = self.document(dimensions, metrics, chunk, timestamp_ms);
                lines.push(document.to_string());
            }
        }
        lines
    }

    /// The `chunk`th document of one set of dimension values.
    fn document(&self, dimensions: &Dimensions, metrics: &BTreeMap<String, Series>, chunk: usize, at: i64) -> Value {
        let mut root = Map::new();
        let mut names = vec![Value::from("Function")];
        root.insert("Function".into(), Value::from(self.function.as_str()));
        for (name, value) in dimensions {
            names.push(Value::from(name.as_str()));
            root.insert(name.clone(), Value::from(value.as_str()));
        }
        let mut definitions = Vec::new();
        for (name, series) in metrics {
            let values = series.values.iter().skip(chunk * MAX_VALUES).take(MAX_VALUES);
            let values: Vec<Value> = values.map(|v| number(*v)).collect();
            let value = match (series.sum, values.len()) {
                (_, 0) => continue,
                (true, _) | (false, 1) => values[0].clone(),
                (false, _) => Value::Array(values),
            };
            root.insert(name.clone(), value);
            definitions.push(json!({"Name": name, "Unit": series.unit.name()}));
        }
        let directive = json!({
            "Namespace": self.namespace,
            "Dimensions": [names],
            "Metrics": definitions,
        });
        root.insert(
            "_aws".into(),
            json!({"Timestamp": at, "CloudWatchMetrics": [directive]}),
        );
        Value::Object(root)
    }

    /// Writes the documents to stdout as of now, one line each, at once
    /// (nothing unless [`enable`] was called).
    pub fn emit(&self) {
        if !ENABLED.load(Ordering::Relaxed) {
            return;
        }
        let lines = self.lines(chrono::Utc::now().timestamp_millis());
        if lines.is_empty() {
            return;
        }
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
}

/// A whole number as an integer (as counts and milliseconds are), else a float.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

/// Milliseconds from `from` to `to`, 0 when `to` is earlier (a clock ahead).
pub fn lag_ms(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_set_of_dimensions_is_one_document_in_the_exact_emf_shape() {
        let mut m = Metrics::with_namespace("Kairos/test", "evaluate");
        m.count("EventsApplied", &[], 2);
        m.count("EventsApplied", &[], 3);
        m.count("EventsDuplicate", &[], 0);
        m.sample("LagToEvaluationMs", Unit::Milliseconds, &[], 1500.0);
        m.sample("LagToEvaluationMs", Unit::Milliseconds, &[], 20.0);
        let lines = m.lines(1_796_000_000_123);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
        let expected = json!({
            "_aws": {
                "Timestamp": 1_796_000_000_123_i64,
                "CloudWatchMetrics": [{
                    "Namespace": "Kairos/test",
                    "Dimensions": [["Function"]],
                    "Metrics": [
                        {"Name": "EventsApplied", "Unit": "Count"},
                        {"Name": "EventsDuplicate", "Unit": "Count"},
                        {"Name": "LagToEvaluationMs", "Unit": "Milliseconds"}
                    ]
                }]
            },
            "Function": "evaluate",
            "EventsApplied": 5,
            "EventsDuplicate": 0,
            "LagToEvaluationMs": [1500, 20]
        });
        assert_eq!(doc, expected);
        assert!(!lines[0].contains('\n'));
    }

    #[test]
    fn each_set_of_dimension_values_is_its_own_document_naming_its_dimensions() {
        let mut m = Metrics::with_namespace("Kairos", "writeback");
        m.count("Deliveries", &[("Destination", "hubspot")], 4);
        m.count("Deliveries", &[("Destination", "crm-hook")], 1);
        m.count("Failures", &[("Destination", "hubspot")], 1);
        let docs: Vec<Value> = m.lines(0).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(docs.len(), 2);
        let hubspot = docs.iter().find(|d| d["Destination"] == "hubspot").unwrap();
        assert_eq!(hubspot["Deliveries"], 4);
        assert_eq!(hubspot["Failures"], 1);
        assert_eq!(hubspot["Function"], "writeback");
        let directive = &hubspot["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], json!([["Function", "Destination"]]));
        let hook = docs.iter().find(|d| d["Destination"] == "crm-hook").unwrap();
        assert_eq!(hook["Deliveries"], 1);
        assert!(hook.get("Failures").is_none());
    }

    #[test]
    fn a_single_sample_is_a_number_and_over_a_hundred_samples_split_into_documents() {
        let mut m = Metrics::with_namespace("Kairos", "writeback");
        m.sample("LagToDeliveryMs", Unit::Milliseconds, &[], 7.0);
        let one: Value = serde_json::from_str(&m.lines(0)[0]).unwrap();
        assert_eq!(one["LagToDeliveryMs"], 7);
        for i in 0..150 {
            m.sample("LagToDeliveryMs", Unit::Milliseconds, &[], i as f64);
        }
        m.count("Deliveries", &[], 151);
        let docs: Vec<Value> = m.lines(0).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["LagToDeliveryMs"].as_array().unwrap().len(), 100);
        assert_eq!(docs[1]["LagToDeliveryMs"].as_array().unwrap().len(), 51);
        // The count goes in the first document only, so it is not counted twice.
        assert_eq!(docs[0]["Deliveries"], 151);
        assert!(docs[1].get("Deliveries").is_none());
        let names = &docs[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(names, &json!([{"Name": "LagToDeliveryMs", "Unit": "Milliseconds"}]));
    }

    #[test]
    fn fractions_stay_fractions_and_lags_never_go_negative() {
        let mut m = Metrics::with_namespace("Kairos", "sweep");
        m.sample("SweepLatenessMs", Unit::Milliseconds, &[], 2.5);
        let doc: Value = serde_json::from_str(&m.lines(0)[0]).unwrap();
        assert_eq!(doc["SweepLatenessMs"], 2.5);
        let t = chrono::DateTime::from_timestamp(1_796_000_000, 0).unwrap();
        assert_eq!(lag_ms(t, t + chrono::Duration::milliseconds(250)), 250.0);
        assert_eq!(lag_ms(t, t - chrono::Duration::seconds(5)), 0.0);
        assert!(Metrics::with_namespace("Kairos", "sweep").lines(0).is_empty());
    }
}
