//! cargo-fuzz target `client_message` (see `cutover_fuzzing::frames::client_message`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover_fuzzing::frames::client_message(data));
