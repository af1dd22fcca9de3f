//! Writes the seed inputs of every target's corpus (`fuzz/corpus/<target>/`
//! under this crate): real messages and documents of a pipeline before,
//! during and after a transition. Run again when a message or the document
//! format changes: `cargo run -p cutover-fuzzing --example seed_corpus`.

use std::path::{Path, PathBuf};

use cutover_coordinator::store::views;
use cutover_core::fleet::{CoordinatorId, ServingReport};
use cutover_core::{
    Colour, Epoch, GateIdentity, GateProgress, HorizonPolicy, Incarnation, Key, PipelineDoc,
    PipelineName, PipelineState, ScheduleRequest, SessionId, UnknownFields,
};
use cutover_proto::convert::{gate_identity_to, gate_ref_to, plan_to, progress_to};
use cutover_proto::v1;
use cutover_proto::v1::client_message::Kind;
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let name = PipelineName::new("orders")?;
    let gate = GateIdentity {
        pipeline: name.clone(),
        colour: Colour::Green,
        job_id: "green-job".into(),
        gate_uid: "gate".into(),
        subtask_index: 0,
        parallelism: 2,
        attempt: 0,
    };
    let progress = GateProgress {
        watermark: Key(1_500),
        max_key: Key(1_700),
        emitted: 10,
        dropped: 2,
        held: 1,
        idle: false,
        finished: false,
        lowest_held: Some(Key(2_600)),
        checkpointed: Some(Key(1_000)),
    };
    let docs = documents(&name, &gate, progress)?;

    let client = root.join("client_message");
    let messages = [
        Kind::Hello(v1::Hello {
            client_name: "seed".into(),
            gates: vec![gate_identity_to(&gate)],
            ..v1::Hello::default()
        }),
        Kind::Attach(v1::AttachGates {
            gates: vec![gate_identity_to(&gate)],
            ..v1::AttachGates::default()
        }),
        Kind::Detach(v1::DetachGates {
            gates: vec![gate_ref_to(&name, &gate.key())],
        }),
        Kind::Ack(v1::Ack {
            pipeline: name.to_string(),
            epoch: 3,
        }),
        Kind::Progress(v1::Progress {
            gates: vec![progress_to(&name, &gate.key(), &progress)],
        }),
        Kind::HorizonRequest(v1::HorizonRequest {
            gate: Some(gate_ref_to(&name, &gate.key())),
            key: 2_600,
            watermark: 1_500,
        }),
    ];
    for (i, kind) in messages.into_iter().enumerate() {
        let message = v1::ClientMessage { kind: Some(kind) };
        write(&client, &format!("seed-{i}"), &message.encode_to_vec())?;
    }

    let server = root.join("server_message");
    for (i, doc) in docs.iter().enumerate() {
        let snapshot = v1::ServerMessage {
            kind: Some(v1::server_message::Kind::Snapshot(v1::PlanSnapshot {
                pipeline: name.to_string(),
                plan: Some(plan_to(&doc.plan)),
            })),
        };
        write(&server, &format!("snapshot-{i}"), &snapshot.encode_to_vec())?;
        let grant = v1::ServerMessage {
            kind: Some(v1::server_message::Kind::HorizonGrant(v1::HorizonGrant {
                pipeline: name.to_string(),
                epoch: doc.epoch().0 + 1,
                horizon: doc.horizon().0 + 1_000,
                segments_epoch: doc.epoch().0,
                incarnation: doc.incarnation().0,
            })),
        };
        write(&server, &format!("grant-{i}"), &grant.encode_to_vec())?;
    }

    let stored = root.join("stored_document");
    for (i, doc) in docs.iter().enumerate() {
        let envelope = serde_json::json!({ "revision": i + 1, "document": doc });
        write(
            &stored,
            &format!("file-{i}"),
            &with_tag(0, &serde_json::to_vec(&envelope)?),
        )?;
        write(
            &stored,
            &format!("etcd-{i}"),
            &with_tag(1, &serde_json::to_vec(doc)?),
        )?;
        let mut data = views(doc);
        data.insert("document".into(), serde_json::to_string(doc)?);
        write(
            &stored,
            &format!("configmap-{i}"),
            &with_tag(2, &serde_json::to_vec(&data)?),
        )?;
    }
    let mut core = PipelineState::new(docs[0].clone());
    core.attach(SessionId(1), std::slice::from_ref(&gate), Epoch(0))?;
    core.progress(SessionId(1), &gate.key(), progress)?;
    let report = ServingReport {
        coordinator: CoordinatorId::new("coordinator-a")?,
        pipeline: name.clone(),
        incarnation: docs[0].incarnation(),
        sequence: 4,
        gates: core.ledger().reported_gates(),
        unknown: UnknownFields::new(),
    };
    write(
        &stored,
        "report-0",
        &with_tag(3, &serde_json::to_vec(&report)?),
    )?;

    let sequences = root.join("core_sequence");
    // Attach two gates per colour, report progress, schedule, run the
    // driver, promote, complete: written as the target reads its input.
    let scripted: Vec<u8> = vec![
        1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 4, 0, 1, 0, 0,
        0, 0, 0, 8, 0, 5, 5, 0, 0, 0, 1, 0, 0, 0, 0, 6, 0, 1, 0, 0, 0, 0, 11, 0, 11, 0, 8, 0, 11,
        0, 9, 0, 11,
    ];
    write(&sequences, "scripted", &scripted)?;
    for (i, len) in [16usize, 64, 256, 1024].into_iter().enumerate() {
        let bytes: Vec<u8> = (0..len).map(|j| (j * 31 + i * 7) as u8).collect();
        write(&sequences, &format!("pattern-{i}"), &bytes)?;
    }
    Ok(())
}

/// Documents of `name`: created, with a transition scheduled, and after
/// the horizon moved past it.
fn documents(
    name: &PipelineName,
    gate: &GateIdentity,
    progress: GateProgress,
) -> Result<Vec<PipelineDoc>, Box<dyn std::error::Error>> {
    let created = PipelineDoc::new(
        name.clone(),
        Colour::Blue,
        HorizonPolicy::with_window(1_000),
        Incarnation(42),
    );
    let mut core = PipelineState::new(created.clone());
    let blue = GateIdentity {
        colour: Colour::Blue,
        job_id: "blue-job".into(),
        ..gate.clone()
    };
    core.attach(SessionId(1), &[blue.clone(), gate.clone()], Epoch(0))?;
    core.progress(SessionId(1), &blue.key(), progress)?;
    core.progress(SessionId(1), &gate.key(), progress)?;
    let mut docs = vec![created];
    let moved = core.propose_automatic().ok_or("the horizon did not move")?;
    core.install(moved.clone())?;
    docs.push(moved);
    let scheduled = core.propose_schedule(ScheduleRequest::earliest(Colour::Green))?;
    core.install(scheduled.clone())?;
    docs.push(scheduled);
    let later = GateProgress {
        watermark: Key(9_000),
        lowest_held: None,
        held: 0,
        checkpointed: Some(Key(8_000)),
        ..progress
    };
    core.progress(SessionId(1), &blue.key(), later)?;
    core.progress(SessionId(1), &gate.key(), later)?;
    while let Some(next) = core.propose_automatic() {
        core.install(next.clone())?;
        docs.push(next);
        if docs.len() > 6 {
            break;
        }
    }
    Ok(docs)
}

fn with_tag(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut tagged = vec![tag];
    tagged.extend_from_slice(bytes);
    tagged
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}
