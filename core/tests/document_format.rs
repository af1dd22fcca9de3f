//! The stored document's JSON: documents written before a field existed
//! still load, and the recorded gate operators read as intended.

mod support;

use Colour::*;
use cutover_core::*;
use support::*;

#[test]
fn a_document_without_recorded_operators_loads_with_none() {
    let mut json = serde_json::to_value(new_doc(Green, 100)).expect("serialise");
    let fields = json.as_object_mut().expect("an object");
    fields.remove("operators").expect("written by this version");
    let doc: PipelineDoc = serde_json::from_value(json).expect("an older document loads");
    doc.validate().expect("and is valid");
    assert_eq!(doc.operators, GateOperators::default());
}

#[test]
fn recorded_operators_are_stored_per_colour_by_uid() {
    let mut state = running_pipeline(1000);
    let doc = apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });
    let json = serde_json::to_value(&doc).expect("serialise");
    assert_eq!(json["operators"], serde_json::json!({"GREEN": {"gate": 1}}));
    let back: PipelineDoc = serde_json::from_value(json).expect("deserialise");
    assert_eq!(back, doc);
}

#[test]
fn fields_a_newer_version_wrote_survive_every_proposal() {
    // A newer coordinator's document, with fields this version does not
    // know at every level it keeps them.
    let mut state = running_pipeline(1000);
    let scheduled = apply(&mut state, |s| {
        s.propose_schedule(schedule(Blue, CutoverAt::Earliest))
    });
    let mut json = serde_json::to_value(&scheduled).expect("serialise");
    json["rollout_policy"] = serde_json::json!({"canary": 0.1});
    json["plan"]["retired_above"] = serde_json::json!(7);
    json["transition"]["reason"] = serde_json::json!("upgrade to 1.4");
    let newer: PipelineDoc = serde_json::from_value(json).expect("a newer document loads");
    let mut state = PipelineState::new(newer);
    let next = state.propose_abort().expect("abort");
    state.install(next.clone()).expect("install");
    let written = serde_json::to_value(&next).expect("serialise");
    assert_eq!(written["rollout_policy"]["canary"], 0.1);
    assert_eq!(written["plan"]["retired_above"], 7);
    assert_eq!(written["transition"]["reason"], "upgrade to 1.4");
    assert_eq!(written["transition"]["state"], "ABORTED");

    // A segment or horizon policy with an unknown field cannot be carried
    // along: the document is refused (never overwritten by the store).
    let mut json = serde_json::to_value(&next).expect("serialise");
    json["plan"]["timeline"][0]["weight"] = serde_json::json!(1);
    assert!(serde_json::from_value::<PipelineDoc>(json).is_err());
    let mut json = serde_json::to_value(&next).expect("serialise");
    json["policy"]["jitter"] = serde_json::json!(1);
    assert!(serde_json::from_value::<PipelineDoc>(json).is_err());
}
