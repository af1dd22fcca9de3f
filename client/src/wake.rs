//! The one way anything wakes the session task: a set of pending signals
//! and a single `Notify`. Raising a signal sets its bit and, if it was not
//! set already, notifies; the task takes every pending bit at once before it
//! waits again, so a signal raised at any moment is handled by the next
//! turn of its loop and a burst of them costs one wake-up.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

/// Why the session task should look again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Some gate's progress changed: report it within the progress interval.
    Changed = 1,
    /// A gate holds a record, nears the horizon or finished: report now and
    /// ask for the horizon.
    Urgent = 2,
    /// Gates were registered or dropped: tell the coordinator.
    Commands = 4,
    /// The client is closing (sticky: never taken).
    Stop = 8,
}

/// Signals taken in one turn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Signals(u8);

impl Signals {
    /// Whether `signal` is among them.
    pub(crate) fn has(self, signal: Signal) -> bool {
        self.0 & signal as u8 != 0
    }
}

/// Pending signals and the notification that wakes the task.
#[derive(Default)]
pub(crate) struct Wake {
    pending: AtomicU8,
    notify: Notify,
}

impl Wake {
    /// Raises `signal`. Sequentially consistent with the values it announces
    /// (see `published`): a signal seen as already pending is still to be
    /// taken, and that take comes after the change.
    pub(crate) fn raise(&self, signal: Signal) {
        let bit = signal as u8;
        if self.pending.load(Ordering::SeqCst) & bit != 0 {
            return;
        }
        if self.pending.fetch_or(bit, Ordering::SeqCst) & bit == 0 {
            self.notify.notify_one();
        }
    }

    /// Takes every pending signal (`Stop` stays pending).
    pub(crate) fn take(&self) -> Signals {
        Signals(self.pending.fetch_and(Signal::Stop as u8, Ordering::SeqCst))
    }

    /// Whether the client is closing.
    pub(crate) fn stopping(&self) -> bool {
        Signals(self.pending.load(Ordering::SeqCst)).has(Signal::Stop)
    }

    /// Waits for the next raise (returns at once if one came since the last
    /// wait).
    pub(crate) async fn woken(&self) {
        self.notify.notified().await;
    }

    /// Waits until the client is closing. The only waiter on the wake-up
    /// while it waits: a second one could take the notification meant for
    /// it.
    pub(crate) async fn stopped(&self) {
        while !self.stopping() {
            self.woken().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_taken_once_and_stop_stays() {
        let wake = Wake::default();
        assert_eq!(wake.take(), Signals::default());
        wake.raise(Signal::Changed);
        wake.raise(Signal::Urgent);
        wake.raise(Signal::Changed);
        let taken = wake.take();
        assert!(taken.has(Signal::Changed) && taken.has(Signal::Urgent));
        assert!(!taken.has(Signal::Commands));
        assert_eq!(wake.take(), Signals::default());
        wake.raise(Signal::Stop);
        assert!(wake.take().has(Signal::Stop));
        assert!(wake.take().has(Signal::Stop), "stop is never taken");
        assert!(wake.stopping());
    }

    #[tokio::test]
    async fn a_raise_before_the_wait_is_not_lost() {
        let wake = Wake::default();
        wake.raise(Signal::Commands);
        tokio::time::timeout(std::time::Duration::from_secs(5), wake.woken())
            .await
            .expect("the permit was kept");
        wake.raise(Signal::Stop);
        tokio::time::timeout(std::time::Duration::from_secs(5), wake.stopped())
            .await
            .expect("stopping");
    }
}
