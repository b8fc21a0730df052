//! infra/template.yaml against what documents and checks it: the routes
//! infra/README.md lists, and the parameters' validation.

/// The `METHOD /path` routes named in backticks in infra/README.md.
fn readme_routes() -> Vec<String> {
    let readme = include_str!("../infra/README.md");
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "ANY"];
    let mut routes: Vec<String> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| {
            let mut parts = span.split(' ');
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            methods.contains(&method) && path.starts_with('/') && parts.next().is_none()
        })
        .map(str::to_string)
        .collect();
    routes.sort();
    routes.dedup();
    routes
}

#[test]
fn infra_readme_lists_exactly_the_templates_routes() {
    let template = kairos::local::http_routes().unwrap();
    assert!(!template.is_empty());
    assert_eq!(
        readme_routes(),
        template,
        "infra/README.md's routes differ from the template's"
    );
}

#[test]
fn the_webhook_url_parameter_accepts_only_https_urls() {
    let pattern = kairos::local::allowed_pattern("WebhookUrl").expect("WebhookUrl has an AllowedPattern");
    // CloudFormation matches the whole value.
    let re = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
    for good in [
        "https://crm.example.com/kairos",
        "https://hooks.example.com:8443/a/b?x=1",
        "https://x.io",
    ] {
        assert!(re.is_match(good), "{good} is refused");
    }
    for bad in [
        "not-a-url",
        "http://crm.example.com/kairos",
        "https://",
        "https:// spaced.example.com",
        "ftp://x.io",
    ] {
        assert!(!re.is_match(bad), "{bad} is accepted");
    }
}

// ---------------------------------------------------------------------------
// Operations (issue 22): least-privilege table access, alarms, dashboard.

use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};

fn template() -> Value {
    serde_norway::from_str(kairos::local::TEMPLATE).expect("the template parses")
}

/// A tagged value's inner value (`!Ref X` is `X`), or the value itself.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

/// The item key prefixes (`contact` of `contact#...`) a piece of adapter code builds.
fn prefixes_in(code: &str) -> BTreeSet<String> {
    // `key("contact", ..)`, the store's key builder (not a request's `.key("pk", ..)`), or a literal `"contact#..`.
    let re = regex::Regex::new(r#"(?:^|[^.\w])key\("(\w+)"|"(\w+)#"#).unwrap();
    re.captures_iter(code)
        .filter_map(|c| c.get(1).or(c.get(2)))
        .map(|m| m.as_str().to_string())
        .collect()
}

/// Each DynamoDB adapter's key prefixes, read from its code: in the store's
/// `dynamo.rs`, the `impl` blocks of each adapter; the other files hold one adapter each.
fn adapter_prefixes() -> BTreeMap<String, BTreeSet<String>> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let dynamo = include_str!("../shared/store/src/dynamo.rs");
    let head = regex::Regex::new(r"(?m)^impl(?:<[^>]*>)? (?:[\w:&<>]+ for )?(Dynamo\w+) \{").unwrap();
    for c in head.captures_iter(dynamo) {
        let start = c.get(0).unwrap().start();
        let end = dynamo[start..].find("\n}\n").map_or(dynamo.len(), |e| start + e);
        map.entry(c[1].to_string())
            .or_default()
            .extend(prefixes_in(&dynamo[start..end]));
    }
    let whole = [
        ("DynamoLookups", include_str!("../shared/store/src/dynamo_lookup.rs")),
        ("DynamoDecisions", include_str!("../functions/decide/src/dynamo.rs")),
    ];
    for (adapter, code) in whole {
        map.entry(adapter.to_string()).or_default().extend(prefixes_in(code));
    }
    map
}

/// The key prefixes a function's `main` can touch: those of every DynamoDB adapter it builds.
fn used_prefixes(main: &str) -> BTreeSet<String> {
    let adapters = adapter_prefixes();
    let built = regex::Regex::new(r"(Dynamo\w+)::new").unwrap();
    let mut used = BTreeSet::new();
    for c in built.captures_iter(main) {
        let known = adapters
            .get(&c[1])
            .unwrap_or_else(|| panic!("no code found for adapter {}", &c[1]));
        assert!(!known.is_empty(), "{} builds no key", &c[1]);
        used.extend(known.iter().cloned());
    }
    used
}

/// The prefixes a role may touch in the table (`contact` of `contact#*`), asserting
/// that every one of its statements on the table is limited by `dynamodb:LeadingKeys`.
fn role_prefixes(role: &str) -> BTreeSet<String> {
    let template = template();
    let policies = template["Resources"][role]["Properties"]["Policies"]
        .as_sequence()
        .unwrap();
    let mut allowed = BTreeSet::new();
    for policy in policies {
        for statement in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            let resource = untag(&statement["Resource"]);
            if resource.as_str() != Some("ContactsTable.Arn") {
                continue;
            }
            let keys = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{role}: a statement on the table has no LeadingKeys condition"));
            for key in keys {
                let key = key.as_str().unwrap();
                let prefix = key
                    .strip_suffix("#*")
                    .unwrap_or_else(|| panic!("{role}: {key} is not a prefix#*"));
                allowed.insert(prefix.to_string());
            }
        }
    }
    allowed
}

#[test]
fn the_evaluate_and_writeback_roles_reach_exactly_the_item_prefixes_their_code_uses() {
    let evaluate = used_prefixes(include_str!("../functions/evaluate/src/main.rs"));
    let writeback = used_prefixes(include_str!("../functions/writeback/src/main.rs"));
    // The scan found the adapters' keys (a regression in it would pass anything).
    assert!(
        evaluate.contains("contact") && evaluate.contains("decision"),
        "{evaluate:?}"
    );
    assert!(
        writeback.contains("delivery") && writeback.contains("lookup"),
        "{writeback:?}"
    );
    assert!(!evaluate.contains("claim") && !writeback.contains("claim"));
    // Evaluate saves records, and with each transition its segment counters (`dynamo_counters.rs`),
    // and moves old event ids to their cold days and reads them back (`dynamo_seen.rs`);
    // write-back only reads records.
    let counters = prefixes_in(include_str!("../shared/store/src/dynamo_counters.rs"));
    assert_eq!(counters, BTreeSet::from(["segday".to_string(), "segment".to_string()]));
    let seen = prefixes_in(include_str!("../shared/store/src/dynamo_seen.rs"));
    assert_eq!(seen, BTreeSet::from(["seen".to_string()]));
    assert_eq!(role_prefixes("EvaluateRole"), &(&evaluate | &counters) | &seen);
    assert_eq!(role_prefixes("WritebackRole"), writeback);
    assert_eq!(role_prefixes("IngestRole"), BTreeSet::from(["claim".to_string()]));
}

#[test]
fn every_alarm_notifies_the_topic_and_the_operations_settings_are_parameters() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let alarms: Vec<_> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .collect();
    assert!(alarms.len() >= 5, "queue age, lag, error rate and the two DLQ alarms");
    for (name, alarm) in &alarms {
        let actions = alarm["Properties"]["AlarmActions"].as_sequence();
        let actions = actions.unwrap_or_else(|| panic!("{name:?} has no action"));
        assert!(actions.iter().any(|a| untag(a) == "AlarmTopic"), "{name:?}");
    }
    let metric_of = |name: &str| template["Resources"][name]["Properties"]["MetricName"].clone();
    assert_eq!(metric_of("EventsQueueAgeAlarm"), "ApproximateAgeOfOldestMessage");
    assert_eq!(metric_of("EvaluationLagAlarm"), "LagToEvaluationMs");
    let writeback = &template["Resources"]["WritebackFunction"]["Properties"];
    assert_eq!(
        untag(&writeback["ReservedConcurrentExecutions"]),
        "WritebackConcurrency"
    );
    let scaling = &writeback["Events"]["Transitions"]["Properties"]["ScalingConfig"]["MaximumConcurrency"];
    assert_eq!(untag(scaling), "WritebackConcurrency");
    let routes = &template["Resources"]["Api"]["Properties"]["DefaultRouteSettings"];
    assert_eq!(untag(&routes["ThrottlingRateLimit"]), "ApiThrottlingRateLimit");
    assert_eq!(untag(&routes["ThrottlingBurstLimit"]), "ApiThrottlingBurstLimit");
    for parameter in [
        "WritebackConcurrency",
        "ApiThrottlingRateLimit",
        "ApiThrottlingBurstLimit",
        "LagAlarmMs",
    ] {
        assert!(template["Parameters"][parameter]["Default"].is_number(), "{parameter}");
    }
}

#[test]
fn the_dashboard_is_json_and_shows_only_metrics_the_functions_emit() {
    let template = template();
    let body = untag(&template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]);
    let body = body[0].as_str().expect("Fn::Sub's text");
    // As CloudFormation substitutes it (numbers for the numeric parameter).
    let filled = regex::Regex::new(r"\$\{[^}]+\}")
        .unwrap()
        .replace_all(body, |c: &regex::Captures| {
            if &c[0] == "${LagAlarmMs}" {
                "60000".to_string()
            } else {
                "x".to_string()
            }
        });
    let dashboard: serde_json::Value = serde_json::from_str(&filled).expect("the dashboard body is JSON");
    assert!(dashboard["widgets"].as_array().unwrap().len() >= 5);
    let code = [
        include_str!("../functions/ingest/src/metrics.rs"),
        include_str!("../functions/evaluate/src/summary.rs"),
        include_str!("../functions/writeback/src/batch.rs"),
        include_str!("../functions/sweep/src/run.rs"),
    ]
    .concat();
    // Every metric of ours the dashboard names: a row under our namespace (or
    // repeating its namespace and dimension, "."), or a SEARCH's MetricName.
    let ours = regex::Regex::new(r#"\["\$\{NS\}", "(\w+)"|MetricName=\\"(\w+)\\"|\[".", "(\w+)", ".", "."\]"#).unwrap();
    let names: BTreeSet<&str> = ours
        .captures_iter(body)
        .filter_map(|c| c.get(1).or(c.get(2)).or(c.get(3)))
        .map(|m| m.as_str())
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        assert!(
            code.contains(&format!("\"{name}\"")),
            "the dashboard shows {name}, which no function emits"
        );
    }
}

#[test]
fn the_archive_is_partitioned_by_event_date_and_only_evaluate_may_put_to_it() {
    let template = template();
    let resources = &template["Resources"];
    let s3 = &resources["ArchiveStream"]["Properties"]["ExtendedS3DestinationConfiguration"];
    assert_eq!(s3["Prefix"].as_str(), Some("events/dt=!{partitionKeyFromQuery:date}/"));
    assert_eq!(s3["CompressionFormat"].as_str(), Some("GZIP"));
    let processors = s3["ProcessingConfiguration"]["Processors"].as_sequence().unwrap();
    let query = processors[0]["Parameters"].as_sequence().unwrap();
    // The date of the canonical event's `at` (always emitted in UTC, `YYYY-MM-DDT…Z`).
    assert_eq!(query[0]["ParameterValue"].as_str(), Some("{date: .at[0:10]}"));
    let event = kairos_event::Event::from_json(
        br#"{"id":"e","contact":"a@b.test","type":"email.opened","at":"2026-11-27T23:30:00-05:00","source":"t"}"#,
    )
    .unwrap();
    let line = serde_json::to_value(&event).unwrap();
    assert_eq!(
        &line["at"].as_str().unwrap()[0..10],
        "2026-11-28",
        "partitioned by the UTC date"
    );
    assert_eq!(
        template["Parameters"]["ArchiveRetentionDays"]["Default"].as_u64(),
        Some(400)
    );
    let bucket = &resources["ArchiveBucket"]["Properties"];
    let rule = &bucket["LifecycleConfiguration"]["Rules"][0];
    assert_eq!(untag(&rule["ExpirationInDays"]).as_str(), Some("ArchiveRetentionDays"));
    assert!(bucket["BucketEncryption"].is_mapping() && bucket["PublicAccessBlockConfiguration"].is_mapping());
    let env = &resources["EvaluateFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(untag(&env["KAIROS_ARCHIVE_STREAM"]).as_str(), Some("ArchiveStream"));
    // Only the evaluate role may put records, on that stream only.
    let text = kairos::local::TEMPLATE;
    assert_eq!(text.matches("firehose:PutRecordBatch").count(), 1);
    let role = serde_norway::to_string(&resources["EvaluateRole"]).unwrap();
    assert!(
        role.contains("firehose:PutRecordBatch") && role.contains("ArchiveStream.Arn"),
        "{role}"
    );
}

// ---------------------------------------------------------------------------
// The console (issue 23): Cognito sign-in run by the console function itself.

/// A template value as written: `!Ref X`, `!Sub …`, lists joined by commas.
fn tag(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::Tagged(t) => format!("{} {}", t.tag, tag(&t.value)),
        serde_norway::Value::Sequence(items) => items.iter().map(tag).collect::<Vec<_>>().join(","),
        other => other.as_str().map(str::to_string).unwrap_or_default(),
    }
}

#[test]
fn the_console_routes_reach_the_console_function_which_runs_the_cognito_sign_in() {
    use kairos::console::{lambda::PREFIX, signin};
    let template: serde_norway::Value = serde_norway::from_str(kairos::local::TEMPLATE).unwrap();
    let resources = &template["Resources"];
    let mut console_routes = Vec::new();
    for (name, resource) in resources.as_mapping().unwrap() {
        let props = &resource["Properties"];
        assert_ne!(
            resource["Type"], "AWS::ApiGatewayV2::Authorizer",
            "{name:?}: a JWT authorizer reads only the Authorization header, which page navigation does not send"
        );
        if resource["Type"] != "AWS::ApiGatewayV2::Route" {
            continue;
        }
        let key = props["RouteKey"].as_str().unwrap();
        assert!(key.starts_with("ANY /console"), "{name:?}: {key}");
        // Sign-in routes must be reachable signed out: the function checks the session.
        assert_eq!(props["AuthorizationType"].as_str(), Some("NONE"), "{key}");
        assert!(props["AuthorizerId"].is_null(), "{key}");
        assert_eq!(
            tag(&props["Target"]),
            "!Sub integrations/${ConsoleIntegration}",
            "{key}"
        );
        console_routes.push(key.to_string());
    }
    console_routes.sort();
    assert_eq!(
        console_routes,
        [format!("ANY {PREFIX}"), format!("ANY {PREFIX}/{{proxy+}}")]
    );

    let integration = &resources["ConsoleIntegration"]["Properties"];
    assert_eq!(tag(&integration["IntegrationUri"]), "!GetAtt ConsoleFunction.Arn");
    let function = &resources["ConsoleFunction"];
    assert_eq!(
        function["Metadata"]["BuildProperties"]["Binary"].as_str(),
        Some("console")
    );
    let permission = &resources["ConsoleInvokePermission"]["Properties"];
    assert_eq!(tag(&permission["FunctionName"]), "!Ref ConsoleFunction");

    // The function verifies the pool's ID tokens for the console's app client, and
    // sends browsers to the pool's hosted UI: the variables SignIn::from_env reads.
    let env = &function["Properties"]["Environment"]["Variables"];
    assert_eq!(tag(&env[signin::ENV_USER_POOL_ID]), "!Ref ConsoleUserPool");
    assert_eq!(tag(&env[signin::ENV_CLIENT_ID]), "!Ref ConsoleUserPoolClient");
    assert_eq!(
        tag(&env[signin::ENV_AUTH_DOMAIN]),
        "!Sub ${ConsoleUserPoolDomain}.auth.${AWS::Region}.amazoncognito.com"
    );
    assert_eq!(tag(&env[signin::ENV_REGION]), "!Ref AWS::Region");
    // The app client's URLs are the function's routes on the API's URL.
    let client = &resources["ConsoleUserPoolClient"]["Properties"];
    let api_url = "!Sub https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}";
    assert_eq!(tag(&client["CallbackURLs"]), format!("{api_url}{PREFIX}/callback"));
    assert_eq!(tag(&client["LogoutURLs"]), format!("{api_url}{PREFIX}"));
    assert_eq!(tag(&client["AllowedOAuthScopes"]), "openid,email,profile");
    // The authorization-code flow with PKCE: a public client (no secret), code flow only.
    assert_eq!(client["GenerateSecret"].as_bool(), Some(false));
    assert_eq!(tag(&client["AllowedOAuthFlows"]), "code");
    assert_eq!(
        resources["ConsoleUserPool"]["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"].as_bool(),
        Some(true)
    );
    // The groups are the console's roles, by the names the console reads from `cognito:groups`.
    let mut groups: Vec<String> = resources
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::Cognito::UserPoolGroup")
        .map(|r| r["Properties"]["GroupName"].as_str().unwrap().to_string())
        .collect();
    groups.sort();
    assert_eq!(groups, ["editor", "publisher", "viewer"]);
    for group in &groups {
        assert!(kairos::console::access::Role::from_group(group).is_some(), "{group}");
    }
}

/// A role's statements as (actions, resource as written, condition keys).
fn statements(role: &str) -> Vec<(Vec<String>, String, String)> {
    let template = template();
    let mut out = Vec::new();
    for policy in template["Resources"][role]["Properties"]["Policies"]
        .as_sequence()
        .unwrap()
    {
        for statement in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            let actions = match &statement["Action"] {
                Value::Sequence(list) => list.iter().map(|a| a.as_str().unwrap().to_string()).collect(),
                one => vec![one.as_str().unwrap().to_string()],
            };
            let condition = serde_norway::to_string(&statement["Condition"]).unwrap();
            out.push((actions, tag(&statement["Resource"]), condition));
        }
    }
    out
}

#[test]
fn the_console_role_reads_and_pins_contacts_and_publishes_rules_and_nothing_more() {
    // The table: exactly the contact store's items and its counters (no lookup, claim,
    // delivery or decision item), by LeadingKeys; the backfill's progress read only.
    let adapters = adapter_prefixes();
    let counters = prefixes_in(include_str!("../shared/store/src/dynamo_counters.rs"));
    // The backfill's progress item (read for the Rules page) is keyed by a constant outside the impls.
    let dynamo = include_str!("../shared/store/src/dynamo.rs");
    assert!(dynamo.contains("BACKFILL_PK: &str = \"backfill#rules\""));
    let progress = BTreeSet::from(["backfill".to_string()]);
    let store = &(&adapters["DynamoContacts"] | &counters) | &progress;
    assert!(store.contains("contact") && store.contains("consent"), "{store:?}");
    assert_eq!(role_prefixes("ConsoleRole"), store);
    let all = statements("ConsoleRole");
    let actions: BTreeSet<&str> = all.iter().flat_map(|(a, _, _)| a.iter().map(String::as_str)).collect();
    for never in [
        "dynamodb:Scan",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "s3:DeleteObject",
    ] {
        assert!(!actions.contains(never), "{never}");
    }
    let on = |resource: &str| -> BTreeSet<String> {
        all.iter()
            .filter(|(_, r, _)| r == resource)
            .flat_map(|(a, _, _)| a.iter().cloned())
            .collect()
    };
    let writes = all
        .iter()
        .find(|(a, r, _)| r == "!GetAtt ContactsTable.Arn" && a.contains(&"dynamodb:PutItem".to_string()))
        .unwrap();
    assert!(!writes.2.contains("backfill"), "the backfill's progress is only read");
    assert_eq!(
        on("!Sub ${ContactsTable.Arn}/index/pinned"),
        BTreeSet::from(["dynamodb:Query".to_string()])
    );
    assert_eq!(
        on("!GetAtt AuditTable.Arn"),
        BTreeSet::from(["dynamodb:PutItem".to_string(), "dynamodb:Query".to_string()])
    );
    assert_eq!(
        on("!Sub ${RulesBucket.Arn}/segments.yaml"),
        BTreeSet::from(["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"].map(String::from))
    );
    assert_eq!(
        on("!Sub ${ArchiveBucket.Arn}/events/*"),
        BTreeSet::from(["s3:GetObject".to_string()])
    );
    assert_eq!(
        on("!GetAtt WritebackQueue.Arn"),
        BTreeSet::from(["sqs:SendMessage".to_string()])
    );
    // The pinned index the Overrides page queries: sparse on `pinned`, sorted by key, keys only.
    let template = template();
    let indexes = template["Resources"]["ContactsTable"]["Properties"]["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap();
    let pinned = indexes
        .iter()
        .find(|i| i["IndexName"].as_str() == Some(kairos_store::PINNED_INDEX))
        .expect("the pinned index");
    assert_eq!(pinned["KeySchema"][0]["AttributeName"].as_str(), Some("pinned"));
    assert_eq!(pinned["KeySchema"][1]["AttributeName"].as_str(), Some("pk"));
    assert_eq!(pinned["Projection"]["ProjectionType"].as_str(), Some("KEYS_ONLY"));
}

#[test]
fn the_console_functions_environment_is_a_valid_configuration() {
    let template = template();
    let env = template["Resources"]["ConsoleFunction"]["Properties"]["Environment"]["Variables"]
        .as_mapping()
        .unwrap();
    // References resolve to names at deploy time; stand-ins of the same shape here.
    let vars: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| {
            let written = tag(v);
            let value = if written.starts_with("!Sub s3://") {
                written
                    .trim_start_matches("!Sub ")
                    .replace("${RulesBucket}", "rules")
                    .replace("${ArchiveBucket}", "archive")
            } else if written.starts_with('!') {
                "1".to_string()
            } else {
                written
            };
            (k.as_str().unwrap().to_string(), value)
        })
        .collect();
    let config = kairos::console::AwsConfig::from_env(|name| vars.get(name).cloned()).expect("valid");
    assert_eq!(config.rules_uri, "s3://rules/segments.yaml");
    assert_eq!(config.archive_uri.as_deref(), Some("s3://archive/events/"));
    assert!(config.functions.audit_table.is_some(), "the audit trail is read");
    assert_eq!((config.sample.days, config.sample.events), (1, 10_000));
}

#[test]
fn evaluate_receives_from_the_tables_stream_only_the_ttls_deletions_of_contact_records() {
    let template = template();
    let resources = &template["Resources"];
    let stream = &resources["ContactsTable"]["Properties"]["StreamSpecification"];
    // The count out reads the record as it was: the stream must carry old images.
    assert_eq!(stream["StreamViewType"].as_str(), Some("OLD_IMAGE"));
    let source = &resources["EvaluateFunction"]["Properties"]["Events"]["Expired"];
    assert_eq!(source["Type"].as_str(), Some("DynamoDB"));
    let source = &source["Properties"];
    assert_eq!(tag(&source["Stream"]), "!GetAtt ContactsTable.StreamArn");
    let pattern = source["FilterCriteria"]["Filters"][0]["Pattern"]
        .as_str()
        .expect("a pattern");
    let pattern: serde_json::Value = serde_json::from_str(pattern).expect("the pattern is JSON");
    assert_eq!(
        pattern,
        serde_json::json!({
            "eventName": ["REMOVE"],
            "userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]},
            "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "contact#"}]}}}
        })
    );
    // What the pattern passes is what the handler counts out.
    let passed = serde_json::json!({
        "eventName": "REMOVE",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {"Keys": {"pk": {"S": "contact#ada@x.test"}}, "SequenceNumber": "1"}
    });
    assert!(!matches!(
        kairos_store::stream_record(&passed),
        kairos_store::StreamRecord::Other
    ));
    assert_eq!(
        source["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    let failures = &source["DestinationConfig"]["OnFailure"]["Destination"];
    assert_eq!(tag(failures), "!GetAtt ExpiredFailuresQueue.Arn");
}

#[test]
fn a_write_back_delay_fits_in_what_sqs_leaves_of_its_12_hours_after_the_receipt() {
    let template = template();
    let writeback = &template["Resources"]["WritebackFunction"]["Properties"];
    let timeout = writeback["Timeout"].as_u64().expect("a timeout");
    let window = writeback["Events"]["Transitions"]["Properties"]["MaximumBatchingWindowInSeconds"]
        .as_u64()
        .expect("a batching window");
    // A message is held from its receipt through the batching window and the invocation.
    let held = timeout + window;
    let room = u64::from(kairos_store::MAX_VISIBILITY_SECS - kairos_store::MAX_DELAY_SECS);
    assert!(held < room, "held up to {held} s, kept back {room} s");
    // A call held back at most MAX_CALL_RESERVE (and a second) is always made by a fresh invocation.
    assert!(kairos_writeback::MAX_CALL_RESERVE.as_secs() + 1 < timeout);
}
