//! Table tests of several coordinators serving one pipeline (`src/fleet.rs`):
//! two or three `PipelineState`s stand for coordinators sharing one store
//! (every document is installed in each); each publishes its report and
//! folds in the others'. DRAINED comes by coverage of every subtask across
//! them, a stale report never outweighs a newer attempt, the horizon and
//! the status follow the whole fleet, and reports are rewritten only when
//! what the others decide on changed.

mod support;

use Colour::*;
use cutover_core::fleet::{CoordinatorId, Liveness, ReportDigest, ServingReport};
use cutover_core::*;
use support::*;

fn id(name: &str) -> CoordinatorId {
    CoordinatorId::new(name).expect("valid id")
}

/// A coordinator: its state and its report sequence.
struct Coordinator {
    id: CoordinatorId,
    state: PipelineState,
    sequence: u64,
}

impl Coordinator {
    fn new(name: &str, doc: &PipelineDoc) -> Self {
        Coordinator {
            id: id(name),
            state: PipelineState::new(doc.clone()),
            sequence: 0,
        }
    }

    fn report(&mut self) -> ServingReport {
        self.sequence += 1;
        self.state.own_report(self.id.clone(), self.sequence)
    }

    fn attach(&mut self, gate: &GateIdentity) {
        self.state
            .attach(SessionId(1), std::slice::from_ref(gate), Epoch(0))
            .expect("attach");
    }

    fn at(&mut self, gate: &GateIdentity, watermark: i64) {
        self.state
            .progress(SessionId(1), &gate.key(), progress(watermark))
            .expect("progress");
    }
}

/// Proposes on `deciding` and installs the result everywhere.
fn automatic(deciding: usize, fleet: &mut [&mut Coordinator]) -> Option<PipelineDoc> {
    let doc = fleet[deciding].state.propose_automatic()?;
    for c in fleet.iter_mut() {
        c.state.install(doc.clone()).expect("install");
    }
    Some(doc)
}

/// Schedules BLUE at EARLIEST on `fleet[0]`, installs it everywhere.
fn schedule_blue(fleet: &mut [&mut Coordinator]) -> Key {
    let doc = fleet[0]
        .state
        .propose_schedule(schedule(Blue, CutoverAt::Earliest))
        .expect("schedule");
    for c in fleet.iter_mut() {
        c.state.install(doc.clone()).expect("install");
    }
    doc.transition.expect("a transition").at
}

/// GREEN's operator of parallelism 2: subtask 0 served by A, subtask 1 by B;
/// the horizon raised from both at 1000; a cutover to BLUE scheduled.
fn two_coordinators() -> (Coordinator, Coordinator, [GateIdentity; 2], Key) {
    let doc = new_doc(Green, 100);
    let (mut a, mut b) = (Coordinator::new("a", &doc), Coordinator::new("b", &doc));
    let gates = [gate(Green, 0, 2), gate(Green, 1, 2)];
    a.attach(&gates[0]);
    b.attach(&gates[1]);
    a.at(&gates[0], 1000);
    b.at(&gates[1], 1000);
    let report = b.report();
    a.state.set_reports(vec![report]);
    automatic(0, &mut [&mut a, &mut b]).expect("a first horizon");
    let at = schedule_blue(&mut [&mut a, &mut b]);
    (a, b, gates, at)
}

#[test]
fn drained_comes_when_the_reports_cover_every_subtask_past_the_mark() {
    let (mut a, mut b, gates, at) = two_coordinators();
    assert_eq!(at, Key(1100));
    a.at(&gates[0], 1200);
    assert!(
        automatic(0, &mut [&mut a, &mut b]).is_none(),
        "B's subtask holds the horizon at the cutover, and is not drained"
    );

    // B's subtask passes; until A reads B's new report it knows nothing.
    b.at(&gates[1], 1200);
    assert!(automatic(0, &mut [&mut a, &mut b]).is_none_or(|d| d.phase() != Some(Phase::Drained)));
    let report = b.report();
    a.state.set_reports(vec![report]);
    let doc = automatic(0, &mut [&mut a, &mut b]).expect("drained");
    assert_eq!(doc.phase(), Some(Phase::Drained));

    // Without B's report, A alone never sees subtask 1.
    let (mut a, mut b, gates, _) = two_coordinators();
    a.at(&gates[0], 1200);
    b.at(&gates[1], 1200);
    a.state.set_reports(Vec::new());
    for _ in 0..3 {
        if let Some(doc) = automatic(0, &mut [&mut a, &mut b]) {
            assert_ne!(doc.phase(), Some(Phase::Drained));
        }
    }
}

#[test]
fn a_stale_report_never_outweighs_a_newer_attempt() {
    let (mut a, mut b, gates, _) = two_coordinators();
    a.at(&gates[0], 1200);
    b.at(&gates[1], 1200);
    // B's report says subtask 1 is past the mark...
    let stale = b.report();
    // ...but its task failed over: attempt 1 connected to A, restored
    // behind the mark.
    let restarted = GateIdentity {
        attempt: 1,
        ..gates[1].clone()
    };
    a.attach(&restarted);
    a.at(&restarted, 1050);
    a.state.set_reports(vec![stale.clone()]);
    for _ in 0..3 {
        if let Some(doc) = automatic(0, &mut [&mut a, &mut b]) {
            assert_ne!(doc.phase(), Some(Phase::Drained), "attempt 1 is behind");
        }
    }

    // A third coordinator deciding: B's stale claim (attempt 0, connected,
    // past) and A's newer one (attempt 1, behind). The newer attempt counts.
    let doc = a.state.doc().clone();
    let mut c = Coordinator::new("c", &doc);
    let newer = a.report();
    c.state.set_reports(vec![stale, newer]);
    let status = c.state.status();
    assert_eq!(status.green.expected, 2);
    assert_eq!(status.green.connected, 2, "each subtask once");
    assert!(
        c.state
            .propose_automatic()
            .is_none_or(|d| d.phase() != Some(Phase::Drained))
    );
}

#[test]
fn a_newer_attempt_counts_even_disconnected_and_connected_wins_across_jobs() {
    let (mut a, mut b, gates, _) = two_coordinators();
    b.at(&gates[1], 1200);
    a.at(&gates[0], 1200);
    let old = b.report();
    // Attempt 1 of subtask 1 went through coordinator C and left.
    let doc = a.state.doc().clone();
    let mut c = Coordinator::new("c", &doc);
    let restarted = GateIdentity {
        attempt: 1,
        ..gates[1].clone()
    };
    c.attach(&restarted);
    c.at(&restarted, 1050);
    c.state.close_session(SessionId(1));
    let left = c.report();
    a.state.set_reports(vec![old.clone(), left]);
    assert_eq!(
        a.state.status().green.connected,
        1,
        "attempt 1 is not connected"
    );
    assert!(automatic(0, &mut [&mut a, &mut b]).is_none_or(|d| d.phase() != Some(Phase::Drained)));

    // Another job of GREEN connected elsewhere beats a disconnected claim.
    let mut d = Coordinator::new("d", &doc);
    let other_job = GateIdentity {
        job_id: "green-job-2".into(),
        ..gates[1].clone()
    };
    d.attach(&other_job);
    let mut e = Coordinator::new("e", &doc);
    e.attach(&gates[1]);
    e.state.close_session(SessionId(1));
    let mut f = Coordinator::new("f", &doc);
    f.state.set_reports(vec![e.report(), d.report()]);
    let gate = f.state.view().gate(&gates[1].key()).expect("known");
    assert_eq!(gate.identity.job_id, "green-job-2");
    assert!(gate.session.is_some());
}

#[test]
fn the_horizon_and_the_status_follow_the_whole_fleet() {
    let doc = new_doc(Green, 100);
    let (mut a, mut b) = (Coordinator::new("a", &doc), Coordinator::new("b", &doc));
    let gates = [gate(Green, 0, 2), gate(Green, 1, 2)];
    a.attach(&gates[0]);
    b.attach(&gates[1]);
    a.at(&gates[0], 5000);
    b.at(&gates[1], 1000);
    // Alone, A follows its own subtask.
    let alone = a.state.propose_automatic().expect("a horizon");
    assert_eq!(alone.horizon(), Key(5100));
    // With B's report, the job's slowest subtask is B's.
    let report = b.report();
    a.state.set_reports(vec![report]);
    let fleet = a.state.propose_automatic().expect("a horizon");
    assert_eq!(fleet.horizon(), Key(1100));
    let status = a.state.status();
    assert_eq!(
        (status.green.expected, status.green.connected),
        (2, 2),
        "both coordinators' gates"
    );
    assert_eq!(status.green.lowest_watermark, Key(1000));
    assert_eq!(status.green.highest_watermark, Key(5000));
}

#[test]
fn reports_of_another_incarnation_or_pipeline_are_ignored() {
    let doc = new_doc(Green, 100);
    let mut a = Coordinator::new("a", &doc);
    let mut b = Coordinator::new("b", &doc);
    b.attach(&gate(Green, 0, 1));
    let mut report = b.report();
    report.incarnation = Incarnation(2);
    a.state.set_reports(vec![report.clone()]);
    assert_eq!(a.state.status().green.connected, 0);
    assert!(a.state.reports().is_empty());
    report.incarnation = Incarnation(1);
    report.pipeline = PipelineName::new("payments").expect("valid");
    a.state.set_reports(vec![report]);
    assert_eq!(a.state.status().green.connected, 0);
}

#[test]
fn a_report_is_rewritten_only_when_what_the_others_decide_on_changed() {
    let doc = new_doc(Green, 100);
    let mut a = Coordinator::new("a", &doc);
    let gates = [gate(Green, 0, 2), gate(Green, 1, 2)];
    a.attach(&gates[0]);
    a.at(&gates[0], 1000);
    let digest = |a: &Coordinator| a.state.report_digest();
    let first = digest(&a);
    // Moving within a half-window step: nothing to tell.
    a.at(&gates[0], 1020);
    assert_eq!(digest(&a), first);
    // Crossing a half-window mark (steps of 50): tell.
    a.at(&gates[0], 1060);
    let crossed = digest(&a);
    assert_ne!(crossed, first);
    // Counters alone never.
    let mut busy = progress(1060);
    busy.emitted = 1_000_000;
    a.state
        .progress(SessionId(1), &gates[0].key(), busy)
        .expect("progress");
    assert_eq!(digest(&a), crossed);
    // Coverage: a new gate, a gate leaving.
    a.attach(&gates[1]);
    let covered = digest(&a);
    assert_ne!(covered, crossed);
    a.state.close_session(SessionId(1));
    assert_ne!(digest(&a), covered);
    assert_eq!(ReportDigest::default(), ReportDigest::default());
}

#[test]
fn a_coordinator_is_live_while_its_renewals_are_seen_changing() {
    let mut live = Liveness::new(1_000);
    let b = id("b");
    live.observe(&b, 7, 0);
    assert!(
        !live.is_live(&b, 0),
        "seen once: maybe a crashed one's record"
    );
    live.observe(&b, 7, 500);
    assert!(!live.is_live(&b, 500));
    live.observe(&b, 8, 600);
    assert!(live.is_live(&b, 600));
    assert!(live.is_live(&b, 1_600));
    assert!(
        !live.is_live(&b, 1_601),
        "no renewal within the time to live"
    );
    assert_eq!(live.age(&b, 1_601), Some(1_001));
    live.observe(&b, 9, 2_000);
    assert!(live.is_live(&b, 2_000), "renewed again");
    live.forget(&b);
    assert!(!live.is_live(&b, 2_000));
    assert!(!live.is_live(&id("never-seen"), 0));
}

#[test]
fn coordinator_ids_are_safe_as_file_names_keys_and_labels() {
    for good in ["a", "cutover-0.cutover", "host_1-ab12"] {
        assert!(CoordinatorId::new(good).is_ok(), "{good}");
    }
    let long = "x".repeat(129);
    for bad in ["", ".hidden", "a/b", "a b", "ä", long.as_str()] {
        assert!(
            matches!(
                CoordinatorId::new(bad),
                Err(CoreError::InvalidCoordinatorId { .. })
            ),
            "{bad:?}"
        );
    }
    let report: Result<ServingReport, _> = serde_json::from_str(
        r#"{"coordinator":"../x","pipeline":"orders","incarnation":1,"sequence":1,"gates":[]}"#,
    );
    assert!(report.is_err(), "a report naming a bad id does not read");
}
