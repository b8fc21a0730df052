//! Local infrastructure: creates the DynamoDB table and SQS queues exactly as
//! `infra/template.yaml` defines them (key schema, global secondary indexes, TTL, visibility timeouts,
//! retention, redrive to the dead-letter queues), and its versioned buckets, on any endpoint that speaks
//! the AWS protocols, such as moto server. Used by `kairos local-infra` (for
//! `make watch`) and by the integration tests.

pub mod poll;
pub mod receive;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_norway::Value;
use std::collections::HashMap;

/// The SAM template, embedded.
pub const TEMPLATE: &str = include_str!("../../infra/template.yaml");

/// What was created: the table name and queue URLs by logical resource name
/// (`EventsQueue`, `EventsDeadLetterQueue`, `WritebackQueue`, ...).
#[derive(Debug, Clone)]
pub struct Infra {
    /// The contacts table's name (its logical name in the template, `ContactsTable`).
    pub table: String,
    /// Every table's name by logical name (`ContactsTable`, `AuditTable`).
    pub tables: HashMap<String, String>,
    /// Queue URLs by logical name.
    pub queues: HashMap<String, String>,
    /// Versioned bucket names by logical name (`RulesBucket`), each its logical name lowercased.
    pub buckets: HashMap<String, String>,
}

impl Infra {
    /// The URL of the queue with this logical name, or "" if the template has none.
    pub fn queue(&self, logical: &str) -> &str {
        self.queues.get(logical).map_or("", String::as_str)
    }
}

/// An SDK configuration for a local endpoint: dummy credentials, `us-east-1`.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "local");
    kairos_store::sdk::loader()
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await
}

/// Why the local infrastructure could not be created.
#[derive(Debug, thiserror::Error)]
#[error("local infra: {0}")]
pub struct InfraError(String);

fn fail(context: &str) -> impl Fn(String) -> InfraError + '_ {
    move |e| InfraError(format!("{context}: {e}"))
}

fn sdk_fail<E: std::error::Error>(context: &str) -> impl Fn(E) -> InfraError + '_ {
    move |e| InfraError(format!("{context}: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))
}

fn text(v: &Value) -> Result<String, InfraError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Tagged(t) => text(&t.value),
        other => Err(InfraError(format!(
            "expected a scalar in the template, found {other:?}"
        ))),
    }
}

fn list(v: &Value, field: &str) -> Result<Vec<Value>, InfraError> {
    v[field]
        .as_sequence()
        .cloned()
        .ok_or_else(|| InfraError(format!("template: `{field}` is not a list")))
}

/// Creates every table and queue of the template through `config`'s endpoint.
pub async fn create(config: &aws_config::SdkConfig) -> Result<Infra, InfraError> {
    let template: Value = serde_norway::from_str(TEMPLATE).map_err(|e| fail("template")(e.to_string()))?;
    let resources = template["Resources"]
        .as_mapping()
        .ok_or_else(|| InfraError("template has no Resources".into()))?;
    let mut tables = HashMap::new();
    for (name, resource) in resources {
        if resource["Type"] == "AWS::DynamoDB::Table" {
            let name = text(name)?;
            tables.insert(
                name.clone(),
                create_table(config, &name, &resource["Properties"]).await?,
            );
        }
    }
    let queues = create_queues(config, resources).await?;
    let mut buckets = HashMap::new();
    for (name, resource) in resources {
        if resource["Type"] == "AWS::S3::Bucket" {
            let name = text(name)?;
            buckets.insert(name.clone(), create_bucket(config, &name).await?);
        }
    }
    Ok(Infra {
        table: tables
            .get("ContactsTable")
            .cloned()
            .ok_or_else(|| InfraError("template defines no ContactsTable".into()))?,
        tables,
        queues,
        buckets,
    })
}

async fn create_table(config: &aws_config::SdkConfig, name: &str, props: &Value) -> Result<String, InfraError> {
    let client = aws_sdk_dynamodb::Client::new(config);
    let mut attributes = Vec::new();
    for a in list(props, "AttributeDefinitions")? {
        let def = AttributeDefinition::builder()
            .attribute_name(text(&a["AttributeName"])?)
            .attribute_type(ScalarAttributeType::from(text(&a["AttributeType"])?.as_str()))
            .build();
        attributes.push(def.map_err(sdk_fail("attribute definition"))?);
    }
    let mut indexes = Vec::new();
    for index in props
        .get("GlobalSecondaryIndexes")
        .map_or(Ok(Vec::new()), |_| list(props, "GlobalSecondaryIndexes"))?
    {
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(
                text(&index["Projection"]["ProjectionType"])?.as_str(),
            ))
            .build();
        let index = GlobalSecondaryIndex::builder()
            .index_name(text(&index["IndexName"])?)
            .set_key_schema(Some(key_schema(&index)?))
            .projection(projection)
            .build();
        indexes.push(index.map_err(sdk_fail("global secondary index"))?);
    }
    client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(props)?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .billing_mode(BillingMode::from(text(&props["BillingMode"])?.as_str()))
        .send()
        .await
        .map_err(sdk_fail("create table"))?;
    let ttl = &props["TimeToLiveSpecification"];
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(text(&ttl["AttributeName"])?)
        .enabled(ttl["Enabled"].as_bool().unwrap_or(false))
        .build()
        .map_err(sdk_fail("ttl"))?;
    let ttl = client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec);
    ttl.send().await.map_err(sdk_fail("update ttl"))?;
    Ok(name.to_string())
}

/// An S3 client for a local endpoint: path-style addressing (no bucket host names).
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(true).build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// A versioned bucket named after the logical name, lowercased.
async fn create_bucket(config: &aws_config::SdkConfig, logical: &str) -> Result<String, InfraError> {
    let client = s3_client(config);
    let name = logical.to_lowercase();
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .map_err(sdk_fail("create bucket"))?;
    let versioning = aws_sdk_s3::types::VersioningConfiguration::builder()
        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
        .build();
    let put = client
        .put_bucket_versioning()
        .bucket(&name)
        .versioning_configuration(versioning);
    put.send().await.map_err(sdk_fail("bucket versioning"))?;
    Ok(name)
}

/// A table's or an index's `KeySchema`.
fn key_schema(props: &Value) -> Result<Vec<KeySchemaElement>, InfraError> {
    let mut keys = Vec::new();
    for k in list(props, "KeySchema")? {
        let key = KeySchemaElement::builder()
            .attribute_name(text(&k["AttributeName"])?)
            .key_type(KeyType::from(text(&k["KeyType"])?.as_str()))
            .build();
        keys.push(key.map_err(sdk_fail("key schema"))?);
    }
    Ok(keys)
}

async fn create_queues(
    config: &aws_config::SdkConfig,
    resources: &serde_norway::Mapping,
) -> Result<HashMap<String, String>, InfraError> {
    let client = aws_sdk_sqs::Client::new(config);
    let mut queues = Vec::new();
    for (name, resource) in resources {
        if resource["Type"] == "AWS::SQS::Queue" {
            queues.push((text(name)?, &resource["Properties"]));
        }
    }
    // Dead-letter queues first: the others name them in their redrive policy.
    queues.sort_by_key(|(_, props)| props.get("RedrivePolicy").is_some());
    let (mut urls, mut arns) = (HashMap::new(), HashMap::new());
    for (name, props) in queues {
        let mut request = client.create_queue().queue_name(name.to_lowercase());
        for (key, attr) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
        ] {
            if let Some(v) = props.get(key) {
                request = request.attributes(attr, text(v)?);
            }
        }
        if let Some(redrive) = props.get("RedrivePolicy") {
            let target = text(&redrive["deadLetterTargetArn"])?;
            let dlq_arn = arns
                .get(target.trim_end_matches(".Arn"))
                .ok_or_else(|| fail("redrive")(target.clone()))?;
            let max = redrive["maxReceiveCount"]
                .as_u64()
                .ok_or_else(|| InfraError("maxReceiveCount".into()))?;
            let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max});
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let created = request.send().await.map_err(sdk_fail("create queue"))?;
        let url = created.queue_url().unwrap_or_default().to_string();
        let attrs = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn);
        let attrs = attrs.send().await.map_err(sdk_fail("queue arn"))?;
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        arns.insert(name.clone(), arn);
        urls.insert(name, url);
    }
    Ok(urls)
}

/// The local webhook's signing secret (development only; `make watch`).
pub const LOCAL_WEBHOOK_SECRET: &str = "whsec_bG9jYWwtZGV2LXdlYmhvb2stc2VjcmV0";

/// Puts the SSM parameters the embedded destinations file names (the
/// webhook's secret, `/kairos/webhook-secret`) on a local endpoint.
pub async fn put_local_secrets(config: &aws_config::SdkConfig) -> Result<(), InfraError> {
    let ssm = aws_sdk_ssm::Client::new(config);
    ssm.put_parameter()
        .name("/kairos/webhook-secret")
        .value(LOCAL_WEBHOOK_SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .map_err(sdk_fail("put parameter"))?;
    Ok(())
}

/// The HTTP API routes of the template (its functions' events and its route resources), as `METHOD /path`, sorted.
pub fn http_routes() -> Result<Vec<String>, InfraError> {
    let template: Value = serde_norway::from_str(TEMPLATE).map_err(|e| fail("template")(e.to_string()))?;
    let resources = template["Resources"]
        .as_mapping()
        .ok_or_else(|| InfraError("template has no Resources".into()))?;
    let mut routes = Vec::new();
    for (_, resource) in resources {
        // Routes declared as resources (the console's, behind its own sign-in).
        if resource["Type"] == "AWS::ApiGatewayV2::Route" {
            routes.push(text(&resource["Properties"]["RouteKey"])?);
        }
        for (_, event) in resource["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if event["Type"] == "HttpApi" {
                let props = &event["Properties"];
                routes.push(format!("{} {}", text(&props["Method"])?, text(&props["Path"])?));
            }
        }
    }
    routes.sort();
    Ok(routes)
}

/// A template parameter's `AllowedPattern`, if it has one.
pub fn allowed_pattern(parameter: &str) -> Option<String> {
    let template: Value = serde_norway::from_str(TEMPLATE).ok()?;
    template["Parameters"][parameter]["AllowedPattern"]
        .as_str()
        .map(str::to_string)
}
