//! libFuzzer entry for the `hostkey` target; the checks live in `sshkeys_fuzz::hostkey` so the
//! stable replay tests run exactly the same code. Not `forbid(unsafe_code)`: the
//! `fuzz_target!` macro exports an `extern "C"` symbol with `#[no_mangle]`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sshkeys_fuzz::hostkey(data));
