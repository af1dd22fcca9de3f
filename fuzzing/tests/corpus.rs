//! The fuzz targets on the stable toolchain: every input of the committed
//! corpus (`fuzz/corpus/<target>/`), then seeded random inputs, each
//! mutated from a corpus input or fresh. A panic names the target and the
//! input (hex) so it can be added to the corpus and replayed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use cutover_fuzzing::TARGETS;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Random inputs per target in the default test run.
const RANDOM_INPUTS: usize = 20_000;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading the corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a corpus entry").path();
            let bytes = std::fs::read(&path).expect("a corpus file");
            (path.display().to_string(), bytes)
        })
        .collect();
    inputs.sort();
    inputs.into_iter().map(|(_, bytes)| bytes).collect()
}

fn run_one(target: &str, run: fn(&[u8]), input: &[u8]) {
    let outcome = catch_unwind(AssertUnwindSafe(|| run(input)));
    if outcome.is_err() {
        let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
        panic!("target {target} failed on input {hex}");
    }
}

/// A mutation of `base`: some bytes flipped, inserted or cut.
fn mutated(rng: &mut StdRng, base: &[u8]) -> Vec<u8> {
    let mut input = base.to_vec();
    for _ in 0..rng.random_range(1..8) {
        match rng.random_range(0..4) {
            0 if !input.is_empty() => {
                let at = rng.random_range(0..input.len());
                input[at] = rng.random();
            }
            1 => {
                let at = rng.random_range(0..=input.len());
                input.insert(at, rng.random());
            }
            2 if !input.is_empty() => {
                let at = rng.random_range(0..input.len());
                input.truncate(at);
            }
            _ => {
                let at = rng.random_range(0..=input.len());
                let bytes: Vec<u8> = (0..rng.random_range(1..32)).map(|_| rng.random()).collect();
                input.splice(at..at, bytes);
            }
        }
    }
    input
}

#[test]
fn every_target_passes_its_corpus_and_random_inputs() {
    for (target, run) in TARGETS {
        let inputs = corpus(target);
        assert!(!inputs.is_empty(), "target {target} has an empty corpus");
        for input in &inputs {
            run_one(target, run, input);
        }
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for _ in 0..RANDOM_INPUTS {
            let input = if rng.random_bool(0.8) {
                let base = &inputs[rng.random_range(0..inputs.len())];
                mutated(&mut rng, base)
            } else {
                (0..rng.random_range(0..256))
                    .map(|_| rng.random())
                    .collect()
            };
            run_one(target, run, &input);
        }
    }
}
