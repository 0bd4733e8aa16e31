//! Reads `docker-swarm.yml` — the stack's one source of truth — and derives from it what the
//! local chain runs: Traefik's static flags (from the traefik service's `command`) and its
//! dynamic configuration (from the Traefik labels of the replica and traefik services), with
//! the local processes in place of swarm tasks. Pure.
//!
//! Traefik decodes labels and its file provider through the same case-insensitive tree of
//! strings, so the labels become the file provider's document almost as they are:
//! `traefik.http.routers.r.rule=…` is `{"http": {"routers": {"r": {"rule": "…"}}}}`. What
//! the swarm provider adds is supplied here: a service's `loadbalancer.server.port` becomes
//! the list of local servers, and `/run/secrets/NAME` becomes a local file.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

/// The stack file this build was made with.
pub const SWARM_FILE: &str = include_str!("../../../docker-swarm.yml");

/// Why the stack file cannot be turned into a local chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwarmFileError {
    /// Not YAML, or not the expected shape.
    #[error("docker-swarm.yml: {0}")]
    Shape(String),
    /// A label the chain cannot place.
    #[error("docker-swarm.yml label {label:?}: {why}")]
    Label {
        /// The whole label.
        label: String,
        /// Why.
        why: String,
    },
}

/// The parts of the stack file the chain uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmFile {
    /// `deploy.labels` of the replica service, as (key, value).
    pub replica_labels: Vec<(String, String)>,
    /// `deploy.labels` of the traefik service.
    pub traefik_labels: Vec<(String, String)>,
    /// The traefik service's `command` (its static configuration flags).
    pub traefik_command: Vec<String>,
    /// The traefik service's image, e.g. `traefik:v3.7.15`.
    pub traefik_image: String,
}

impl SwarmFile {
    /// Parses a stack file.
    pub fn parse(yaml: &str) -> Result<SwarmFile, SwarmFileError> {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(yaml).map_err(|e| SwarmFileError::Shape(e.to_string()))?;
        let service = |name: &str| -> Result<&serde_yaml::Value, SwarmFileError> {
            doc.get("services")
                .and_then(|s| s.get(name))
                .ok_or_else(|| SwarmFileError::Shape(format!("no service {name:?}")))
        };
        let labels = |name: &str| -> Result<Vec<(String, String)>, SwarmFileError> {
            let list = service(name)?
                .get("deploy")
                .and_then(|d| d.get("labels"))
                .and_then(|l| l.as_sequence())
                .ok_or_else(|| {
                    SwarmFileError::Shape(format!("service {name:?} has no deploy.labels list"))
                })?;
            list.iter()
                .map(|l| {
                    let text = l.as_str().ok_or_else(|| {
                        SwarmFileError::Shape(format!("a label of {name:?} is not a string"))
                    })?;
                    text.split_once('=')
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .ok_or_else(|| SwarmFileError::Label {
                            label: text.to_owned(),
                            why: "no `=`".to_owned(),
                        })
                })
                .collect()
        };
        let traefik = service("traefik")?;
        let traefik_command = traefik
            .get("command")
            .and_then(|c| c.as_sequence())
            .ok_or_else(|| SwarmFileError::Shape("the traefik service has no command list".into()))?
            .iter()
            .map(|c| {
                c.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| SwarmFileError::Shape("a traefik flag is not a string".into()))
            })
            .collect::<Result<_, _>>()?;
        Ok(SwarmFile {
            replica_labels: labels("replica")?,
            traefik_labels: labels("traefik")?,
            traefik_command,
            traefik_image: traefik
                .get("image")
                .and_then(|i| i.as_str())
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// The stack file this build was made with.
    pub fn built_in() -> Result<SwarmFile, SwarmFileError> {
        SwarmFile::parse(SWARM_FILE)
    }

    /// The Traefik version the stack pins (`traefik:v3.7.15` → `3.7.15`).
    pub fn traefik_version(&self) -> Option<&str> {
        self.traefik_image.strip_prefix("traefik:v")
    }

    /// Traefik's dynamic configuration for the chain: every Traefik label of the replica
    /// and traefik services, the replica services' servers being `replica_urls`, and
    /// `/run/secrets/NAME` replaced by `secrets[NAME]`.
    pub fn dynamic_config(
        &self,
        replica_urls: &[String],
        secrets: &BTreeMap<String, std::path::PathBuf>,
    ) -> Result<Value, SwarmFileError> {
        let mut doc = Map::new();
        for (labels, servers) in [
            (&self.replica_labels, Some(replica_urls)),
            (&self.traefik_labels, None),
        ] {
            let mut tree = Map::new();
            let mut enabled = false;
            for (key, value) in labels {
                let whole = || format!("{key}={value}");
                let Some(path) = key.strip_prefix("traefik.") else {
                    continue;
                };
                if path.eq_ignore_ascii_case("enable") {
                    enabled = value.eq_ignore_ascii_case("true");
                    continue;
                }
                let segments: Vec<&str> = path.split('.').collect();
                // Provider options (traefik.swarm.lbswarm, traefik.docker.network) mean
                // nothing to the file provider.
                if matches!(
                    segments[0].to_ascii_lowercase().as_str(),
                    "swarm" | "docker"
                ) {
                    continue;
                }
                if !matches!(
                    segments[0].to_ascii_lowercase().as_str(),
                    "http" | "tcp" | "udp" | "tls"
                ) {
                    return Err(SwarmFileError::Label {
                        label: whole(),
                        why: "not a Traefik routing label".into(),
                    });
                }
                let value = local_secret(value, secrets).map_err(|why| SwarmFileError::Label {
                    label: whole(),
                    why,
                })?;
                insert(&mut tree, &segments, value).map_err(|why| SwarmFileError::Label {
                    label: whole(),
                    why,
                })?;
            }
            if !enabled {
                continue;
            }
            place_servers(&mut tree, servers)?;
            merge(&mut doc, tree);
        }
        Ok(Value::Object(doc))
    }

    /// Traefik's static flags for the chain: the stack's own, with the swarm provider
    /// replaced by the file provider reading `dynamic_dir`, and every entry point moved to
    /// 127.0.0.1 on the port `entry_ports` gives it.
    pub fn static_flags(
        &self,
        dynamic_dir: &Path,
        entry_ports: &BTreeMap<String, u16>,
    ) -> Result<Vec<String>, SwarmFileError> {
        let mut flags = Vec::new();
        for flag in &self.traefik_command {
            let lower = flag.to_ascii_lowercase();
            if lower.starts_with("--providers.swarm") || lower.starts_with("--providers.docker") {
                continue;
            }
            if let Some(name) = entry_point_of(flag) {
                let port = entry_ports
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, p)| *p)
                    .ok_or_else(|| {
                        SwarmFileError::Shape(format!(
                            "no local port for Traefik's entry point {name:?}"
                        ))
                    })?;
                flags.push(format!("--entryPoints.{name}.address=127.0.0.1:{port}"));
                continue;
            }
            if lower.starts_with("--api.insecure") {
                return Err(SwarmFileError::Shape(
                    "the stack publishes Traefik's API with api.insecure: the chain will not"
                        .into(),
                ));
            }
            flags.push(flag.clone());
        }
        flags.push(format!(
            "--providers.file.directory={}",
            dynamic_dir.display()
        ));
        flags.push("--providers.file.watch=true".into());
        Ok(flags)
    }

    /// The names of the entry points the stack's Traefik declares, in order.
    pub fn entry_points(&self) -> Vec<String> {
        self.traefik_command
            .iter()
            .filter_map(|f| entry_point_of(f).map(str::to_owned))
            .collect()
    }
}

/// The entry point a `--entryPoints.NAME.address=…` flag declares (any case).
fn entry_point_of(flag: &str) -> Option<&str> {
    let (key, _) = flag.split_once('=')?;
    let mut parts = key.split('.');
    parts
        .next()?
        .eq_ignore_ascii_case("--entrypoints")
        .then_some(())?;
    let name = parts.next()?;
    let field = parts.next()?;
    (field.eq_ignore_ascii_case("address") && parts.next().is_none()).then_some(name)
}

/// A `/run/secrets/NAME` value as the local file holding that secret.
fn local_secret(
    value: &str,
    secrets: &BTreeMap<String, std::path::PathBuf>,
) -> Result<String, String> {
    let Some(name) = value.strip_prefix("/run/secrets/") else {
        return Ok(value.to_owned());
    };
    secrets
        .get(name)
        .map(|p| p.display().to_string())
        .ok_or_else(|| format!("names the secret {name:?}, which the chain does not provide"))
}

/// Inserts a label's value at its path. A label `a.b=true` and labels under `a.b.…` may
/// both be given (Traefik reads `sticky.cookie=true` as "a cookie, with defaults"): the
/// children win.
fn insert(tree: &mut Map<String, Value>, path: &[&str], value: String) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty label")?;
    let mut node = tree;
    for segment in parents {
        let entry = node
            .entry(segment.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if matches!(entry, Value::String(s) if s.eq_ignore_ascii_case("true")) {
            *entry = Value::Object(Map::new());
        }
        node = entry
            .as_object_mut()
            .ok_or_else(|| format!("{segment:?} is both a value and a section"))?;
    }
    match node.get(*last) {
        Some(Value::Object(_)) if value.eq_ignore_ascii_case("true") => Ok(()),
        Some(Value::Object(_)) => Err(format!("{last:?} is both a value and a section")),
        Some(Value::String(old)) if *old != value => {
            Err(format!("{last:?} is given twice ({old:?} and {value:?})"))
        }
        _ => {
            node.insert(last.to_string(), Value::String(value));
            Ok(())
        }
    }
}

/// Replaces each HTTP service's `loadbalancer.server` (the swarm provider's port) by local
/// servers: `servers` for the replica service; a service of the traefik service (a
/// placeholder the swarm provider needs) is dropped unless a router uses it.
fn place_servers(
    tree: &mut Map<String, Value>,
    servers: Option<&[String]>,
) -> Result<(), SwarmFileError> {
    let used: Vec<String> = tree
        .get("http")
        .and_then(|h| h.get("routers"))
        .and_then(Value::as_object)
        .map(|routers| {
            routers
                .values()
                .filter_map(|r| r.get("service").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let Some(services) = tree
        .get_mut("http")
        .and_then(|h| h.get_mut("services"))
        .and_then(Value::as_object_mut)
    else {
        return Ok(());
    };
    let names: Vec<String> = services.keys().cloned().collect();
    for name in names {
        let Some(lb) = services
            .get_mut(&name)
            .and_then(|s| s.as_object_mut())
            .and_then(|s| {
                let key = s
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case("loadbalancer"))
                    .cloned()?;
                s.get_mut(&key)
            })
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let Some(server_key) = lb
            .keys()
            .find(|k| k.eq_ignore_ascii_case("server"))
            .cloned()
        else {
            continue;
        };
        lb.remove(&server_key);
        match servers {
            Some(urls) => {
                let list = urls.iter().map(|u| serde_json::json!({ "url": u })).collect();
                lb.insert("servers".into(), Value::Array(list));
            }
            None if used.contains(&name) => {
                return Err(SwarmFileError::Shape(format!(
                    "service {name:?} of the traefik service is used by a router but has no local servers"
                )))
            }
            None => {
                services.remove(&name);
            }
        }
    }
    Ok(())
}

/// Merges `from` into `into`, section by section.
fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_stack_file_gives_both_services_both_routers_and_the_api_router() {
        let stack = SwarmFile::built_in().unwrap();
        let urls = vec![
            "http://127.0.0.1:4001".to_owned(),
            "http://127.0.0.1:4002".to_owned(),
        ];
        let secrets: BTreeMap<_, _> =
            [("traefik_api_users".to_owned(), "/tmp/run/users".into())].into();
        let doc = stack.dynamic_config(&urls, &secrets).unwrap();
        let http = &doc["http"];
        let sticky = &http["services"]["replicas-sticky"]["loadbalancer"];
        assert_eq!(sticky["servers"][1]["url"], "http://127.0.0.1:4002");
        assert_eq!(sticky["sticky"]["cookie"]["name"], "sticky_replica");
        assert_eq!(sticky["healthcheck"]["path"], "/healthz");
        assert!(sticky.get("server").is_none());
        assert_eq!(
            http["services"]["replicas-roundrobin"]["loadbalancer"]["servers"][0]["url"],
            "http://127.0.0.1:4001"
        );
        assert_eq!(http["routers"]["socketio-roundrobin"]["priority"], "20");
        assert_eq!(http["routers"]["api"]["service"], "api@internal");
        assert_eq!(
            http["middlewares"]["api-auth"]["basicauth"]["usersfile"],
            "/tmp/run/users"
        );
        assert!(
            http["services"].get("api-placeholder").is_none(),
            "no router uses the swarm provider's placeholder"
        );
        assert_eq!(stack.traefik_version(), Some("3.7.15"));
    }

    #[test]
    fn static_flags_swap_the_provider_and_move_entry_points_to_loopback() {
        let stack = SwarmFile::built_in().unwrap();
        assert_eq!(stack.entry_points(), ["web", "api"]);
        let ports: BTreeMap<String, u16> = [("web".into(), 5001), ("api".into(), 5002)].into();
        let flags = stack
            .static_flags(Path::new("/tmp/run/dynamic"), &ports)
            .unwrap();
        assert!(flags.contains(&"--entryPoints.web.address=127.0.0.1:5001".to_owned()));
        assert!(flags.contains(&"--entryPoints.api.address=127.0.0.1:5002".to_owned()));
        assert!(flags.contains(&"--providers.file.directory=/tmp/run/dynamic".to_owned()));
        assert!(flags.iter().all(|f| !f.contains("swarm")), "{flags:?}");
        assert!(flags.contains(&"--api.dashboard=true".to_owned()));
    }

    #[test]
    fn labels_the_chain_cannot_place_are_named() {
        let yaml = |labels: &str| {
            format!(
                "services:\n  replica:\n    deploy:\n      labels:\n{labels}\n  traefik:\n    image: traefik:v3.7.15\n    command: []\n    deploy:\n      labels: []\n"
            )
        };
        let bad = SwarmFile::parse(&yaml(
            "        - \"traefik.enable=true\"\n        - \"traefik.http.routers.r.rule=A\"\n        - \"traefik.http.routers.r.rule.x=B\"",
        ))
        .unwrap();
        let err = bad.dynamic_config(&[], &BTreeMap::new()).unwrap_err();
        assert!(
            err.to_string().contains("both a value and a section"),
            "{err}"
        );
        let secret = SwarmFile::parse(&yaml(
            "        - \"traefik.enable=true\"\n        - \"traefik.http.middlewares.m.basicauth.usersfile=/run/secrets/nope\"",
        ))
        .unwrap();
        let err = secret.dynamic_config(&[], &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
        let disabled =
            SwarmFile::parse(&yaml("        - \"traefik.http.routers.r.rule=A\"")).unwrap();
        assert_eq!(
            disabled.dynamic_config(&[], &BTreeMap::new()).unwrap(),
            serde_json::json!({}),
            "without traefik.enable=true a service is not exposed"
        );
        assert!(SwarmFile::parse("not: [yaml").is_err());
    }
}
