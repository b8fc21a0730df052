//! The destinations file: where write-back sends segment memberships, read
//! strictly (a key given twice, an unknown field, a value of the wrong type
//! are errors) with every problem listed with its path. Its JSON Schema
//! (`destinations.schema.json`) is generated from these types.
//!
//! ```yaml
//! destinations:
//!   - name: hubspot
//!     kind: hubspot
//!     segments: [pricing-intent, engaged-reader]
//!     credentials: { token: /kairos/writeback/hubspot-token }
//!     mapping: { property: kairos_segments, lists: { pricing-intent: "123" } }
//! ```

mod parse;
mod parse_checks;

pub(crate) use parse::json_schema;
pub use parse::{interpolate, parse, FileError, Problem};

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A destinations file: the places transitions are written back to.
#[derive(Debug, Clone, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationsFile {
    /// The destinations, each with a unique name. Every transition goes to
    /// each destination that receives its segment.
    #[schemars(length(min = 1))]
    pub destinations: Vec<DestinationDef>,
}

/// One destination: its kind decides its credentials and mapping.
#[derive(Debug, Clone, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DestinationDef {
    /// A Standard Webhooks-signed HTTPS POST per transition.
    Webhook(Spec<WebhookCredentials, WebhookMapping>),
    /// HubSpot contacts: a multi-select property, booleans, static lists.
    Hubspot(Spec<HubSpotCredentials, HubSpotMapping>),
    /// Salesforce Contacts or Leads, upserted by an external id field.
    Salesforce(Spec<SalesforceCredentials, SalesforceMapping>),
    /// Pipedrive persons, found by email, a custom field written.
    Pipedrive(Spec<PipedriveCredentials, PipedriveMapping>),
}

impl DestinationDef {
    /// The destination's name.
    pub fn name(&self) -> &str {
        match self {
            DestinationDef::Webhook(s) => &s.name,
            DestinationDef::Hubspot(s) => &s.name,
            DestinationDef::Salesforce(s) => &s.name,
            DestinationDef::Pipedrive(s) => &s.name,
        }
    }

    /// The segments it receives.
    pub fn segments(&self) -> &Segments {
        match self {
            DestinationDef::Webhook(s) => &s.segments,
            DestinationDef::Hubspot(s) => &s.segments,
            DestinationDef::Salesforce(s) => &s.segments,
            DestinationDef::Pipedrive(s) => &s.segments,
        }
    }

    /// The kind, as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            DestinationDef::Webhook(_) => "webhook",
            DestinationDef::Hubspot(_) => "hubspot",
            DestinationDef::Salesforce(_) => "salesforce",
            DestinationDef::Pipedrive(_) => "pipedrive",
        }
    }
}

/// What every destination has, with its kind's credentials and mapping.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec<C, M> {
    /// Unique name (`[a-z0-9_-]{1,64}`): part of the delivery ledger's keys and
    /// of dead letters' attributes. Renaming a destination delivers again.
    #[schemars(pattern(parse::NAME))]
    pub name: String,
    /// `all`, or the ids of the segments this destination receives.
    pub segments: Segments,
    /// SSM parameter names (SecureString), read at cold start; never secrets.
    pub credentials: C,
    /// What is written where.
    pub mapping: M,
    /// Per-request timeout in milliseconds (default 5000).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
    /// Attempts per item within one invocation, the first included (default 4);
    /// then the item returns to the queue.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_attempts: Option<u32>,
}

/// The segments a destination receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segments {
    /// Every segment.
    All,
    /// These segment ids.
    Only(Vec<String>),
}

impl Segments {
    /// Whether `segment` is received.
    pub fn receives(&self, segment: &str) -> bool {
        match self {
            Segments::All => true,
            Segments::Only(ids) => ids.iter().any(|id| id == segment),
        }
    }

    /// The received ones among `members`, in order.
    pub fn filter(&self, members: &[String]) -> Vec<String> {
        members.iter().filter(|m| self.receives(m)).cloned().collect()
    }
}

/// An SSM parameter name, such as `/kairos/writeback/hubspot-token`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Parameter(#[schemars(pattern(parse::PARAMETER))] pub String);

/// A webhook's secret.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookCredentials {
    /// Parameter holding the Standard Webhooks secret, `whsec_<base64>`.
    pub secret: Parameter,
}

/// Where a webhook posts.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookMapping {
    /// The endpoint (https; http for local receivers).
    #[schemars(pattern(parse::URL))]
    pub url: String,
}

/// HubSpot's private app token.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubSpotCredentials {
    /// Parameter holding the private app's access token (`pat-...`).
    pub token: Parameter,
}

/// What is written to HubSpot contacts.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubSpotMapping {
    /// API base (default `https://api.hubapi.com`).
    #[serde(default = "defaults::hubspot_url")]
    #[schemars(pattern(parse::URL))]
    pub base_url: String,
    /// The unique property contacts are upserted by (default `email`).
    #[serde(default = "defaults::email")]
    pub id_property: String,
    /// The multi-select property holding the segment ids (default `kairos_segments`).
    #[serde(default = "defaults::hubspot_property")]
    pub property: String,
    /// A boolean property per segment, set `true` while a member.
    #[serde(default)]
    pub booleans: BTreeMap<String, String>,
    /// A static (MANUAL or SNAPSHOT) list id per segment: members are added, leavers removed.
    #[serde(default)]
    pub lists: BTreeMap<String, String>,
}

/// The Salesforce connected app's signing key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SalesforceCredentials {
    /// Parameter holding the RSA private key (PEM) whose certificate the app trusts.
    pub private_key: Parameter,
}

/// The Salesforce org, app and fields.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SalesforceMapping {
    /// Where tokens are asked for, and the JWT's audience (default `https://login.salesforce.com`;
    /// `https://test.salesforce.com` for sandboxes).
    #[serde(default = "defaults::salesforce_login")]
    #[schemars(pattern(parse::URL))]
    pub login_url: String,
    /// The connected (or external client) app's consumer key: the JWT's issuer.
    pub client_id: String,
    /// The pre-authorized integration user: the JWT's subject.
    pub username: String,
    /// REST API version (default `62.0`).
    #[serde(default = "defaults::salesforce_version")]
    pub api_version: String,
    /// `Contact` (default) or `Lead`.
    #[serde(default = "defaults::salesforce_sobject")]
    pub sobject: String,
    /// The custom unique external id field holding the contact key (the email).
    pub external_id_field: String,
    /// The multi-select picklist or text field holding the segment ids.
    pub field: String,
    /// A checkbox field per segment, checked while a member.
    #[serde(default)]
    pub checkboxes: BTreeMap<String, String>,
    /// Percent of the org's daily API requests left for its other integrations
    /// (default 20): deliveries pause when usage reaches the rest.
    #[serde(default = "defaults::reserve")]
    #[schemars(range(max = 90))]
    pub reserve_percent: u8,
}

/// Pipedrive's API token.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipedriveCredentials {
    /// Parameter holding the API token of the integration user.
    pub api_token: Parameter,
}

/// The Pipedrive person field written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipedriveMapping {
    /// API base (default `https://api.pipedrive.com`, or `https://<company>.pipedrive.com`).
    #[serde(default = "defaults::pipedrive_url")]
    #[schemars(pattern(parse::URL))]
    pub base_url: String,
    /// The person custom field's name (its key differs per account and is
    /// looked up at cold start): a multiple-options field with one option per
    /// segment id, or a text field.
    pub field: String,
    /// Several persons with the contact's email: `update_all` (default) or
    /// `fail` (dead-letter naming them).
    #[serde(default)]
    pub duplicates: Duplicates,
}

/// What to do when several persons share an email.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Duplicates {
    /// Write every one of them.
    #[default]
    UpdateAll,
    /// Write none; dead-letter the item naming them.
    Fail,
}

mod defaults {
    pub fn hubspot_url() -> String {
        "https://api.hubapi.com".into()
    }
    pub fn email() -> String {
        "email".into()
    }
    pub fn hubspot_property() -> String {
        "kairos_segments".into()
    }
    pub fn salesforce_login() -> String {
        "https://login.salesforce.com".into()
    }
    pub fn salesforce_version() -> String {
        "62.0".into()
    }
    pub fn salesforce_sobject() -> String {
        "Contact".into()
    }
    pub fn reserve() -> u8 {
        20
    }
    pub fn pipedrive_url() -> String {
        "https://api.pipedrive.com".into()
    }
}
