use std::collections::HashMap;

use kairos_ingest::{handle, Ingest, IngestConfig};
use kairos_store::{parameters_under, resolve_secret, DynamoClaims, SqsQueue};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = aws_config::load_from_env().await;
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let mut vars: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("KAIROS_")).collect();
    // Parameters under KAIROS_SECRETS_PATH fill in what the environment does not set.
    if let Some(path) = vars.get("KAIROS_SECRETS_PATH").cloned() {
        for (name, value) in parameters_under(&path, &ssm).await? {
            vars.entry(name).or_insert(value);
        }
    }
    for value in vars.values_mut() {
        *value = resolve_secret(value, &ssm).await?;
    }
    let required = |name: &str| {
        vars.get(name)
            .cloned()
            .ok_or(format!("environment variable {name} is required"))
    };
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), required("KAIROS_EVENTS_QUEUE_URL")?);
    let claims = DynamoClaims::new(aws_sdk_dynamodb::Client::new(&aws), required("KAIROS_TABLE")?);
    let config = IngestConfig::from_env(&|name| vars.get(name).cloned())?;
    tracing::info!(?config, "ingest configured");
    let ingest = Ingest {
        config: &config,
        queue: &queue,
        claims: &claims,
    };
    run(service_fn(|event: LambdaEvent<_>| async {
        Ok::<_, Error>(handle(event.payload, &ingest, chrono::Utc::now().timestamp()).await)
    }))
    .await
}
