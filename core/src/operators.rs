//! The gate operators of a pipeline as its document records them: for each
//! colour, every gate uid of that colour's job and its parallelism.
//!
//! The gate ledger lives in memory; a coordinator that restarts rebuilds it
//! from the gates that reconnect, and until the last one is back it does not
//! know that the others exist. Deciding DRAINED (or compacting) from that
//! partial ledger would declare a job done whose other sink has not yet
//! emitted up to the cutover. The document therefore records the operators
//! of the colour that will have to drain: the old colour of a transition in
//! flight, otherwise the active one. A gate operator recorded here but not
//! yet reconnected counts as not past any mark.
//!
//! What is recorded are the operators of the colour's running job: gates
//! an earlier job of that colour left behind (another job id, none
//! connected) are not, so a colour redeployed without one of its sinks is
//! not waited for on it.
//!
//! Recording costs no write of its own in the usual flow: new operators ride
//! along with the next document written anyway (the first horizon, the
//! schedule, the completion), and force a write only while a transition is
//! in flight (then only new operators, no parallelism changes). Completion
//! forgets the old colour's operators (its job is stopped) and records the
//! new active colour's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::Colour;

/// Gate uid → parallelism.
pub type Operators = BTreeMap<String, u32>;

/// The recorded gate operators of both colours (stored as
/// `{"BLUE": {"sink": 4}, ...}`; a colour with none is left out).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GateOperators(BTreeMap<Colour, Operators>);

static NONE: Operators = BTreeMap::new();

impl GateOperators {
    /// The operators recorded for `colour`.
    pub fn of(&self, colour: Colour) -> &Operators {
        self.0.get(&colour).unwrap_or(&NONE)
    }

    /// Replaces the operators recorded for `colour`.
    pub fn set(&mut self, colour: Colour, operators: Operators) {
        if operators.is_empty() {
            self.0.remove(&colour);
        } else {
            self.0.insert(colour, operators);
        }
    }
}

/// `recorded` with `known` merged in, or `None` when that changes nothing.
/// A known parallelism replaces a recorded one only with `rescale`: while a
/// transition is in flight only new operators are added, so that two
/// coordinators that each still know another parallelism of one operator
/// cannot overwrite each other in turn.
pub(crate) fn merged(recorded: &Operators, known: &Operators, rescale: bool) -> Option<Operators> {
    let mut next: Option<Operators> = None;
    for (uid, &parallelism) in known {
        let current = next.as_ref().unwrap_or(recorded);
        let differs = match current.get(uid) {
            None => true,
            Some(&p) => rescale && p != parallelism,
        };
        if differs {
            next.get_or_insert_with(|| recorded.clone())
                .insert(uid.to_string(), parallelism);
        }
    }
    next
}
