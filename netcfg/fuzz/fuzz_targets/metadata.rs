//! libFuzzer entry for the `metadata` target; the checks live in `netcfg_fuzz::metadata` so the
//! stable replay tests run exactly the same code. Not `forbid(unsafe_code)`: the
//! `fuzz_target!` macro exports an `extern "C"` symbol with `#[no_mangle]`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netcfg_fuzz::metadata(data));
