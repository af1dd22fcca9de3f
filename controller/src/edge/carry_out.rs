//! Carrying out one [`Action`]: child FlinkDeployments through the
//! Kubernetes API, transitions through the coordinator's control API. Every
//! step is safe to repeat (an existing child, a missing one, a transition
//! already in the asked state are not errors), since a lost status write
//! makes the next reconciliation decide the same step again.

use std::time::{SystemTime, UNIX_EPOCH};

use cutover_core::{Colour, CutoverAt, Mode, PipelineName, ScheduleRequest};
use cutover_crds::{DecisionMode, FlinkBlueGreenDeployment};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use tracing::info;

use super::Context;
use super::coordinators::refused;
use super::error::EdgeError;
use crate::action::Action;
use crate::child::{child_name, child_object};
use crate::status_map::{ABORT_ANNOTATION, PROMOTE_ANNOTATION};

/// One reconciliation's view of where things live.
pub(super) struct Target<'a> {
    pub resource: &'a FlinkBlueGreenDeployment,
    pub namespace: &'a str,
    pub name: &'a str,
    pub pipeline: &'a PipelineName,
    pub endpoint: &'a str,
}

/// Carries out `action`.
pub(super) async fn carry_out(
    ctx: &Context,
    target: &Target<'_>,
    action: &Action,
) -> Result<(), EdgeError> {
    info!(?action, "carrying out");
    let child = |colour: Colour| child_name(target.name, colour);
    let children = |colour: Colour| ctx.clusters.children(ctx, target.resource, colour);
    match action {
        Action::CreateChild { colour, savepoint } => {
            let children = children(*colour).await?;
            let object = child_object(target.resource, *colour, savepoint.as_deref())?;
            let object: DynamicObject = serde_json::from_value(object)?;
            match children.create(&PostParams::default(), &object).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Action::TriggerSavepoint { colour } => {
            let nonce = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let patch = json!({"spec": {"job": {"savepointTriggerNonce": nonce}}});
            patch_child(&children(*colour).await?, &child(*colour), &patch).await
        }
        Action::SuspendChild { colour } => {
            let patch =
                json!({"spec": {"job": {"state": "suspended", "upgradeMode": "savepoint"}}});
            patch_child(&children(*colour).await?, &child(*colour), &patch).await
        }
        Action::ResumeChild { colour } => {
            let patch = json!({"spec": {"job": {"state": "running"}}});
            patch_child(&children(*colour).await?, &child(*colour), &patch).await
        }
        Action::DeleteChild { colour } => {
            match children(*colour)
                .await?
                .delete(&child(*colour), &DeleteParams::default())
                .await
            {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Action::ScheduleCutover {
            target: colour,
            auto_promote,
        } => {
            let configuration = &target.resource.spec.configuration;
            let lateness = configuration.validate()?.allowed_lateness;
            let mode = match configuration.decision_mode {
                DecisionMode::EventTime => Mode::EventTime,
                DecisionMode::Watermark => Mode::Watermark,
            };
            let request = ScheduleRequest {
                target: *colour,
                at: CutoverAt::Earliest,
                mode,
                allowed_lateness: u64::try_from(lateness.as_millis()).unwrap_or(u64::MAX),
                auto_promote: *auto_promote,
            };
            let mut client = ctx.coordinators.client(target.endpoint)?;
            client
                .schedule(target.pipeline, request)
                .await
                .map(drop)
                .map_err(|e| refused(target.endpoint, "ScheduleTransition", e))
        }
        Action::Promote => {
            let mut client = ctx.coordinators.client(target.endpoint)?;
            client
                .promote(target.pipeline)
                .await
                .map_err(|e| refused(target.endpoint, "Promote", e))?;
            let resources: Api<FlinkBlueGreenDeployment> =
                Api::namespaced(ctx.client.clone(), target.namespace);
            let patch = json!({"metadata": {"annotations": {PROMOTE_ANNOTATION: null}}});
            resources
                .patch(target.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            Ok(())
        }
        Action::ForgetAbortRequest => {
            let resources: Api<FlinkBlueGreenDeployment> =
                Api::namespaced(ctx.client.clone(), target.namespace);
            let patch = json!({"metadata": {"annotations": {ABORT_ANNOTATION: null}}});
            resources
                .patch(target.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            Ok(())
        }
        Action::AbortTransition => {
            let mut client = ctx.coordinators.client(target.endpoint)?;
            client
                .abort(target.pipeline)
                .await
                .map(drop)
                .map_err(|e| refused(target.endpoint, "AbortTransition", e))
        }
        Action::CompleteTransition => {
            let mut client = ctx.coordinators.client(target.endpoint)?;
            client
                .complete(target.pipeline)
                .await
                .map(drop)
                .map_err(|e| refused(target.endpoint, "CompleteTransition", e))
        }
    }
}

async fn patch_child(
    children: &Api<DynamicObject>,
    name: &str,
    patch: &serde_json::Value,
) -> Result<(), EdgeError> {
    children
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}
