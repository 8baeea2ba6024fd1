//! The fd registry: every descriptor the loop polls, each with what it stands for, and
//! one `poll` over them that says which woke up. The rooms add their own descriptors
//! (`register`); the loop reads what `Woken` names.
#![forbid(unsafe_code)]

use super::host::Host;
use crate::log::Level;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::os::fd::BorrowedFd;
use supervisor::{Mono, SvcId};

/// What a polled descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Signal,
    Listener,
    Conn(u64),
    Pipe(usize),
    Notify(SvcId),
    Button(usize),
    Group(SvcId),
    /// A console tty with a log backlog, polled for room (POLLOUT).
    Console,
}

/// Which descriptors came back from poll, by kind, in the order they were added.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Woken {
    pub signal: bool,
    pub listener: bool,
    pub conns: Vec<u64>,
    pub pipes: Vec<usize>,
    pub notify: Vec<SvcId>,
    pub buttons: Vec<usize>,
    pub groups: Vec<SvcId>,
    pub consoles: bool,
}

impl Woken {
    fn add(&mut self, src: Source) {
        match src {
            Source::Signal => self.signal = true,
            Source::Listener => self.listener = true,
            Source::Conn(id) => self.conns.push(id),
            Source::Pipe(i) => self.pipes.push(i),
            Source::Notify(s) => self.notify.push(s),
            Source::Button(i) => self.buttons.push(i),
            Source::Group(s) => self.groups.push(s),
            Source::Console => self.consoles = true,
        }
    }
}

/// The poll timeout for the nearest deadline `at` (None: none; a time not after `now`:
/// do not wait). Without a signalfd the loop wakes each second to reap.
pub fn timeout(now: Mono, at: Option<Mono>, signalfd: bool) -> PollTimeout {
    match at {
        None if signalfd => PollTimeout::NONE,
        None => PollTimeout::from(1000u16),
        Some(at) => {
            let ms = at.ms_since(now).min(i32::MAX as u64);
            PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
        }
    }
}

/// The descriptors of one round.
#[derive(Default)]
pub struct Registry<'a> {
    fds: Vec<PollFd<'a>>,
    what: Vec<Source>,
}

impl<'a> Registry<'a> {
    /// Polls `fd` for `flags`, as `src`.
    pub fn add(&mut self, fd: BorrowedFd<'a>, flags: PollFlags, src: Source) {
        self.fds.push(PollFd::new(fd, flags));
        self.what.push(src);
    }

    /// Waits up to `timeout` for any of them; a failed poll is logged and wakes nothing.
    pub fn poll(mut self, timeout: PollTimeout, host: Host) -> Woken {
        match poll(&mut self.fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => host.log(Level::Debug, &format!("poll failed: {e}")),
        }
        let mut woken = Woken::default();
        for (fd, src) in self.fds.iter().zip(self.what) {
            if fd.revents().is_some_and(|ev| !ev.is_empty()) {
                woken.add(src);
            }
        }
        woken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn the_timeout_is_the_nearest_deadline() {
        let now = Mono(10_000);
        assert_eq!(timeout(now, None, true), PollTimeout::NONE);
        assert_eq!(timeout(now, None, false), PollTimeout::from(1000u16));
        assert_eq!(timeout(now, Some(now), true), PollTimeout::ZERO);
        assert_eq!(timeout(now, Some(Mono(9_000)), true), PollTimeout::ZERO);
        assert_eq!(
            timeout(now, Some(Mono(10_250)), false),
            PollTimeout::from(250u16)
        );
        assert_eq!(timeout(now, Some(Mono(u64::MAX)), true), PollTimeout::MAX);
    }

    #[test]
    fn only_the_ready_descriptors_wake_with_what_they_stand_for() {
        let (r1, w1) = nix::unistd::pipe().unwrap();
        let (r2, _w2) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&w1, b"x").unwrap();
        let mut reg = Registry::default();
        reg.add(r2.as_fd(), PollFlags::POLLIN, Source::Pipe(0));
        reg.add(r1.as_fd(), PollFlags::POLLIN, Source::Pipe(1));
        reg.add(r1.as_fd(), PollFlags::POLLIN, Source::Conn(7));
        let woken = reg.poll(PollTimeout::ZERO, Host::Supervise { cgroups: false });
        assert_eq!(
            woken,
            Woken {
                pipes: vec![1],
                conns: vec![7],
                ..Woken::default()
            }
        );
    }
}
