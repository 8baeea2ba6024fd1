//! `keel emergency-wait SECONDS`: the gate before the emergency shell when
//! `keel.emergency_timeout` is set. PID 1 runs it on the console tty; it exits 0 as soon
//! as someone presses Enter, and 1 when nobody did within SECONDS (PID 1 then reboots).
//!
//! It only waits for a line on stdin: it must not open a shell, ask for a password or
//! touch anything else (the shell and sulogin come after it, from PID 1).
#![forbid(unsafe_code)]

use crate::exit::Exit;
use crate::sys::clock;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io::Read;
use std::os::fd::AsFd;

/// Runs the applet.
pub fn main(args: &[String]) -> Exit {
    let Some(secs) = args.first().and_then(|a| a.parse::<u64>().ok()) else {
        eprintln!("usage: keel emergency-wait SECONDS (exits 0 on Enter, 1 after SECONDS)");
        return Exit::Permanent;
    };
    let end = clock::now().plus_ms(secs.saturating_mul(1000));
    let stdin = std::io::stdin();
    loop {
        let left = end.ms_since(clock::now());
        if left == 0 {
            return Exit::Failed;
        }
        let ms = i32::try_from(left).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                eprintln!("keel emergency-wait: cannot poll the console: {e}");
                return Exit::Failed;
            }
        }
        let mut buf = [0u8; 256];
        match stdin.lock().read(&mut buf) {
            // A line (the tty is in canonical mode): someone is there.
            Ok(n) if n > 0 => return Exit::Ok,
            // A hangup or an error: nobody can use this console.
            Ok(_) | Err(_) => return Exit::Failed,
        }
    }
}
