use kairos_store::{resolve_secret, DynamoLedger};
use kairos_writeback::{handle, Config, WebhookDestination, Writeback};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut config = Config::from_env(|name| std::env::var(name).ok())?;
    let aws = aws_config::load_from_env().await;
    kairos_store::init_log_hashing(&aws).await?;
    config.webhook_secret = resolve_secret(&config.webhook_secret, &aws_sdk_ssm::Client::new(&aws)).await?;
    let destination = WebhookDestination::new(
        config.http_client(),
        &config.webhook_url,
        config.secret_bytes()?,
        config.backoff,
    );
    let ledger = DynamoLedger::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    let writeback = Writeback {
        destination: &destination,
        ledger: &ledger,
    };
    run(service_fn(|event: LambdaEvent<_>| async {
        Ok::<_, Error>(handle(event.payload, &writeback).await)
    }))
    .await
}
