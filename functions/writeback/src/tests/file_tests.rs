//! The destinations file: strict reading, every problem with its path, the
//! committed JSON Schema.

use crate::file::{interpolate, parse, DestinationDef, Segments};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

const FULL: &str = r#"
destinations:
  - name: crm-webhook
    kind: webhook
    segments: all
    credentials: { secret: /kairos/writeback/webhook-secret }
    mapping: { url: "https://crm.example.test/kairos" }
  - name: hubspot
    kind: hubspot
    segments: [pricing-intent, engaged-reader]
    credentials: { token: /kairos/writeback/hubspot-token }
    mapping:
      property: kairos_segments
      booleans: { pricing-intent: kairos_pricing_intent }
      lists: { pricing-intent: "42" }
  - name: salesforce
    kind: salesforce
    segments: [sales-ready]
    credentials: { private_key: /kairos/writeback/salesforce-key }
    mapping:
      client_id: 3MVG9consumerkey
      username: kairos@acme.example
      external_id_field: Kairos_Key__c
      field: Kairos_Segments__c
      checkboxes: { sales-ready: Kairos_Sales_Ready__c }
  - name: pipedrive
    kind: pipedrive
    segments: all
    credentials: { api_token: /kairos/writeback/pipedrive-token }
    mapping: { field: Kairos segments, duplicates: fail }
    max_attempts: 2
"#;

const RULES: [&str; 4] = ["pricing-intent", "engaged-reader", "sales-ready", "gone-quiet"];

fn problems(text: &str) -> Vec<String> {
    parse(text, Some(&RULES))
        .unwrap_err()
        .0
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn a_full_file_reads_with_defaults() {
    let file = parse(FULL, Some(&RULES)).unwrap();
    let kinds: Vec<&str> = file.destinations.iter().map(|d| d.kind()).collect();
    assert_eq!(kinds, ["webhook", "hubspot", "salesforce", "pipedrive"]);
    let DestinationDef::Hubspot(h) = &file.destinations[1] else {
        panic!()
    };
    assert_eq!(
        (h.mapping.id_property.as_str(), h.mapping.base_url.as_str()),
        ("email", "https://api.hubapi.com")
    );
    let DestinationDef::Salesforce(s) = &file.destinations[2] else {
        panic!()
    };
    assert_eq!((s.mapping.sobject.as_str(), s.mapping.reserve_percent), ("Contact", 20));
    assert_eq!(file.destinations[0].segments(), &Segments::All);
    assert_eq!(file.parameters()[1], ("hubspot", "/kairos/writeback/hubspot-token"));
}

#[test]
fn every_problem_is_listed_with_its_path() {
    let text = FULL
        .replace("name: pipedrive", "name: hubspot")
        .replace("[sales-ready]", "[sales-ready, no-such-segment]")
        .replace("/kairos/writeback/hubspot-token", "pat-na1-0123")
        .replace("Kairos_Key__c", "Email")
        .replace("lists: { pricing-intent: \"42\" }", "lists: { gone-quiet: \"42\" }")
        .replace("duplicates: fail", "duplicates: sometimes");
    let found = problems(&text);
    let expected = [
        "destinations[1].credentials.token: expected an SSM parameter name starting with `/`",
        "destinations[1].mapping.lists.gone-quiet: `gone-quiet` is not among this destination's segments",
        "destinations[2].segments[1]: unknown segment `no-such-segment`",
        "destinations[2].mapping.external_id_field: `Email` must be a custom field",
        "destinations[3].mapping.duplicates: unknown variant `sometimes`",
    ];
    for e in expected {
        assert!(found.iter().any(|f| f.starts_with(e)), "missing {e:?} in {found:#?}");
    }
    // The duplicate name is only noticed when the item reads; fix its other problem.
    let twice = FULL.replace("name: pipedrive", "name: hubspot");
    assert!(problems(&twice)
        .iter()
        .any(|p| p.contains("`hubspot` is already the name of destinations[1]")));
}

#[test]
fn structure_errors_name_the_field() {
    let unknown = FULL.replace("property: kairos_segments", "propety: kairos_segments");
    assert!(
        problems(&unknown)[0].starts_with("destinations[1].mapping.propety: unknown field `propety`"),
        "{:?}",
        problems(&unknown)
    );
    let kind = FULL.replace("kind: salesforce", "kind: dynamics");
    assert_eq!(
        problems(&kind),
        ["destinations[2].kind: expected one of webhook, hubspot, salesforce, pipedrive; found \"dynamics\""]
    );
    let twice = "destinations:\n  - name: a\n    name: b\n";
    assert!(
        problems(twice)[0].contains("`name` is given twice"),
        "{:?}",
        problems(twice)
    );
    assert_eq!(
        problems("destinations: []"),
        ["destinations: expected at least one destination"]
    );
    let segments = FULL.replace(
        "segments: all\n    credentials: { secret",
        "segments: every\n    credentials: { secret",
    );
    assert!(problems(&segments)[0].starts_with("destinations[0].segments: expected `all` or a list of segment ids"));
}

#[test]
fn variables_are_replaced_and_missing_ones_named() {
    let env = |name: &str| (name == "URL").then(|| "https://x.test/h".to_string());
    let text = interpolate("url: ${URL}\nsecret: ${SECRET:-/kairos/s}\nprice: $$5\n", env).unwrap();
    assert_eq!(text, "url: https://x.test/h\nsecret: /kairos/s\nprice: $5\n");
    let err = interpolate("a: 1\nb: ${NOPE}\n", env).unwrap_err();
    assert_eq!(
        err.0[0].to_string(),
        "line 2: environment variable `NOPE` is not set (write `${NOPE:-default}` for a default)"
    );
}

#[test]
fn the_embedded_default_is_the_webhook_of_the_environment() {
    let env = |name: &str| (name == "KAIROS_WEBHOOK_URL").then(|| "https://crm.test/kairos".to_string());
    let file = parse(&interpolate(crate::DEFAULT_DESTINATIONS, env).unwrap(), None).unwrap();
    let DestinationDef::Webhook(w) = &file.destinations[0] else {
        panic!()
    };
    assert_eq!(w.mapping.url, "https://crm.test/kairos");
    assert_eq!(w.credentials.secret.0, "/kairos/webhook-secret");
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(format!("{ROOT}/functions/writeback/destinations.schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn yaml(text: &str) -> serde_json::Value {
    kairos_rules::read_yaml(text).unwrap()
}

#[test]
fn the_committed_json_schema_is_up_to_date() {
    let path = format!("{ROOT}/functions/writeback/destinations.schema.json");
    let generated = serde_json::to_string_pretty(&crate::destinations_schema()).unwrap() + "\n";
    if std::env::var_os("KAIROS_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "functions/writeback/destinations.schema.json is stale: run `KAIROS_UPDATE_SCHEMA=1 cargo test -p kairos-writeback schema`"
    );
}

#[test]
fn the_schema_accepts_the_examples_and_flags_mistakes() {
    let schema = schema();
    let docs = std::fs::read_to_string(format!("{ROOT}/docs/destinations/README.md")).unwrap();
    let examples: Vec<&str> = docs
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(!examples.is_empty());
    for text in examples.into_iter().chain([FULL]) {
        let value = yaml(text);
        parse(text, None).unwrap_or_else(|e| panic!("{e}\n{text}"));
        if let Err(e) = schema.validate(&value) {
            panic!("{e} at {}\n{text}", e.instance_path());
        }
    }
    let wrong = [
        FULL.replace("kind: hubspot", "kind: hubspt"),
        FULL.replace("/kairos/writeback/hubspot-token", "pat-na1-0123"),
        FULL.replace(
            "segments: all\n    credentials: { secret",
            "segments: every\n    credentials: { secret",
        ),
        FULL.replace("duplicates: fail", "duplicates: sometimes"),
        FULL.replace("property: kairos_segments", "propety: kairos_segments"),
        FULL.replace("name: crm-webhook", "name: CRM Webhook"),
    ];
    for text in wrong {
        assert!(!schema.is_valid(&yaml(&text)), "schema accepted:\n{text}");
        assert!(parse(&text, None).is_err(), "parser accepted:\n{text}");
    }
}

#[test]
fn config_reads_the_file_from_the_environment_and_names_what_is_wrong() {
    let env =
        |pairs: Vec<(&'static str, String)>| move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
    let base = vec![
        ("KAIROS_TABLE", "t".to_string()),
        ("KAIROS_WRITEBACK_QUEUE_URL", "https://sqs/q".into()),
        ("KAIROS_WRITEBACK_DLQ_URL", "https://sqs/dlq".into()),
    ];
    let missing = crate::Config::from_env(env(base.clone())).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("environment variable `KAIROS_WEBHOOK_URL` is not set"),
        "{missing}"
    );
    let mut with_url = base.clone();
    with_url.push(("KAIROS_WEBHOOK_URL", "https://crm.test/hook".into()));
    let config = crate::Config::from_env(env(with_url.clone())).unwrap();
    assert_eq!(
        config.destinations.parameters(),
        [("webhook", "/kairos/webhook-secret")]
    );
    let dir = std::env::temp_dir().join(format!("kairos-destinations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    std::fs::write(&path, FULL.replace("kind: hubspot", "kind: hubspt")).unwrap();
    let mut with_file = with_url.clone();
    with_file.push(("KAIROS_DESTINATIONS_FILE", path.display().to_string()));
    let err = crate::Config::from_env(env(with_file)).unwrap_err().to_string();
    assert!(
        err.contains("bad.yaml") && err.contains("destinations[1].kind"),
        "{err}"
    );
    let mut no_queue = with_url;
    no_queue.retain(|(k, _)| *k != "KAIROS_WRITEBACK_DLQ_URL");
    let err = crate::Config::from_env(env(no_queue)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable KAIROS_WRITEBACK_DLQ_URL is required"
    );
}
