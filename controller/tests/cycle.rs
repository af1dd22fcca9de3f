//! The decisions composed over time against a model of the world: a Flink
//! operator that starts, fails and suspends children, and a coordinator
//! whose transitions move through their phases. Full BLUE → GREEN → BLUE
//! cycles, an abort within the grace period, a manual promotion, and a
//! controller that loses the actions of some reconciliations (a crash
//! between deciding and acting) — each must converge, and no step may stop
//! the old colour before the new one drained.

use std::collections::BTreeSet;
use std::time::Duration;

use cutover_controller::*;
use cutover_core::{Colour, Epoch, Phase};
use cutover_crds::BlueGreenState;

const STEP: i64 = 10;

/// The world around the controller.
struct World {
    now: i64,
    blue: Option<(Child, i64)>,
    green: Option<(Child, i64)>,
    active: Colour,
    transition: Option<TransitionView>,
    /// Templates whose jobs fail.
    bad: BTreeSet<String>,
    savepoints: u32,
    /// Children created, per colour: [blue, green].
    created: [u32; 2],
    /// Transitions that reached DRAINED (to, when the old colour was stopped
    /// relative to it: must be after).
    stopped_before_drained: bool,
    /// A transition was completed while the old colour still ran.
    completed_while_old_ran: bool,
    /// The `cutover.dev/abort` annotation is on the resource.
    abort_requested: bool,
}

impl World {
    fn new() -> Self {
        World {
            now: 1_000_000,
            blue: None,
            green: None,
            active: Colour::Blue,
            transition: None,
            bad: BTreeSet::new(),
            savepoints: 0,
            created: [0, 0],
            stopped_before_drained: false,
            completed_while_old_ran: false,
            abort_requested: false,
        }
    }

    fn slot(&mut self, colour: Colour) -> &mut Option<(Child, i64)> {
        match colour {
            Colour::Blue => &mut self.blue,
            Colour::Green => &mut self.green,
        }
    }

    fn savepoint(&mut self) -> String {
        self.savepoints += 1;
        format!("s3://savepoints/{}", self.savepoints)
    }

    fn apply(&mut self, action: &Action, desired: &str) {
        match action {
            Action::CreateChild { colour, .. } => {
                self.created[usize::from(*colour == Colour::Green)] += 1;
                let now = self.now;
                *self.slot(*colour) = Some((
                    Child {
                        template_hash: desired.to_string(),
                        job: JobHealth::Starting,
                        savepoint: None,
                    },
                    now,
                ));
            }
            Action::TriggerSavepoint { colour } => {
                let savepoint = self.savepoint();
                if let Some((child, _)) = self.slot(*colour) {
                    child.savepoint = Some(savepoint);
                }
            }
            Action::SuspendChild { colour } => {
                let draining = self
                    .transition
                    .is_some_and(|t| t.to == colour.other() && t.phase == Phase::Drained);
                let in_transition = self.transition.is_some_and(|t| {
                    t.to == colour.other()
                        && matches!(t.phase, Phase::Scheduled | Phase::CuttingOver)
                });
                if in_transition && !draining {
                    self.stopped_before_drained = true;
                }
                let savepoint = self.savepoint();
                if let Some((child, _)) = self.slot(*colour) {
                    child.job = JobHealth::Suspended;
                    child.savepoint = Some(savepoint);
                }
            }
            Action::ResumeChild { colour } => {
                if let Some((child, _)) = self.slot(*colour) {
                    child.job = JobHealth::Starting;
                }
            }
            Action::DeleteChild { colour } => *self.slot(*colour) = None,
            Action::ScheduleCutover {
                target,
                auto_promote,
            } => {
                self.transition = Some(TransitionView {
                    to: *target,
                    phase: Phase::Scheduled,
                    auto_promote: *auto_promote,
                });
            }
            Action::Promote => {
                if let Some(t) = self.transition.as_mut() {
                    t.auto_promote = true;
                }
            }
            Action::ForgetAbortRequest => self.abort_requested = false,
            Action::AbortTransition => {
                if let Some(t) = self.transition.as_mut()
                    && t.phase == Phase::Scheduled
                {
                    t.phase = Phase::Aborted;
                }
            }
            Action::CompleteTransition => {
                let old_runs = self.transition.is_some_and(|t| {
                    self.slot(t.to.other())
                        .as_ref()
                        .is_some_and(|(c, _)| c.job != JobHealth::Suspended)
                });
                self.completed_while_old_ran |= old_runs;
                if let Some(t) = self.transition.as_mut()
                    && t.phase == Phase::Drained
                {
                    t.phase = Phase::Completed;
                    self.active = t.to;
                }
            }
        }
    }

    /// Time passes: jobs start (or fail), transitions move on.
    fn tick(&mut self) {
        self.now += STEP;
        let now = self.now;
        let bad = self.bad.clone();
        for slot in [&mut self.blue, &mut self.green] {
            if let Some((child, created)) = slot
                && child.job == JobHealth::Starting
                && now - *created >= 30
            {
                child.job = if bad.contains(&child.template_hash) {
                    JobHealth::Failed("job crashed".into())
                } else {
                    JobHealth::Running
                };
                child
                    .savepoint
                    .get_or_insert_with(|| "s3://checkpoints/1".into());
            }
        }
        if let Some(t) = self.transition.as_mut() {
            t.phase = match t.phase {
                Phase::Scheduled if t.auto_promote => Phase::CuttingOver,
                Phase::CuttingOver => Phase::Drained,
                phase => phase,
            };
        }
    }

    fn observed(
        &self,
        desired: &str,
        memory: &Memory,
        auto_promote: bool,
        promote: bool,
    ) -> Observed {
        Observed {
            now: self.now,
            desired_hash: desired.to_string(),
            suspend: false,
            auto_promote,
            abort_grace_period: Duration::from_secs(120),
            deletion_delay: Duration::from_secs(60),
            promote_requested: promote,
            abort_requested: self.abort_requested,
            memory: memory.clone(),
            blue: self.blue.as_ref().map(|(c, _)| c.clone()),
            green: self.green.as_ref().map(|(c, _)| c.clone()),
            pipeline: Some(PipelineView {
                epoch: Epoch(1),
                active: self.active,
                transition: self.transition,
            }),
        }
    }
}

/// Reconciles once per tick until `done` or `limit` ticks; `lose` says
/// whether the actions of reconciliation `i` are lost.
fn run(
    world: &mut World,
    memory: &mut Memory,
    desired: &str,
    auto_promote: bool,
    promote_at: Option<usize>,
    lose: impl Fn(usize) -> bool,
    done: impl Fn(&World, &Memory) -> bool,
) -> usize {
    for i in 0..200 {
        if done(world, memory) {
            return i;
        }
        let promote = promote_at.is_some_and(|at| i >= at);
        let r = decide(&world.observed(desired, memory, auto_promote, promote));
        if !lose(i) {
            for action in &r.actions {
                world.apply(action, desired);
            }
            // The status write goes with the actions.
            *memory = r.memory;
        }
        world.tick();
    }
    panic!(
        "did not converge: {memory:?}, transition {:?}, blue {:?}, green {:?}",
        world.transition, world.blue, world.green
    );
}

/// A new world where BLUE runs `template` and emits.
fn blue_running(template: &str) -> (World, Memory) {
    let mut world = World::new();
    let mut memory = Memory::default();
    run(
        &mut world,
        &mut memory,
        template,
        true,
        None,
        |_| false,
        settled(Colour::Blue),
    );
    (world, memory)
}

/// A transition to GREEN is scheduled (and waits, if not auto-promoted).
fn green_scheduled(w: &World, _: &Memory) -> bool {
    w.transition
        .is_some_and(|t| t.to == Colour::Green && t.phase == Phase::Scheduled)
}

fn settled(colour: Colour) -> impl Fn(&World, &Memory) -> bool {
    move |w, m| {
        let (active, other) = match colour {
            Colour::Blue => (&w.blue, &w.green),
            Colour::Green => (&w.green, &w.blue),
        };
        m.state
            == match colour {
                Colour::Blue => BlueGreenState::ActiveBlue,
                Colour::Green => BlueGreenState::ActiveGreen,
            }
            && active
                .as_ref()
                .is_some_and(|(c, _)| c.job == JobHealth::Running)
            && other.is_none()
    }
}

#[test]
fn blue_green_blue_cycle() {
    let (mut world, mut memory) = blue_running("v1");
    let never = |_| false;
    run(
        &mut world,
        &mut memory,
        "v2",
        true,
        None,
        never,
        settled(Colour::Green),
    );
    assert_eq!(world.active, Colour::Green);
    assert_eq!(memory.active_hash.as_deref(), Some("v2"));
    run(
        &mut world,
        &mut memory,
        "v1",
        true,
        None,
        never,
        settled(Colour::Blue),
    );
    assert_eq!(world.active, Colour::Blue);
    assert!(!world.stopped_before_drained);
    assert!(!world.completed_while_old_ran);
}

#[test]
fn a_failing_green_is_aborted_and_a_fixed_template_goes_through() {
    let mut world = World::new();
    world.bad.insert("v2-broken".into());
    let mut memory = Memory::default();
    let never = |_| false;
    run(
        &mut world,
        &mut memory,
        "v1",
        true,
        None,
        never,
        settled(Colour::Blue),
    );
    // The broken template: GREEN fails, the transition is backed out.
    let backed_out = |w: &World, m: &Memory| {
        m.state == BlueGreenState::ActiveBlue && w.green.is_none() && w.created[1] > 0
    };
    run(
        &mut world,
        &mut memory,
        "v2-broken",
        true,
        None,
        never,
        backed_out,
    );
    assert!(
        world.transition.is_none_or(|t| t.phase == Phase::Aborted),
        "no cutover to the failed colour: {:?}",
        world.transition
    );
    assert_eq!(world.active, Colour::Blue, "BLUE kept emitting");
    assert!(
        world
            .blue
            .as_ref()
            .is_some_and(|(c, _)| c.job == JobHealth::Running)
    );
    run(
        &mut world,
        &mut memory,
        "v3",
        true,
        None,
        never,
        settled(Colour::Green),
    );
    assert_eq!(world.active, Colour::Green);
}

#[test]
fn manual_promotion_holds_the_transition_until_asked() {
    let (mut world, mut memory) = blue_running("v1");
    let never = |_| false;
    // Without a promotion the transition stays SCHEDULED.
    run(
        &mut world,
        &mut memory,
        "v2",
        false,
        None,
        never,
        green_scheduled,
    );
    for _ in 0..20 {
        let r = decide(&world.observed("v2", &memory, false, false));
        assert!(!r.actions.contains(&Action::CompleteTransition));
        for action in &r.actions {
            world.apply(action, "v2");
        }
        memory = r.memory;
        world.tick();
    }
    assert!(
        green_scheduled(&world, &memory),
        "still waiting for a promotion"
    );
    run(
        &mut world,
        &mut memory,
        "v2",
        false,
        Some(0),
        never,
        settled(Colour::Green),
    );
}

#[test]
fn lost_actions_are_retried_until_the_cycle_completes() {
    // Reconciliations whose actions (and status write) are lost, as when
    // the controller crashes between deciding and acting: every third, and
    // a run of five in a row.
    let mut world = World::new();
    let mut memory = Memory::default();
    let lossy = |i: usize| i % 3 == 1 || (7..12).contains(&i);
    run(
        &mut world,
        &mut memory,
        "v1",
        true,
        None,
        lossy,
        settled(Colour::Blue),
    );
    run(
        &mut world,
        &mut memory,
        "v2",
        true,
        None,
        lossy,
        settled(Colour::Green),
    );
    run(
        &mut world,
        &mut memory,
        "v1",
        true,
        None,
        lossy,
        settled(Colour::Blue),
    );
    assert!(!world.stopped_before_drained);
}

#[test]
fn an_abort_request_backs_out_a_revocable_transition_and_is_refused_after_the_cutover() {
    let (mut world, mut memory) = blue_running("v1");
    let never = |_| false;

    // v2 waits for a promotion: abort it.
    run(
        &mut world,
        &mut memory,
        "v2",
        false,
        None,
        never,
        green_scheduled,
    );
    world.abort_requested = true;
    run(
        &mut world,
        &mut memory,
        "v2",
        false,
        None,
        never,
        settled(Colour::Blue),
    );
    assert!(!world.abort_requested, "the request is consumed");
    assert_eq!(world.transition.map(|t| t.phase), Some(Phase::Aborted));
    assert_eq!(world.active, Colour::Blue);
    assert_eq!(
        memory.rejected_hash.as_deref(),
        Some("v2"),
        "not tried again"
    );
    let r = decide(&world.observed("v2", &memory, false, false));
    assert!(r.actions.is_empty(), "v2 stays set aside: {r:?}");

    // v3 cuts over by itself; an abort asked for once it is irrevocable is
    // refused (and consumed), and the transition completes.
    let cutting = |w: &World, _: &Memory| {
        w.transition
            .is_some_and(|t| t.to == Colour::Green && t.phase == Phase::CuttingOver)
    };
    run(&mut world, &mut memory, "v3", true, None, never, cutting);
    world.abort_requested = true;
    let r = decide(&world.observed("v3", &memory, true, false));
    assert_eq!(r.actions, vec![Action::ForgetAbortRequest]);
    assert_eq!(r.event.as_ref().map(|e| e.0), Some("AbortRefused"));
    run(
        &mut world,
        &mut memory,
        "v3",
        true,
        None,
        never,
        settled(Colour::Green),
    );
    assert!(!world.abort_requested);
    assert_eq!(memory.active_hash.as_deref(), Some("v3"));
}
