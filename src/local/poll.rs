//! The local poller (`kairos local-poll`, started by `make watch`): what
//! Lambda's SQS event source mappings do on AWS, done against moto and the
//! cargo-lambda runtime emulator. For each SQS event of a function in
//! `infra/template.yaml` it receives up to the mapping's `BatchSize` within
//! its `MaximumBatchingWindowInSeconds`, invokes the function through the
//! emulator's invoke endpoint with an SQS event of the official shape, and
//! deletes the messages that succeeded: with `ReportBatchItemFailures`, all
//! but the reported ones; a failed invocation deletes none. What is not
//! deleted comes back after the queue's visibility timeout, and after
//! `maxReceiveCount` receives moto's redrive moves it to the dead-letter
//! queue, as on AWS. Each `Schedule`/`ScheduleV2` event with a `rate(...)`
//! expression is simulated too: the function is invoked at that period.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use serde_norway::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{text, InfraError, TEMPLATE};

/// One SQS event source mapping of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The function's binary (its `Metadata.BuildProperties.Binary`), as the emulator names it.
    pub function: String,
    /// The queue's logical name.
    pub queue: String,
    /// At most this many messages per invocation.
    pub batch_size: usize,
    /// How long to gather a batch.
    pub window: Duration,
    /// Whether the function reports failed items (else any failure fails the batch).
    pub report_failures: bool,
}

/// The template's SQS event source mappings.
pub fn mappings() -> Result<Vec<Mapping>, InfraError> {
    let mut out = Vec::new();
    for (function, event) in function_events(TEMPLATE)? {
        {
            if event["Type"] != "SQS" {
                continue;
            }
            let props = &event["Properties"];
            let queue = text(&props["Queue"])?;
            let number = |key: &str, default: u64| props[key].as_u64().unwrap_or(default);
            out.push(Mapping {
                function: function.clone(),
                queue: queue.trim_end_matches(".Arn").to_string(),
                batch_size: number("BatchSize", 10) as usize,
                window: Duration::from_secs(number("MaximumBatchingWindowInSeconds", 0)),
                report_failures: props["FunctionResponseTypes"]
                    .as_sequence()
                    .is_some_and(|types| types.iter().any(|t| t == "ReportBatchItemFailures")),
            });
        }
    }
    Ok(out)
}

/// Each event of each function of `template`: (the function's binary, the event).
fn function_events(template: &str) -> Result<Vec<(String, Value)>, InfraError> {
    let template: Value = serde_norway::from_str(template).map_err(|e| InfraError(format!("template: {e}")))?;
    let resources = template["Resources"]
        .as_mapping()
        .ok_or_else(|| InfraError("template has no Resources".into()))?;
    let mut out = Vec::new();
    for (_, resource) in resources {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let function = text(&resource["Metadata"]["BuildProperties"]["Binary"])?;
        for (_, event) in resource["Properties"]["Events"].as_mapping().into_iter().flatten() {
            out.push((function.clone(), event.clone()));
        }
    }
    Ok(out)
}

/// A scheduled invocation of the template (`Schedule` or `ScheduleV2` event).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The function's binary.
    pub function: String,
    /// The period of its `rate(...)` expression.
    pub every: Duration,
    /// The event sent: the schedule's `Input`, or an EventBridge "Scheduled Event".
    pub input: Option<String>,
}

/// The template's schedules; a `cron(...)` one is reported as not simulated.
pub fn schedules_in(template: &str) -> Result<Vec<Schedule>, InfraError> {
    let mut out = Vec::new();
    for (function, event) in function_events(template)? {
        if event["Type"] != "Schedule" && event["Type"] != "ScheduleV2" {
            continue;
        }
        let props = &event["Properties"];
        let expression = text(props.get("ScheduleExpression").unwrap_or(&props["Schedule"]))?;
        let every = rate(&expression).ok_or_else(|| {
            InfraError(format!(
                "{function}: schedule {expression:?} is not simulated locally (only rate(...) is)"
            ))
        })?;
        let input = props.get("Input").map(text).transpose()?;
        out.push(Schedule { function, every, input });
    }
    Ok(out)
}

/// The period of a `rate(N minute|minutes|hour|hours|day|days)` expression.
pub fn rate(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit.trim().trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3_600,
        "day" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

/// The EventBridge "Scheduled Event" a schedule without `Input` sends, as of now.
pub fn scheduled_event(now: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": format!("local-{}", now.timestamp_millis()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/local-schedule"],
        "detail": {}
    })
}

/// The event `schedule` sends at `now`: its `Input` with the `${AWS::...}`
/// pseudo parameters and EventBridge Scheduler's `<aws.scheduler.*>` context
/// attributes filled in as on AWS, or [`scheduled_event`] without one.
pub fn schedule_event(schedule: &Schedule, now: chrono::DateTime<chrono::Utc>) -> Result<serde_json::Value, String> {
    let Some(input) = &schedule.input else {
        return Ok(scheduled_event(now));
    };
    let arn = format!(
        "arn:aws:scheduler:us-east-1:123456789012:schedule/default/local-{}",
        schedule.function
    );
    let filled = input
        .replace("${AWS::AccountId}", "123456789012")
        .replace("${AWS::Region}", "us-east-1")
        .replace(
            "<aws.scheduler.execution-id>",
            &format!("local-{}", now.timestamp_millis()),
        )
        .replace(
            "<aws.scheduler.scheduled-time>",
            &now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
        .replace("<aws.scheduler.schedule-arn>", &arn)
        .replace("<aws.scheduler.attempt-number>", "1");
    serde_json::from_str(&filled).map_err(|e| format!("the schedule's Input is not JSON: {e}"))
}

/// Invokes `schedule`'s function once through the emulator at `invoke`.
pub async fn fire(http: &reqwest::Client, invoke: &str, schedule: &Schedule) -> Result<(), String> {
    let event = schedule_event(schedule, chrono::Utc::now())?;
    let endpoint = format!("{invoke}/2015-03-31/functions/{}/invocations", schedule.function);
    let answer = http
        .post(&endpoint)
        .json(&event)
        .send()
        .await
        .map_err(|e| format!("cannot invoke {endpoint}: {e}"))?;
    match answer.status().is_success() {
        true => Ok(()),
        false => Err(format!("invocation answered HTTP {}", answer.status())),
    }
}

/// What one poll of a mapping did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Polled {
    /// Messages passed to the function.
    pub received: usize,
    /// Messages deleted (handled).
    pub deleted: usize,
    /// Messages left for redelivery, and why.
    pub left: usize,
    /// Why messages were left, if the invocation itself failed.
    pub error: Option<String>,
}

/// Polls one mapping's queue (at `url`, ARN `arn`) once and invokes `invoke`
/// (the emulator's base URL) with what it received.
pub async fn poll_once(
    sqs: &aws_sdk_sqs::Client,
    http: &reqwest::Client,
    invoke: &str,
    mapping: &Mapping,
    (url, arn): (&str, &str),
) -> Result<Polled, InfraError> {
    let messages = gather(sqs, mapping, url).await?;
    if messages.is_empty() {
        return Ok(Polled::default());
    }
    let event = sqs_event(&messages, arn);
    let endpoint = format!("{invoke}/2015-03-31/functions/{}/invocations", mapping.function);
    let answer = http.post(&endpoint).json(&event).send().await;
    let failed: Result<Vec<String>, String> = match answer {
        Ok(r) if r.status().is_success() => match r.json::<SqsBatchResponse>().await {
            Ok(response) if mapping.report_failures => Ok(response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect()),
            Ok(_) => Ok(Vec::new()),
            Err(e) => Err(format!("the answer is not an SQS batch response: {e}")),
        },
        Ok(r) => Err(format!(
            "invocation answered HTTP {}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        )),
        Err(e) => Err(format!("cannot invoke {endpoint}: {e}")),
    };
    let (failed, error) = match failed {
        Ok(ids) => (ids, None),
        // The whole batch is retried, as Lambda does when the invocation fails.
        Err(why) => (
            messages
                .iter()
                .filter_map(|m| m.message_id().map(str::to_string))
                .collect(),
            Some(why),
        ),
    };
    let mut deleted = 0;
    for m in &messages {
        if m.message_id().is_some_and(|id| failed.iter().any(|f| f == id)) {
            continue;
        }
        if let Some(receipt) = m.receipt_handle() {
            let delete = sqs.delete_message().queue_url(url).receipt_handle(receipt);
            delete.send().await.map_err(|e| InfraError(format!("delete: {e}")))?;
            deleted += 1;
        }
    }
    Ok(Polled {
        received: messages.len(),
        deleted,
        left: messages.len() - deleted,
        error,
    })
}

/// Receives up to the batch size within the batching window (at least one long poll).
async fn gather(
    sqs: &aws_sdk_sqs::Client,
    mapping: &Mapping,
    url: &str,
) -> Result<Vec<aws_sdk_sqs::types::Message>, InfraError> {
    let until = Instant::now() + mapping.window;
    let mut out: Vec<aws_sdk_sqs::types::Message> = Vec::new();
    loop {
        let want = (mapping.batch_size - out.len()).min(10) as i32;
        let wait = if out.is_empty() { 1 } else { 0 };
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(want)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(wait)
            .send()
            .await
            .map_err(|e| InfraError(format!("receive: {}", aws_sdk_sqs::error::DisplayErrorContext(e))))?;
        let n = got.messages().len();
        out.extend(got.messages().iter().cloned());
        if out.is_empty() || out.len() >= mapping.batch_size || Instant::now() >= until {
            return Ok(out);
        }
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An SQS event of the official shape, as Lambda's poller passes these messages.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message], arn: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    let region = arn.split(':').nth(3).unwrap_or("us-east-1").to_string();
    event.records = messages
        .iter()
        .map(|m| {
            let mut r = SqsMessage::default();
            r.message_id = m.message_id().map(str::to_string);
            r.receipt_handle = m.receipt_handle().map(str::to_string);
            r.body = m.body().map(str::to_string);
            r.md5_of_body = m.md5_of_body().map(str::to_string);
            r.event_source = Some("aws:sqs".into());
            r.event_source_arn = Some(arn.to_string());
            r.aws_region = Some(region.clone());
            r.attributes = m
                .attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                .collect::<HashMap<_, _>>();
            for (name, value) in m.message_attributes().into_iter().flatten() {
                let mut a = SqsMessageAttribute::default();
                a.string_value = value.string_value().map(str::to_string);
                a.data_type = Some(value.data_type().to_string());
                r.message_attributes.insert(name.clone(), a);
            }
            r
        })
        .collect();
    event
}

/// A mapping with its queue's URL and ARN on the local endpoint.
async fn locate(sqs: &aws_sdk_sqs::Client, mapping: &Mapping) -> Result<(String, String), InfraError> {
    let name = mapping.queue.to_lowercase();
    let url = sqs
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await
        .map_err(|e| InfraError(format!("queue {name} (run `kairos local-infra` first): {e}")))?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| InfraError(format!("queue {name}: {e}")))?;
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_default();
    Ok((url, arn))
}

/// Polls every mapping of the template until the process ends, printing one
/// line per batch passed on.
pub async fn run(
    config: &aws_config::SdkConfig,
    invoke: &str,
    print: super::receive::Printer,
) -> Result<(), InfraError> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let http = reqwest::Client::new();
    let mut loops = Vec::new();
    for mapping in mappings()? {
        let queue = locate(&sqs, &mapping).await?;
        print(format!(
            "poller: {} → {} (batch {}, window {} s{})",
            mapping.queue,
            mapping.function,
            mapping.batch_size,
            mapping.window.as_secs(),
            if mapping.report_failures {
                ", ReportBatchItemFailures"
            } else {
                ""
            }
        ));
        let (sqs, http, print, invoke) = (sqs.clone(), http.clone(), print.clone(), invoke.to_string());
        loops.push(tokio::spawn(async move {
            loop {
                match poll_once(&sqs, &http, &invoke, &mapping, (&queue.0, &queue.1)).await {
                    Ok(p) if p.received == 0 => {}
                    Ok(p) => print(format!(
                        "poller: {} → {}: {} message(s), {} done, {} left for redelivery{}",
                        mapping.queue,
                        mapping.function,
                        p.received,
                        p.deleted,
                        p.left,
                        p.error.map(|e| format!(" ({e})")).unwrap_or_default()
                    )),
                    Err(e) => {
                        print(format!("poller: {}: {e}", mapping.queue));
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        }));
    }
    let schedules = schedules_in(TEMPLATE).unwrap_or_else(|e| {
        print(format!("poller: schedules not simulated: {e}"));
        Vec::new()
    });
    for schedule in schedules {
        print(format!(
            "poller: every {} s → {} (the template's schedule)",
            schedule.every.as_secs(),
            schedule.function
        ));
        let (http, print, invoke) = (http.clone(), print.clone(), invoke.to_string());
        loops.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(schedule.every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match fire(&http, &invoke, &schedule).await {
                    Ok(()) => print(format!("poller: schedule → {}: invoked", schedule.function)),
                    Err(e) => print(format!("poller: schedule → {}: {e}", schedule.function)),
                }
            }
        }));
    }
    for l in loops {
        let _ = l.await;
    }
    Ok(())
}
