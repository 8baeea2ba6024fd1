//! libFuzzer entry for the `nfnetlink_acks` target; the checks live in `netcfg_fuzz::nfnetlink_acks` so the
//! stable replay tests run exactly the same code. Not `forbid(unsafe_code)`: the
//! `fuzz_target!` macro exports an `extern "C"` symbol with `#[no_mangle]`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netcfg_fuzz::nfnetlink_acks(data));
