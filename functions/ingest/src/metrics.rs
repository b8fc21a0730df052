//! The ingest function's metrics (EMF, one set per request, see
//! [`kairos_event::metrics`]): `EventsReceived`, `EventsAccepted` and
//! `EventsRejected` by `Source` (the provider of a webhook route, `api` for
//! `/v1/events`, `segment` for the tracking calls), the rejected ones also by
//! `Reason`. A request refused as a whole (bad signature, body too large, no
//! such route, queue unavailable) counts as one received and one rejected
//! item, its reason read from the status.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use kairos_event::metrics::Metrics;

use crate::response::Reply;

/// Reason: an item that did not normalize (named in the answer's `errors`).
pub(crate) const INVALID: &str = "invalid";
/// Reason: an item dated beyond the allowed clock skew.
pub(crate) const FUTURE: &str = "future";

/// The metrics of one answered request.
pub(crate) fn of_request(req: &ApiGatewayV2httpRequest, reply: &Reply) -> Metrics {
    let path = req.raw_path.as_deref().or(req.request_context.http.path.as_deref());
    let source = source(path.unwrap_or_default());
    let mut metrics = Metrics::new("ingest");
    let count = |field: &str| reply.body.get(field).and_then(serde_json::Value::as_u64);
    let dims = [("Source", source)];
    match (count("accepted"), count("rejected")) {
        (Some(accepted), Some(rejected)) => {
            metrics.count("EventsReceived", &dims, accepted + rejected);
            metrics.count("EventsAccepted", &dims, accepted);
            metrics.count("EventsRejected", &dims, rejected);
            for (reason, n) in &reply.refused {
                metrics.count("EventsRejectedByReason", &[("Source", source), ("Reason", reason)], *n);
            }
        }
        // A check (HEAD), a provider's own answer (a subscription confirmation).
        _ if reply.status < 400 => {}
        _ => {
            metrics.count("EventsReceived", &dims, 1);
            metrics.count("EventsAccepted", &dims, 0);
            metrics.count("EventsRejected", &dims, 1);
            let reason = [("Source", source), ("Reason", status_reason(reply.status))];
            metrics.count("EventsRejectedByReason", &reason, 1);
        }
    }
    metrics
}

/// The source a route's events come from.
fn source(path: &str) -> &str {
    match path.strip_prefix("/webhooks/") {
        Some(provider) if crate::providers::find(provider).is_some() => provider,
        Some(_) => "unknown",
        None if path == "/v1/events" => "api",
        None if crate::tracking::route(path).is_some() => "segment",
        None => "unknown",
    }
}

/// Why a request was refused as a whole, from its status.
fn status_reason(status: u16) -> &'static str {
    match status {
        401 => "unauthorized",
        404 => "no_route",
        405 => "method",
        413 => "too_large",
        503 => "unavailable",
        _ => "malformed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::json_response;
    use serde_json::{json, Value};

    fn request(path: &str) -> ApiGatewayV2httpRequest {
        let mut req = ApiGatewayV2httpRequest::default();
        req.raw_path = Some(path.into());
        req
    }

    fn documents(metrics: &Metrics) -> Vec<Value> {
        let lines = metrics.lines(0);
        lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn a_partial_batch_counts_items_by_source_and_each_reason() {
        let mut reply = json_response(400, json!({"accepted": 2, "rejected": 3, "errors": []}));
        reply.refused = vec![(INVALID, 2), (FUTURE, 1)];
        let docs = documents(&of_request(&request("/v1/events"), &reply));
        let totals = docs.iter().find(|d| d.get("Reason").is_none()).unwrap();
        assert_eq!(
            (
                &totals["Source"],
                &totals["EventsReceived"],
                &totals["EventsAccepted"],
                &totals["EventsRejected"]
            ),
            (&json!("api"), &json!(5), &json!(2), &json!(3))
        );
        let by_reason = |r: &str| docs.iter().find(|d| d["Reason"] == r).unwrap()["EventsRejectedByReason"].clone();
        assert_eq!((by_reason("invalid"), by_reason("future")), (json!(2), json!(1)));
        assert_eq!(docs.len(), 3);
    }

    #[test]
    fn a_request_refused_whole_counts_once_with_the_reason_of_its_status() {
        let reply = crate::response::unauthorized();
        let docs = documents(&of_request(&request("/webhooks/sendgrid"), &reply));
        let reason = docs.iter().find(|d| d.get("Reason").is_some()).unwrap();
        assert_eq!(
            (&reason["Source"], &reason["Reason"]),
            (&json!("sendgrid"), &json!("unauthorized"))
        );
        assert_eq!(reason["EventsRejectedByReason"], 1);
        let totals = docs.iter().find(|d| d.get("Reason").is_none()).unwrap();
        assert_eq!(
            (&totals["EventsAccepted"], &totals["EventsRejected"]),
            (&json!(0), &json!(1))
        );
        let unknown = documents(&of_request(
            &request("/webhooks/nobody"),
            &json_response(404, json!({"error": "x"})),
        ));
        assert!(unknown
            .iter()
            .any(|d| d["Source"] == "unknown" && d["Reason"] == "no_route"));
    }

    #[test]
    fn tracking_calls_are_the_segment_source_and_checks_count_nothing() {
        let reply = json_response(200, json!({"accepted": 1, "rejected": 0}));
        let docs = documents(&of_request(&request("/v1/track"), &reply));
        assert_eq!((docs.len(), &docs[0]["Source"]), (1, &json!("segment")));
        assert!(of_request(&request("/webhooks/mandrill"), &json_response(200, json!({}))).is_empty());
    }
}
