//! A client for QEMU's human monitor on a unix socket (`-monitor unix:PATH,server=on,wait=off`).
//!
//! Each command opens a fresh connection (QEMU serves one client at a time), waits for the
//! `(qemu) ` prompt, sends the line and reads up to the next prompt. It never keeps a
//! connection open, so a test can't hold the monitor away from another command.

use anyhow::{Context, Result, bail};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The monitor's prompt.
const PROMPT: &str = "(qemu) ";

/// Reads from `s` until `buf` ends with the prompt; `Ok(false)` if QEMU closed the socket.
fn read_to_prompt(s: &mut UnixStream, buf: &mut Vec<u8>) -> Result<bool> {
    let mut chunk = [0u8; 1024];
    loop {
        if buf.ends_with(PROMPT.as_bytes()) {
            return Ok(true);
        }
        match s.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the QEMU monitor"),
        }
    }
}

/// Connects to the monitor, waiting up to `limit` for QEMU to create and serve the socket.
pub fn connect(path: &Path, limit: Duration) -> Result<UnixStream> {
    let deadline = Instant::now() + limit;
    loop {
        match UnixStream::connect(path) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(20)))?;
                return Ok(s);
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(e).with_context(|| {
                    format!("cannot connect to the QEMU monitor at {}", path.display())
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Sends one monitor command and returns its reply (without the echo and prompt).
/// `quit` and the like may close the socket instead of prompting: that is not an error.
pub fn command(path: &Path, cmd: &str) -> Result<String> {
    let mut s = connect(path, Duration::from_secs(10))?;
    let mut banner = Vec::new();
    if !read_to_prompt(&mut s, &mut banner)? {
        bail!(
            "the QEMU monitor at {} closed before its prompt",
            path.display()
        );
    }
    s.write_all(format!("{cmd}\n").as_bytes())
        .with_context(|| format!("sending {cmd:?} to the QEMU monitor"))?;
    let mut reply = Vec::new();
    let prompted = read_to_prompt(&mut s, &mut reply)?;
    Ok(clean_reply(&String::from_utf8_lossy(&reply), cmd, prompted))
}

/// The reply text: the echoed command line (with its terminal escapes) and the final
/// prompt removed, carriage returns dropped.
pub fn clean_reply(raw: &str, _cmd: &str, prompted: bool) -> String {
    let text = raw.replace('\r', "");
    let body = if prompted {
        text.strip_suffix(PROMPT).unwrap_or(&text)
    } else {
        &text
    };
    // The first line is the monitor's echo of what we typed.
    match body.split_once('\n') {
        Some((_, rest)) => rest.to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_drops_echo_and_prompt() {
        let raw = "info status\x1b[K\r\nVM status: running\r\n(qemu) ";
        assert_eq!(
            clean_reply(raw, "info status", true),
            "VM status: running\n"
        );
        assert_eq!(
            clean_reply("system_powerdown\r\n(qemu) ", "system_powerdown", true),
            ""
        );
        assert_eq!(clean_reply("quit\r\n", "quit", false), "");
    }

    #[test]
    fn talks_to_a_fake_monitor() {
        let dir = std::env::temp_dir().join(format!("keel-monitor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("m.sock");
        let _ = std::fs::remove_file(&sock);
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            c.write_all(b"QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) ")
                .unwrap();
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while c.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
                line.push(b[0]);
            }
            assert_eq!(line, b"info status");
            c.write_all(b"info status\r\nVM status: running\r\n(qemu) ")
                .unwrap();
        });
        assert_eq!(
            command(&sock, "info status").unwrap(),
            "VM status: running\n"
        );
        server.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
