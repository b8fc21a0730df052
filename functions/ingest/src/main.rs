use kairos_ingest::{handle, Ingest, RawConfig};
use kairos_store::{resolve_secret, SqsQueue};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut raw = RawConfig::from_env(|name| std::env::var(name).ok())?;
    let aws = aws_config::load_from_env().await;
    let ssm = aws_sdk_ssm::Client::new(&aws);
    for secret in [&mut raw.api_keys, &mut raw.sendgrid_public_key].into_iter().flatten() {
        *secret = resolve_secret(secret, &ssm).await?;
    }
    let config = raw.build()?;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), &raw.events_queue_url);
    let ingest = Ingest {
        config: &config,
        queue: &queue,
    };
    run(service_fn(|event: LambdaEvent<_>| async {
        Ok::<_, Error>(handle(event.payload, &ingest, chrono::Utc::now().timestamp()).await)
    }))
    .await
}
