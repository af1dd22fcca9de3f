//! Who may do what: a policy maps identities to roles over pipeline
//! patterns (and, for gates, colours), and answers one question — may this
//! caller take this action on this pipeline? Pure: parsing and deciding,
//! no files, no network.
//!
//! Roles: *gate* (open sessions and register gates of the granted
//! pipelines and colours), *viewer* (list, get, watch), *operator*
//! (schedule, abort, promote, complete, forget an operator; also what a
//! viewer may), *admin* (create and delete pipelines; also what an operator
//! may).

use cutover_core::Colour;
use serde::Deserialize;

/// A policy file (YAML or JSON):
///
/// ```yaml
/// grants:
///   - identity: spiffe://cluster-a/ns/flink/sa/orders
///     role: gate
///     pipelines: ["orders"]
///     colours: [BLUE]
///   - identity: cutover-controller.cutover-system.svc
///     role: operator          # every pipeline when `pipelines` is left out
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Every grant; a caller may do what any of its grants allow.
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// One identity's role over some pipelines.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The identity exactly as the caller presents it (a certificate's
    /// SPIFFE URI or DNS name, or a ServiceAccount's user name); `*` for
    /// every authenticated caller.
    pub identity: String,
    /// What it may do.
    pub role: Role,
    /// Pipeline names or patterns (`*` matches any run of characters);
    /// every pipeline when left out.
    #[serde(default = "every_pipeline")]
    pub pipelines: Vec<String>,
    /// For the gate role: the colours whose gates it may register; both
    /// when left out.
    #[serde(default)]
    pub colours: Vec<Colour>,
}

fn every_pipeline() -> Vec<String> {
    vec!["*".into()]
}

/// A role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Open sessions and register gates.
    Gate,
    /// List, get and watch pipelines.
    Viewer,
    /// A viewer that also schedules, aborts, promotes, completes and forgets
    /// operators.
    Operator,
    /// An operator that also creates and deletes pipelines.
    Admin,
}

/// What a call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Register gates of this colour (gate sessions).
    RegisterGate(Colour),
    /// List, get or watch.
    View,
    /// Schedule, abort, promote, complete, forget an operator.
    Operate,
    /// Create or delete a pipeline.
    Administer,
}

impl Action {
    /// The role that allows it, as a refusal names it.
    pub fn needs(self) -> &'static str {
        match self {
            Action::RegisterGate(_) => "gate",
            Action::View => "viewer",
            Action::Operate => "operator",
            Action::Administer => "admin",
        }
    }
}

/// Why a call is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The caller presented no identity (no client certificate, no token).
    #[error("no identity: present a client certificate or a token")]
    Unauthenticated,
    /// The caller may view no pipeline (reflection needs a viewer grant).
    #[error("{identity} has no viewer grant for any pipeline (reflection follows viewer)")]
    NoViewer {
        /// The caller.
        identity: String,
    },
    /// The caller's grants do not allow the action on the pipeline.
    #[error("{identity} has no {needed} grant for pipeline {pipeline}{colour}")]
    Denied {
        /// The caller.
        identity: String,
        /// The role needed.
        needed: &'static str,
        /// The pipeline.
        pipeline: String,
        /// `, colour BLUE` for a gate registration, else empty.
        colour: String,
    },
}

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// It does not parse.
    #[error("policy: {0}")]
    Parse(#[from] serde_yaml::Error),
    /// A grant is not usable (the grant's index is named).
    #[error("policy grant {index}: {reason}")]
    Grant {
        /// Position in `grants` (from 0).
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl Policy {
    /// Parses and checks a policy.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy = serde_yaml::from_str(text)?;
        for (index, grant) in policy.grants.iter().enumerate() {
            let reason = if grant.identity.is_empty() {
                Some("identity is empty")
            } else if grant.pipelines.iter().any(String::is_empty) {
                Some("a pipeline pattern is empty")
            } else if !grant.colours.is_empty() && grant.role != Role::Gate {
                Some("colours apply to the gate role only")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(PolicyError::Grant { index, reason });
            }
        }
        Ok(policy)
    }

    /// Whether `identity` may take `action` on `pipeline`.
    pub fn check(
        &self,
        identity: Option<&str>,
        action: Action,
        pipeline: &str,
    ) -> Result<(), Refusal> {
        let identity = identity.ok_or(Refusal::Unauthenticated)?;
        let allowed = self.grants.iter().any(|grant| {
            (grant.identity == "*" || grant.identity == identity)
                && grant.pipelines.iter().any(|p| matches(p, pipeline))
                && allows(grant, action)
        });
        if allowed {
            return Ok(());
        }
        Err(Refusal::Denied {
            identity: identity.to_string(),
            needed: action.needs(),
            pipeline: pipeline.to_string(),
            colour: match action {
                Action::RegisterGate(colour) => format!(", colour {colour}"),
                _ => String::new(),
            },
        })
    }

    /// Whether `identity` may view some pipeline: what reflection asks.
    pub fn check_viewer(&self, identity: Option<&str>) -> Result<(), Refusal> {
        let identity = identity.ok_or(Refusal::Unauthenticated)?;
        let viewer = self.grants.iter().any(|grant| {
            (grant.identity == "*" || grant.identity == identity) && allows(grant, Action::View)
        });
        if viewer {
            Ok(())
        } else {
            Err(Refusal::NoViewer {
                identity: identity.to_string(),
            })
        }
    }
}

fn allows(grant: &Grant, action: Action) -> bool {
    match (grant.role, action) {
        (Role::Gate, Action::RegisterGate(colour)) => {
            grant.colours.is_empty() || grant.colours.contains(&colour)
        }
        (Role::Gate, _) | (_, Action::RegisterGate(_)) => false,
        (Role::Viewer, Action::View) => true,
        (Role::Viewer, _) => false,
        (Role::Operator, Action::View | Action::Operate) => true,
        (Role::Operator, Action::Administer) => false,
        (Role::Admin, _) => true,
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run of
/// characters (none included).
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: an exact match.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}
