//! Stored documents as each store reads them, and fleet serving reports.
//! Whatever a store accepts is a valid document of the pipeline asked
//! for, and a coordinator's core installs it.

use std::collections::BTreeMap;

use cutover_coordinator::store::{decode_config_map, decode_etcd_value, decode_file_document};
use cutover_core::fleet::ServingReport;
use cutover_core::{Colour, HorizonPolicy, Incarnation, PipelineDoc, PipelineName, PipelineState};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The first byte picks the reader: file envelope, etcd value, ConfigMap
/// data (a JSON object of strings), fleet serving report.
pub fn document(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let name = PipelineName::new("orders").expect("a valid name");
    let stored = match which % 4 {
        0 => decode_file_document(&name, "fuzz", bytes),
        1 => decode_etcd_value(&name, "fuzz", bytes, 1),
        2 => {
            let Ok(data) = serde_json::from_slice::<BTreeMap<String, String>>(bytes) else {
                return;
            };
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    resource_version: Some("1".into()),
                    ..ObjectMeta::default()
                },
                data: Some(data),
                ..ConfigMap::default()
            };
            decode_config_map(&name, "fuzz", &cm)
        }
        _ => return serving_report(&name, bytes),
    };
    let Ok(stored) = stored else {
        return;
    };
    assert_eq!(stored.doc.name, name, "a store accepted another pipeline");
    assert!(
        stored.doc.validate().is_ok(),
        "a store accepted an invalid doc"
    );
    // A coordinator loads it and acts on it.
    let mut core = PipelineState::new(stored.doc.clone());
    automatic(&mut core);
    let _ = core.status();
    // One that watched the pipeline from its creation installs it as a
    // replacement or a successor, or refuses it, but never panics.
    let mut fresh = PipelineState::new(PipelineDoc::new(
        name,
        Colour::Blue,
        HorizonPolicy::default(),
        Incarnation(stored.doc.incarnation().0),
    ));
    let _ = fresh.install(stored.doc);
}

/// A serving report of another coordinator, folded into a pipeline's view.
fn serving_report(name: &PipelineName, bytes: &[u8]) {
    let Ok(report) = serde_json::from_slice::<ServingReport>(bytes) else {
        return;
    };
    let mut core = PipelineState::new(PipelineDoc::new(
        name.clone(),
        Colour::Blue,
        HorizonPolicy::default(),
        report.incarnation,
    ));
    core.set_reports(vec![report]);
    automatic(&mut core);
    let _ = core.status();
}

/// Installs what the core proposes on its own until it proposes nothing
/// (bounded); each proposal installs.
fn automatic(core: &mut PipelineState) {
    for _ in 0..8 {
        let Some(next) = core.propose_automatic() else {
            return;
        };
        if let Err(e) = core.install(next) {
            panic!("the core refused its own proposal: {e}");
        }
    }
}
