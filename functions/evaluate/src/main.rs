use kairos_evaluate::{handle, handle_live, Config, Evaluator, LiveRules};
use kairos_store::{DynamoContacts, FirehoseArchive, S3Rules, SqsQueue};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

/// Time kept back from the invocation's deadline for answering after the archive gives up.
const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// mimalloc: each event allocates small, short-lived vectors and strings
/// (decisions, explanations, summaries), which it serves faster than the
/// system allocator (see the rules bench, which uses it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    kairos_event::metrics::enable();
    let config = Config::from_env(|name| std::env::var(name).ok())?;
    let aws = kairos_store::sdk::load_from_env().await;
    kairos_store::init_log_hashing(&aws).await?;
    let mut store =
        DynamoContacts::new(aws_sdk_dynamodb::Client::new(&aws), &config.table).with_due_shards(config.due_shards);
    if let Some(audit) = &config.audit_table {
        store = store.with_audit(audit, config.audit_retention_days);
    }
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), &config.writeback_queue_url);
    let published = match &config.rules_uri {
        Some(uri) => Some(S3Rules::new(kairos_store::s3_client(&aws), uri)?),
        None => None,
    };
    // Send-time decisions: ESP reports and goals in these events reconcile them.
    let decisions = kairos_decide_fn::DynamoDecisions::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    let live = published.map(|object| LiveRules::new(object, config.rules.clone(), config.rules_refresh_secs));
    let fixed = std::sync::Arc::new(config.rules.clone());
    let archive = (config.archive_stream.as_ref())
        .map(|stream| FirehoseArchive::new(aws_sdk_firehose::Client::new(&aws), stream));
    let archive = &archive;
    let (live, fixed, config, store, queue, decisions) = (&live, &fixed, &config, &store, &queue, &decisions);
    run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        let now = chrono::Utc::now();
        let deadline = deadline(event.context.deadline).checked_sub(ANSWER_MARGIN);
        let deadline = deadline.unwrap_or_else(tokio::time::Instant::now);
        // The contacts table's stream (its TTL's deletions) shares the rules and the store.
        if kairos_evaluate::is_stream_batch(&event.payload) {
            // Rare (the TTL's deletions only): always on the newest published rules.
            let (rules, seq) = match live {
                Some(live) => live.refresh(now.timestamp()).await,
                None => (fixed.clone(), 0),
            };
            let response = kairos_evaluate::handle_expired(&event.payload, (&rules, seq), store, now, deadline).await;
            return Ok(serde_json::to_value(response)?);
        }
        let batch: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(event.payload)?;
        let (mut response, rules) = match live {
            Some(live) => {
                let skew = config.max_clock_skew_secs;
                handle_live(batch.clone(), live, store, queue, skew, now).await
            }
            None => {
                let evaluator = Evaluator {
                    max_clock_skew_secs: config.max_clock_skew_secs,
                    ..Evaluator::new(fixed, store, queue)
                };
                (handle(batch.clone(), &evaluator, now).await, fixed.clone())
            }
        };
        kairos_decide_fn::reconcile_batch(&rules, decisions, &batch, &mut response).await;
        if let Some(archive) = archive {
            kairos_evaluate::archive_batch(&batch, &mut response, archive, deadline).await;
        }
        Ok::<_, Error>(serde_json::to_value(response)?)
    }))
    .await
}

/// The invocation's deadline as a monotonic instant.
fn deadline(header_ms: u64) -> tokio::time::Instant {
    let now = std::time::SystemTime::now();
    let now_ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = kairos_event::invocation_deadline_ms(header_ms, now_ms).saturating_sub(now_ms);
    tokio::time::Instant::now() + std::time::Duration::from_millis(left)
}
