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

/// A free port on 127.0.0.1 for a part the chain starts, chosen outside the kernel's
/// ephemeral range (`ip_local_port_range`): a port the kernel hands out (bind to `:0`)
/// can be taken, between our probe and the part's bind, as the source port of any
/// outgoing connection on the machine, and the part then fails with "address already in
/// use". A port below the range is never given to an outgoing connection; the ports one
/// process hands out never repeat, and each process starts at its own place.
pub fn free_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let (low, high) = outside_ephemeral_range();
    let span = u32::from(high - low) + 1;
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(2_654_435_761) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = low + offset as u16;
        if port_is_free(port) {
            return Ok(port);
        }
    }
    // Every port outside the range is taken: fall back to one the kernel picks.
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The widest run of ports (at or above 10000) the kernel never picks as an ephemeral port.
fn outside_ephemeral_range() -> (u16, u16) {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut numbers = text.split_whitespace().map(str::parse::<u16>);
            Some((numbers.next()?.ok()?, numbers.next()?.ok()?))
        });
    const FLOOR: u16 = 10_000;
    match range {
        Some((first, last)) => {
            let below = first.saturating_sub(FLOOR);
            let above = u16::MAX - last.max(FLOOR);
            if below >= above && first > FLOOR {
                (FLOOR, first - 1)
            } else if above > 0 {
                (last.max(FLOOR) + 1, u16::MAX)
            } else {
                (FLOOR, u16::MAX)
            }
        }
        None => (20_000, 32_767),
    }
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
    fn free_ports_never_repeat_and_stay_out_of_the_ephemeral_range() {
        let (first, last) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .map(|text| {
                let numbers: Vec<u16> = text
                    .split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect();
                (numbers[0], numbers[1])
            })
            .expect("Linux names its ephemeral range");
        let ports: Vec<u16> = (0..50).map(|_| free_port().expect("a free port")).collect();
        let distinct: std::collections::HashSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for port in ports {
            assert!(
                !(first..=last).contains(&port),
                "{port} in {first}..={last}"
            );
            assert!(port_is_free(port));
        }
    }

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
