//! The clusters the children live in: the controller's own, and for a
//! colour placed elsewhere (`spec.placement`), the cluster a kubeconfig in
//! a Secret reaches. Clients of other clusters are kept per Secret and
//! built again when the Secret changes.

use std::collections::HashMap;
use std::sync::Mutex;

use cutover_core::Colour;
use cutover_crds::FlinkBlueGreenDeployment;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::Context;
use super::error::EdgeError;

/// Which Secret key a kubeconfig is in: (namespace, Secret, key).
type SecretRef = (String, String, String);

/// A client, and the resource version of the Secret it was built from.
type BuiltClient = (String, kube::Client);

/// Clients of other clusters, by the Secret key holding their kubeconfig.
#[derive(Default)]
pub(super) struct Clusters {
    clients: Mutex<HashMap<SecretRef, BuiltClient>>,
}

impl Clusters {
    /// The FlinkDeployments API where `resource`'s child of `colour` lives.
    pub(super) async fn children(
        &self,
        ctx: &Context,
        resource: &FlinkBlueGreenDeployment,
        colour: Colour,
    ) -> Result<Api<DynamicObject>, EdgeError> {
        let namespace = resource.namespace().ok_or(EdgeError::NoNamespace)?;
        let Some(placement) = resource.spec.placement.of(colour) else {
            return Ok(Api::namespaced_with(
                ctx.client.clone(),
                &namespace,
                &ctx.flink,
            ));
        };
        let client = self
            .client(
                ctx,
                &namespace,
                &placement.kubeconfig_secret,
                &placement.cluster,
            )
            .await?;
        let there = placement.namespace.as_deref().unwrap_or(&namespace);
        Ok(Api::namespaced_with(client, there, &ctx.flink))
    }

    /// A client of the cluster the kubeconfig in `secret` reaches.
    async fn client(
        &self,
        ctx: &Context,
        namespace: &str,
        secret: &cutover_crds::SecretKey,
        cluster: &str,
    ) -> Result<kube::Client, EdgeError> {
        let unusable = |reason: String| EdgeError::Kubeconfig {
            cluster: cluster.to_string(),
            secret: format!("{namespace}/{}", secret.name),
            reason,
        };
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
        let object = secrets
            .get_opt(&secret.name)
            .await?
            .ok_or_else(|| unusable("no such Secret".into()))?;
        let version = object.resource_version().unwrap_or_default();
        let key = (
            namespace.to_string(),
            secret.name.clone(),
            secret.key.clone(),
        );
        if let Ok(clients) = self.clients.lock()
            && let Some((built_from, client)) = clients.get(&key)
            && *built_from == version
        {
            return Ok(client.clone());
        }
        let bytes = object
            .data
            .as_ref()
            .and_then(|data| data.get(&secret.key))
            .ok_or_else(|| unusable(format!("it has no key {:?}", secret.key)))?;
        let text = std::str::from_utf8(&bytes.0)
            .map_err(|_| unusable(format!("key {:?} is not UTF-8", secret.key)))?;
        let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| unusable(e.to_string()))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| unusable(e.to_string()))?;
        let client = kube::Client::try_from(config).map_err(|e| unusable(e.to_string()))?;
        if let Ok(mut clients) = self.clients.lock() {
            clients.insert(key, (version, client.clone()));
        }
        Ok(client)
    }
}
