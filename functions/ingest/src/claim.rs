//! One-time values of a webhook request ([`Claim`]): claimed as pending before
//! the events are enqueued, confirmed after, released when they were not.
//!
//! A request that dies between the claim and the confirmation (a crash, a
//! timeout) leaves a pending claim that lapses after [`CLAIM_PENDING_SECS`]:
//! the provider's retry is then accepted and enqueued (the pipeline dedupes by
//! event id), where it used to be answered as a repeat or a replay and lost.
//! A retry that arrives while the claim is pending is answered 503, so the
//! provider tries again later.

use kairos_store::{Claimed, Claims};
use serde_json::json;

use crate::response::{json_response, unauthorized, Reply};
use crate::webhook::Claim;

/// How long a claim stays pending (seconds): longer than the function's timeout
/// (10 s in the template), so a request still running is never doubled, and
/// short enough for the retries of the providers that claim: SNS retries after
/// 20 s by default; Svix (Resend) at once, after 5 s, then after 5 min; Mailgun
/// after 5 min. A retry that finds the claim pending gets 503 and comes again.
pub const CLAIM_PENDING_SECS: i64 = 15;

/// Claims every value as pending. `Err` is the answer when one is held: a
/// confirmed repeat of a body-signed request (200, not enqueued again), a
/// replayed token (401), one still pending (503), or a store failure (503).
pub(crate) async fn take<C: Claims>(claims: &C, wanted: &[Claim], now: i64, provider: &str) -> Result<(), Reply> {
    for (taken, claim) in wanted.iter().enumerate() {
        let held = match claims
            .claim(&claim.key, now.saturating_add(CLAIM_PENDING_SECS), now)
            .await
        {
            Ok(Claimed::Fresh) => continue,
            Ok(held) => held_answer(held, claim, provider),
            Err(err) => {
                tracing::error!(provider, error = %err, "could not record a one-time token");
                retry_later()
            }
        };
        release(claims, &wanted[..taken]).await;
        return Err(held);
    }
    Ok(())
}

/// Confirms the claims when the request's events were enqueued (or the request
/// was answered without needing to be), else releases them for the retry.
pub(crate) async fn settle<C: Claims>(claims: &C, taken: &[Claim], enqueued: bool) {
    if !enqueued {
        return release(claims, taken).await;
    }
    for claim in taken {
        if let Err(err) = claims.confirm(&claim.key, claim.expires_at).await {
            tracing::error!(error = %err, "could not confirm a one-time token; it lapses as pending");
        }
    }
}

fn held_answer(held: Claimed, claim: &Claim, provider: &str) -> Reply {
    match (held, claim.covers_body) {
        (Claimed::Done, true) => {
            tracing::info!(
                provider,
                "repeat of an accepted webhook; acknowledged, not enqueued again"
            );
            json_response(200, json!({"accepted": 0, "duplicate": true}))
        }
        (Claimed::Done, false) => {
            tracing::warn!(provider, "rejected webhook: one-time token already used (replay)");
            unauthorized()
        }
        _ => {
            tracing::warn!(
                provider,
                "a delivery of this request is in progress; asking for a retry"
            );
            retry_later()
        }
    }
}

fn retry_later() -> Reply {
    json_response(503, json!({"error": "temporarily unavailable; retry the request"}))
}

async fn release<C: Claims>(claims: &C, taken: &[Claim]) {
    for claim in taken {
        if let Err(err) = claims.release(&claim.key).await {
            tracing::error!(error = %err, "could not release a one-time token; it lapses as pending");
        }
    }
}
