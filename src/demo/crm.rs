//! The demo's write-back: the destinations of a destinations file, built as
//! the function builds them, over dry-run transports that record each request
//! and answer as the CRM does on success.

use kairos_store::MemoryLookups;
use kairos_writeback::file::{self, DestinationDef, DestinationsFile};
use kairos_writeback::http::DryRun;
use kairos_writeback::{build, dry_run, AnyDestination, Parts, SystemClock};
use std::collections::HashMap;
use std::sync::Arc;

/// The demo's destinations file, embedded (`events/demo/destinations.yaml`).
pub const DEFAULT_DESTINATIONS: &str = include_str!("../../events/demo/destinations.yaml");

/// Destinations over dry-run transports, and those transports by destination name.
pub struct DryRunDestinations {
    /// As the write-back function has them.
    pub destinations: Vec<AnyDestination<Arc<DryRun>, Arc<MemoryLookups>>>,
    /// What each was asked, in file order.
    pub transports: Vec<(String, Arc<DryRun>)>,
}

impl DryRunDestinations {
    /// The requests each destination received since the last call, in file order.
    pub fn take(&self) -> Vec<(String, Vec<kairos_writeback::http::HttpRequest>)> {
        self.transports
            .iter()
            .map(|(name, t)| (name.clone(), t.take()))
            .collect()
    }
}

/// Reads a destinations file (checked against the rules' segment ids) and builds it dry.
pub async fn dry_run_destinations(text: &str, segments: &[&str]) -> Result<DryRunDestinations, String> {
    let env = |name: &str| std::env::var(name).ok();
    let parsed: DestinationsFile = file::interpolate(text, env)
        .and_then(|text| file::parse(&text, Some(segments)))
        .map_err(|e| format!("destinations file: {e}"))?;
    let ids: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
    let transports: Vec<(String, Arc<DryRun>)> = parsed
        .destinations
        .iter()
        .map(|d| (d.name().to_string(), Arc::new(dry_run(d, &ids))))
        .collect();
    let secrets: HashMap<String, String> = parsed
        .parameters()
        .into_iter()
        .zip(&parsed.destinations)
        .map(|((_, name), def)| (name.to_string(), demo_secret(def)))
        .collect();
    let by_name = transports.clone();
    let transport = move |def: &DestinationDef, _| {
        let found = by_name.iter().find(|(n, _)| n == def.name());
        found.map(|(_, t)| t.clone()).expect("a transport per destination")
    };
    let parts = Parts {
        secrets: &secrets,
        transport,
        lookups: Arc::new(MemoryLookups::default()),
        clock: Arc::new(SystemClock),
    };
    let destinations = build(&parsed, parts).await.map_err(|e| e.to_string())?;
    Ok(DryRunDestinations {
        destinations,
        transports,
    })
}

/// A stand-in credential of the right form (nothing is sent anywhere).
fn demo_secret(def: &DestinationDef) -> String {
    match def {
        DestinationDef::Webhook(_) => "whsec_ZGVtby13ZWJob29rLXNlY3JldC0wMQ==".into(),
        DestinationDef::Salesforce(_) => {
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).expect("a demo key");
            key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).expect("PEM").to_string()
        }
        _ => "demo-token".into(),
    }
}
