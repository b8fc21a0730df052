use kairos_store::{resolve_secret, DynamoContacts, DynamoLedger, DynamoLookups, SqsQueue};
use kairos_writeback::http::ReqwestTransport;
use kairos_writeback::{build, handle, Config, Parts, SystemClock, Writeback};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use std::collections::HashMap;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env(|name| std::env::var(name).ok())?;
    let aws = aws_config::load_from_env().await;
    let (ssm, dynamodb, sqs) = (
        aws_sdk_ssm::Client::new(&aws),
        aws_sdk_dynamodb::Client::new(&aws),
        aws_sdk_sqs::Client::new(&aws),
    );
    let mut secrets = HashMap::new();
    for (_, name) in config.destinations.parameters() {
        secrets.insert(name.to_string(), resolve_secret(&format!("ssm:{name}"), &ssm).await?);
    }
    let lookups = DynamoLookups::new(dynamodb.clone(), &config.table);
    let transport = |_: &_, timeout| ReqwestTransport::new(Config::http_client(timeout));
    let parts = Parts {
        secrets: &secrets,
        transport,
        lookups,
        clock: Arc::new(SystemClock),
    };
    let destinations = build(&config.destinations, parts).await?;
    let (ledger, contacts) = (
        DynamoLedger::new(dynamodb.clone(), &config.table),
        DynamoContacts::new(dynamodb, &config.table),
    );
    let (dead_letters, queue) = (
        SqsQueue::new(sqs.clone(), &config.dead_letter_url),
        SqsQueue::new(sqs, &config.queue_url),
    );
    let wb = Writeback {
        destinations: &destinations,
        ledger: &ledger,
        contacts: &contacts,
        dead_letters: &dead_letters,
        redelivery: &queue,
        clock: &SystemClock,
    };
    let wb = &wb;
    run(service_fn(move |event: LambdaEvent<_>| async move {
        Ok::<_, Error>(handle(event.payload, event.context.deadline, wb).await)
    }))
    .await
}
