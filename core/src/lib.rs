//! The pure protocol core of cutover: no async, no clock, no IO.
//!
//! ```text
//!  control request ──► PipelineState::propose_*() ──► successor PipelineDoc
//!                                                          │ (edge: CAS in the store)
//!  store changed / CAS succeeded ──► PipelineState::install(doc)
//!                                                          │ (edge: encode once, fan out)
//!  gate hello/ack/progress ──► SessionState (what each session may say and
//!                              needs next) ──► Ledger ──► propose_automatic()
//!                              (horizon, DRAINED, retirement)
//!  gate ──► Plan::decide(colour, key) ──► Emit | Drop | Hold
//! ```
//!
//! The one invariant everything serves: **below a horizon that was
//! installed, a key's emitter never changes, except that it may be retired
//! once (then no colour emits it), and never comes back**
//! ([`PipelineDoc::check_successor`] enforces it on every install).

mod compaction;
mod document;
mod domain;
mod drain;
mod error;
mod fence;
pub mod fleet;
mod gate;
mod horizon;
mod ledger;
pub mod limits;
pub mod operators;
mod pipeline;
mod plan;
pub mod session;
mod status;
mod tally;
mod timeline;
mod transition;

pub use document::{HISTORY_LEN, PipelineDoc, SCHEMA_VERSION, UnknownFields};
pub use domain::{Colour, Epoch, Incarnation, Key, Mode, PipelineName};
pub use error::CoreError;
pub use gate::{GateIdentity, GateKey, GateProgress, MAX_ID_LEN, SessionId};
pub use horizon::{HorizonPolicy, HorizonSignal, next_horizon};
pub use ledger::{GateEntry, Ledger};
pub use operators::{GateOperators, Operators};
pub use pipeline::{Installed, PipelineState};
pub use plan::{Decision, Plan, RetiredBelow};
pub use session::{FrameKind, PlanVersion, Resume, SessionError, SessionRules, SessionState};
pub use status::{ColourGates, PipelineStatus, Serving};
pub use timeline::{Segment, Timeline};
pub use transition::{CutoverAt, Phase, ScheduleRequest, Transition, TransitionState};
