//! Reading a FlinkBlueGreenDeployment, its children and its coordinator's
//! view, for the plugin's commands.

use std::time::Duration;

use anyhow::Context;
use cutover_client::{ClientTls, ControlClient};
use cutover_controller::child::{FLINK_API_VERSION, child_name};
use cutover_core::{Colour, PipelineName, PipelineStatus};
use cutover_crds::FlinkBlueGreenDeployment;
use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::Value;

use super::Target;

/// A resource as stored, with its children and where it lives.
pub(super) struct Found {
    pub resources: Api<FlinkBlueGreenDeployment>,
    pub resource: FlinkBlueGreenDeployment,
    pub namespace: String,
    pub blue: Option<Value>,
    pub green: Option<Value>,
}

impl Found {
    /// The child of `colour`, as stored.
    pub fn child(&self, colour: Colour) -> Option<&Value> {
        match colour {
            Colour::Blue => self.blue.as_ref(),
            Colour::Green => self.green.as_ref(),
        }
    }

    /// The pipeline the controller made for the resource.
    pub fn pipeline(&self) -> anyhow::Result<PipelineName> {
        let name = self.resource.metadata.name.as_deref().unwrap_or("");
        Ok(PipelineName::new(format!("{}-{name}", self.namespace))?)
    }
}

/// Reads `target` and its children (beside it; a colour placed in another
/// cluster shows as absent).
pub(super) async fn find(target: &Target) -> anyhow::Result<Found> {
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration (in-cluster or kubeconfig)")?;
    let namespace = target
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let resources: Api<FlinkBlueGreenDeployment> = Api::namespaced(client.clone(), &namespace);
    let resource = resources
        .get_opt(&target.name)
        .await
        .with_context(|| {
            format!(
                "reading FlinkBlueGreenDeployment {namespace}/{}",
                target.name
            )
        })?
        .with_context(|| {
            format!(
                "no FlinkBlueGreenDeployment {} in namespace {namespace}",
                target.name
            )
        })?;
    let flink = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(
            "flink.apache.org",
            FLINK_API_VERSION.trim_start_matches("flink.apache.org/"),
            "FlinkDeployment",
        ),
        "flinkdeployments",
    );
    let children: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &flink);
    let mut found = Vec::new();
    for colour in Colour::ALL {
        let child = children
            .get_opt(&child_name(&target.name, colour))
            .await
            .with_context(|| format!("reading {}", child_name(&target.name, colour)))?;
        found.push(child.map(serde_json::to_value).transpose()?);
    }
    let green = found.pop().flatten();
    let blue = found.pop().flatten();
    Ok(Found {
        resources,
        resource,
        namespace,
        blue,
        green,
    })
}

/// The coordinator's status of the resource's pipeline, or why it could
/// not be had (within a few seconds).
pub(super) async fn live_status(
    found: &Found,
    coordinator: Option<&str>,
    tls: &ClientTls,
) -> Result<PipelineStatus, String> {
    let configured = found.resource.spec.configuration.coordinator.as_str();
    // Several coordinators serve the same pipelines: the first answers.
    let endpoint = coordinator
        .unwrap_or(configured)
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let pipeline = found.pipeline().map_err(|e| e.to_string())?;
    let ask = async {
        let mut control = ControlClient::connect_with(&endpoint, tls)
            .await
            .map_err(|e| e.to_string())?;
        control.get(&pipeline).await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(5), ask).await {
        Ok(result) => result.map_err(|e| format!("{endpoint}: {e}")),
        Err(_) => Err(format!("{endpoint}: no answer within 5 s")),
    }
}
