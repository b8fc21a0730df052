//! Who is using the console and what they may do.
//!
//! Roles, each including the one before: **viewer** (read every page,
//! search, validate and backtest rules), **editor** (+ pin and lift
//! overrides), **publisher** (+ publish and roll back rules). In AWS the
//! identity comes from the Cognito ID token of the session cookie, verified
//! by [`super::signin`] (or by an HTTP API JWT authorizer, if one is put in
//! front) ([`Identity::from_claims`]: the user is the `email` claim, else
//! `sub`; the roles are the user pool groups in `cognito:groups`); locally
//! the console user has every role ([`Identity::local`]).
//!
//! [`check`] runs before every route: it finds the [`Identity`] in the
//! request's extensions (no identity: refused), works out the role the
//! request needs ([`needed`]), answers 403 with a page naming that role if the
//! user lacks it, and otherwise runs the route with the user as the actor
//! every change is attributed to ([`actor`]).

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The largest form the role check reads to see a rules form's action.
const FORM_LIMIT: usize = 2 * 1024 * 1024;

/// A console role; a higher one includes the lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads pages, searches contacts, validates and backtests rules.
    Viewer,
    /// A viewer who also pins and lifts overrides.
    Editor,
    /// An editor who also publishes and rolls back rules.
    Publisher,
}

impl Role {
    /// The role named by a Cognito group (`viewer`, `editor`, `publisher`).
    pub fn from_group(group: &str) -> Option<Role> {
        match group.trim().to_ascii_lowercase().as_str() {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "publisher" => Some(Role::Publisher),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Publisher => "publisher",
        })
    }
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Who, as the audit trail and the rules history record it.
    pub user: String,
    /// The highest role held (`None`: signed in, but in no console group).
    pub role: Option<Role>,
}

impl Identity {
    /// The local console's user, with every role.
    pub fn local() -> Identity {
        Identity {
            user: super::LOCAL_USER.to_string(),
            role: Some(Role::Publisher),
        }
    }

    /// The user of a verified Cognito ID token's claims (`cognito:groups` as
    /// an HTTP API JWT authorizer passes it, `[a b]`, or a JSON array as
    /// [`super::jwt::Verifier`] gives it, or a comma-separated list). `None` without an `email` or `sub`.
    pub fn from_claims(claims: &HashMap<String, String>) -> Option<Identity> {
        let named = |name: &str| claims.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let user = named("email").or_else(|| named("sub"))?.to_string();
        let groups = claims.get("cognito:groups").map_or("", String::as_str);
        let role = groups
            .trim_matches(|c| c == '[' || c == ']')
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter_map(|g| Role::from_group(g.trim_matches('"')))
            .max();
        Some(Identity { user, role })
    }

    /// Whether the user holds `role` (or a higher one).
    pub fn may(&self, role: Role) -> bool {
        self.role.is_some_and(|held| held >= role)
    }
}

tokio::task_local! {
    static ACTOR: String;
}

/// The user the route being served acts for ([`super::LOCAL_USER`] outside a request).
pub fn actor() -> String {
    ACTOR
        .try_with(Clone::clone)
        .unwrap_or_else(|_| super::LOCAL_USER.to_string())
}

/// The role a request needs: a change to overrides needs editor, a publish
/// or rollback publisher, any other change (a form not listed here)
/// publisher too; reading, validating and backtesting need viewer.
pub fn needed(method: &Method, path: &str, action: Option<&str>) -> Role {
    if method == Method::GET || method == Method::HEAD {
        return Role::Viewer;
    }
    match (path, action) {
        ("/rules", Some("validate" | "backtest")) => Role::Viewer,
        ("/overrides/pin" | "/overrides/lift", _) => Role::Editor,
        _ => Role::Publisher,
    }
}

/// The role check (see the module's documentation).
pub async fn check<B: super::Backend>(
    State(console): State<Arc<super::Console<B>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(identity) = req.extensions().get::<Identity>().cloned() else {
        let message = "refused: not signed in (no verified identity reached the console)";
        return super::pages::refused(&console, StatusCode::UNAUTHORIZED, message, "/").await;
    };
    let (parts, body) = req.into_parts();
    let (action, body) = if parts.method == Method::POST && parts.uri.path() == "/rules" {
        let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
            let message = format!("refused: the form is larger than {FORM_LIMIT} bytes");
            return super::pages::refused(&console, StatusCode::PAYLOAD_TOO_LARGE, message, "/rules").await;
        };
        (form_action(&bytes), Body::from(bytes))
    } else {
        (None, body)
    };
    let role = needed(&parts.method, parts.uri.path(), action.as_deref());
    if !identity.may(role) {
        let held = identity
            .role
            .map_or_else(|| "no console role".to_string(), |r| format!("the {r} role"));
        let message = format!(
            "refused: this needs the {role} role; {} has {held} (ask an administrator to add you to the `{role}` group)",
            identity.user
        );
        return super::pages::refused(&console, StatusCode::FORBIDDEN, message, "/").await;
    }
    let req = Request::from_parts(parts, body);
    ACTOR.scope(identity.user, next.run(req)).await
}

/// A url-encoded form's `action` field.
fn form_action(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(name, _)| name == "action")
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_identity_is_the_email_or_sub_with_the_highest_group_as_role() {
        let ada = Identity::from_claims(&claims(&[
            ("sub", "0f1e"),
            ("email", "ada@x.test"),
            ("cognito:groups", "[viewer publisher]"),
        ]))
        .unwrap();
        assert_eq!((ada.user.as_str(), ada.role), ("ada@x.test", Some(Role::Publisher)));
        let bo = Identity::from_claims(&claims(&[
            ("sub", "0f1e"),
            ("cognito:groups", "[\"editor\",\"other\"]"),
        ]))
        .unwrap();
        assert_eq!((bo.user.as_str(), bo.role), ("0f1e", Some(Role::Editor)));
        let cy = Identity::from_claims(&claims(&[("sub", "c"), ("cognito:groups", "marketing")])).unwrap();
        assert_eq!(cy.role, None);
        assert!(!cy.may(Role::Viewer));
        assert!(Identity::from_claims(&claims(&[("cognito:groups", "[publisher]")])).is_none());
    }

    #[test]
    fn each_change_needs_its_role_and_reading_needs_viewer() {
        assert_eq!(needed(&Method::GET, "/rules", None), Role::Viewer);
        assert_eq!(needed(&Method::POST, "/rules", Some("backtest")), Role::Viewer);
        assert_eq!(needed(&Method::POST, "/rules", Some("validate")), Role::Viewer);
        assert_eq!(needed(&Method::POST, "/rules", Some("publish")), Role::Publisher);
        assert_eq!(needed(&Method::POST, "/rules", None), Role::Publisher);
        assert_eq!(needed(&Method::POST, "/rules/rollback", None), Role::Publisher);
        assert_eq!(needed(&Method::POST, "/overrides/pin", None), Role::Editor);
        assert_eq!(needed(&Method::POST, "/overrides/lift", None), Role::Editor);
        assert_eq!(needed(&Method::POST, "/anything-new", None), Role::Publisher);
        let editor = Identity {
            user: "e".into(),
            role: Some(Role::Editor),
        };
        assert!(editor.may(Role::Viewer) && editor.may(Role::Editor) && !editor.may(Role::Publisher));
    }
}
