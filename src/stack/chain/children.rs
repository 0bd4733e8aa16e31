//! Child processes that never outlive stickyscope.
//!
//! Each child runs in a process group of its own, with its output in a log file, and is
//! started with Linux's parent-death signal (`PR_SET_PDEATHSIG`), so the kernel signals it
//! when stickyscope dies however it dies — Ctrl-C, SIGTERM, a panic, `kill -9`. A process
//! with workers of its own (nginx) gets SIGTERM, on which it takes its workers down; a
//! single process gets SIGKILL. Stopping or killing a child signals its whole group.
//!
//! The parent-death signal fires when the *thread* that forked the child ends, so every
//! child is forked by one [`Spawner`] thread that lives as long as the children it started.
//! A child that exits when nobody asked it to is reported on a channel, with the last lines
//! of its log.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::stack::UnexpectedExit;

/// How many lines of a dead child's log are reported.
pub const LOG_TAIL_LINES: usize = 12;

/// What to run.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// A name for people and logs.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Where its stdout and stderr go (appended).
    pub log: PathBuf,
    /// Signal the kernel sends it when stickyscope dies: SIGTERM for a process that must
    /// take workers down, SIGKILL otherwise.
    pub death_signal: i32,
}

/// Why a child could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The log file could not be opened.
    #[error("{name}: cannot open its log {log}: {source}")]
    Log {
        /// The child.
        name: String,
        /// The log.
        log: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error("{name}: cannot start {program}: {source}")]
    Start {
        /// The child.
        name: String,
        /// The program.
        program: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The spawner thread is gone (the supervisor is shutting down).
    #[error("{0}: not started, the chain is shutting down")]
    ShuttingDown(String),
}

type Job = (
    tokio::process::Command,
    oneshot::Sender<std::io::Result<tokio::process::Child>>,
);

/// The one thread that forks every child (see the module docs).
#[derive(Debug)]
pub struct Spawner {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    exits: mpsc::Sender<UnexpectedExit>,
}

impl Spawner {
    /// Starts the spawner thread on the current tokio runtime; unexpected exits go to
    /// `exits`.
    pub fn start(exits: mpsc::Sender<UnexpectedExit>) -> std::io::Result<Spawner> {
        let runtime = tokio::runtime::Handle::current();
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("stickyscope-spawner".into())
            .spawn(move || {
                let _runtime = runtime.enter();
                while let Ok((mut command, reply)) = rx.recv() {
                    let _ = reply.send(command.spawn());
                }
            })?;
        Ok(Spawner {
            jobs: Some(jobs),
            thread: Some(thread),
            exits,
        })
    }

    /// Starts a child.
    pub async fn spawn(&self, spec: ChildSpec) -> Result<Child, SpawnError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .map_err(|source| SpawnError::Log {
                name: spec.name.clone(),
                log: spec.log.clone(),
                source,
            })?;
        let err_log = log.try_clone().map_err(|source| SpawnError::Log {
            name: spec.name.clone(),
            log: spec.log.clone(),
            source,
        })?;
        let mut command = tokio::process::Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            .process_group(0)
            .kill_on_drop(false);
        let parent = std::process::id();
        let death_signal = spec.death_signal;
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    death_signal as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // stickyscope died between fork and prctl: the signal will never come.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let (reply, answer) = oneshot::channel();
        let gone = || SpawnError::ShuttingDown(spec.name.clone());
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send((command, reply))
            .map_err(|_| gone())?;
        let mut child = answer
            .await
            .map_err(|_| gone())?
            .map_err(|source| SpawnError::Start {
                name: spec.name.clone(),
                program: spec.program.clone(),
                source,
            })?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        let expected = Arc::new(AtomicBool::new(false));
        let (status_tx, status) = watch::channel(None);
        let watcher_expected = Arc::clone(&expected);
        let exits = self.exits.clone();
        let (name, log) = (spec.name.clone(), spec.log.clone());
        tokio::spawn(async move {
            let result = child.wait().await;
            let status = match &result {
                Ok(status) => describe(status),
                Err(e) => format!("lost ({e})"),
            };
            // Reported before the status is published: whoever sees the exit (a stop, a
            // test) knows the report, if any, is already on its way.
            if !watcher_expected.load(Ordering::SeqCst) {
                tracing::warn!(child = %name, %status, "child exited unexpectedly");
                let kept = kept_log(&log, &name);
                let _ = exits.try_send(UnexpectedExit {
                    name,
                    status: status.clone(),
                    tail: log_tail(&log, LOG_TAIL_LINES),
                    log: kept,
                });
            }
            let _ = status_tx.send(Some(status));
        });
        tracing::debug!(child = %spec.name, pid, "child started");
        Ok(Child {
            name: spec.name,
            pid,
            log: spec.log,
            expected,
            status,
        })
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A running (or exited) child. Dropping it kills its process group.
#[derive(Debug)]
pub struct Child {
    name: String,
    pid: i32,
    log: PathBuf,
    expected: Arc<AtomicBool>,
    status: watch::Receiver<Option<String>>,
}

impl Child {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id (and process group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// How it ended, once it has.
    pub fn exited(&self) -> Option<String> {
        self.status.borrow().clone()
    }

    /// Sends `signal` to its process group, unless it has exited.
    pub fn signal(&self, signal: i32) {
        if self.exited().is_none() && self.pid > 0 {
            // SAFETY: killpg has no memory effects; the group is this child's own.
            unsafe {
                libc::killpg(self.pid, signal);
            }
        }
    }

    /// Waits until it has exited, at most `bound`; true when it has.
    pub async fn wait(&self, bound: Duration) -> bool {
        let mut status = self.status.clone();
        let exited = tokio::time::timeout(bound, status.wait_for(Option::is_some))
            .await
            .is_ok_and(|r| r.is_ok());
        exited
    }

    /// Stops it: SIGTERM to its group, then SIGKILL after `grace`. Not reported as
    /// unexpected.
    pub async fn stop(&self, grace: Duration) {
        self.expected.store(true, Ordering::SeqCst);
        self.signal(libc::SIGTERM);
        if !self.wait(grace).await {
            self.signal(libc::SIGKILL);
            self.wait(Duration::from_secs(5)).await;
        }
    }

    /// Kills it at once (SIGKILL to its group). Not reported as unexpected.
    pub async fn kill(&self) {
        self.expected.store(true, Ordering::SeqCst);
        self.signal(libc::SIGKILL);
        self.wait(Duration::from_secs(5)).await;
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.expected.store(true, Ordering::SeqCst);
        self.signal(libc::SIGKILL);
    }
}

/// An exit status in words.
fn describe(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended".to_owned(),
    }
}

/// A copy of a failed part's log outside the run folder (which goes when the run ends), in
/// the temp directory as `stickyscope-failed-PART-PID.log`; the original path when it cannot
/// be copied.
pub fn kept_log(path: &Path, part: &str) -> PathBuf {
    let name: String = part
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let kept = std::env::temp_dir().join(format!(
        "stickyscope-failed-{name}-{}.log",
        std::process::id()
    ));
    match std::fs::copy(path, &kept) {
        Ok(_) => kept,
        Err(e) => {
            tracing::debug!("could not keep {}: {e}", path.display());
            path.to_owned()
        }
    }
}

/// The last `lines` lines of a log file (its last 16 KiB at most).
pub fn log_tail(path: &Path, lines: usize) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(16 * 1024);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| strip_ansi(l))
        .collect()
}

/// A log line without terminal colour codes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tails_are_the_last_lines_without_colour() {
        let dir = std::env::temp_dir().join(format!("stickyscope-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("x.log");
        let text: String = (1..=30)
            .map(|i| format!("\u{1b}[2mline\u{1b}[0m {i}\n"))
            .collect();
        std::fs::write(&log, text).unwrap();
        let tail = log_tail(&log, 3);
        assert_eq!(tail, ["line 28", "line 29", "line 30"]);
        assert!(log_tail(&dir.join("missing"), 3).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_unexpected_exit_is_reported_with_its_log_and_a_stop_is_not() {
        let dir = std::env::temp_dir().join(format!("stickyscope-child-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (tx, mut exits) = mpsc::channel(8);
        let spawner = Spawner::start(tx).unwrap();
        let spec = |name: &str, script: &str| ChildSpec {
            name: name.into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![],
            log: dir.join(format!("{name}.log")),
            death_signal: libc::SIGKILL,
        };
        let crash = spawner
            .spawn(spec(
                "crash",
                "echo starting; echo 'bind: address in use' >&2; exit 3",
            ))
            .await
            .unwrap();
        let exit = tokio::time::timeout(Duration::from_secs(10), exits.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(exit.name, "crash");
        assert_eq!(exit.status, "exit status 3");
        assert_eq!(exit.tail, ["starting", "bind: address in use"]);
        assert!(crash.wait(Duration::from_secs(5)).await);
        assert_eq!(crash.exited().as_deref(), Some("exit status 3"));

        let sleeper = spawner.spawn(spec("sleeper", "sleep 60")).await.unwrap();
        sleeper.stop(Duration::from_secs(5)).await;
        assert_eq!(sleeper.exited().as_deref(), Some("killed by signal 15"));
        assert!(exits.try_recv().is_err(), "a stop is no surprise");
        let missing = spawner
            .spawn(ChildSpec {
                program: "/nonexistent/program".into(),
                ..spec("ghost", "")
            })
            .await
            .unwrap_err();
        assert!(missing
            .to_string()
            .starts_with("ghost: cannot start /nonexistent/program"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
