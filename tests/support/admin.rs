//! The admin function's handler over a [`Stack`]: requests from the official
//! IAM-authorized API Gateway v2 fixture, answers as JSON.

use super::Stack;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::Method;
use kairos_admin::{Admin, Erasing};
use kairos_evaluate::Evaluator;
use kairos_rules::RuleSet;

/// The official fixture of an IAM-authorized request.
pub const IAM_FIXTURE: &str = include_str!("../fixtures/example-apigw-v2-request-iam.json");
/// The principal the fixture carries: the actor of every change it makes.
pub const IAM_ACTOR: &str = "arn:aws:iam::1234567890:user/Admin";
/// The erasure salt the stack's admin function uses.
pub const SALT: &[u8] = b"moto-erasure-salt";

/// An IAM-authorized request: `method` on `path` with `body`.
pub fn request(method: Method, path: &str, body: Option<&str>) -> ApiGatewayV2httpRequest {
    let mut req: ApiGatewayV2httpRequest = serde_json::from_str(IAM_FIXTURE).unwrap();
    req.request_context.http.method = method;
    req.raw_path = Some(path.to_string());
    req.request_context.http.path = Some(path.to_string());
    req.body = body.map(str::to_string);
    req.query_string_parameters = Default::default();
    req
}

/// Runs the admin handler on `req` over the stack's store and write-back
/// queue, as the deployed function does; returns the status, the JSON body
/// and the body's size in bytes.
pub async fn call(
    stack: &Stack,
    rules: &RuleSet,
    req: ApiGatewayV2httpRequest,
    now: chrono::DateTime<chrono::Utc>,
) -> (i64, serde_json::Value, usize) {
    let (store, queue) = (stack.store(), stack.queue("WritebackQueue"));
    let admin = Admin {
        evaluator: Evaluator::new(rules, &store, &queue),
        keys: &[],
        erasure: Erasing {
            salt: SALT,
            window_secs: 30 * 86_400,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(60),
        },
    };
    let response = kairos_admin::handle(req, &admin, now).await;
    let text = match response.body {
        Some(Body::Text(text)) => text,
        other => panic!("expected a text body, found {other:?}"),
    };
    (response.status_code, serde_json::from_str(&text).unwrap(), text.len())
}
