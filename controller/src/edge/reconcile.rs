//! One reconciliation of a FlinkBlueGreenDeployment: observe, decide,
//! carry out, record an Event, write the status; and the clean-up when the
//! resource is deleted.

use std::sync::Arc;
use std::time::SystemTime;

use cutover_core::{Colour, PipelineName, PipelineStatus};
use cutover_crds::FlinkBlueGreenDeployment;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::{Instrument, info_span, warn};

use super::carry_out::{Target, carry_out};
use super::coordinators::refused;
use super::error::EdgeError;
use super::{Context, FINALIZER};
use crate::child::{child_name, pipeline_name};
use crate::observed::PipelineView;
use crate::status_map::{
    gates_by_colour, observe, status_after, status_after_invalid_spec, unix_seconds,
};
use crate::{Reconcile, decide, settled_colour};

pub(super) async fn reconcile(
    resource: Arc<FlinkBlueGreenDeployment>,
    ctx: Arc<Context>,
) -> Result<Requeue, EdgeError> {
    let namespace = resource.namespace().ok_or(EdgeError::NoNamespace)?;
    let name = resource.name_any();
    // The watch cache may not show our own last status write yet, and the
    // status is the decisions' memory: read the resource itself.
    let resources: Api<FlinkBlueGreenDeployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(resource) = resources.get_opt(&name).await? else {
        return Ok(Requeue::await_change());
    };
    let span = info_span!("reconcile", %namespace, %name);
    reconcile_in(&resource, &ctx, &namespace, &name)
        .instrument(span)
        .await
}

async fn reconcile_in(
    resource: &FlinkBlueGreenDeployment,
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Requeue, EdgeError> {
    let pipeline = pipeline_name(namespace, name)?;
    let endpoint = resource.spec.configuration.coordinator.as_str();
    let resources: Api<FlinkBlueGreenDeployment> = Api::namespaced(ctx.client.clone(), namespace);
    let reference = ObjectRef::from_obj(resource);
    if resource.meta().deletion_timestamp.is_some() {
        return finalize(resource, ctx, &resources, name, &pipeline, endpoint)
            .await
            .map(|()| {
                ctx.coordinators.unwatch(&reference);
                Requeue::await_change()
            });
    }
    if !resource.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = resource.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        set_finalizers(&resources, resource, name, finalizers).await?;
    }
    ctx.coordinators.watch(&reference, endpoint, &pipeline);
    // A cluster a colour is placed in that cannot be reached is shown on
    // the resource, and nothing is done until it can.
    let children = async {
        let mut found = Vec::new();
        for colour in [Colour::Blue, Colour::Green] {
            let api = ctx.clusters.children(ctx, resource, colour).await?;
            found.push(child_json(&api, &child_name(name, colour)).await?);
        }
        Ok::<_, EdgeError>(found)
    };
    let (blue, green) = match children.await {
        Ok(mut found) => (found.remove(0), found.remove(0)),
        Err(e) => {
            write_error(ctx, resource, &resources, name, &e.to_string()).await?;
            return Ok(Requeue::requeue(ctx.config.retry));
        }
    };
    let now = unix_seconds(SystemTime::now());
    let generation = resource.meta().generation;
    // Without the coordinator's view the decisions could take a running
    // cutover for none: wait for it instead.
    let status = match ensure_pipeline(ctx, resource, endpoint, &pipeline).await {
        Ok(status) => Some(status),
        Err(e) => {
            write_error(ctx, resource, &resources, name, &e.to_string()).await?;
            return Ok(Requeue::requeue(ctx.config.retry));
        }
    };
    let view = status.as_ref().map(PipelineView::of);
    let observed = match observe(resource, blue.as_ref(), green.as_ref(), view, now) {
        Ok(observed) => observed,
        Err(reason) => {
            let message = reason.to_string();
            let repeated = resource
                .status
                .as_ref()
                .is_some_and(|s| s.last_error.as_deref() == Some(message.as_str()));
            if !repeated {
                publish(ctx, resource, "InvalidSpec", &message, true).await;
            }
            let stalled =
                status_after_invalid_spec(resource.status.as_ref(), &message, generation, now);
            patch_status(&resources, name, resource, &stalled).await?;
            return Ok(Requeue::await_change());
        }
    };
    let mut outcome = decide(&observed);
    let target = Target {
        resource,
        namespace,
        name,
        pipeline: &pipeline,
        endpoint,
    };
    let mut failed = None;
    for action in &outcome.actions {
        let result = carry_out(ctx, &target, action).await;
        ctx.config.metrics.acted(action.name(), result.is_ok());
        if let Err(e) = result {
            warn!(?action, error = %e, "action failed");
            failed = Some(format!("{action:?}: {e}"));
            break;
        }
    }
    ctx.config.metrics.reconciled(if failed.is_some() {
        "action_failed"
    } else {
        "ok"
    });
    if let Some((reason, message)) = &outcome.event {
        let warning = outcome.error.is_some();
        publish(ctx, resource, reason, message, warning).await;
    }
    if let Some(failure) = &failed {
        publish(ctx, resource, "ActionFailed", failure, true).await;
        outcome.error = Some(failure.clone());
    }
    let next = status_after(
        resource.status.as_ref(),
        &outcome,
        view.as_ref(),
        gates_by_colour(status.as_ref()),
        &observed.desired_hash,
        generation,
        now,
    );
    patch_status(&resources, name, resource, &next).await?;
    // A child in another cluster is not watched: read again soon while
    // one is placed there.
    let placed = resource.spec.placement.blue.is_some() || resource.spec.placement.green.is_some();
    Ok(requeue(ctx, &outcome, failed.is_some() || placed))
}

/// The pipeline's status, creating it first (owned by the colour the
/// status remembers as active, with `spec.configuration.horizonWindow`)
/// if the coordinator does not know it.
async fn ensure_pipeline(
    ctx: &Context,
    resource: &FlinkBlueGreenDeployment,
    endpoint: &str,
    pipeline: &PipelineName,
) -> Result<PipelineStatus, EdgeError> {
    if let Some(status) = ctx.coordinators.pipeline(endpoint, pipeline).await? {
        return Ok(status);
    }
    let window = resource.spec.configuration.validate()?.horizon_window;
    let state = resource
        .status
        .as_ref()
        .map(|s| s.state)
        .unwrap_or_default();
    ctx.coordinators
        .create_pipeline(
            endpoint,
            pipeline,
            settled_colour(state),
            u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
        )
        .await
}

fn requeue(ctx: &Context, outcome: &Reconcile, failed: bool) -> Requeue {
    if failed {
        return Requeue::requeue(ctx.config.retry);
    }
    Requeue::requeue(
        outcome
            .requeue_after
            .map_or(ctx.config.resync, |after| after.min(ctx.config.resync)),
    )
}

async fn child_json(children: &Api<DynamicObject>, name: &str) -> Result<Option<Value>, EdgeError> {
    match children.get_opt(name).await? {
        Some(object) => Ok(Some(serde_json::to_value(object)?)),
        None => Ok(None),
    }
}

/// Writes `status` as a merge patch; fields the previous status had and
/// this one lacks are removed.
async fn patch_status(
    resources: &Api<FlinkBlueGreenDeployment>,
    name: &str,
    resource: &FlinkBlueGreenDeployment,
    status: &cutover_crds::FlinkBlueGreenDeploymentStatus,
) -> Result<(), EdgeError> {
    // Nothing to write: no request.
    if resource.status.as_ref() == Some(status) {
        return Ok(());
    }
    let mut next = serde_json::to_value(status)?;
    if let (Some(Value::Object(previous)), Value::Object(next)) = (
        resource
            .status
            .as_ref()
            .map(serde_json::to_value)
            .transpose()?,
        &mut next,
    ) {
        for key in previous.keys() {
            next.entry(key.clone()).or_insert(Value::Null);
        }
    }
    resources
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": next })),
        )
        .await?;
    Ok(())
}

/// Shows `message` as the status's `lastError`, everything else kept.
async fn write_error(
    ctx: &Context,
    resource: &FlinkBlueGreenDeployment,
    resources: &Api<FlinkBlueGreenDeployment>,
    name: &str,
    message: &str,
) -> Result<(), EdgeError> {
    let unchanged = resource
        .status
        .as_ref()
        .is_some_and(|s| s.last_error.as_deref() == Some(message));
    if unchanged {
        return Ok(());
    }
    publish(ctx, resource, "Error", message, true).await;
    let patch = json!({"status": {"lastError": message}});
    resources
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn publish(
    ctx: &Context,
    resource: &FlinkBlueGreenDeployment,
    reason: &str,
    message: &str,
    warning: bool,
) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_string(),
        note: Some(message.to_string()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx
        .recorder
        .publish(&event, &resource.object_ref(&()))
        .await
    {
        warn!(error = %e, reason, "could not record an Event");
    }
}

/// The resource is being deleted: delete both children, then the
/// pipeline's state on the coordinator (refused while gates are still
/// connected: retried), then let it go.
async fn finalize(
    resource: &FlinkBlueGreenDeployment,
    ctx: &Context,
    resources: &Api<FlinkBlueGreenDeployment>,
    name: &str,
    pipeline: &cutover_core::PipelineName,
    endpoint: &str,
) -> Result<(), EdgeError> {
    if !resource.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    for colour in [Colour::Blue, Colour::Green] {
        let children = ctx.clusters.children(ctx, resource, colour).await?;
        match children
            .delete(&child_name(name, colour), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let deleted = ctx.coordinators.client(endpoint)?.delete(pipeline).await;
    match deleted {
        Ok(_) => {
            publish(
                ctx,
                resource,
                "Deleted",
                "children and pipeline state deleted",
                false,
            )
            .await
        }
        Err(e) if e.code() == Some(tonic::Code::NotFound) => {}
        Err(e) => return Err(refused(endpoint, "DeletePipeline", e)),
    }
    let finalizers: Vec<String> = resource
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(resources, resource, name, finalizers).await
}

/// Writes `metadata.finalizers`, only over the version read (a 409
/// otherwise: the next reconciliation reads again).
async fn set_finalizers(
    resources: &Api<FlinkBlueGreenDeployment>,
    resource: &FlinkBlueGreenDeployment,
    name: &str,
    finalizers: Vec<String>,
) -> Result<(), EdgeError> {
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": resource.resource_version(),
    }});
    resources
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

pub(super) fn error_policy(
    _resource: Arc<FlinkBlueGreenDeployment>,
    error: &EdgeError,
    ctx: Arc<Context>,
) -> Requeue {
    warn!(%error, "reconciliation failed; retrying");
    ctx.config.metrics.reconciled("error");
    Requeue::requeue(ctx.config.retry)
}
