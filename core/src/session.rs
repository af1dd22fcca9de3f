//! The rules of one gate session, as the coordinator keeps them: which
//! pipelines the session carries and how many gates of each, what its
//! client holds of each pipeline's plan, which frame it needs next, which
//! acknowledgements are legal, how a reconnecting client resumes, and the
//! session's limits.
//!
//! Pure: the coordinator's session task decodes a message, calls these
//! rules and encodes what they decide; the simulation calls the same rules.
//! A refused message is a [`SessionError`] and changes nothing.

use std::collections::BTreeMap;

use crate::document::PipelineDoc;
use crate::domain::{Epoch, Incarnation, PipelineName};

/// Limits of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRules {
    /// Most gates one session may carry.
    pub max_gates: usize,
}

impl Default for SessionRules {
    fn default() -> Self {
        SessionRules { max_gates: 65_536 }
    }
}

/// A plan as the session sees it: enough to tell what a client holding
/// some version of it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanVersion {
    /// The pipeline's incarnation.
    pub incarnation: Incarnation,
    /// The plan's epoch.
    pub epoch: Epoch,
    /// The epoch at which the plan last changed in anything but its horizon.
    pub segments_epoch: Epoch,
}

impl PlanVersion {
    /// The version of `doc`'s plan.
    pub fn of(doc: &PipelineDoc) -> Self {
        PlanVersion {
            incarnation: doc.incarnation(),
            epoch: doc.epoch(),
            segments_epoch: doc.segments_epoch,
        }
    }
}

/// Which frame a client needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// The whole plan.
    Snapshot,
    /// Only the new horizon (the client holds the rest).
    Grant,
}

/// A message the session refuses; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The first message of a session is not a hello.
    #[error("the first message of a session must be a hello")]
    NotAHello,
    /// A second hello on an open session.
    #[error("hello sent twice on one session")]
    SecondHello,
    /// A message with nothing in it.
    #[error("empty message")]
    Empty,
    /// A registration without a gate.
    #[error("no gate to register")]
    NoGates,
    /// More gates than a session may carry.
    #[error("a session may carry at most {limit} gates ({carried} registered, {asked} more asked)")]
    TooManyGates {
        /// The limit.
        limit: usize,
        /// Gates the session carries.
        carried: usize,
        /// Gates asked for.
        asked: usize,
    },
    /// A message names a pipeline with no gate on the session.
    #[error("this session has no gate in pipeline {pipeline}")]
    NotOnSession {
        /// The pipeline.
        pipeline: PipelineName,
    },
    /// An ack for a pipeline with no gate on the session.
    #[error("ack for pipeline {pipeline}, which has no gate on this session")]
    AckWithoutGate {
        /// The pipeline.
        pipeline: PipelineName,
    },
    /// An ack for an epoch this session was never sent.
    #[error(
        "ack for epoch {acked} of pipeline {pipeline}, but this session was sent epoch {sent} at most"
    )]
    AckNeverSent {
        /// The pipeline.
        pipeline: PipelineName,
        /// Epoch acknowledged.
        acked: Epoch,
        /// Highest epoch sent or known held.
        sent: Epoch,
    },
    /// A client claims an epoch its pipeline's incarnation never had.
    #[error(
        "the client holds epoch {held} of pipeline {pipeline}, but the newest stored epoch is {newest}; the client's plan does not come from this pipeline's store"
    )]
    EpochNeverIssued {
        /// The pipeline.
        pipeline: PipelineName,
        /// Epoch the client claims to hold.
        held: Epoch,
        /// Newest epoch known.
        newest: Epoch,
    },
}

/// How a client that reconnects resumes a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// It holds this epoch of the current incarnation (`Epoch(0)`:
    /// nothing, or a plan of another incarnation).
    Holds(Epoch),
    /// It claims a later epoch than the current one: the coordinator may be
    /// behind its store — re-read it and ask again; if it still is, the
    /// claim is refused ([`SessionError::EpochNeverIssued`]).
    Ahead,
}

/// The resume rule: what a client claiming `claim` (epoch, incarnation)
/// holds of the plan `current`.
pub fn resume(claim: Option<(Epoch, Incarnation)>, current: PlanVersion) -> Resume {
    match claim {
        Some((epoch, incarnation)) if incarnation == current.incarnation => {
            if epoch > current.epoch {
                Resume::Ahead
            } else {
                Resume::Holds(epoch)
            }
        }
        _ => Resume::Holds(Epoch(0)),
    }
}

#[derive(Clone, Copy, Debug)]
struct Joined {
    gates: usize,
    /// What the client holds, as far as the session knows.
    held: Option<PlanVersion>,
    /// Highest epoch sent or known held: acks above it are refused.
    sent: Epoch,
}

/// One session's state.
#[derive(Clone, Debug, Default)]
pub struct SessionState {
    rules: SessionRules,
    opened: bool,
    joined: BTreeMap<PipelineName, Joined>,
}

impl SessionState {
    /// A session under `rules`, before its hello.
    pub fn new(rules: SessionRules) -> Self {
        SessionState {
            rules,
            ..SessionState::default()
        }
    }

    /// The session's hello arrived (it must be the first message, and the
    /// only hello).
    pub fn hello(&mut self) -> Result<(), SessionError> {
        if std::mem::replace(&mut self.opened, true) {
            return Err(SessionError::SecondHello);
        }
        Ok(())
    }

    /// Any other message: refused before the hello.
    pub fn message(&self) -> Result<(), SessionError> {
        if self.opened {
            Ok(())
        } else {
            Err(SessionError::NotAHello)
        }
    }

    /// Checks that `asked` more gates may be registered.
    pub fn check_attach(&self, asked: usize) -> Result<(), SessionError> {
        if asked == 0 {
            return Err(SessionError::NoGates);
        }
        let carried = self.carried();
        if carried + asked > self.rules.max_gates {
            return Err(SessionError::TooManyGates {
                limit: self.rules.max_gates,
                carried,
                asked,
            });
        }
        Ok(())
    }

    /// `count` gates of `pipeline` were registered; the client holds epoch
    /// `held` of plan `current` (see [`resume`]).
    pub fn joined(
        &mut self,
        pipeline: &PipelineName,
        count: usize,
        held: Epoch,
        current: PlanVersion,
    ) {
        let entry = self.joined.entry(pipeline.clone()).or_insert(Joined {
            gates: 0,
            held: None,
            sent: held.min(current.epoch),
        });
        entry.gates += count;
        if held == current.epoch && entry.held.is_none() {
            // Resumed at the current epoch: nothing to send until it changes.
            entry.held = Some(current);
        }
    }

    /// `count` gates of `pipeline` were removed; returns whether the
    /// session no longer carries the pipeline.
    pub fn detached(
        &mut self,
        pipeline: &PipelineName,
        count: usize,
    ) -> Result<bool, SessionError> {
        let joined = self
            .joined
            .get_mut(pipeline)
            .ok_or_else(|| SessionError::NotOnSession {
                pipeline: pipeline.clone(),
            })?;
        joined.gates = joined.gates.saturating_sub(count);
        if joined.gates == 0 {
            self.joined.remove(pipeline);
            return Ok(true);
        }
        Ok(false)
    }

    /// Checks an acknowledgement of `epoch` of `pipeline`.
    pub fn ack(&self, pipeline: &PipelineName, epoch: Epoch) -> Result<(), SessionError> {
        let joined = self
            .joined
            .get(pipeline)
            .ok_or_else(|| SessionError::AckWithoutGate {
                pipeline: pipeline.clone(),
            })?;
        if epoch > joined.sent {
            return Err(SessionError::AckNeverSent {
                pipeline: pipeline.clone(),
                acked: epoch,
                sent: joined.sent,
            });
        }
        Ok(())
    }

    /// Checks that the session carries `pipeline` (progress, horizon
    /// requests).
    pub fn require(&self, pipeline: &PipelineName) -> Result<(), SessionError> {
        if self.joined.contains_key(pipeline) {
            Ok(())
        } else {
            Err(SessionError::NotOnSession {
                pipeline: pipeline.clone(),
            })
        }
    }

    /// The frame the client needs for plan `offer` of `pipeline`, if any;
    /// the session then counts it as sent and held.
    pub fn send(&mut self, pipeline: &PipelineName, offer: PlanVersion) -> Option<FrameKind> {
        let joined = self.joined.get_mut(pipeline)?;
        let frame = frame_for(joined.held, offer)?;
        let replaced = joined
            .held
            .is_some_and(|h| h.incarnation != offer.incarnation);
        joined.held = Some(offer);
        joined.sent = if replaced {
            offer.epoch
        } else {
            joined.sent.max(offer.epoch)
        };
        Some(frame)
    }

    /// Gates the session carries.
    pub fn carried(&self) -> usize {
        self.joined.values().map(|j| j.gates).sum()
    }

    /// The pipelines the session carries, with their gate counts.
    pub fn pipelines(&self) -> impl Iterator<Item = (&PipelineName, usize)> {
        self.joined.iter().map(|(p, j)| (p, j.gates))
    }

    /// Whether the session carries `pipeline`.
    pub fn carries(&self, pipeline: &PipelineName) -> bool {
        self.joined.contains_key(pipeline)
    }
}

/// The frame a client holding `held` needs for `offer`: none if it holds
/// that epoch, a grant if it holds the same segments, else a snapshot (a
/// plan of another incarnation always gets a snapshot).
pub fn frame_for(held: Option<PlanVersion>, offer: PlanVersion) -> Option<FrameKind> {
    match held {
        Some(h) if h.incarnation != offer.incarnation => Some(FrameKind::Snapshot),
        Some(h) if h.epoch >= offer.epoch => None,
        Some(h) if h.segments_epoch == offer.segments_epoch => Some(FrameKind::Grant),
        _ => Some(FrameKind::Snapshot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(incarnation: u64, epoch: u64, segments: u64) -> PlanVersion {
        PlanVersion {
            incarnation: Incarnation(incarnation),
            epoch: Epoch(epoch),
            segments_epoch: Epoch(segments),
        }
    }

    fn orders() -> PipelineName {
        PipelineName::new("orders").expect("valid")
    }

    #[test]
    fn frames_by_what_the_client_holds() {
        let offer = version(1, 9, 7);
        let cases = [
            ("nothing held", None, Some(FrameKind::Snapshot)),
            ("current", Some(version(1, 9, 7)), None),
            ("ahead (a lagging offer)", Some(version(1, 10, 7)), None),
            (
                "same segments",
                Some(version(1, 8, 7)),
                Some(FrameKind::Grant),
            ),
            (
                "older segments",
                Some(version(1, 6, 6)),
                Some(FrameKind::Snapshot),
            ),
            (
                "another incarnation",
                Some(version(2, 50, 50)),
                Some(FrameKind::Snapshot),
            ),
        ];
        for (name, held, expected) in cases {
            assert_eq!(frame_for(held, offer), expected, "{name}");
        }
    }

    #[test]
    fn the_resume_rule() {
        let current = version(7, 20, 18);
        let cases = [
            (None, Resume::Holds(Epoch(0))),
            (Some((Epoch(20), Incarnation(7))), Resume::Holds(Epoch(20))),
            (Some((Epoch(5), Incarnation(7))), Resume::Holds(Epoch(5))),
            (Some((Epoch(21), Incarnation(7))), Resume::Ahead),
            (Some((Epoch(50), Incarnation(3))), Resume::Holds(Epoch(0))),
        ];
        for (claim, expected) in cases {
            assert_eq!(resume(claim, current), expected, "{claim:?}");
        }
    }

    #[test]
    fn a_session_opens_with_one_hello_and_keeps_its_limits() {
        let mut session = SessionState::new(SessionRules { max_gates: 3 });
        assert_eq!(session.message(), Err(SessionError::NotAHello));
        session.hello().expect("first hello");
        assert_eq!(session.hello(), Err(SessionError::SecondHello));
        assert_eq!(session.check_attach(0), Err(SessionError::NoGates));
        session.check_attach(3).expect("within the limit");
        session.joined(&orders(), 2, Epoch(0), version(1, 4, 4));
        assert_eq!(
            session.check_attach(2),
            Err(SessionError::TooManyGates {
                limit: 3,
                carried: 2,
                asked: 2
            })
        );
    }

    #[test]
    fn acks_follow_what_was_sent() {
        let mut session = SessionState::new(SessionRules::default());
        session.hello().expect("hello");
        let other = PipelineName::new("payments").expect("valid");
        assert_eq!(
            session.ack(&orders(), Epoch(1)),
            Err(SessionError::AckWithoutGate { pipeline: orders() })
        );
        // Resumed at epoch 3 of a pipeline at epoch 5: epoch 3 may be acked
        // (it holds it), 5 only once sent.
        session.joined(&orders(), 1, Epoch(3), version(1, 5, 5));
        session.ack(&orders(), Epoch(3)).expect("held");
        assert!(matches!(
            session.ack(&orders(), Epoch(5)),
            Err(SessionError::AckNeverSent { .. })
        ));
        assert_eq!(
            session.send(&orders(), version(1, 5, 5)),
            Some(FrameKind::Snapshot)
        );
        session.ack(&orders(), Epoch(5)).expect("sent");
        assert_eq!(
            session.send(&orders(), version(1, 5, 5)),
            None,
            "already held"
        );
        assert_eq!(
            session.send(&orders(), version(1, 6, 5)),
            Some(FrameKind::Grant)
        );
        assert_eq!(session.send(&other, version(1, 6, 5)), None, "not carried");
        assert_eq!(
            session.require(&other),
            Err(SessionError::NotOnSession { pipeline: other })
        );
        // A new incarnation: a snapshot, and its epochs start over.
        assert_eq!(
            session.send(&orders(), version(2, 1, 1)),
            Some(FrameKind::Snapshot)
        );
        assert!(matches!(
            session.ack(&orders(), Epoch(6)),
            Err(SessionError::AckNeverSent { .. })
        ));
        session.ack(&orders(), Epoch(1)).expect("sent");
    }

    #[test]
    fn a_resumed_session_is_not_sent_what_it_holds() {
        let mut session = SessionState::new(SessionRules::default());
        session.hello().expect("hello");
        session.joined(&orders(), 2, Epoch(5), version(1, 5, 4));
        assert_eq!(session.send(&orders(), version(1, 5, 4)), None);
        assert_eq!(
            session.send(&orders(), version(1, 6, 4)),
            Some(FrameKind::Grant)
        );
        assert_eq!(session.detached(&orders(), 1), Ok(false));
        assert_eq!(session.detached(&orders(), 1), Ok(true));
        assert!(!session.carries(&orders()));
    }
}
