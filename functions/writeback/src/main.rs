use kairos_store::{DynamoContacts, DynamoLedger, DynamoLookups, SqsQueue};
use kairos_writeback::http::ReqwestTransport;
use kairos_writeback::{build, handle, read_credentials, Clock, Config, Parts, SystemClock, Writeback};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    kairos_event::metrics::enable();
    let config = Config::from_env(|name| std::env::var(name).ok())?;
    let aws = kairos_store::sdk::load_from_env().await;
    kairos_store::init_log_hashing(&aws).await?;
    let (dynamodb, sqs) = (aws_sdk_dynamodb::Client::new(&aws), aws_sdk_sqs::Client::new(&aws));
    let secrets = read_credentials(&config.destinations, &aws_sdk_ssm::Client::new(&aws)).await?;
    let transport = |_: &_, timeout| ReqwestTransport::new(Config::http_client(timeout));
    let lookups = DynamoLookups::new(dynamodb.clone(), &config.table);
    let parts = Parts {
        secrets: &secrets,
        transport,
        lookups,
        clock: Arc::new(SystemClock),
    };
    let destinations = build(&config.destinations, parts).await?;
    let ledger = DynamoLedger::new(dynamodb.clone(), &config.table);
    let contacts = DynamoContacts::new(dynamodb, &config.table);
    let dead_letters = SqsQueue::new(sqs.clone(), &config.dead_letter_url);
    let queue = SqsQueue::new(sqs, &config.queue_url);
    let wb = &Writeback {
        destinations: &destinations,
        ledger: &ledger,
        contacts: &contacts,
        dead_letters: &dead_letters,
        redelivery: &queue,
        clock: &SystemClock,
    };
    run(service_fn(move |event: LambdaEvent<_>| async move {
        let deadline = kairos_event::invocation_deadline_ms(event.context.deadline, SystemClock.now_ms());
        Ok::<_, Error>(handle(event.payload, deadline, wb).await)
    }))
    .await
}
