//! libFuzzer entry for the `proto_request` target; the checks live in `supervisor_fuzz::proto_request` so the
//! stable replay tests run exactly the same code. Not `forbid(unsafe_code)`: the
//! `fuzz_target!` macro exports an `extern "C"` symbol with `#[no_mangle]`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| supervisor_fuzz::proto_request(data));
