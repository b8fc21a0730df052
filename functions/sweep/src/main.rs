use kairos_store::{DynamoContacts, S3Rules, SqsQueue};
use kairos_sweep::{handle, Backfiller, Config, Sweeper};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    kairos_event::metrics::enable();
    let config = Config::from_env(|name| std::env::var(name).ok())?;
    let aws = kairos_store::sdk::load_from_env().await;
    kairos_store::init_log_hashing(&aws).await?;
    let index =
        DynamoContacts::new(aws_sdk_dynamodb::Client::new(&aws), &config.table).with_due_shards(config.due_shards);
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), &config.events_queue_url);
    let sweeper = Sweeper {
        max_per_run: config.max_per_run,
        ..Sweeper::new(&index, &queue)
    };
    let rules = match &config.rules_uri {
        Some(uri) => Some(S3Rules::new(kairos_store::s3_client(&aws), uri)?),
        None => None,
    };
    let backfiller = Backfiller::new(&index, &queue);
    let (sweeper, backfiller, rules) = (&sweeper, &backfiller, &rules);
    run(service_fn(
        |event: LambdaEvent<aws_lambda_events::eventbridge::EventBridgeEvent>| async move {
            let stop_at = kairos_sweep::stop_at(event.context.deadline);
            // The rules bucket's "Object Created" event: a publish, backfilled.
            if let (Some(rules), "aws.s3") = (rules, event.payload.source.as_str()) {
                let report = kairos_sweep::after_publish(backfiller, rules, stop_at).await?;
                return Ok::<_, Error>(serde_json::to_value(report)?);
            }
            let report = handle(event.payload, sweeper, chrono::Utc::now(), stop_at).await?;
            // What time leaves after the due contacts continues a backfill in progress.
            backfiller.run(None, stop_at).await?;
            Ok(serde_json::to_value(report)?)
        },
    ))
    .await
}
