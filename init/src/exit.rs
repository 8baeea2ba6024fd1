//! Exit codes of keel's applets, in one place.
//!
//! The values follow s6 and the shell: 100 for a permanent error (bad usage, bad config,
//! not allowed), 111 for a temporary one (a system call failed; trying again may work),
//! 126 and 127 for a program that could not be executed or was not found. PID 1 itself
//! never exits; these codes are for the applets and for children whose `exec` failed.
#![forbid(unsafe_code)]

/// How an applet ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything went as asked.
    Ok = 0,
    /// The check ran and found problems (for example `keel check` on a bad config).
    Failed = 1,
    /// `keelctl is-up`: not every service named is up (systemctl is-active's code).
    NotUp = 3,
    /// A permanent error: bad usage, a bad config, or not permitted. Retrying will not help.
    Permanent = 100,
    /// A temporary error: a system call failed. Retrying later may work.
    Temporary = 111,
    /// The program was found but could not be executed.
    CannotExec = 126,
    /// The program was not found.
    NotFound = 127,
}

impl Exit {
    /// The numeric exit status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit code a child should use when `exec` failed with `errno`, as a shell does.
    pub fn for_exec_errno(errno: i32) -> Exit {
        if errno == libc::ENOENT || errno == libc::ENOTDIR {
            Exit::NotFound
        } else {
            Exit::CannotExec
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_documented_values() {
        assert_eq!(Exit::Ok.code(), 0);
        assert_eq!(Exit::Failed.code(), 1);
        assert_eq!(Exit::NotUp.code(), 3);
        assert_eq!(Exit::Permanent.code(), 100);
        assert_eq!(Exit::Temporary.code(), 111);
        assert_eq!(Exit::CannotExec.code(), 126);
        assert_eq!(Exit::NotFound.code(), 127);
    }

    #[test]
    fn exec_errno_maps_like_a_shell() {
        assert_eq!(Exit::for_exec_errno(libc::ENOENT), Exit::NotFound);
        assert_eq!(Exit::for_exec_errno(libc::EACCES), Exit::CannotExec);
        assert_eq!(Exit::for_exec_errno(libc::ENOEXEC), Exit::CannotExec);
    }
}
