//! Signals as a config names them (`stop_signal = "TERM"`): the Linux numbers, their names
//! and the one parser. The supervisor core and init/ use the same type.

use std::fmt;

/// A signal number. The constants are the Linux numbers shared by x86, arm and riscv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sig(pub u8);

/// Signal names keel accepts in configs, with their numbers.
const SIGNALS: &[(&str, u8)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

impl Sig {
    pub const HUP: Sig = Sig(1);
    pub const INT: Sig = Sig(2);
    pub const QUIT: Sig = Sig(3);
    pub const KILL: Sig = Sig(9);
    pub const USR1: Sig = Sig(10);
    pub const USR2: Sig = Sig(12);
    pub const TERM: Sig = Sig(15);
    pub const CONT: Sig = Sig(18);

    /// Parses `TERM`, `SIGTERM`, `term` or a number from 1 to 64.
    pub fn parse(s: &str) -> Option<Sig> {
        let upper = s.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Ok(n) = bare.parse::<u8>() {
            return (1..=64).contains(&n).then_some(Sig(n));
        }
        SIGNALS
            .iter()
            .find(|(name, _)| *name == bare)
            .map(|&(_, n)| Sig(n))
    }

    /// The names [`Sig::parse`] accepts, without the `SIG` prefix.
    pub fn names() -> impl Iterator<Item = &'static str> {
        SIGNALS.iter().map(|(n, _)| *n)
    }
}

impl fmt::Display for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match SIGNALS.iter().find(|(_, n)| *n == self.0) {
            Some((name, _)) => write!(f, "SIG{name}"),
            None => write!(f, "signal {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_parse_in_every_spelling() {
        assert_eq!(Sig::parse("TERM"), Some(Sig::TERM));
        assert_eq!(Sig::parse("SIGTERM"), Some(Sig::TERM));
        assert_eq!(Sig::parse("sighup"), Some(Sig::HUP));
        assert_eq!(Sig::parse("9"), Some(Sig::KILL));
        assert_eq!(Sig::parse("SIG9"), Some(Sig::KILL));
        assert_eq!(Sig::parse("0"), None);
        assert_eq!(Sig::parse("65"), None);
        assert_eq!(Sig::parse("TERMINATE"), None);
        assert_eq!(Sig::TERM.to_string(), "SIGTERM");
        assert_eq!(Sig(40).to_string(), "signal 40");
    }
}
