//! The pipeline loader and its diagnostics never panic, whatever the file holds.
//!
//!     cargo +nightly fuzz run load -- -max_total_time=600
//!
//! Seeds: `fuzz/corpus/load/` starts from the pipelines this repository ships.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis::fuzzing::load(data);
});
