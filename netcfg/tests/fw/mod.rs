//! Shared by the firewall and netlink tests: configs from TOML, network namespaces of our own,
//! and `nft` run inside them. Nothing here touches the host's own network or ruleset: every `nft`
//! runs in a namespace this process made, and every namespace is deleted on drop, also when
//! a test fails.
#![allow(dead_code)] // Each test file uses a different part.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use appliance::Firewall;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The `[firewall]` of a config text, or the test fails with every diagnostic.
pub fn firewall(toml: &str) -> Firewall {
    match appliance::parse(toml, "test.toml") {
        Ok(c) => c.firewall,
        Err(d) => panic!(
            "{}",
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// Why these tests cannot run here, if they cannot: they need root, `ip` and `nft`.
pub fn cannot_run() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (network namespaces and nft)");
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the ip tool (iproute2) is not installed");
    }
    if Command::new("nft").arg("--version").output().is_err() {
        return Some("nft (nftables) is not installed");
    }
    None
}

/// Whether a test may run: `why` is what it lacks, if anything. A test that cannot run
/// must not count as passed: under CI=true this fails it; elsewhere it says so on stderr
/// ("NOT RUN") and the test returns.
pub fn prerequisite(why: Option<&str>) -> bool {
    match why {
        None => true,
        Some(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and this test cannot run: {why}"
            );
            eprintln!("NOT RUN: {why} (under CI=true this test fails)");
            false
        }
    }
}

/// [`prerequisite`] for the namespace and nft tests ([`cannot_run`]).
pub fn runnable() -> bool {
    prerequisite(cannot_run())
}

/// A unique name for this process and call, with `tag` to tell the roles apart.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("keelfw-{}-{n}-{tag}", std::process::id())
}

/// A network namespace of our own, deleted on drop.
pub struct Ns {
    pub name: String,
}

impl Ns {
    /// A fresh namespace with loopback up.
    pub fn new(tag: &str) -> Ns {
        let ns = Ns { name: unique(tag) };
        ok("ip", &["netns", "add", &ns.name]);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS`; the test fails if it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ok("ip", &all)
    }

    /// Runs a program inside the namespace (`ip netns exec`) and returns what it did.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Loads a ruleset with `nft -f FILE` inside the namespace.
    pub fn nft_file(&self, ruleset: &str, check_only: bool) -> Output {
        let file = TempFile::new(ruleset);
        let path = file.path.to_string_lossy().into_owned();
        let mut args = vec!["-f", path.as_str()];
        if check_only {
            args.insert(0, "-c");
        }
        self.exec("nft", &args)
    }

    /// `nft list table inet keel` (or another table) inside the namespace.
    pub fn list(&self, table: &[&str]) -> String {
        let mut args = vec!["list", "table"];
        args.extend_from_slice(table);
        let out = self.exec("nft", &args);
        assert!(
            out.status.success(),
            "nft list table {table:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs `f` on a thread that has entered the namespace. Sockets it makes stay in the
    /// namespace when returned; only that thread changes namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                let path = format!("/run/netns/{}", self.name);
                let fd = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A file under the temporary directory, removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("{}.nft", unique("ruleset")));
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempFile { path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
}

/// Runs a program that must succeed and returns its stdout.
pub fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}
