use kairos_decide_fn::{handle, Decide, DecideConfig, DynamoDecisions};
use kairos_store::DynamoContacts;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = kairos_store::sdk::load_from_env().await;
    kairos_store::init_log_hashing(&aws).await?;
    let config = DecideConfig::load(&aws_sdk_ssm::Client::new(&aws)).await?;
    tracing::info!(?config, "decide configured");
    let rules = config.rules()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let contacts = DynamoContacts::new(dynamodb.clone(), &config.table);
    let decisions = DynamoDecisions::new(dynamodb, &config.table);
    let decide = &Decide {
        config: &config,
        rules: &rules,
        contacts: &contacts,
        decisions: &decisions,
    };
    run(service_fn(move |event: LambdaEvent<_>| async move {
        Ok::<_, Error>(handle(event.payload, decide, chrono::Utc::now().timestamp()).await)
    }))
    .await
}
