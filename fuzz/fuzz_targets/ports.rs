//! The port-law detectors (each file kind's and the generic layer) never panic and never point
//! outside the text, whatever the text.
//!
//! Seeded from the port-law fixtures (libFuzzer reads the folders recursively), so no copy of
//! them is kept here:
//!
//!     mkdir -p corpus/ports && cargo +nightly fuzz run ports corpus/ports ../fixtures -- -max_total_time=600
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis::fuzzing::ports(data);
});
