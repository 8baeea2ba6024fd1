//! libFuzzer entry for the `config` target; the checks live in `supervisor_fuzz::config` so the
//! stable replay tests run exactly the same code. Not `forbid(unsafe_code)`: the
//! `fuzz_target!` macro exports an `extern "C"` symbol with `#[no_mangle]`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| supervisor_fuzz::config(data));
