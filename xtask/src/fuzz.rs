//! `cargo xtask fuzz [TARGET] [--seconds N]`: runs the supervisor's libFuzzer targets
//! (supervisor/fuzz/, docs/fuzzing.md) with their seeds and dictionaries, installing
//! cargo-fuzz from crates.io if it is missing. Only the stable toolchain exists here, so it
//! sets `RUSTC_BOOTSTRAP=1` for the sanitizer flags. Must not touch the workspace build.

use crate::prereq::{ensure, need};
use crate::util::{self, project_root};
use anyhow::{Context, Result, bail};
use std::process::Command;

const TARGETS: &[&str] = &["config", "proto_request", "proto_response", "core"];

const HELP: &str = "\
usage: cargo xtask fuzz [TARGET] [--seconds N]

Runs each target (or only TARGET: config, proto_request, proto_response, core) for N
seconds (default 120), growing supervisor/fuzz/corpus/TARGET from supervisor/fuzz/seeds/TARGET.
Crashes land in supervisor/fuzz/artifacts/TARGET. Extra libFuzzer options: after `--`.";

pub(crate) fn run(args: Vec<String>) -> Result<()> {
    let mut targets: Vec<&str> = Vec::new();
    let mut seconds: u64 = 120;
    let mut extra: Vec<String> = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                return Ok(());
            }
            "--seconds" => {
                let v = it.next().context("--seconds needs a number")?;
                seconds = v
                    .parse()
                    .with_context(|| format!("--seconds {v:?} is not a whole number"))?;
            }
            "--" => extra.extend(it.by_ref()),
            t => match TARGETS.iter().find(|k| **k == t) {
                Some(k) => targets.push(k),
                None => bail!(
                    "unknown fuzz target {t:?}; use one of {}",
                    TARGETS.join(", ")
                ),
            },
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    // libfuzzer-sys compiles libFuzzer with the C++ compiler.
    ensure(&[need("g++", "g++")])?;
    let have_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_fuzz {
        eprintln!("xtask: installing cargo-fuzz (cargo install)");
        util::run(Command::new("cargo").args(["install", "cargo-fuzz"]))?;
    }
    let dir = project_root().join("supervisor");
    for t in targets {
        let corpus = format!("fuzz/corpus/{t}");
        std::fs::create_dir_all(dir.join(&corpus))
            .with_context(|| format!("cannot create supervisor/{corpus}"))?;
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", t, &corpus, &format!("fuzz/seeds/{t}"), "--"])
            .arg(format!("-max_total_time={seconds}"))
            .arg("-timeout=10");
        let dict = format!("fuzz/dicts/{t}.dict");
        if dir.join(&dict).is_file() {
            cmd.arg(format!("-dict={dict}"));
        }
        cmd.args(&extra);
        eprintln!("xtask: fuzzing {t} for {seconds} s");
        util::run(&mut cmd)?;
    }
    Ok(())
}
