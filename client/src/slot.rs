//! The latest plan of one pipeline in this process: installed by the
//! session task, read lock-free by every gate of the pipeline, awaited by
//! callers that wait for an epoch (async) or a decision (blocking).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use arc_swap::ArcSwapOption;
use cutover_core::{Epoch, Key, Plan};
use tokio::sync::watch;

use crate::tail::TailCell;

/// The latest plan of one pipeline.
pub(crate) struct PipelineSlot {
    /// Read by every gate's `decide()` through an `arc_swap::Cache`.
    pub(crate) plan: Arc<ArcSwapOption<Plan>>,
    /// Epoch of the installed plan; async waiters wake on change.
    pub(crate) installed: watch::Sender<Epoch>,
    /// Horizon before the last raise, to tell when a gate nears the current one.
    previous_horizon: AtomicI64,
    /// Epoch of the installed plan, for threads that block until it changes.
    pub(crate) blocking: (Mutex<Epoch>, Condvar),
    /// The installed plan's tail, for readers outside Rust.
    pub(crate) tail: TailCell,
}

impl PipelineSlot {
    pub(crate) fn new() -> Self {
        PipelineSlot {
            plan: Arc::new(ArcSwapOption::empty()),
            installed: watch::channel(Epoch(0)).0,
            previous_horizon: AtomicI64::new(i64::MIN),
            blocking: (Mutex::new(Epoch(0)), Condvar::new()),
            tail: TailCell::new(),
        }
    }

    /// Installs a newer plan and wakes waiters.
    pub(crate) fn install(&self, plan: Arc<Plan>) {
        let previous = self.plan.load().as_ref().map_or(i64::MIN, |p| p.horizon.0);
        self.previous_horizon.store(previous, Ordering::Relaxed);
        let epoch = plan.epoch;
        {
            let mut blocked = self.blocking.0.lock().unwrap_or_else(|p| p.into_inner());
            // The tail follows the plan: a reader of an older tail holds
            // more, never decides otherwise (decisions below a horizon are
            // fixed).
            self.tail.publish(&plan);
            self.plan.store(Some(plan));
            *blocked = epoch;
        }
        self.blocking.1.notify_all();
        self.installed.send_replace(epoch);
    }

    /// Whether `watermark` is past the middle of the last horizon step.
    pub(crate) fn near_horizon(&self, watermark: Key) -> bool {
        let Some(plan) = self.plan.load_full() else {
            return false;
        };
        let previous = self.previous_horizon.load(Ordering::Relaxed);
        let horizon = plan.horizon.0;
        let midpoint = if previous == i64::MIN {
            horizon
        } else {
            previous + (horizon.saturating_sub(previous)) / 2
        };
        watermark.0 >= midpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::{Colour, Decision, Incarnation};

    #[test]
    fn an_installed_plan_is_published_as_a_tail() {
        let slot = PipelineSlot::new();
        assert_eq!(slot.tail.read().epoch(), None);
        assert_eq!(
            slot.tail.read().decide(Colour::Blue, Key(0)),
            Some(Decision::Hold)
        );
        let plan = Plan::new(Colour::Blue, Incarnation(3));
        let mut later = plan.clone();
        later.epoch = Epoch(4);
        later.horizon = Key(100);
        slot.install(Arc::new(later));
        let tail = slot.tail.read();
        assert_eq!(tail.epoch(), Some(4));
        assert_eq!(tail.decide(Colour::Blue, Key(99)), Some(Decision::Emit));
        assert_eq!(tail.decide(Colour::Green, Key(99)), Some(Decision::Drop));
        assert_eq!(tail.decide(Colour::Blue, Key(100)), Some(Decision::Hold));
    }
}
