use kairos_admin::{handle, parse_admin_keys, Admin, Erasing};
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
    // The erasure receipt's salt (usually `ssm:<name>`), never logged; unset: erasure refused.
    let salt = match std::env::var("KAIROS_ERASURE_SALT").ok().filter(|s| !s.is_empty()) {
        Some(value) => kairos_store::resolve_secret(&value, &aws_sdk_ssm::Client::new(&aws)).await?,
        None => String::new(),
    };
    let window_days = match std::env::var("KAIROS_ERASURE_WINDOW_DAYS")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(v) => kairos_engine::erasure::parse_window_days(&v)
            .map_err(|e| format!("environment variable KAIROS_ERASURE_WINDOW_DAYS is invalid: {e}"))?,
        None => kairos_engine::erasure::DEFAULT_WINDOW_DAYS,
    };
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
    let (live, fixed, store, queue, keys, salt) = (&live, &fixed, &store, &queue, &keys, &salt);
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
        // Long work (an erasure) stops two seconds before the invocation's deadline.
        let left_ms = event
            .context
            .deadline
            .saturating_sub(now.timestamp_millis().max(0) as u64);
        let erasure = Erasing {
            salt: salt.as_bytes(),
            window_secs: window_days * 86_400,
            deadline: std::time::Instant::now() + std::time::Duration::from_millis(left_ms.saturating_sub(2_000)),
        };
        let admin = Admin {
            evaluator,
            keys,
            erasure,
        };
        Ok::<_, Error>(handle(event.payload, &admin, now).await)
    }))
    .await
}
