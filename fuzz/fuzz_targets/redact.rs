//! The masker never panics, a stream of pieces masks as the whole text does, and no secret is
//! left where a reader sees text, whatever escape sequences and controls split it.
//!
//!     cargo +nightly fuzz run redact -- -max_total_time=600
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis::fuzzing::redact(data);
});
