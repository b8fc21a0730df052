//! Building the destinations of a destinations file at cold start: secrets
//! (read from SSM by the caller, by parameter name) checked, HTTP clients and
//! per-destination state made once, CRM settings looked up (HubSpot's time
//! zone, Pipedrive's field key).

use kairos_store::Lookups;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::deliver::{Destination, Outcome, Policy, Write};
use crate::file::{DestinationDef, DestinationsFile, Segments, Spec};
use crate::http::{DryRun, Transport};
use crate::{hubspot, pipedrive, salesforce, Backoff, Gate, HubSpot, Pipedrive, Salesforce, WebhookDestination};

/// Why the destinations could not be built. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A credential parameter is missing or unusable (names it, never its value).
    #[error("destination `{destination}`: parameter `{parameter}`: {reason}")]
    Secret {
        /// The destination.
        destination: String,
        /// The SSM parameter name.
        parameter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CRM refused or lacks what the mapping needs (a field, a token).
    #[error("destination `{destination}`: {reason}")]
    Connect {
        /// The destination.
        destination: String,
        /// What failed.
        reason: String,
    },
}

/// Any configured destination.
pub enum AnyDestination<T, K> {
    /// A signed webhook.
    Webhook(WebhookDestination<T>),
    /// HubSpot.
    HubSpot(HubSpot<T>),
    /// Salesforce (boxed: its signing key is large).
    Salesforce(Box<Salesforce<T>>),
    /// Pipedrive.
    Pipedrive(Pipedrive<T, K>),
}

macro_rules! each {
    ($self:expr, $d:ident => $e:expr) => {
        match $self {
            AnyDestination::Webhook($d) => $e,
            AnyDestination::HubSpot($d) => $e,
            AnyDestination::Salesforce($d) => $e,
            AnyDestination::Pipedrive($d) => $e,
        }
    };
}

impl<T: Transport, K: Lookups> Destination for AnyDestination<T, K> {
    fn name(&self) -> &str {
        each!(self, d => d.name())
    }

    fn segments(&self) -> &Segments {
        each!(self, d => d.segments())
    }

    fn max_batch(&self) -> usize {
        each!(self, d => d.max_batch())
    }

    fn gate(&self) -> &Gate {
        each!(self, d => d.gate())
    }

    fn policy(&self) -> &Policy {
        each!(self, d => d.policy())
    }

    fn requests(&self, writes: &[&Write]) -> u32 {
        each!(self, d => d.requests(writes))
    }

    async fn write(&self, writes: &[Write]) -> Vec<Outcome> {
        each!(self, d => d.write(writes).await)
    }
}

impl DestinationsFile {
    /// Every credential parameter named, with its destination: what to read from SSM.
    pub fn parameters(&self) -> Vec<(&str, &str)> {
        self.destinations
            .iter()
            .map(|d| {
                let parameter = match d {
                    DestinationDef::Webhook(s) => &s.credentials.secret,
                    DestinationDef::Hubspot(s) => &s.credentials.token,
                    DestinationDef::Salesforce(s) => &s.credentials.private_key,
                    DestinationDef::Pipedrive(s) => &s.credentials.api_token,
                };
                (d.name(), parameter.0.as_str())
            })
            .collect()
    }
}

/// Reads every credential the file names from SSM (SecureStrings, decrypted),
/// by parameter name: what [`Parts::secrets`] takes. Errors name the
/// parameter, never a value.
pub async fn read_credentials(
    file: &DestinationsFile,
    ssm: &aws_sdk_ssm::Client,
) -> Result<HashMap<String, String>, kairos_store::SecretError> {
    let mut secrets = HashMap::new();
    for (_, name) in file.parameters() {
        let value = kairos_store::resolve_secret(&format!("ssm:{name}"), ssm).await?;
        secrets.insert(name.to_string(), value);
    }
    Ok(secrets)
}

/// A destination's request timeout and retries.
pub fn policy<C, M>(spec: &Spec<C, M>) -> Policy {
    let defaults = Policy::default();
    Policy {
        timeout: spec.timeout_ms.map_or(defaults.timeout, Duration::from_millis),
        backoff: Backoff {
            max_attempts: spec.max_attempts.unwrap_or(defaults.backoff.max_attempts),
            ..defaults.backoff
        },
    }
}

/// What a destination needs besides its definition.
pub struct Parts<'a, F, K> {
    /// Parameter name → value, read from SSM.
    pub secrets: &'a HashMap<String, String>,
    /// The transport for a destination, given its request timeout.
    pub transport: F,
    /// The cache of CRM record ids.
    pub lookups: K,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// Builds every destination of `file`, connecting to the CRMs that need a
/// lookup at cold start.
pub async fn build<T, K, F>(
    file: &DestinationsFile,
    parts: Parts<'_, F, K>,
) -> Result<Vec<AnyDestination<T, K>>, SetupError>
where
    T: Transport,
    K: Lookups + Clone,
    F: Fn(&DestinationDef, Duration) -> T,
{
    let mut out = Vec::new();
    for (def, (_, parameter)) in file.destinations.iter().zip(file.parameters()) {
        let secret = |reason: &str| SetupError::Secret {
            destination: def.name().to_string(),
            parameter: parameter.to_string(),
            reason: reason.to_string(),
        };
        let value = parts
            .secrets
            .get(parameter)
            .ok_or_else(|| secret("not read"))?
            .trim()
            .to_string();
        let clock = parts.clock.clone();
        let id = (def.name().to_string(), def.segments().clone());
        out.push(match def {
            DestinationDef::Webhook(s) => {
                let key = crate::webhook::secret_bytes(&value)
                    .ok_or_else(|| secret("expected whsec_ followed by base64 of at least 16 bytes"))?;
                let t = (parts.transport)(def, policy(s).timeout);
                AnyDestination::Webhook(WebhookDestination::new(id, t, &s.mapping.url, key, (policy(s), clock)))
            }
            DestinationDef::Hubspot(s) => {
                let t = (parts.transport)(def, policy(s).timeout);
                let hubspot = HubSpot::new(id, t, value, s.mapping.clone(), (policy(s), clock));
                hubspot.connect().await;
                AnyDestination::HubSpot(hubspot)
            }
            DestinationDef::Salesforce(s) => {
                let key = salesforce::signing_key(&value)
                    .ok_or_else(|| secret("expected an RSA private key in PEM (PKCS#8 or PKCS#1)"))?;
                let t = (parts.transport)(def, policy(s).timeout);
                AnyDestination::Salesforce(Box::new(Salesforce::new(
                    id,
                    t,
                    key,
                    s.mapping.clone(),
                    (policy(s), clock),
                )))
            }
            DestinationDef::Pipedrive(s) => {
                let t = (parts.transport)(def, policy(s).timeout);
                let rest = (parts.lookups.clone(), policy(s), clock);
                AnyDestination::Pipedrive(Pipedrive::connect(id, t, value, s.mapping.clone(), rest).await?)
            }
        });
    }
    Ok(out)
}

/// A dry-run transport answering as `def`'s CRM does on success (`segments`:
/// the ids a Pipedrive field offers).
pub fn dry_run(def: &DestinationDef, segments: &[String]) -> DryRun {
    match def {
        DestinationDef::Webhook(_) => DryRun::new(|_| crate::http::HttpResponse::json(204, serde_json::Value::Null)),
        DestinationDef::Hubspot(_) => DryRun::new(hubspot::simulated),
        DestinationDef::Salesforce(_) => DryRun::new(salesforce::simulated),
        DestinationDef::Pipedrive(s) => DryRun::new(pipedrive::simulated(&s.mapping.field, segments)),
    }
}
