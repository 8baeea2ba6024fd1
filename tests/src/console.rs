//! The pure half of the serial console: the transcript, patterns, the last lines for error
//! messages, and the markers `Vm::run` wraps a command in.
//!
//! Nothing here touches QEMU, threads or the clock, so every rule is unit-tested; the
//! process side lives in `vm.rs`.

use std::fmt;

/// The console transcript as text: carriage returns dropped, UTF-8 decoded across reads.
#[derive(Debug, Default)]
pub struct Transcript {
    text: String,
    /// The start of a UTF-8 sequence split across two reads.
    carry: Vec<u8>,
}

impl Transcript {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the console.
    pub fn push(&mut self, bytes: &[u8]) {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(bytes);
        let mut rest = buf.as_slice();
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    self.push_str(s);
                    return;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // The prefix is valid UTF-8 by construction; lossy keeps this total.
                    self.push_str(&String::from_utf8_lossy(good));
                    match e.error_len() {
                        Some(n) => {
                            self.text.push(char::REPLACEMENT_CHARACTER);
                            rest = &bad[n..];
                        }
                        None => {
                            self.carry = bad.to_vec();
                            return;
                        }
                    }
                }
            }
        }
    }

    fn push_str(&mut self, s: &str) {
        self.text.extend(s.chars().filter(|&c| c != '\r'));
    }

    /// Everything received so far.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// What `wait_for` looks for: a plain substring (`"keel: powering off"`) or a regex.
#[derive(Debug, Clone)]
pub enum Pattern {
    Substring(String),
    Regex(regex_lite::Regex),
}

impl Pattern {
    /// A regex pattern; fails with the pattern and the parser's reason.
    pub fn regex(re: &str) -> anyhow::Result<Self> {
        regex_lite::Regex::new(re)
            .map(Pattern::Regex)
            .map_err(|e| anyhow::anyhow!("bad console regex {re:?}: {e}"))
    }

    /// The byte range of the first match in `hay`.
    pub fn find(&self, hay: &str) -> Option<(usize, usize)> {
        match self {
            Pattern::Substring(s) => hay.find(s.as_str()).map(|i| (i, i + s.len())),
            Pattern::Regex(re) => re.find(hay).map(|m| (m.start(), m.end())),
        }
    }
}

impl From<&str> for Pattern {
    fn from(s: &str) -> Self {
        Pattern::Substring(s.to_string())
    }
}

impl From<String> for Pattern {
    fn from(s: String) -> Self {
        Pattern::Substring(s)
    }
}

impl From<&String> for Pattern {
    fn from(s: &String) -> Self {
        Pattern::Substring(s.clone())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Substring(s) => write!(f, "{s:?}"),
            Pattern::Regex(re) => write!(f, "regex /{}/", re.as_str()),
        }
    }
}

/// The whole line(s) around the byte range `start..end` of `text`, without the newline.
pub fn line_around(text: &str, start: usize, end: usize) -> &str {
    let from = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let to = text[end..].find('\n').map_or(text.len(), |i| end + i);
    &text[from..to]
}

/// The last `n` lines of `text` (a partial last line counts), for error messages.
pub fn last_lines(text: &str, n: usize) -> &str {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut from = body.len();
    for _ in 0..n {
        match body[..from].rfind('\n') {
            Some(i) => from = i,
            None => return body,
        }
    }
    &body[from + 1..]
}

/// The line typed for `Vm::run`: the command between two markers, with its output saved to
/// a file and printed back one tagged line at a time, then `$?` and whether the output
/// ended in a newline.
///
/// The console is shared: keel, the kernel and the services print there whenever they like
/// (a host key's randomart block, a log line), so text between the markers is not all the
/// command's. Only lines tagged `KEELOUT_<id> ` are. Each tagged line is one `write` to the
/// tty, and the tty never splits one `write` with another, so a line cannot be cut in two.
///
/// The markers are printed by `printf` from two words, so the echo of the typed line holds
/// `KEELRUN 7` while only the output holds `KEELRUN_7` (and `KEELOUT_7`, built from `$t`):
/// the echo can never match. The
/// command runs in a `{ ...; }` group in the shell itself, so `jobs`, `cd` and `tty` (stdin
/// stays the console) behave as typed.
pub fn wrap_command(cmd: &str, id: u32) -> String {
    let out = format!("/tmp/.keelrun.{id}");
    format!(
        "printf '%s_%s\\n' KEELRUN {id}; {{ {cmd}; }} >{out} 2>&1; r=$?; t=KEELOUT; \
         sed \"s/^/${{t}}_{id} /\" {out}; n=$(tail -c1 {out} | wc -l); rm -f {out}; \
         printf '\\n%s_%s:%d:%d\\n' KEELEND {id} \"$r\" \"$n\""
    )
}

/// Finds the output of command `id` in `text`: its exit status, what it printed, and the
/// byte offset just past the end marker. `None` until the end marker's line is complete.
pub fn extract_marked(text: &str, id: u32) -> Option<(i32, String, usize)> {
    let start_marker = format!("KEELRUN_{id}\n");
    let end_marker = format!("\nKEELEND_{id}:");
    let tag = format!("KEELOUT_{id} ");
    let start = text.find(&start_marker)? + start_marker.len();
    let end = start + text[start..].find(&end_marker)?;
    let status_start = end + end_marker.len();
    let status_len = text[status_start..].find('\n')?;
    let (code, newline) = text[status_start..status_start + status_len]
        .trim()
        .split_once(':')?;
    let code = code.parse().ok()?;
    // Everything else between the markers was printed by someone else.
    let lines: Vec<&str> = text[start..end]
        .split('\n')
        .filter_map(|l| l.strip_prefix(&tag))
        .collect();
    let mut output = lines.join("\n");
    if newline == "1" && !lines.is_empty() {
        output.push('\n');
    }
    Some((code, output, status_start + status_len + 1))
}

/// The message the kernel prints when it panics; no VM test may see it.
pub const KERNEL_PANIC: &str = "Kernel panic";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_drops_cr_and_joins_split_utf8() {
        let mut t = Transcript::new();
        t.push(b"a\r\nb ");
        t.push(&"é".as_bytes()[..1]);
        assert_eq!(t.text(), "a\nb ");
        t.push(&"é".as_bytes()[1..]);
        t.push(b"\xff!");
        assert_eq!(t.text(), "a\nb é\u{fffd}!");
    }

    #[test]
    fn patterns_find_substrings_and_regexes() {
        let text = "x\n[    1.000000] keel: keel 0.1.0 starting as PID 1\n";
        let p: Pattern = "starting as PID 1".into();
        let (s, e) = p.find(text).unwrap();
        assert_eq!(&text[s..e], "starting as PID 1");
        let re = Pattern::regex(r"keel: keel \S+ starting").unwrap();
        let (s, e) = re.find(text).unwrap();
        assert_eq!(
            line_around(text, s, e),
            "[    1.000000] keel: keel 0.1.0 starting as PID 1"
        );
        assert!(Pattern::regex("(").is_err());
        assert!(Pattern::from("nope").find(text).is_none());
    }

    #[test]
    fn text_that_lands_inside_a_command_is_not_its_output() {
        // A keel log line and a host key's randomart block (no timestamp) arrive while
        // `cat /proc/1/comm` runs.
        let console = "KEELRUN_5\n[   17.048915] keel: hostkeys finished\n+--[ED25519 256]--+\n\
                       |    .=.          |\n+----[SHA256]-----+\nKEELOUT_5 init\n\
                       [    1.000000] x\n\nKEELEND_5:0:1\n";
        let (code, out, _) = extract_marked(console, 5).unwrap();
        assert_eq!(code, 0);
        assert_eq!(out, "init\n");
    }

    #[test]
    fn last_lines_counts_from_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines("a\nb", 40), "a\nb");
        assert_eq!(last_lines("", 3), "");
    }

    /// The typed line, run by a real shell, with text from elsewhere spliced in.
    fn shell_console(cmd: &str, id: u32) -> String {
        let typed = wrap_command(cmd, id);
        let out = std::process::Command::new("sh")
            .args(["-c", &typed])
            .output()
            .expect("run sh");
        let printed = String::from_utf8(out.stdout).unwrap();
        // What the console shows: the echo of the line, then what the shell printed.
        format!("~ # {typed}\n{printed}~ # ")
    }

    #[test]
    fn marked_output_ignores_the_echo() {
        let typed = wrap_command("echo $((6*7))", 3);
        assert!(
            !typed.contains("KEELRUN_3") && !typed.contains("KEELOUT_3 "),
            "typed line must not hold the markers: {typed}"
        );
        let console = shell_console("echo $((6*7))", 3);
        let (code, out, end) = extract_marked(&console, 3).unwrap();
        assert_eq!((code, out.as_str()), (0, "42\n"), "{console}");
        assert_eq!(&console[end..], "~ # ");
    }

    #[test]
    fn marked_output_keeps_status_stderr_and_a_missing_newline() {
        let (code, out, _) =
            extract_marked(&shell_console("printf 'a\\nb'; false", 12), 12).unwrap();
        assert_eq!((code, out.as_str()), (1, "a\nb"));
        let (code, out, _) = extract_marked(
            &shell_console("echo; echo err >&2; exit_127_please", 13),
            13,
        )
        .unwrap();
        assert_eq!(code, 127);
        assert!(out.starts_with("\nerr\n"), "{out:?}");
        let (code, out, _) = extract_marked(&shell_console("true", 14), 14).unwrap();
        assert_eq!((code, out.as_str()), (0, ""));
        // Another id's markers do not match.
        assert!(extract_marked(&shell_console("true", 14), 1).is_none());
    }

    #[test]
    fn marked_output_waits_for_the_complete_end_line() {
        assert!(extract_marked("KEELRUN_1\nKEELOUT_1 42\n", 1).is_none());
        assert!(extract_marked("KEELRUN_1\nKEELOUT_1 42\n\nKEELEND_1:12", 1).is_none());
        assert_eq!(
            extract_marked("KEELRUN_1\n\nKEELEND_1:127:0\n", 1)
                .unwrap()
                .0,
            127
        );
    }
}
