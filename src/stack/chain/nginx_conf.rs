//! The repository's `stack/nginx/nginx.conf`, changed only where a local run must differ
//! from the swarm stack: it listens on loopback (with TLS, when given a certificate),
//! reaches Traefik at its local address instead of Docker's DNS name — or, with several
//! Traefik instances, a group of their addresses that nginx takes in turn — and needs no
//! resolver. Process-wide settings (pid file, error log, foreground) go on nginx's command
//! line. Pure.

/// The configuration this build was made with.
pub const NGINX_CONF: &str = include_str!("../../../stack/nginx/nginx.conf");

/// What in nginx.conf the chain expects to change and did not find.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stack/nginx/nginx.conf no longer has {0}: the chain does not know where to change it")]
pub struct NotFound(pub &'static str);

/// The name of the group of Traefik instances, when there are several.
pub const TRAEFIK_GROUP: &str = "traefik_instances";

/// The configuration for the chain: listening on `127.0.0.1:listen_port` — with TLS when
/// given a certificate and its key — passing to Traefik at `127.0.0.1:PORT`, for each of
/// `traefik_ports` in turn (round-robin) when there are several.
pub fn local_conf(
    conf: &str,
    listen_port: u16,
    traefik_ports: &[u16],
    tls: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<String, NotFound> {
    let traefik = match traefik_ports {
        [] => return Err(NotFound("a Traefik to pass to")),
        [one] => format!("http://127.0.0.1:{one}"),
        _ => format!("http://{TRAEFIK_GROUP}"),
    };
    let mut out = Vec::new();
    // One Traefik needs no group: it counts as placed.
    let (mut listen, mut upstream, mut grouped) = (false, false, traefik_ports.len() == 1);
    for line in conf.lines() {
        let directive = line.trim();
        if directive == "server {" && !grouped {
            // The group goes in the `http` block, before the server that uses it; nginx
            // finds a group by the name `proxy_pass` is given at request time.
            grouped = true;
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push(format!("{indent}upstream {TRAEFIK_GROUP} {{"));
            for port in traefik_ports {
                out.push(format!("{indent}    server 127.0.0.1:{port};"));
            }
            out.push(format!("{indent}}}"));
            out.push(String::new());
            out.push(line.to_owned());
        } else if directive == "listen 80;" {
            listen = true;
            let indent = &line[..line.len() - line.trim_start().len()];
            match tls {
                None => out.push(format!("{indent}listen 127.0.0.1:{listen_port};")),
                Some((cert, key)) => {
                    out.push(format!("{indent}listen 127.0.0.1:{listen_port} ssl;"));
                    out.push(format!("{indent}ssl_certificate {};", cert.display()));
                    out.push(format!("{indent}ssl_certificate_key {};", key.display()));
                }
            }
        } else if directive.starts_with("set $traefik ") {
            upstream = true;
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push(format!("{indent}set $traefik {traefik};"));
        } else if directive.starts_with("resolver ") {
            // Docker's DNS (127.0.0.11) does not exist here; Traefik's address is an IP.
            continue;
        } else {
            out.push(line.to_owned());
        }
    }
    if !listen {
        return Err(NotFound("`listen 80;`"));
    }
    if !upstream {
        return Err(NotFound("`set $traefik …;` (Traefik's address)"));
    }
    if !grouped {
        return Err(NotFound(
            "`server {` (where the Traefik instances' group goes before)",
        ));
    }
    Ok(out.join("\n") + "\n")
}

/// nginx's `-g` directives for the chain: foreground, pid file and error log in the run
/// folder.
pub fn globals(pid: &std::path::Path, error_log: &std::path::Path) -> String {
    format!(
        "daemon off; pid {}; error_log {} warn;",
        pid.display(),
        error_log.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listen_address_traefiks_address_and_the_resolver_change() {
        let local = local_conf(NGINX_CONF, 18000, &[18080], None).unwrap();
        assert!(local.contains("listen 127.0.0.1:18000;"));
        assert!(local.contains("set $traefik http://127.0.0.1:18080;"));
        assert!(!local.contains("resolver"));
        assert!(!local.contains("listen 80;"));
        let gone: Vec<&str> = NGINX_CONF
            .lines()
            .filter(|l| !local.lines().any(|m| m == *l))
            .map(str::trim)
            .collect();
        assert_eq!(gone.len(), 3, "only three lines change: {gone:?}");
        let added = local
            .lines()
            .filter(|l| !NGINX_CONF.lines().any(|m| m == *l))
            .count();
        assert_eq!(added, 2);
        assert!(
            local.contains("limit_req_status 429;"),
            "the rest is the stack's"
        );
    }

    #[test]
    fn with_a_certificate_it_listens_with_tls_and_serves_it() {
        let (cert, key) = (
            std::path::Path::new("/run/c.pem"),
            std::path::Path::new("/run/k.pem"),
        );
        let local = local_conf(NGINX_CONF, 18000, &[18080], Some((cert, key))).unwrap();
        assert!(local.contains("listen 127.0.0.1:18000 ssl;"), "{local}");
        assert!(local.contains("ssl_certificate /run/c.pem;"));
        assert!(local.contains("ssl_certificate_key /run/k.pem;"));
        assert!(local.contains("set $traefik http://127.0.0.1:18080;"));
    }

    #[test]
    fn a_configuration_without_its_anchors_is_refused() {
        assert_eq!(
            local_conf("http { }", 1, &[2], None),
            Err(NotFound("`listen 80;`"))
        );
        assert!(local_conf("listen 80;", 1, &[2], None).is_err());
        assert_eq!(
            local_conf(NGINX_CONF, 1, &[], None),
            Err(NotFound("a Traefik to pass to"))
        );
    }

    #[test]
    fn several_traefik_instances_are_one_group_nginx_takes_in_turn() {
        let local = local_conf(NGINX_CONF, 18000, &[18080, 18081], None).unwrap();
        let group = "    upstream traefik_instances {\n        server 127.0.0.1:18080;\n        server 127.0.0.1:18081;\n    }\n";
        assert!(local.contains(group), "{local}");
        assert!(local.contains("set $traefik http://traefik_instances;"));
        let group_at = local.find("upstream traefik_instances").unwrap();
        let http_at = local.find("http {").unwrap();
        let server_at = local.find("    server {").unwrap();
        assert!(
            http_at < group_at && group_at < server_at,
            "in http, before the server"
        );
        assert_eq!(local.matches("upstream ").count(), 1);
    }
}
