//! Creates the table and queues exactly as `infra/template.yaml` defines them.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_norway::Value;
use std::collections::HashMap;

const TEMPLATE: &str = include_str!("../../infra/template.yaml");

/// Queue URLs by logical resource name, and the table name.
pub struct Infra {
    pub table: String,
    pub queues: HashMap<String, String>,
}

impl Infra {
    pub fn queue(&self, logical: &str) -> &str {
        &self.queues[logical]
    }
}

fn resources() -> serde_norway::Mapping {
    let template: Value = serde_norway::from_str(TEMPLATE).expect("infra/template.yaml parses");
    template["Resources"].as_mapping().expect("Resources").clone()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => text(&t.value),
        other => panic!("unexpected template value {other:?}"),
    }
}

pub async fn create(config: &aws_config::SdkConfig) -> Infra {
    let resources = resources();
    let mut table = None;
    for (name, resource) in &resources {
        if resource["Type"] == "AWS::DynamoDB::Table" {
            table = Some(create_table(config, &text(name), &resource["Properties"]).await);
        }
    }
    let queues = create_queues(config, &resources).await;
    Infra {
        table: table.expect("the template defines a table"),
        queues,
    }
}

async fn create_table(config: &aws_config::SdkConfig, name: &str, props: &Value) -> String {
    let client = aws_sdk_dynamodb::Client::new(config);
    let attributes = props["AttributeDefinitions"].as_sequence().unwrap().iter().map(|a| {
        AttributeDefinition::builder()
            .attribute_name(text(&a["AttributeName"]))
            .attribute_type(ScalarAttributeType::from(text(&a["AttributeType"]).as_str()))
            .build()
            .unwrap()
    });
    let keys = props["KeySchema"].as_sequence().unwrap().iter().map(|k| {
        KeySchemaElement::builder()
            .attribute_name(text(&k["AttributeName"]))
            .key_type(KeyType::from(text(&k["KeyType"]).as_str()))
            .build()
            .unwrap()
    });
    client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attributes.collect()))
        .set_key_schema(Some(keys.collect()))
        .billing_mode(BillingMode::from(text(&props["BillingMode"]).as_str()))
        .send()
        .await
        .expect("create table");
    let ttl = &props["TimeToLiveSpecification"];
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(text(&ttl["AttributeName"]))
        .enabled(ttl["Enabled"].as_bool().unwrap())
        .build()
        .unwrap();
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec)
        .send()
        .await
        .expect("ttl");
    name.to_string()
}

async fn create_queues(config: &aws_config::SdkConfig, resources: &serde_norway::Mapping) -> HashMap<String, String> {
    let client = aws_sdk_sqs::Client::new(config);
    let queues: Vec<(String, &Value)> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::SQS::Queue")
        .map(|(n, r)| (text(n), &r["Properties"]))
        .collect();
    let mut urls = HashMap::new();
    let mut arns = HashMap::new();
    // Dead-letter queues first: the others name them in their redrive policy.
    let (plain, redriven): (Vec<_>, Vec<_>) = queues.into_iter().partition(|(_, p)| p.get("RedrivePolicy").is_none());
    for (name, props) in plain.into_iter().chain(redriven) {
        let mut request = client.create_queue().queue_name(name.to_lowercase());
        for (key, attr) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
        ] {
            if let Some(v) = props.get(key) {
                request = request.attributes(attr, text(v));
            }
        }
        if let Some(redrive) = props.get("RedrivePolicy") {
            let target = text(&redrive["deadLetterTargetArn"]);
            let dlq = target.trim_end_matches(".Arn");
            let policy = serde_json::json!({"deadLetterTargetArn": arns[dlq], "maxReceiveCount": redrive["maxReceiveCount"].as_u64().expect("maxReceiveCount is a number")});
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = request
            .send()
            .await
            .expect("create queue")
            .queue_url()
            .unwrap()
            .to_string();
        let attrs = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        arns.insert(
            name.clone(),
            attrs.attributes().unwrap()[&QueueAttributeName::QueueArn].clone(),
        );
        urls.insert(name, url);
    }
    urls
}
