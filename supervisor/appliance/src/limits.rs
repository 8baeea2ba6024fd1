//! The per-service limits of `[services.NAME]`: cgroup limits (memory_max, pids_max,
//! cpu_weight) and the process settings a Unix daemon expects (rlimits, umask, workdir).
//!
//! ```toml
//! [services.web]
//! memory_max = "64M"            # memory.max; an OOM kill then takes the whole service
//! pids_max = 64                 # pids.max (default 512 on every service)
//! cpu_weight = 100              # cpu.weight, 1..10000 (the kernel's default is 100)
//! rlimits = { nofile = 4096, core = 0 }
//! umask = "027"
//! workdir = "/var/lib/web"
//! ```
//!
//! This module only holds the model and turns the TOML values into it; the driver
//! (init/src/groups.rs, init/src/sys/spawn.rs) applies it.

use super::{DeValue, Val, Validator, entries, integer};

/// The keys of `[services.NAME]` this module reads.
pub const FIELDS: &[&str] = &[
    "memory_max",
    "pids_max",
    "cpu_weight",
    "rlimits",
    "umask",
    "workdir",
];

/// pids.max of a service that sets no `pids_max`: enough for any daemon keel ships, few
/// enough that a fork bomb stops long before the kernel's pid space (documented in
/// docs/services.md).
pub const DEFAULT_PIDS_MAX: u64 = 512;

/// A process resource limit keel knows by name (`rlimits = { NAME = N }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rlimit {
    Nofile,
    Core,
    Nproc,
    Memlock,
    Stack,
    Fsize,
    As,
    Cpu,
}

impl Rlimit {
    pub const ALL: [(&'static str, Rlimit); 8] = [
        ("nofile", Rlimit::Nofile),
        ("core", Rlimit::Core),
        ("nproc", Rlimit::Nproc),
        ("memlock", Rlimit::Memlock),
        ("stack", Rlimit::Stack),
        ("fsize", Rlimit::Fsize),
        ("as", Rlimit::As),
        ("cpu", Rlimit::Cpu),
    ];

    pub fn from_name(n: &str) -> Option<Rlimit> {
        Rlimit::ALL.iter().find(|(k, _)| *k == n).map(|(_, r)| *r)
    }

    pub fn name(self) -> &'static str {
        Rlimit::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("?", |(k, _)| k)
    }
}

/// What a service may use and how its process starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Limits {
    /// memory.max in bytes (None: no limit).
    pub memory_max: Option<u64>,
    /// pids.max (None: [`DEFAULT_PIDS_MAX`]).
    pub pids_max: Option<u64>,
    /// cpu.weight, 1..=10000 (None: the kernel's 100).
    pub cpu_weight: Option<u64>,
    /// setrlimit(soft = hard = value) before exec.
    pub rlimits: Vec<(Rlimit, u64)>,
    /// umask before exec (None: keel's 022).
    pub umask: Option<u32>,
    /// The working directory (None: /).
    pub workdir: Option<String>,
}

/// `64M`, `1G`, `512K`, `4096`: bytes, with binary units as memory.max takes them.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        b'T' | b't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// `"027"`: an octal umask of at most 0777.
pub fn parse_umask(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o777)
}

impl Validator {
    /// Reads one of [`FIELDS`] of `section` into `l`; every mistake is an error at its place.
    pub(super) fn limit(&mut self, key: &str, v: &Val<'_>, section: &str, l: &mut Limits) {
        let at = v.span().start;
        match key {
            "memory_max" => {
                let parsed = match v.get_ref() {
                    DeValue::String(t) => parse_bytes(t),
                    DeValue::Integer(_) => integer(v.get_ref()).and_then(|n| u64::try_from(n).ok()),
                    _ => None,
                };
                match parsed {
                    Some(b) if b >= 1 << 20 => l.memory_max = Some(b),
                    Some(_) => self.err(at, format!("`memory_max` of {section} is below 1M, too little for any program to start; write e.g. \"64M\"")),
                    None => self.err(at, format!("`memory_max` of {section} must be a size like \"64M\", \"512K\" or \"1G\" (binary units, bytes without one)")),
                }
            }
            "pids_max" => match integer(v.get_ref()) {
                Some(n) if (1..=4_194_304).contains(&n) => l.pids_max = Some(n as u64),
                _ => self.err(at, format!("`pids_max` of {section} must be a whole number from 1 to 4194304 (processes and threads; default {DEFAULT_PIDS_MAX})")),
            },
            "cpu_weight" => match integer(v.get_ref()) {
                Some(n) if (1..=10_000).contains(&n) => l.cpu_weight = Some(n as u64),
                _ => self.err(at, format!("`cpu_weight` of {section} must be a whole number from 1 to 10000 (100 is everyone's share)")),
            },
            "umask" => {
                if let Some(t) = self.string(v, "umask") {
                    match parse_umask(&t) {
                        Some(m) => l.umask = Some(m),
                        None => self.err(at, format!("`umask` = \"{t}\" of {section} is not an octal mask; write e.g. \"027\" (at most \"0777\")")),
                    }
                }
            }
            "workdir" => {
                if let Some(t) = self.string(v, "workdir") {
                    if !t.starts_with('/') || t.contains('\0') {
                        self.err(at, format!("`workdir` = \"{t}\" of {section} must be an absolute path such as \"/var/lib/app\""));
                    } else {
                        l.workdir = Some(t);
                    }
                }
            }
            "rlimits" => {
                let Some(t) = self.table(v, &format!("{}.rlimits", section.trim_matches(['[', ']']))) else {
                    return;
                };
                let names: Vec<&str> = Rlimit::ALL.iter().map(|(n, _)| *n).collect();
                for (k, v) in entries(t) {
                    let at = v.span().start;
                    let name = k.get_ref().as_ref();
                    let Some(r) = Rlimit::from_name(name) else {
                        self.err(k.span().start, format!("`rlimits.{name}` of {section} is not a limit keel knows; use one of {}", names.join(", ")));
                        continue;
                    };
                    let value = match v.get_ref() {
                        DeValue::String(s) if s.as_ref() == "infinity" => Some(u64::MAX),
                        _ => integer(v.get_ref()).and_then(|n| u64::try_from(n).ok()),
                    };
                    match value {
                        Some(n) => {
                            l.rlimits.retain(|(x, _)| *x != r);
                            l.rlimits.push((r, n));
                        }
                        None => self.err(at, format!("`rlimits.{name}` of {section} must be a whole number of at least 0, or \"infinity\"")),
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_umasks_parse() {
        assert_eq!(parse_bytes("64M"), Some(64 << 20));
        assert_eq!(parse_bytes("1G"), Some(1 << 30));
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("64MB"), None);
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(parse_bytes("M"), None);
        assert_eq!(parse_bytes("99999999999T"), None);
        assert_eq!(parse_umask("027"), Some(0o27));
        assert_eq!(parse_umask("0777"), Some(0o777));
        assert_eq!(parse_umask("8"), None);
        assert_eq!(parse_umask("1777"), None);
    }
}
