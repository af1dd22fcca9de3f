//! cargo-fuzz target `server_message` (see `cutover_fuzzing::frames::server_message`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover_fuzzing::frames::server_message(data));
