//! Open files: how many a run of N sessions needs (each session's tap listens, and its
//! client's connections, the tap's own toward the gateway and, on the embedded stack, the
//! balancer's and the replicas' all hold one), the process's own limit raised to the hard
//! limit it may reach, and — when that is still too low — the number needed and how to
//! raise it, in words, before anything starts (rather than sessions failing one by one on
//! "too many open files" that look like the stack's fault).

/// Open files per session through a gateway stickyscope does not run (measured: 300
/// polling sessions, 1,211 open files).
pub const PER_SESSION_THROUGH_A_GATEWAY: u64 = 5;
/// Open files per session on a stack in this process, the embedded stack (measured: 500
/// polling sessions, 4,027 open files).
pub const PER_SESSION_IN_PROCESS: u64 = 9;
/// What the process holds besides its sessions (logs, runtimes, the window).
pub const BASE: u64 = 128;

/// Why the sessions asked for cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenFilesError {
    /// The limit, raised as far as this process may, is still below what is needed.
    #[error("{sessions} sessions need about {needed} open files, and this process may open only {soft} (its hard limit is {hard}): raise the limit first, e.g. `ulimit -n {suggest}` in this shell (beyond the hard limit as root: /etc/security/limits.conf, or LimitNOFILE= for a systemd service), or ask for fewer sessions")]
    TooLow {
        /// Sessions asked for.
        sessions: usize,
        /// Open files they need.
        needed: u64,
        /// The limit now.
        soft: u64,
        /// The most it may be raised to without privileges.
        hard: u64,
        /// A round number at least `needed`.
        suggest: u64,
    },
}

/// Open files `sessions` need, the stack in this process or not.
pub fn needed(sessions: usize, stack_in_process: bool) -> u64 {
    let per = if stack_in_process {
        PER_SESSION_IN_PROCESS
    } else {
        PER_SESSION_THROUGH_A_GATEWAY
    };
    BASE + per * sessions as u64
}

/// The process's open-file limit (soft, hard).
// `rlim_t` is u64 here but not on every platform.
#[allow(clippy::unnecessary_cast)]
pub fn limits() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((limit.rlim_cur as u64, limit.rlim_max as u64))
}

/// The most open files the kernel lets any process have (`fs.nr_open`).
fn kernel_most() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(1_048_576)
}

/// Raises the soft limit to the hard one (what any process may do for itself; an unlimited
/// hard limit as far as the kernel allows); returns the limits after.
#[allow(clippy::unnecessary_cast)]
pub fn raise() -> std::io::Result<(u64, u64)> {
    let (soft, hard) = limits()?;
    let target = hard.min(kernel_most());
    if soft < target {
        let limit = libc::rlimit {
            rlim_cur: target as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    limits()
}

/// Raises the limit as far as it goes and checks it against what `sessions` need.
pub fn ensure(sessions: usize, stack_in_process: bool) -> Result<(), OpenFilesError> {
    let needed = needed(sessions, stack_in_process);
    // A limit that cannot be read or raised is left to the sessions to meet.
    let Ok((soft, hard)) = raise() else {
        return Ok(());
    };
    judge(sessions, needed, soft, hard)
}

/// Whether `soft` open files are enough for `needed`.
fn judge(sessions: usize, needed: u64, soft: u64, hard: u64) -> Result<(), OpenFilesError> {
    if soft >= needed {
        return Ok(());
    }
    Err(OpenFilesError::TooLow {
        sessions,
        needed,
        soft,
        hard,
        suggest: needed.div_ceil(1024) * 1024,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_need_grows_with_the_sessions_and_a_low_limit_says_how_to_raise_it() {
        assert_eq!(needed(0, false), BASE);
        assert_eq!(needed(500, true), BASE + 4_500);
        assert!(needed(10_000, false) > 50_000);
        assert_eq!(judge(10, 178, 1024, 1024), Ok(()));
        let err = judge(500, 4_628, 1_024, 4_096).unwrap_err();
        assert_eq!(
            err.to_string(),
            "500 sessions need about 4628 open files, and this process may open only 1024 (its hard limit is 4096): raise the limit first, e.g. `ulimit -n 5120` in this shell (beyond the hard limit as root: /etc/security/limits.conf, or LimitNOFILE= for a systemd service), or ask for fewer sessions"
        );
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (soft, hard) = raise().unwrap();
        assert_eq!(soft, hard.min(kernel_most()));
    }
}
