//! What a destination must satisfy beyond its shape: names, ids, parameter
//! names, URLs, and segment references (against a rules file when given).

use regex::Regex;
use std::sync::LazyLock;

use super::parse::{Problem, NAME, PARAMETER, URL};
use super::{DestinationDef, Parameter, Segments};

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(NAME).expect("valid"));
static PARAMETER_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(PARAMETER).expect("valid"));
static URL_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(URL).expect("valid"));

/// Checks destination `i` (of `all`), adding what is wrong to `problems`.
pub(super) fn check(
    def: &DestinationDef,
    i: usize,
    all: &[DestinationDef],
    known: Option<&[&str]>,
    problems: &mut Vec<Problem>,
) {
    let at = |field: &str| format!("destinations[{i}].{field}");
    let mut add = |path: String, message: String| problems.push(Problem { path, message });
    let name = def.name();
    if !NAME_RE.is_match(name) {
        add(
            at("name"),
            format!("`{name}` is not a valid name: expected [a-z0-9_-], 1 to 64 characters"),
        );
    }
    if let Some(first) = all.iter().position(|d| d.name() == name).filter(|&first| first < i) {
        add(
            at("name"),
            format!("`{name}` is already the name of destinations[{first}]"),
        );
    }
    if let Segments::Only(ids) = def.segments() {
        if ids.is_empty() {
            add(at("segments"), "expected at least one segment id (or `all`)".into());
        }
        for (j, id) in ids.iter().enumerate() {
            if let Some(message) = segment_problem(id, known) {
                add(at(&format!("segments[{j}]")), message);
            }
            if ids[..j].contains(id) {
                add(at(&format!("segments[{j}]")), format!("`{id}` is listed twice"));
            }
        }
    }
    for (field, parameter) in parameters(def) {
        if !PARAMETER_RE.is_match(&parameter.0) {
            add(
                at(&format!("credentials.{field}")),
                "expected an SSM parameter name starting with `/` (credentials are never written in the file)".into(),
            );
        }
    }
    for (field, url) in urls(def) {
        if !URL_RE.is_match(url) {
            add(
                at(&format!("mapping.{field}")),
                format!("`{url}` is not an http(s) URL"),
            );
        }
    }
    for (field, segment) in per_segment(def) {
        let path = at(&format!("mapping.{field}.{segment}"));
        if let Some(message) = segment_problem(segment, known) {
            add(path, message);
        } else if !def.segments().receives(segment) {
            add(path, format!("`{segment}` is not among this destination's segments"));
        }
    }
    kind_checks(def, &mut |field, message| add(at(field), message));
}

/// Why `id` is not a usable segment id, if it is not.
fn segment_problem(id: &str, known: Option<&[&str]>) -> Option<String> {
    if !NAME_RE.is_match(id) {
        return Some(format!(
            "`{id}` is not a segment id: expected [a-z0-9_-], 1 to 64 characters"
        ));
    }
    match known {
        Some(ids) if !ids.contains(&id) => {
            Some(format!("unknown segment `{id}`: the rules file has {}", ids.join(", ")))
        }
        _ => None,
    }
}

fn parameters(def: &DestinationDef) -> Vec<(&'static str, &Parameter)> {
    match def {
        DestinationDef::Webhook(s) => vec![("secret", &s.credentials.secret)],
        DestinationDef::Hubspot(s) => vec![("token", &s.credentials.token)],
        DestinationDef::Salesforce(s) => vec![("private_key", &s.credentials.private_key)],
        DestinationDef::Pipedrive(s) => vec![("api_token", &s.credentials.api_token)],
    }
}

fn urls(def: &DestinationDef) -> Vec<(&'static str, &str)> {
    match def {
        DestinationDef::Webhook(s) => vec![("url", &s.mapping.url)],
        DestinationDef::Hubspot(s) => vec![("base_url", &s.mapping.base_url)],
        DestinationDef::Salesforce(s) => vec![("login_url", &s.mapping.login_url)],
        DestinationDef::Pipedrive(s) => vec![("base_url", &s.mapping.base_url)],
    }
}

/// Mapping entries keyed by segment id: `(field, segment)`.
fn per_segment(def: &DestinationDef) -> Vec<(&'static str, &str)> {
    fn keys<'a>(
        field: &'static str,
        map: &'a std::collections::BTreeMap<String, String>,
    ) -> Vec<(&'static str, &'a str)> {
        map.keys().map(|k| (field, k.as_str())).collect()
    }
    match def {
        DestinationDef::Hubspot(s) => [keys("booleans", &s.mapping.booleans), keys("lists", &s.mapping.lists)].concat(),
        DestinationDef::Salesforce(s) => keys("checkboxes", &s.mapping.checkboxes),
        _ => Vec::new(),
    }
}

fn kind_checks(def: &DestinationDef, add: &mut dyn FnMut(&str, String)) {
    let blank = |v: &str| v.trim().is_empty();
    match def {
        DestinationDef::Hubspot(s) => {
            for (field, value) in [
                ("id_property", &s.mapping.id_property),
                ("property", &s.mapping.property),
            ] {
                if blank(value) {
                    add(&format!("mapping.{field}"), "expected a HubSpot property name".into());
                }
            }
            for (segment, list) in &s.mapping.lists {
                if list.is_empty() || !list.bytes().all(|b| b.is_ascii_digit()) {
                    add(
                        &format!("mapping.lists.{segment}"),
                        format!("`{list}` is not a list id (its ILS id, digits)"),
                    );
                }
            }
        }
        DestinationDef::Salesforce(s) => {
            let m = &s.mapping;
            if !m.external_id_field.ends_with("__c") {
                add(
                    "mapping.external_id_field",
                    format!("`{}` must be a custom field (`..__c`) marked External ID and Unique: the standard Email field cannot be an external id", m.external_id_field),
                );
            }
            let version = m.api_version.split_once('.');
            if !version.is_some_and(|(a, b)| !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b == "0") {
                add(
                    "mapping.api_version",
                    format!("`{}` is not an API version such as 62.0", m.api_version),
                );
            }
            for (field, value) in [
                ("client_id", &m.client_id),
                ("username", &m.username),
                ("sobject", &m.sobject),
                ("field", &m.field),
            ] {
                if blank(value) {
                    add(&format!("mapping.{field}"), "must not be empty".into());
                }
            }
        }
        DestinationDef::Pipedrive(s) if blank(&s.mapping.field) => {
            add("mapping.field", "expected the name of a person custom field".into())
        }
        _ => {}
    }
}
