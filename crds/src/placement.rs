//! `spec.placement`: which Kubernetes cluster each colour's child
//! FlinkDeployment runs in. A colour left out runs beside the resource (its
//! cluster and namespace); a placed colour runs in the cluster a kubeconfig
//! in a Secret reaches, so that a job can move to another cluster with a
//! cutover: the new colour starts there from the old colour's savepoint (a
//! path on storage both clusters reach) and takes over exactly once.

use cutover_core::Colour;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the two colours run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Placement {
    /// Where BLUE runs; beside the resource when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue: Option<ColourPlacement>,
    /// Where GREEN runs; beside the resource when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green: Option<ColourPlacement>,
}

/// One colour in another cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColourPlacement {
    /// The cluster's name, as Events and logs show it.
    pub cluster: String,
    /// The Secret (in the resource's namespace, in the controller's own
    /// cluster) holding a kubeconfig for that cluster.
    pub kubeconfig_secret: SecretKey,
    /// Namespace of the child there; the resource's own when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Coordinator addresses this colour's gates dial (that cluster's own
    /// coordinators, comma-separated); `spec.configuration.coordinator`
    /// when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<String>,
}

/// A key of a Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKey {
    /// The Secret's name.
    pub name: String,
    /// The key in its data; `kubeconfig` when left out.
    #[serde(default = "kubeconfig_key")]
    pub key: String,
}

fn kubeconfig_key() -> String {
    "kubeconfig".into()
}

/// Why a `spec.placement` cannot be used (the field is named).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// A field that names something is empty.
    #[error("spec.placement.{colour}.{field} must not be empty")]
    Empty {
        /// `blue` or `green`.
        colour: &'static str,
        /// The field.
        field: &'static str,
    },
    /// `coordinator` is not `http://` or `https://` addresses.
    #[error(
        "spec.placement.{colour}.coordinator must be http:// or https:// addresses separated by commas, not {value:?}"
    )]
    NotAnHttpAddress {
        /// `blue` or `green`.
        colour: &'static str,
        /// What it holds.
        value: String,
    },
}

impl Placement {
    /// Where `colour` runs, if not beside the resource.
    pub fn of(&self, colour: Colour) -> Option<&ColourPlacement> {
        match colour {
            Colour::Blue => self.blue.as_ref(),
            Colour::Green => self.green.as_ref(),
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), PlacementError> {
        for (colour, placement) in [("blue", &self.blue), ("green", &self.green)] {
            let Some(p) = placement else { continue };
            let empty = |field, value: &str| {
                if value.trim().is_empty() {
                    Err(PlacementError::Empty { colour, field })
                } else {
                    Ok(())
                }
            };
            empty("cluster", &p.cluster)?;
            empty("kubeconfigSecret.name", &p.kubeconfig_secret.name)?;
            empty("kubeconfigSecret.key", &p.kubeconfig_secret.key)?;
            if let Some(namespace) = &p.namespace {
                empty("namespace", namespace)?;
            }
            if let Some(coordinator) = &p.coordinator
                && !crate::address::http_addresses(coordinator)
            {
                return Err(PlacementError::NotAnHttpAddress {
                    colour,
                    value: coordinator.clone(),
                });
            }
        }
        Ok(())
    }
}
