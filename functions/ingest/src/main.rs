use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kairos_ingest::{handle, Ingest, IngestConfig, Received};
use kairos_store::{DynamoClaims, SqsQueue};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

/// Time kept back from the invocation's deadline to answer after enqueueing gives up.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    kairos_event::metrics::enable();
    let aws = kairos_store::sdk::load_from_env().await;
    let config = IngestConfig::load(&aws_sdk_ssm::Client::new(&aws)).await?;
    kairos_event::log::init(config.log_hash_key.as_deref());
    tracing::info!(?config, "ingest configured");
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), &config.events_queue_url);
    let claims = DynamoClaims::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    let ingest = &Ingest {
        config: &config,
        queue: &queue,
        claims: &claims,
    };
    run(service_fn(move |event: LambdaEvent<_>| async move {
        let now = SystemTime::now();
        let now_ms = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let deadline_ms = kairos_event::invocation_deadline_ms(event.context.deadline, now_ms);
        let left = (UNIX_EPOCH + Duration::from_millis(deadline_ms))
            .duration_since(now)
            .unwrap_or_default();
        let received = Received {
            at: chrono::Utc::now().timestamp(),
            deadline: Some(tokio::time::Instant::now() + left.saturating_sub(ANSWER_MARGIN)),
        };
        Ok::<_, Error>(handle(event.payload, ingest, received).await)
    }))
    .await
}
