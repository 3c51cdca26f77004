//! Fuzz target: the socket protocol's request parser must answer every byte string with a
//! request or a coded error, never a panic. Run with
//! `cargo +nightly fuzz run request_parser` (see docs/testing.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err((_, e)) = carbon_ops::protocol::parse_request(data) {
        assert!(!e.code.is_empty());
    }
});
