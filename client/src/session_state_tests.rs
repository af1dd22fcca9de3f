//! The session loop's decisions, without a network: what a new session
//! says, what a plan change leads to, what a held record sends and when,
//! what gate changes and a close send.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_core::{Colour, Decision, Epoch, GateIdentity, Incarnation, Key, PipelineName, Plan};
use cutover_proto::convert::plan_to;
use cutover_proto::v1::{self, client_message::Kind, server_message};

use super::{Resync, SessionState, Turn};
use crate::config::ClientConfig;
use crate::gate::Gate;
use crate::shared::Shared;

const INTERVAL: Duration = Duration::from_millis(100);

fn shared() -> Arc<Shared> {
    Arc::new(Shared::new(
        ClientConfig::new("http://127.0.0.1:1")
            .client_name("tm-1")
            .progress_interval(INTERVAL),
    ))
}

fn identity(pipeline: &str, colour: Colour, subtask: u32) -> GateIdentity {
    GateIdentity {
        pipeline: PipelineName::new(pipeline).expect("valid"),
        colour,
        job_id: format!("{colour:?}-job"),
        gate_uid: "gate".into(),
        subtask_index: subtask,
        parallelism: 4,
        attempt: 0,
    }
}

fn gate(shared: &Arc<Shared>, pipeline: &str, colour: Colour, subtask: u32) -> Gate {
    let (slot, published) = shared
        .register(identity(pipeline, colour, subtask))
        .expect("registers");
    Gate::new(shared.clone(), slot, published)
}

fn plan(epoch: u64, horizon: i64) -> Plan {
    Plan {
        epoch: Epoch(epoch),
        horizon: Key(horizon),
        ..Plan::new(Colour::Green, Incarnation(1))
    }
}

fn snapshot(pipeline: &str, plan: &Plan) -> v1::ServerMessage {
    v1::ServerMessage {
        kind: Some(server_message::Kind::Snapshot(v1::PlanSnapshot {
            pipeline: pipeline.into(),
            plan: Some(plan_to(plan)),
        })),
    }
}

fn grant(pipeline: &str, epoch: u64, horizon: i64, segments_epoch: u64) -> v1::ServerMessage {
    v1::ServerMessage {
        kind: Some(server_message::Kind::HorizonGrant(v1::HorizonGrant {
            pipeline: pipeline.into(),
            epoch,
            horizon,
            segments_epoch,
            incarnation: 1,
        })),
    }
}

/// The kinds of a turn's messages, by name, with their gate counts.
fn kinds(turn: &Turn) -> Vec<String> {
    turn.send
        .iter()
        .map(|m| match m.kind.as_ref().expect("a kind") {
            Kind::Hello(h) => format!("hello {}", h.gates.len()),
            Kind::Attach(a) => format!("attach {}", a.gates.len()),
            Kind::Detach(d) => format!("detach {}", d.gates.len()),
            Kind::Progress(p) => format!("progress {}", p.gates.len()),
            Kind::Ack(a) => format!("ack {}", a.epoch),
            Kind::HorizonRequest(r) => format!("horizon request {}", r.key),
        })
        .collect()
}

fn progress(turn: &Turn) -> Vec<v1::GateProgress> {
    turn.send
        .iter()
        .filter_map(|m| match &m.kind {
            Some(Kind::Progress(p)) => Some(p.gates.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn a_new_session_announces_every_gate_and_the_epochs_held_then_reports_them_at_once() {
    let shared = shared();
    let _a = gate(&shared, "orders", Colour::Green, 0);
    let _b = gate(&shared, "orders", Colour::Green, 1);
    let _c = gate(&shared, "payments", Colour::Blue, 0);
    shared
        .slot(&PipelineName::new("orders").expect("valid"))
        .install(Arc::new(plan(7, 500)));

    let now = Instant::now();
    let (mut state, hello) = SessionState::open(&shared, now);
    let Some(Kind::Hello(hello)) = hello.kind else {
        panic!("a hello first");
    };
    assert_eq!(hello.client_name, "tm-1");
    assert_eq!(hello.gates.len(), 3);
    let held: Vec<(String, u64, u64)> = hello
        .held
        .iter()
        .map(|h| (h.pipeline.clone(), h.epoch, h.incarnation))
        .collect();
    assert_eq!(
        held,
        [("orders".to_string(), 7, 1)],
        "resumes from the held epoch"
    );

    // The attaches queued by the registrations are covered by the hello.
    let first = state.turn(&shared, now);
    assert_eq!(kinds(&first), ["progress 3"], "every gate reports at once");
    assert_eq!(state.deadline(), None);
    assert_eq!(state.turn(&shared, now), Turn::default(), "then nothing");
}

#[test]
fn progress_goes_out_at_most_once_per_interval_and_only_for_changed_gates() {
    let shared = shared();
    let mut a = gate(&shared, "orders", Colour::Green, 0);
    let _b = gate(&shared, "orders", Colour::Green, 1);
    let start = Instant::now();
    let (mut state, _) = SessionState::open(&shared, start);
    assert_eq!(kinds(&state.turn(&shared, start)), ["progress 2"]);

    // Two changes soon after the report: one report, one interval later.
    a.observe_watermark(Key(10));
    let soon = start + INTERVAL / 4;
    assert_eq!(state.turn(&shared, soon), Turn::default());
    assert_eq!(state.deadline(), Some(start + INTERVAL));
    a.observe_watermark(Key(20));
    assert_eq!(state.turn(&shared, soon), Turn::default());
    let due = state.turn(&shared, start + INTERVAL);
    assert_eq!(kinds(&due), ["progress 1"], "only the changed gate");
    assert_eq!(progress(&due)[0].watermark, 20, "its latest watermark");

    // An idle client sends nothing and sets no deadline.
    assert_eq!(state.turn(&shared, start + INTERVAL * 5), Turn::default());
    assert_eq!(state.deadline(), None);
    // After a quiet spell a change is reported at once.
    a.observe_watermark(Key(30));
    let later = start + INTERVAL * 5;
    assert_eq!(kinds(&state.turn(&shared, later)), ["progress 1"]);
}

#[test]
fn a_plan_change_is_installed_then_acknowledged() {
    let shared = shared();
    let g = gate(&shared, "orders", Colour::Green, 0);
    let (state, _) = SessionState::open(&shared, Instant::now());
    assert_eq!(g.peek(Key(5)), Decision::Hold, "no plan yet");

    let ack = state
        .on_frame(&shared, snapshot("orders", &plan(2, 100)))
        .expect("valid");
    assert!(matches!(ack.and_then(|m| m.kind), Some(Kind::Ack(a)) if a.epoch == 2));
    assert_eq!(g.peek(Key(5)), Decision::Emit, "installed before the ack");

    // A grant on the segments held moves the horizon, and is acked.
    let ack = state
        .on_frame(&shared, grant("orders", 3, 200, 2))
        .expect("valid");
    assert!(matches!(ack.and_then(|m| m.kind), Some(Kind::Ack(a)) if a.epoch == 3));
    assert_eq!(g.peek(Key(150)), Decision::Emit);

    // The same epoch again: nothing.
    let again = state
        .on_frame(&shared, grant("orders", 3, 200, 2))
        .expect("valid");
    assert!(again.is_none());
    // A grant for segments not held, an older snapshot, or a plan that does
    // not parse: resynchronise, keeping the plan.
    assert_eq!(
        state.on_frame(&shared, grant("orders", 9, 900, 8)),
        Err(Resync)
    );
    assert_eq!(
        state.on_frame(&shared, snapshot("orders", &plan(1, 50))),
        Err(Resync)
    );
    let mut broken = plan_to(&plan(10, 1_000));
    broken.segments.clear();
    let invalid = v1::ServerMessage {
        kind: Some(server_message::Kind::Snapshot(v1::PlanSnapshot {
            pipeline: "orders".into(),
            plan: Some(broken),
        })),
    };
    assert_eq!(state.on_frame(&shared, invalid), Err(Resync));
    assert_eq!(g.plan().map(|p| p.epoch), Some(Epoch(3)));
}

#[test]
fn a_plan_for_a_pipeline_without_a_gate_on_the_session_is_installed_but_not_acked() {
    let shared = shared();
    // A waiter asked for `payments` (it has a slot), no gate of it is on
    // the session.
    let payments = PipelineName::new("payments").expect("valid");
    let slot = shared.slot(&payments);
    let (state, _) = SessionState::open(&shared, Instant::now());
    let ack = state
        .on_frame(&shared, snapshot("payments", &plan(4, 10)))
        .expect("valid");
    assert!(ack.is_none());
    assert_eq!(slot.plan.load().as_ref().map(|p| p.epoch), Some(Epoch(4)));
    // A pipeline nobody asked for is ignored.
    let none = state
        .on_frame(&shared, snapshot("unknown", &plan(1, 10)))
        .expect("valid");
    assert!(none.is_none());
    assert!(
        shared
            .existing_slot(&PipelineName::new("unknown").expect("valid"))
            .is_none()
    );
}

#[test]
fn a_held_record_reports_and_asks_for_the_horizon_at_once() {
    let shared = shared();
    let mut g = gate(&shared, "orders", Colour::Green, 0);
    let _quiet = gate(&shared, "orders", Colour::Green, 1);
    let start = Instant::now();
    let (mut state, _) = SessionState::open(&shared, start);
    state.turn(&shared, start);
    state
        .on_frame(&shared, snapshot("orders", &plan(2, 100)))
        .expect("valid");

    g.observe_watermark(Key(90));
    assert_eq!(g.decide(Key(150)), Decision::Hold);
    // Well within the interval: the urgent report does not wait.
    let turn = state.turn(&shared, start + INTERVAL / 10);
    assert_eq!(kinds(&turn), ["progress 1", "horizon request 150"]);
    let report = &progress(&turn)[0];
    assert_eq!((report.watermark, report.lowest_held_key), (90, Some(150)));
    let Some(Kind::HorizonRequest(request)) = &turn.send[1].kind else {
        panic!("a horizon request");
    };
    assert_eq!(request.watermark, 90);
}

#[test]
fn gate_changes_are_told_once_and_a_detached_gate_is_never_reported() {
    let shared = shared();
    let start = Instant::now();
    let a = gate(&shared, "orders", Colour::Green, 0);
    let (mut state, _) = SessionState::open(&shared, start);
    state.turn(&shared, start);

    let b = gate(&shared, "orders", Colour::Green, 1);
    let turn = state.turn(&shared, start + INTERVAL * 2);
    assert_eq!(
        kinds(&turn),
        ["attach 1", "progress 1"],
        "a new gate is attached, then reports"
    );
    // Registered and dropped before a turn: attached, then detached, in
    // order; the dropped gate's last change is not reported.
    let c = gate(&shared, "orders", Colour::Green, 2);
    drop(c);
    drop(a);
    let turn = state.turn(&shared, start + INTERVAL * 4);
    assert_eq!(kinds(&turn), ["attach 1", "detach 1", "detach 1"]);
    drop(b);
    let turn = state.turn(&shared, start + INTERVAL * 6);
    assert_eq!(kinds(&turn), ["detach 1"]);
}

#[test]
fn closing_sends_a_last_report_of_every_gate_and_ends_the_session() {
    let shared = shared();
    let start = Instant::now();
    let mut g = gate(&shared, "orders", Colour::Green, 0);
    let _h = gate(&shared, "orders", Colour::Blue, 0);
    let (mut state, _) = SessionState::open(&shared, start);
    state.turn(&shared, start);
    g.observe_watermark(Key(42));
    shared.stop();
    let turn = state.turn(&shared, start + INTERVAL / 10);
    assert!(turn.close);
    assert_eq!(kinds(&turn), ["progress 2"], "every gate, changed or not");
    assert!(progress(&turn).iter().any(|p| p.watermark == 42));
    assert!(
        shared
            .register(identity("orders", Colour::Green, 3))
            .is_err(),
        "a closing client registers no gate"
    );
}
