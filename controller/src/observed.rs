//! What the controller knows when it decides: [`Observed`].

use std::time::Duration;

use cutover_core::{Colour, Epoch, Phase, PipelineStatus};
use cutover_crds::BlueGreenState;

/// A child FlinkDeployment as its status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    /// Hash of the template it was created from (an annotation on it).
    pub template_hash: String,
    /// Its job, as the Flink operator reports it.
    pub job: JobHealth,
    /// Latest savepoint or checkpoint it reports, if any.
    pub savepoint: Option<String>,
}

/// A child's job, reduced to what the decisions need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobHealth {
    /// Deploying, or running but not yet STABLE.
    Starting,
    /// RUNNING, and the deployment is STABLE.
    Running,
    /// FAILED (or the deployment failed), with the reason.
    Failed(String),
    /// Suspended with a savepoint, as asked.
    Suspended,
}

/// The latest transition in the coordinator's plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransitionView {
    /// Colour it hands over to.
    pub to: Colour,
    /// Its phase.
    pub phase: Phase,
    /// Whether it promotes itself.
    pub auto_promote: bool,
}

/// The coordinator's view of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineView {
    /// Plan epoch.
    pub epoch: Epoch,
    /// Colour owning the end of the timeline.
    pub active: Colour,
    /// Latest transition, if any.
    pub transition: Option<TransitionView>,
}

impl PipelineView {
    /// The coordinator's status as the decisions see it. A transition that
    /// was promoted no longer waits for a promotion.
    pub fn of(status: &PipelineStatus) -> PipelineView {
        let transition = status.transition.as_ref().and_then(|t| {
            Some(TransitionView {
                to: t.to,
                phase: status.phase?,
                auto_promote: t.auto_promote || t.promoted,
            })
        });
        PipelineView {
            epoch: status.plan.epoch,
            active: status.active,
            transition,
        }
    }
}

/// What the controller remembers between reconciliations (kept in the
/// resource's status, so a restarted controller carries on).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Where the deployment stands.
    pub state: BlueGreenState,
    /// Template hash the active colour runs.
    pub active_hash: Option<String>,
    /// Template hash the colour being started runs.
    pub target_hash: Option<String>,
    /// When the new colour was created (seconds since the Unix epoch).
    pub transition_started_at: Option<i64>,
    /// Savepoint the new colour starts from.
    pub initial_savepoint: Option<String>,
    /// When the old colour was suspended after a completed transition.
    pub old_stopped_at: Option<i64>,
    /// Template hash whose new colour failed and was rolled back: not
    /// tried again until the template changes.
    pub rejected_hash: Option<String>,
}

/// Everything one decision depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Now, in seconds since the Unix epoch.
    pub now: i64,
    /// Hash of `spec.template`.
    pub desired_hash: String,
    /// `spec.suspend`.
    pub suspend: bool,
    /// `spec.configuration.autoPromote`.
    pub auto_promote: bool,
    /// `spec.configuration.abortGracePeriod`.
    pub abort_grace_period: Duration,
    /// `spec.configuration.deletionDelay`.
    pub deletion_delay: Duration,
    /// A promotion was asked for (the `cutover.dev/promote` annotation).
    pub promote_requested: bool,
    /// An abort was asked for (the `cutover.dev/abort` annotation).
    pub abort_requested: bool,
    /// What the controller remembered.
    pub memory: Memory,
    /// `<name>-blue`, if it exists.
    pub blue: Option<Child>,
    /// `<name>-green`, if it exists.
    pub green: Option<Child>,
    /// The pipeline, once the coordinator knows it.
    pub pipeline: Option<PipelineView>,
}

impl Observed {
    /// The child of `colour`.
    pub fn child(&self, colour: Colour) -> Option<&Child> {
        match colour {
            Colour::Blue => self.blue.as_ref(),
            Colour::Green => self.green.as_ref(),
        }
    }

    /// The coordinator's latest transition, if it hands over to `to`.
    pub fn transition_to(&self, to: Colour) -> Option<TransitionView> {
        self.pipeline
            .and_then(|p| p.transition)
            .filter(|t| t.to == to)
    }
}
