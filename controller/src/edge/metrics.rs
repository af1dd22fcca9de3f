//! Prometheus metrics of the controller (`cutover_controller_*`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Label of reconciliation outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `ok`, `action_failed` (an action failed; the status shows it) or
    /// `error` (the reconciliation itself failed and is retried).
    pub outcome: &'static str,
}

/// Label of carried-out actions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    /// The action (`CreateChild`, `ScheduleCutover`, ...).
    pub action: &'static str,
    /// `ok` or `failed`.
    pub outcome: &'static str,
}

/// Handles to every controller metric; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct ControllerMetrics {
    /// Reconciliations by outcome.
    pub reconciliations: Family<OutcomeLabel, Counter>,
    /// Actions carried out, by action and outcome.
    pub actions: Family<ActionLabel, Counter>,
}

impl ControllerMetrics {
    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cutover_controller");
        r.register(
            "reconciliations",
            "Reconciliations of FlinkBlueGreenDeployments by outcome",
            self.reconciliations.clone(),
        );
        r.register(
            "actions",
            "Actions carried out by action and outcome",
            self.actions.clone(),
        );
    }

    pub(super) fn reconciled(&self, outcome: &'static str) {
        self.reconciliations
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub(super) fn acted(&self, action: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.actions
            .get_or_create(&ActionLabel { action, outcome })
            .inc();
    }
}
