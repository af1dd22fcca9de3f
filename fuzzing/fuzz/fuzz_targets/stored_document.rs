//! cargo-fuzz target `stored_document` (see `cutover_fuzzing::stored::document`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover_fuzzing::stored::document(data));
