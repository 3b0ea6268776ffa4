//! The port-law detectors (each file kind's and the generic layer) never panic and never point
//! outside the text, whatever the text.
//!
//!     cargo +nightly fuzz run ports -- -max_total_time=600
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis::fuzzing::ports(data);
});
