//! The FlinkBlueGreenDeployment controller.
//!
//! [`decide`] is a pure function: from what the controller observed of one
//! resource (its spec and remembered progress, its two child
//! FlinkDeployments, the coordinator's view of the pipeline, the time) to
//! the actions to take and the progress to remember. No Kubernetes client,
//! no gRPC, no clock: the edge gathers [`Observed`], carries out the
//! [`Action`]s, and stores the returned [`Memory`] in the resource's status.
//! That edge is [`edge`], the only module that talks to Kubernetes or the
//! coordinator.
//!
//! ```text
//!  INITIALIZING_BLUE ──blue RUNNING──► ACTIVE_BLUE ──template changed──► TRANSITIONING_TO_GREEN
//!        (no savepoint yet: SAVEPOINTING_BLUE first)            │ green RUNNING+STABLE → schedule at EARLIEST
//!                                                               │ (auto-promote off: wait for promote)
//!                                                               │ DRAINED → suspend blue with a savepoint
//!                                                               │ blue suspended → complete
//!        ACTIVE_BLUE ◄── green failed within the grace period ──┤ (abort, delete green)
//!                                                               ▼
//!                                  ACTIVE_GREEN (blue deleted after the deletion delay); and back.
//! ```

mod action;
pub mod child;
mod decide;
pub mod edge;
mod observed;
pub mod plan;
pub mod status_map;

pub use action::{Action, Reconcile};
pub use decide::{decide, settled_colour};
pub use observed::{Child, JobHealth, Memory, Observed, PipelineView, TransitionView};
