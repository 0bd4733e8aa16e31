//! Open files: how many a run of N light sessions needs (each session's connection toward
//! the gateway and, on the embedded stack, the balancer's and the replica's all hold one),
//! how many a limit holds, the process's own limit raised to the hard limit it may reach,
//! and — when that is still too low — the number needed and how to raise it, in words,
//! before anything starts (rather than sessions failing one by one on "too many open
//! files" that look like the stack's fault).

/// Open files per session through a gateway stickyscope does not run: a polling session's
/// held poll (its posts share a pool of idle connections), a WebSocket's one connection
/// (measured: 1,000 idle polling sessions, 1,047 open files; 10,000, 10,037).
pub const PER_SESSION_THROUGH_A_GATEWAY: u64 = 1;
/// Open files per session on a stack in this process, the embedded stack: the session's
/// connection, the balancer's two sides and the replica's (measured: 1,000 polling
/// sessions with a 3 s heartbeat, 5,085 open files).
pub const PER_SESSION_IN_PROCESS: u64 = 5;
/// Room for connections beyond one a session (posts, upgrades under way), per 10 sessions.
pub const SPARE_PER_TEN: u64 = 1;
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
    let sessions = sessions as u64;
    BASE + per * sessions + SPARE_PER_TEN * sessions.div_ceil(10)
}

/// The most sessions `soft` open files hold (the inverse of [`needed`]).
pub fn most_sessions(soft: u64, stack_in_process: bool) -> usize {
    let per = if stack_in_process {
        PER_SESSION_IN_PROCESS
    } else {
        PER_SESSION_THROUGH_A_GATEWAY
    };
    // needed(n) = BASE + per·n + ⌈n/10⌉·SPARE ≤ soft, within a session.
    let room = soft.saturating_sub(BASE) * 10;
    (room / (per * 10 + SPARE_PER_TEN)) as usize
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
        assert_eq!(needed(500, true), BASE + 2_500 + 50);
        assert_eq!(needed(10_000, false), BASE + 10_000 + 1_000);
        assert_eq!(judge(10, 178, 1024, 1024), Ok(()));
        let err = judge(500, 4_628, 1_024, 4_096).unwrap_err();
        assert_eq!(
            err.to_string(),
            "500 sessions need about 4628 open files, and this process may open only 1024 (its hard limit is 4096): raise the limit first, e.g. `ulimit -n 5120` in this shell (beyond the hard limit as root: /etc/security/limits.conf, or LimitNOFILE= for a systemd service), or ask for fewer sessions"
        );
    }

    #[test]
    fn the_most_sessions_a_limit_holds_is_what_they_need() {
        for in_process in [false, true] {
            for soft in [200, 1_024, 20_000, 65_536] {
                let most = most_sessions(soft, in_process);
                assert!(needed(most, in_process) <= soft, "{soft} {in_process}");
                assert!(needed(most + 2, in_process) > soft, "{soft} {in_process}");
            }
        }
        assert_eq!(most_sessions(100, false), 0);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (soft, hard) = raise().unwrap();
        assert_eq!(soft, hard.min(kernel_most()));
    }
}
