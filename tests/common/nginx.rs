//! Debian's nginx for tests: finding it, a scratch prefix, and a process whose whole group
//! (master and workers) dies with it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Debian's nginx binary; a test that needs it fails, never skips, when it is missing.
pub fn nginx_binary() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!("nginx is not installed: run scripts/test.sh, which installs Debian's nginx");
}

/// A fresh prefix directory (with `logs/`) that nginx's workers can write in.
pub fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stickyscope-nginx-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    // nginx's workers (nobody, when the master is root) write their temp files here.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The `-g` directives that keep nginx's pid and error log in `dir`.
pub fn globals(dir: &Path, daemon: bool) -> String {
    format!(
        "{}pid {}/nginx.pid; error_log {}/error.log;",
        if daemon { "" } else { "daemon off; " },
        dir.display(),
        dir.display()
    )
}

/// A free port on loopback (free when asked), outside the ephemeral range.
pub fn free_port() -> u16 {
    stickyscope::stack::chain::rundir::free_port().expect("a free port")
}

/// nginx running `conf` (a whole nginx.conf) with prefix `dir`, in the foreground, in its
/// own process group; dropping it kills the group.
pub struct NginxProcess {
    child: tokio::process::Child,
}

impl NginxProcess {
    /// Starts it; the caller waits for its ports.
    pub fn start(dir: &Path, conf: &str) -> NginxProcess {
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = tokio::process::Command::new(nginx_binary())
            // Its own process group: the workers die with the master (see Drop).
            .process_group(0)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .arg("-g")
            .arg(globals(dir, false))
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx starts");
        NginxProcess { child }
    }
}

impl Drop for NginxProcess {
    fn drop(&mut self) {
        // SIGKILL to the master alone would orphan its workers, each still holding the
        // listening socket: kill the whole group, then reap the master.
        if let Some(pid) = self.child.id() {
            // SAFETY: killpg has no memory effects; the group is nginx's own (process_group(0)).
            unsafe {
                libc::killpg(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        let _ = self.child.start_kill();
        let _ = self.child.try_wait();
    }
}
