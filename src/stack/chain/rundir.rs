//! The chain's run folder — configuration, secrets, logs, nginx's temp files — and the
//! small things a run needs once: free loopback ports and a fresh password.
//!
//! The folder is `stickyscope-chain-PID-…` in the temp directory, removed when the run
//! ends. A run killed with -9 cannot remove its own: the next run removes every folder
//! whose owner process is gone.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

const PREFIX: &str = "stickyscope-chain-";

/// A run folder, removed on drop.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates a fresh folder (readable by nginx's workers, which run as another user when
    /// the chain runs as root), after removing those of runs that are gone.
    pub fn create() -> std::io::Result<RunDir> {
        let temp = std::env::temp_dir();
        remove_stale(&temp);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = temp.join(format!("{PREFIX}{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        for sub in ["dynamic", "secrets", "logs", "nginx", "redis"] {
            std::fs::create_dir_all(path.join(sub))?;
            std::fs::set_permissions(path.join(sub), std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(RunDir { path })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log file of a child.
    pub fn log(&self, name: &str) -> PathBuf {
        self.path
            .join("logs")
            .join(format!("{}.log", name.replace(' ', "-")))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!("could not remove {}: {e}", self.path.display());
        }
    }
}

/// Removes run folders whose process is gone.
fn remove_stale(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if !process_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether a process with this id exists.
pub fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A free port on 127.0.0.1 (free now; whoever binds it next gets it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Whether `port` on 127.0.0.1 can be bound now.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A fresh password: 24 hex digits from the system's randomness.
pub fn password() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// An htpasswd line Traefik's basic auth accepts: `user:{SHA}base64(sha1(password))`.
pub fn htpasswd_line(user: &str, password: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let digest = sha1::Sha1::digest(password.as_bytes());
    format!(
        "{user}:{{SHA}}{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_lines_are_in_the_sha_format() {
        // htpasswd -nbs stickyscope secret
        assert_eq!(
            htpasswd_line("stickyscope", "secret"),
            "stickyscope:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="
        );
        let p = password().unwrap();
        assert_eq!(p.len(), 24);
        assert_ne!(p, password().unwrap());
    }

    #[test]
    fn a_run_folder_goes_with_its_run_and_stale_ones_go_with_the_next() {
        let dir = RunDir::create().unwrap();
        let path = dir.path().to_owned();
        assert!(path.join("logs").is_dir());
        let stale = std::env::temp_dir().join(format!("{PREFIX}999999999-00000000"));
        std::fs::create_dir_all(&stale).unwrap();
        drop(dir);
        assert!(!path.exists());
        let next = RunDir::create().unwrap();
        assert!(!stale.exists(), "the folder of a gone run is removed");
        drop(next);
    }
}
