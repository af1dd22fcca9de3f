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
