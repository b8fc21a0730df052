use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::header::{HeaderValue, CONTENT_TYPE};
use serde_json::Value;

/// A status and JSON body, turned into an API Gateway response at the edge.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    /// Items refused one by one, by reason (for the metrics; the body names each).
    pub refused: Vec<(&'static str, u64)>,
}

impl Reply {
    /// The API Gateway v2 response.
    pub fn into_response(self) -> ApiGatewayV2httpResponse {
        let mut response = ApiGatewayV2httpResponse::default();
        response.status_code = i64::from(self.status);
        response
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response.body = Some(Body::Text(self.body.to_string()));
        response
    }
}

/// A JSON reply with the given status.
pub(crate) fn json_response(status: u16, body: Value) -> Reply {
    Reply {
        status,
        body,
        refused: Vec::new(),
    }
}

/// The generic 401: details go to the logs, never to the caller.
pub(crate) fn unauthorized() -> Reply {
    json_response(401, serde_json::json!({"error": "unauthorized"}))
}
