//! cargo-fuzz target `core_sequence` (see `cutover_fuzzing::core_sequence::run`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover_fuzzing::core_sequence::run(data));
