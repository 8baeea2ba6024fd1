//! `cargo xtask fuzz [TARGET|PROJECT]... [--seconds N]`: runs the libFuzzer targets of every
//! fuzz project ([`PROJECTS`]: supervisor/fuzz, netcfg/fuzz, sshkeys/fuzz, init/fuzz;
//! docs/fuzzing.md) with their seeds and dictionaries, installing cargo-fuzz from crates.io
//! if it is missing. It sets `RUSTC_BOOTSTRAP=1` so the stable toolchain accepts the
//! sanitizer flags. Must not touch the workspace build.
//!
//! [`stable_harnesses`] is what `cargo xtask test` runs: each project's replay tests
//! (`cargo test --no-default-features`), no libFuzzer needed.

use crate::prereq::{ensure, need};
use crate::util::{self, project_root};
use anyhow::{Context, Result, bail};
use std::process::Command;

/// Each fuzz project, by the folder its `fuzz/` crate sits in, with its targets. Target
/// names are unique across projects.
pub(crate) const PROJECTS: &[(&str, &[&str])] = &[
    (
        "supervisor",
        &["config", "proto_request", "proto_response", "core"],
    ),
    (
        "netcfg",
        &[
            "cmdline",
            "dhcp_hook",
            "rtnetlink",
            "nfnetlink_acks",
            "metadata",
        ],
    ),
    ("sshkeys", &["hostkey"]),
    ("init", &["superblock", "control_framing"]),
];

const HELP: &str = "\
usage: cargo xtask fuzz [TARGET|PROJECT]... [--seconds N] [-- LIBFUZZER_OPTIONS]

Runs each target (by default all of them; a PROJECT name means all its targets) for N
seconds (default 120), growing PROJECT/fuzz/corpus/TARGET from PROJECT/fuzz/seeds/TARGET.
Crashes land in PROJECT/fuzz/artifacts/TARGET. Extra libFuzzer options go after `--`.

Projects and targets:
  supervisor  config proto_request proto_response core
  netcfg      cmdline dhcp_hook rtnetlink nfnetlink_acks metadata
  sshkeys     hostkey
  init        superblock control_framing";

/// The project a target belongs to.
fn project_of(target: &str) -> Option<&'static str> {
    PROJECTS
        .iter()
        .find(|(_, ts)| ts.contains(&target))
        .map(|(p, _)| *p)
}

/// The (project, target) pairs the arguments name, in [`PROJECTS`] order, without
/// duplicates; all of them for no names.
fn select(names: &[String]) -> Result<Vec<(&'static str, &'static str)>> {
    let all = PROJECTS
        .iter()
        .flat_map(|(p, ts)| ts.iter().map(move |t| (*p, *t)));
    if names.is_empty() {
        return Ok(all.collect());
    }
    for n in names {
        if project_of(n).is_none() && !PROJECTS.iter().any(|(p, _)| p == n) {
            let known: Vec<&str> = PROJECTS
                .iter()
                .flat_map(|(_, ts)| ts.iter().copied())
                .collect();
            bail!(
                "unknown fuzz target or project {n:?}; targets: {}; projects: {}",
                known.join(", "),
                PROJECTS
                    .iter()
                    .map(|(p, _)| *p)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(all
        .filter(|(p, t)| names.iter().any(|n| n == p || n == t))
        .collect())
}

pub(crate) fn run(args: Vec<String>) -> Result<()> {
    let mut names: Vec<String> = Vec::new();
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
            _ => names.push(a),
        }
    }
    let targets = select(&names)?;
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
    for (project, t) in targets {
        let dir = project_root().join(project);
        let corpus = format!("fuzz/corpus/{t}");
        std::fs::create_dir_all(dir.join(&corpus))
            .with_context(|| format!("cannot create {project}/{corpus}"))?;
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
        eprintln!("xtask: fuzzing {project}/{t} for {seconds} s");
        util::run(&mut cmd)?;
    }
    Ok(())
}

/// Runs every project's stable harness: its seeds, its local corpus and a bounded random
/// mutation, without libFuzzer (`cargo test --no-default-features` in PROJECT/fuzz).
pub(crate) fn stable_harnesses() -> Result<()> {
    let mut failed = Vec::new();
    for (project, _) in PROJECTS {
        let manifest = project_root().join(project).join("fuzz/Cargo.toml");
        eprintln!("xtask: {project}/fuzz: cargo test --no-default-features");
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.args(["test", "--no-default-features", "--manifest-path"])
            .arg(&manifest)
            // Not the workspace's VM switch: these are plain tests.
            .env_remove("KEEL_VM_TESTS");
        if let Err(e) = util::run(&mut cmd) {
            eprintln!("xtask: {project}/fuzz: {e:#}");
            failed.push(*project);
        }
    }
    if !failed.is_empty() {
        bail!("the fuzz harness of {} failed", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_project_has_its_fuzz_crate_and_seeds() {
        for (project, targets) in PROJECTS {
            let dir = project_root().join(project).join("fuzz");
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
                .unwrap_or_else(|e| panic!("{project}/fuzz/Cargo.toml: {e}"));
            for t in *targets {
                assert!(
                    manifest.contains(&format!("name = \"{t}\"")),
                    "{project}/fuzz/Cargo.toml has no [[bin]] {t}"
                );
                assert!(
                    dir.join("fuzz_targets").join(format!("{t}.rs")).is_file(),
                    "{project}/fuzz/fuzz_targets/{t}.rs is missing"
                );
                assert!(
                    dir.join("seeds").join(t).is_dir(),
                    "{project}/fuzz/seeds/{t} is missing"
                );
            }
        }
    }

    #[test]
    fn targets_are_unique_and_selected_by_name_or_project() {
        let all = select(&[]).unwrap_or_default();
        let mut names: Vec<&str> = all.iter().map(|(_, t)| *t).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "a target name is used twice");
        let pick = |n: &[&str]| {
            select(&n.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap_or_default()
        };
        assert_eq!(pick(&["hostkey"]), vec![("sshkeys", "hostkey")]);
        assert_eq!(pick(&["init"]).len(), 2);
        assert_eq!(pick(&["core", "supervisor"]).len(), 4);
        assert!(select(&["nope".to_string()]).is_err());
    }
}
