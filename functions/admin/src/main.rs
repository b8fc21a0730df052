use kairos_admin::{handle, parse_admin_keys, Admin};
use kairos_evaluate::{Config, Evaluator, LiveRules};
use kairos_store::{DynamoContacts, S3Rules, SqsQueue};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // The evaluate function's configuration: the same table, rules, write-back queue and audit table.
    let config = Config::from_env(|name| std::env::var(name).ok())?;
    let keys = parse_admin_keys(&std::env::var("KAIROS_ADMIN_KEYS").unwrap_or_default())
        .map_err(|e| format!("environment variable KAIROS_ADMIN_KEYS is invalid: {e}"))?;
    let aws = kairos_store::sdk::load_from_env().await;
    kairos_store::init_log_hashing(&aws).await?;
    let mut store =
        DynamoContacts::new(aws_sdk_dynamodb::Client::new(&aws), &config.table).with_due_shards(config.due_shards);
    if let Some(audit) = &config.audit_table {
        store = store.with_audit(audit, config.audit_retention_days);
    }
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), &config.writeback_queue_url);
    // The rules in force: the published ones when configured, as in evaluate.
    let live = match &config.rules_uri {
        Some(uri) => Some(LiveRules::new(
            S3Rules::new(kairos_store::s3_client(&aws), uri)?,
            config.rules.clone(),
            config.rules_refresh_secs,
        )),
        None => None,
    };
    let fixed = std::sync::Arc::new(config.rules.clone());
    let (live, fixed, store, queue, keys) = (&live, &fixed, &store, &queue, &keys);
    run(service_fn(move |event: LambdaEvent<_>| async move {
        let now = chrono::Utc::now();
        let (rules, rules_seq) = match live {
            Some(live) => live.versioned(now.timestamp()).await,
            None => (fixed.clone(), 0),
        };
        let evaluator = Evaluator {
            rules_seq,
            ..Evaluator::new(&rules, store, queue)
        };
        let admin = Admin { evaluator, keys };
        Ok::<_, Error>(handle(event.payload, &admin, now).await)
    }))
    .await
}
