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
