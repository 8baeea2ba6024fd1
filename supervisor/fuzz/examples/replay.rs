//! Runs one target on given input files, without libFuzzer, for triage:
//! `cargo run --no-default-features --example replay -- TARGET FILE...`
//! (`KEEL_FUZZ_TRACE=1` prints the core target's events and actions).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((target, files)) = args.split_first() else {
        eprintln!("usage: replay TARGET FILE...");
        return ExitCode::from(2);
    };
    let Some((_, f)) = supervisor_fuzz::TARGETS.iter().find(|(n, _)| n == target) else {
        let names: Vec<&str> = supervisor_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("unknown target {target}; use one of {}", names.join(", "));
        return ExitCode::from(2);
    };
    for file in files {
        match std::fs::read(file) {
            Ok(data) => {
                f(&data);
                eprintln!("{file}: ok");
            }
            Err(e) => {
                eprintln!("cannot read {file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
