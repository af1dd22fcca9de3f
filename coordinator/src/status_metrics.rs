//! Metrics read from the pipelines' status at each scrape (what dashboards
//! and alerts watch): each transition's phase, each colour's gates
//! (expected, connected, acknowledging the current epoch, holding records)
//! and the other coordinators of the fleet as this one hears them.
//!
//! Nothing here is kept between scrapes: a pipeline that is gone has no
//! series at the next one.

use std::fmt;

use cutover_core::{Colour, Phase, PipelineStatus};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

use crate::registry::Coordinator;

/// Every phase a transition can be in, as the phase gauge labels them.
const PHASES: [Phase; 6] = [
    Phase::Scheduled,
    Phase::CuttingOver,
    Phase::Drained,
    Phase::Completed,
    Phase::Aborted,
    Phase::Superseded,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    pipeline: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ColourLabels {
    pipeline: String,
    colour: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

/// The collector; register it with `Registry::register_collector`.
pub struct StatusMetrics {
    coordinator: Coordinator,
}

impl fmt::Debug for StatusMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusMetrics").finish_non_exhaustive()
    }
}

impl StatusMetrics {
    /// Status metrics of the pipelines `coordinator` serves.
    pub fn new(coordinator: Coordinator) -> Self {
        StatusMetrics { coordinator }
    }
}

/// Writes one gauge family: `name` with one sample per `(labels, value)`.
fn gauge_family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(L, f64)],
) -> fmt::Result {
    if samples.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (labels, value) in samples {
        ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

/// Per-colour gauges of `statuses`: `(labels, value)` for each pipeline and
/// colour, the value chosen by `pick`.
fn per_colour(
    statuses: &[PipelineStatus],
    pick: impl Fn(&cutover_core::ColourGates) -> f64,
) -> Vec<(ColourLabels, f64)> {
    statuses
        .iter()
        .flat_map(|status| {
            [Colour::Blue, Colour::Green].map(|colour| {
                (
                    ColourLabels {
                        pipeline: status.name.to_string(),
                        colour: colour.to_string(),
                    },
                    pick(status.gates(colour)),
                )
            })
        })
        .collect()
}

impl Collector for StatusMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let statuses = self.coordinator.statuses();
        let phases: Vec<(PhaseLabels, f64)> = statuses
            .iter()
            .flat_map(|status| {
                PHASES.map(|phase| {
                    (
                        PhaseLabels {
                            pipeline: status.name.to_string(),
                            phase: phase.to_string(),
                        },
                        if status.phase == Some(phase) {
                            1.0
                        } else {
                            0.0
                        },
                    )
                })
            })
            .collect();
        gauge_family(
            &mut encoder,
            "cutover_transition_phase",
            "1 for the phase the pipeline's latest transition is in, 0 for the others",
            &phases,
        )?;
        gauge_family(
            &mut encoder,
            "cutover_gates_expected",
            "Gates a colour announced (its parallelism summed over gate uids), as the whole fleet sees them",
            &per_colour(&statuses, |g| f64::from(g.expected)),
        )?;
        gauge_family(
            &mut encoder,
            "cutover_gates_connected",
            "Gates of a colour on a live session, across the fleet",
            &per_colour(&statuses, |g| f64::from(g.connected)),
        )?;
        gauge_family(
            &mut encoder,
            "cutover_gates_acked",
            "Connected gates of a colour whose session acknowledged the pipeline's current epoch",
            &per_colour(&statuses, |g| f64::from(g.connected.min(g.acked))),
        )?;
        gauge_family(
            &mut encoder,
            "cutover_gates_held_records",
            "Records a colour's gates hold now (keys at or above the horizon they have)",
            &per_colour(&statuses, |g| g.held as f64),
        )?;
        let members = self.coordinator.membership().members();
        let live: Vec<(PeerLabels, f64)> = members
            .iter()
            .map(|m| {
                let labels = PeerLabels {
                    peer: m.id.to_string(),
                };
                (labels, if m.live { 1.0 } else { 0.0 })
            })
            .collect();
        gauge_family(
            &mut encoder,
            "cutover_fleet_peer_live",
            "1 if another coordinator's reports count (it renews its liveness record), 0 if it stopped without removing it",
            &live,
        )?;
        let ages: Vec<(PeerLabels, f64)> = members
            .iter()
            .filter_map(|m| {
                let age = m.renewed?;
                let labels = PeerLabels {
                    peer: m.id.to_string(),
                };
                Some((labels, age.as_secs_f64()))
            })
            .collect();
        gauge_family(
            &mut encoder,
            "cutover_fleet_peer_renewal_age_seconds",
            "Seconds since another coordinator's liveness record was last seen changing",
            &ages,
        )
    }
}
