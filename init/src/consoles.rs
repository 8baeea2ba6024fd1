//! Console discovery: which ttys the kernel uses as consoles.
//!
//! Pure: the caller reads `/sys/class/tty/console/active` and hands the text in. The kernel
//! lists the active consoles there with the preferred one (the one `/dev/console` is)
//! LAST, so `console=tty0 console=ttyS0` gives `tty0 ttyS0` and the shell goes on ttyS0.
//! KVM and Linode use `ttyS0`, Xen `hvc0`. This module must not touch the filesystem.
#![forbid(unsafe_code)]

/// Where the kernel lists the active consoles.
pub const ACTIVE_PATH: &str = "/sys/class/tty/console/active";

/// The console used when the kernel names none (or the file cannot be read).
pub const FALLBACK: &str = "console";

/// The ttys keel logs to and the one it puts the shell on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consoles {
    /// Every console, in the kernel's order, each a name under /dev (`ttyS0`, `hvc0`).
    pub all: Vec<String>,
}

impl Consoles {
    /// The preferred console: the last one the kernel lists.
    pub fn primary(&self) -> &str {
        self.all.last().map_or(FALLBACK, String::as_str)
    }

    /// `/dev/<name>` of the preferred console.
    pub fn primary_path(&self) -> String {
        format!("/dev/{}", self.primary())
    }
}

/// Parses the text of `/sys/class/tty/console/active`.
///
/// Names are whitespace-separated. A name with a `/` or `..` in it, or an empty list,
/// gives the `/dev/console` fallback for that entry. Duplicates are dropped.
pub fn parse_active(text: &str) -> Consoles {
    let mut all: Vec<String> = Vec::new();
    for name in text.split_whitespace() {
        if name.contains('/') || name.contains("..") {
            continue;
        }
        if !all.iter().any(|n| n == name) {
            all.push(name.to_string());
        }
    }
    if all.is_empty() {
        all.push(FALLBACK.to_string());
    }
    Consoles { all }
}

/// Parses a `/sys/class/tty/<name>/dev` file (`4:64`) into (major, minor).
pub fn parse_dev_numbers(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The `TERM` value for a shell on this console: VGA ttys are `linux`, the rest serial-like.
pub fn term_for(name: &str) -> &'static str {
    let vt = name
        .strip_prefix("tty")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()));
    if vt { "linux" } else { "vt100" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_serial() {
        let c = parse_active("ttyS0\n");
        assert_eq!(c.all, vec!["ttyS0"]);
        assert_eq!(c.primary(), "ttyS0");
        assert_eq!(c.primary_path(), "/dev/ttyS0");
    }

    #[test]
    fn xen_hvc() {
        let c = parse_active("hvc0\n");
        assert_eq!(c.primary(), "hvc0");
    }

    #[test]
    fn preferred_console_is_listed_last() {
        let c = parse_active("tty0 ttyS0\n");
        assert_eq!(c.all, vec!["tty0", "ttyS0"]);
        assert_eq!(c.primary(), "ttyS0");
        let c = parse_active("ttyS0 tty0\n");
        assert_eq!(c.primary(), "tty0");
    }

    #[test]
    fn empty_falls_back_to_dev_console() {
        for text in ["", "\n", "   "] {
            let c = parse_active(text);
            assert_eq!(c.all, vec!["console"]);
            assert_eq!(c.primary_path(), "/dev/console");
        }
    }

    #[test]
    fn odd_names_are_dropped_and_duplicates_merged() {
        let c = parse_active("../etc/passwd ttyS0 ttyS0 a/b\n");
        assert_eq!(c.all, vec!["ttyS0"]);
    }

    #[test]
    fn dev_numbers() {
        assert_eq!(parse_dev_numbers("4:64\n"), Some((4, 64)));
        assert_eq!(parse_dev_numbers("229:0"), Some((229, 0)));
        assert_eq!(parse_dev_numbers("nonsense"), None);
        assert_eq!(parse_dev_numbers("4:"), None);
    }

    #[test]
    fn term_by_console_kind() {
        assert_eq!(term_for("tty0"), "linux");
        assert_eq!(term_for("tty1"), "linux");
        assert_eq!(term_for("ttyS0"), "vt100");
        assert_eq!(term_for("hvc0"), "vt100");
        assert_eq!(term_for("console"), "vt100");
        assert_eq!(term_for("tty"), "vt100");
    }
}
