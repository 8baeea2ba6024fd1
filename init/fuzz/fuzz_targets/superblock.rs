//! libFuzzer entry for the `superblock` target; the checks live in `keel_fuzz::superblock` so the
//! stable replay tests run exactly the same code. Not `forbid(unsafe_code)`: the
//! `fuzz_target!` macro exports an `extern "C"` symbol with `#[no_mangle]`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keel_fuzz::superblock(data));
