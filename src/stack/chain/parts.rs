//! Starting the chain's parts as child processes — redis-server, the replica processes,
//! Traefik, nginx — each ready before it is handed back, and writing the configuration they
//! read (Traefik's dynamic file, the API's password, nginx.conf).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::stack::Adapter;

use super::binaries::Binaries;
use super::children::{Child, ChildSpec, Spawner};
use super::readiness::{http_ok, redis_ping, sticky_statuses, until_ready, NotYet};
use super::rundir::{self, RunDir};
use super::swarm_file::SwarmFile;
use super::{
    io, nginx_conf, replica_url, ChainError, ChainTls, Ports, ReplicaProgram, TraefikPorts,
    API_USER, STICKY_SERVICE,
};
use crate::tls_trust::Trust;
use crate::traefik_client::TraefikApi;

/// The secret the stack file's basic auth reads its users from.
const API_SECRET: &str = "traefik_api_users";

/// What starting children and writing configuration needs, from the start on.
pub(super) struct Parts {
    pub(super) swarm_file: SwarmFile,
    pub(super) nginx_conf: String,
    pub(super) binaries: Binaries,
    pub(super) program: ReplicaProgram,
    pub(super) ports: Ports,
    pub(super) password: String,
    pub(super) spawner: Spawner,
    pub(super) dir: RunDir,
    pub(super) tls: Option<ChainTls>,
}

impl Parts {
    /// The scheme and host of the gateway's and the API's URLs: `https://localhost` with a
    /// certificate (the name it is for), else `http://127.0.0.1`.
    pub(super) fn origin(&self) -> (&'static str, &'static str) {
        match self.tls {
            Some(_) => ("https", "localhost"),
            None => ("http", "127.0.0.1"),
        }
    }

    /// The URL of the chain's part listening on `port`.
    pub(super) fn url(&self, port: u16) -> String {
        let (scheme, host) = self.origin();
        format!("{scheme}://{host}:{port}")
    }

    /// How the chain checks its own parts over TLS: not at all: they are its own
    /// processes on loopback, serving the certificate it was given, whoever signed it.
    pub(super) fn own_trust(&self) -> Trust {
        Trust {
            ca_pem: None,
            insecure: self.tls.is_some(),
        }
    }

    /// A client of the API of the chain's Traefik on `ports`, with its credential.
    pub(super) fn traefik_api(&self, ports: TraefikPorts) -> Result<TraefikApi, ChainError> {
        TraefikApi::with_credential(
            &self.url(ports.api),
            Some((API_USER.to_owned(), self.password.to_owned())),
            &self.own_trust(),
        )
        .map_err(|e| ChainError::Io {
            what: "Traefik's API client".into(),
            source: std::io::Error::other(e.to_string()),
        })
    }

    async fn spawn(
        &self,
        name: &str,
        program: &std::path::Path,
        args: Vec<OsString>,
        death_signal: i32,
    ) -> Result<Child, ChainError> {
        Ok(self
            .spawner
            .spawn(ChildSpec {
                name: name.to_owned(),
                program: program.to_owned(),
                args,
                env: vec![],
                log: self.dir.log(name),
                death_signal,
            })
            .await?)
    }

    pub(super) async fn start_redis(&self) -> Result<Child, ChainError> {
        let port = self.ports.redis;
        let dir = self.dir.path().join("redis");
        let args = [
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            &dir.display().to_string(),
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let child = self
            .spawn("redis-server", &self.binaries.redis, args, libc::SIGKILL)
            .await?;
        until_ready(&child, "redis-server", || async move {
            redis_ping(port).await.map_err(NotYet::from)
        })
        .await?;
        Ok(child)
    }

    pub(super) async fn start_replica(
        &self,
        id: &str,
        port: u16,
        (heartbeat, adapter): (Heartbeat, Adapter),
    ) -> Result<Child, ChainError> {
        let mut args: Vec<OsString> = self.program.args.iter().map(OsString::from).collect();
        for arg in [
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--id".to_owned(),
            id.to_owned(),
            "--redis-url".to_owned(),
            format!("redis://127.0.0.1:{}", self.ports.redis),
            "--adapter".to_owned(),
            if adapter.is_on() { "redis" } else { "none" }.to_owned(),
            "--ping-interval".to_owned(),
            format!("{}ms", heartbeat.interval.as_millis()),
            "--ping-timeout".to_owned(),
            format!("{}ms", heartbeat.timeout.as_millis()),
        ] {
            args.push(arg.into());
        }
        let name = format!("replica {id}");
        let child = self
            .spawn(&name, &self.program.program, args, libc::SIGKILL)
            .await?;
        let url = format!("{}/healthz", replica_url(port));
        until_ready(&child, &name, || {
            let url = url.clone();
            async move {
                http_ok(url, None, &Trust::default())
                    .await
                    .map_err(NotYet::from)
            }
        })
        .await?;
        Ok(child)
    }

    pub(super) fn write_dynamic(&self, urls: &[String]) -> Result<(), ChainError> {
        let secret = self.dir.path().join("secrets").join(API_SECRET);
        std::fs::write(
            &secret,
            rundir::htpasswd_line(API_USER, &self.password) + "\n",
        )
        .map_err(io(format!("cannot write {}", secret.display())))?;
        let secrets: BTreeMap<String, PathBuf> = [(API_SECRET.to_owned(), secret)].into();
        let mut doc = self.swarm_file.dynamic_config(urls, &secrets)?;
        if let (Some(tls), Some(doc)) = (&self.tls, doc.as_object_mut()) {
            // The API's entry point serves the chain's certificate, whatever name is asked.
            doc.insert(
                "tls".into(),
                serde_json::json!({"stores": {"default": {"defaultCertificate": {
                    "certFile": tls.cert, "keyFile": tls.key,
                }}}}),
            );
        }
        let dynamic = self.dir.path().join("dynamic");
        let part = dynamic.join("stack.yml.part");
        // JSON is YAML; Traefik reads .yml files only, so the partial file is never read.
        std::fs::write(&part, doc.to_string())
            .map_err(io(format!("cannot write {}", part.display())))?;
        std::fs::rename(&part, dynamic.join("stack.yml"))
            .map_err(io("cannot replace Traefik's configuration"))?;
        Ok(())
    }

    /// Starts a Traefik instance, `name`, on `ports`; ready once its API lists every one of
    /// `urls` UP and no router refused.
    pub(super) async fn start_traefik(
        &self,
        name: &str,
        ports: TraefikPorts,
        urls: &[String],
    ) -> Result<Child, ChainError> {
        let entry_ports: BTreeMap<String, u16> = self
            .swarm_file
            .entry_points()
            .into_iter()
            .map(|name| {
                let port = match name.to_ascii_lowercase().as_str() {
                    "web" => Ok(ports.web),
                    "api" => Ok(ports.api),
                    _ => rundir::free_port(),
                };
                port.map(|p| (name, p))
            })
            .collect::<Result<_, _>>()
            .map_err(io("no free port"))?;
        let mut flags = self
            .swarm_file
            .static_flags(&self.dir.path().join("dynamic"), &entry_ports)?;
        if self.tls.is_some() {
            flags.push("--entryPoints.api.http.tls=true".to_owned());
        }
        flags.push("--log.level=INFO".to_owned());
        let args = flags.into_iter().map(OsString::from).collect();
        let child = self
            .spawn(name, &self.binaries.traefik, args, libc::SIGKILL)
            .await?;
        let api = self.traefik_api(ports)?;
        let expected = urls.len();
        until_ready(&child, name, || {
            let api = api.clone();
            async move {
                let up = sticky_statuses(&api)
                    .await?
                    .values()
                    .filter(|s| *s == stickyscope_vocab::traefik_model::UP)
                    .count();
                if up != expected {
                    return Err(NotYet::Waiting(format!(
                        "{up} of {expected} servers UP in {STICKY_SERVICE}"
                    )));
                }
                // A router Traefik refused (a rule that does not parse, …) stays listed,
                // with its error: a chain with one is not the stack file's chain.
                let routers = api
                    .routers()
                    .await
                    .map_err(|e| NotYet::Waiting(e.to_string()))?;
                match routers
                    .iter()
                    .find(|r| r.provider == "file" && !r.error.is_empty())
                {
                    Some(r) => Err(NotYet::Refused(format!(
                        "Traefik refused router {}: {}",
                        r.name,
                        r.error.join("; ")
                    ))),
                    None => Ok(()),
                }
            }
        })
        .await?;
        Ok(child)
    }

    pub(super) async fn start_nginx(&self) -> Result<Child, ChainError> {
        let prefix = self.dir.path().join("nginx");
        let conf = prefix.join("nginx.conf");
        let tls = self
            .tls
            .as_ref()
            .map(|t| (t.cert.as_path(), t.key.as_path()));
        let text = nginx_conf::local_conf(
            &self.nginx_conf,
            self.ports.gateway,
            &self.ports.traefiks().map(|t| t.web).collect::<Vec<_>>(),
            tls,
        )?;
        std::fs::write(&conf, text).map_err(io(format!("cannot write {}", conf.display())))?;
        let globals = nginx_conf::globals(&prefix.join("nginx.pid"), &self.dir.log("nginx"));
        let base_args: Vec<OsString> = vec![
            "-p".into(),
            format!("{}/", prefix.display()).into(),
            "-c".into(),
            conf.clone().into(),
        ];
        let test = tokio::process::Command::new(&self.binaries.nginx)
            .args(&base_args)
            .arg("-t")
            .arg("-g")
            .arg(&globals)
            .output()
            .await
            .map_err(io(format!(
                "cannot run {} -t",
                self.binaries.nginx.display()
            )))?;
        if !test.status.success() {
            return Err(ChainError::NginxTest(
                String::from_utf8_lossy(&test.stderr).trim().to_owned(),
            ));
        }
        let mut args = base_args;
        args.push("-g".into());
        args.push(globals.into());
        // nginx takes its workers down on SIGTERM; SIGKILL would orphan them.
        let child = self
            .spawn("nginx", &self.binaries.nginx, args, libc::SIGTERM)
            .await?;
        let url = format!("{}/healthz", self.url(self.ports.gateway));
        let trust = self.own_trust();
        until_ready(&child, "nginx", || {
            let (url, trust) = (url.clone(), trust.clone());
            async move { http_ok(url, None, &trust).await.map_err(NotYet::from) }
        })
        .await?;
        Ok(child)
    }
}
