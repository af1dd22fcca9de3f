//! Gate session frames, both ways.

use cutover_client::apply::{Applied, Frame, apply};
use cutover_core::{Epoch, Incarnation, Key};
use cutover_proto::convert::{
    gate_identity_from, gate_identity_to, gate_ref_from, pipeline_from, plan_from, plan_to,
    progress_from,
};
use cutover_proto::v1;
use cutover_proto::v1::client_message::Kind;
use cutover_proto::v1::server_message::Kind as ServerKind;
use prost::Message;

/// A gate's message as the coordinator decodes it (the frame codec is
/// prost's decoding of `ClientMessage`), then every part converted as a
/// session converts it. What converts must convert back unchanged.
pub fn client_message(data: &[u8]) {
    let Ok(message) = v1::ClientMessage::decode(data) else {
        return;
    };
    match message.kind {
        Some(Kind::Hello(hello)) => gates(&hello.gates),
        Some(Kind::Attach(attach)) => gates(&attach.gates),
        Some(Kind::Detach(detach)) => {
            for gate in &detach.gates {
                let _ = gate_ref_from(Some(gate));
            }
        }
        Some(Kind::Progress(progress)) => {
            for gate in &progress.gates {
                let _ = gate_ref_from(gate.gate.as_ref());
                let _ = progress_from(gate);
            }
        }
        Some(Kind::HorizonRequest(request)) => {
            let _ = gate_ref_from(request.gate.as_ref());
        }
        Some(Kind::Ack(ack)) => {
            let _ = pipeline_from(&ack.pipeline);
        }
        None => {}
    }
}

fn gates(gates: &[v1::GateIdentity]) {
    for gate in gates {
        if let Ok(identity) = gate_identity_from(gate) {
            let again = gate_identity_from(&gate_identity_to(&identity));
            assert_eq!(again.as_ref(), Ok(&identity), "a gate identity round-trips");
        }
    }
}

/// A frame as a client decodes it, applied to a plan it might hold: a
/// snapshot that converts is valid and round-trips; applying never
/// installs an older plan of the same incarnation.
pub fn server_message(data: &[u8]) {
    let Ok(message) = v1::ServerMessage::decode(data) else {
        return;
    };
    let frame = match message.kind {
        Some(ServerKind::Snapshot(snapshot)) => {
            let _ = pipeline_from(&snapshot.pipeline);
            let Some(Ok(plan)) = snapshot.plan.as_ref().map(plan_from) else {
                return;
            };
            let again = plan_from(&plan_to(&plan));
            assert_eq!(again.as_ref(), Ok(&plan), "a plan round-trips");
            Frame::Snapshot(plan)
        }
        Some(ServerKind::HorizonGrant(grant)) => Frame::Grant {
            epoch: Epoch(grant.epoch),
            horizon: Key(grant.horizon),
            segments_epoch: Epoch(grant.segments_epoch),
            incarnation: Incarnation(grant.incarnation),
        },
        None => return,
    };
    let is_grant = matches!(frame, Frame::Grant { .. });
    let held = cutover_core::Plan::new(cutover_core::Colour::Blue, Incarnation(7));
    for holding in [None, Some(&held)] {
        if let Applied::Install(plan) = apply(holding, frame.clone())
            && let Some(held) = holding
            && held.incarnation == plan.incarnation
        {
            assert!(plan.epoch > held.epoch, "an older or equal epoch installed");
            if is_grant {
                assert!(plan.horizon >= held.horizon, "a grant lowered the horizon");
                assert_eq!(plan.timeline, held.timeline, "a grant changed the segments");
            }
        }
    }
}
