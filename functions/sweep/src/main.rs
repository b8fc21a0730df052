use kairos_store::{DynamoContacts, SqsQueue};
use kairos_sweep::{handle, Config, Sweeper};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env(|name| std::env::var(name).ok())?;
    let aws = aws_config::load_from_env().await;
    kairos_store::init_log_hashing(&aws).await?;
    let index =
        DynamoContacts::new(aws_sdk_dynamodb::Client::new(&aws), &config.table).with_due_shards(config.due_shards);
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), &config.events_queue_url);
    let sweeper = Sweeper {
        max_per_run: config.max_per_run,
        ..Sweeper::new(&index, &queue)
    };
    let sweeper = &sweeper;
    run(service_fn(|event: LambdaEvent<_>| async move {
        let stop_at = kairos_sweep::stop_at(event.context.deadline);
        Ok::<_, Error>(handle(event.payload, sweeper, chrono::Utc::now(), stop_at).await?)
    }))
    .await
}
