//! The fixes the doctor prints: for each cause it can name, the exact label, directive or
//! server option that removes it, for Traefik (the stacks stickyscope knows best), nginx,
//! and the Socket.IO server. Pure text.

/// The router for the Socket.IO path does not use a sticky service.
pub fn sticky_service(cookie: &str) -> String {
    format!(
        "Traefik: give the service a sticky cookie, `traefik.http.services.<service>.loadbalancer.sticky.cookie.name={cookie}`, \
         and make the router for the Socket.IO path use that service, `traefik.http.routers.<router>.service=<service>` \
         (a second router on the same path must not outrank it: `…routers.<router>.priority`); \
         nginx without Traefik: `hash $cookie_{cookie} consistent;` in the upstream; \
         ingress-nginx: `nginx.ingress.kubernetes.io/affinity: cookie`"
    )
}

/// The cookie names a server that balances again (a VIP).
pub const VIP: &str = "the sticky cookie pins a server that balances again: point the balancer at each replica's own \
     address, not a service VIP — Swarm: `traefik.docker.lbswarm=false` (the default) with \
     `endpoint_mode: dnsrr` where there is no IPVS; Traefik's Kubernetes provider: no `nativeLB`";

/// A `SameSite=None` cookie without `Secure`.
pub const SAMESITE_NONE: &str = "mark the cookie Secure and serve https, `traefik.http.services.<service>.loadbalancer.sticky.cookie.secure=true`, \
     or drop SameSite=None, `…sticky.cookie.samesite=lax` (browsers reject SameSite=None without Secure)";

/// A `Secure` cookie over plain http.
pub const SECURE_OVER_HTTP: &str = "serve the gateway over https, or do not mark the cookie Secure \
     (`traefik.http.services.<service>.loadbalancer.sticky.cookie.secure=false`): browsers drop a Secure cookie set over plain http";

/// The cookie's `Path` does not cover Socket.IO's path.
pub fn cookie_path(path: &str) -> String {
    format!(
        "set the cookie for a path that covers {path}: `traefik.http.services.<service>.loadbalancer.sticky.cookie.path=/`"
    )
}

/// A proxy cuts long polls before the server answers them.
pub fn read_timeout(ping_interval_ms: u64, ping_timeout_ms: u64) -> String {
    let seconds = ping_interval_ms
        .saturating_add(ping_timeout_ms)
        .div_ceil(1000)
        .saturating_add(10);
    format!(
        "nginx: `proxy_read_timeout {seconds}s; # > pingInterval {} + pingTimeout {}` (and `proxy_send_timeout {seconds}s;`); \
         Traefik: no `forwardingTimeouts.responseHeaderTimeout` below that; a cloud balancer: an idle timeout above {seconds} s",
        ms_words(ping_interval_ms),
        ms_words(ping_timeout_ms)
    )
}

/// A proxy does not pass the WebSocket upgrade.
pub const UPGRADE_HEADERS: &str = "nginx: `proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;` \
     with `map $http_upgrade $connection_upgrade { default upgrade; '' close; }`; \
     ingress-nginx and Traefik pass it by themselves";

/// The upgrade reaches a replica other than the session's.
pub const UPGRADE_ELSEWHERE: &str = "send WebSocket upgrades through the same sticky service as the polls: a router that sends \
     `transport=websocket` elsewhere (`…routers.<ws-router>.service=<round-robin>`) loses the session";

/// A WebSocket-first connection is not pinned.
pub fn cookie_on_upgrade(cookie: &str) -> String {
    format!(
        "route WebSocket connections through the sticky service too (`traefik.http.routers.<ws-router>.service=<sticky service>`), \
         so that the `101` sets {cookie} and a client that falls back to polling, or reconnects, stays on its replica"
    )
}

/// CORS does not allow the page's credentials.
pub fn cors(origin: &str) -> String {
    format!(
        "Socket.IO: `new Server(httpServer, {{ cors: {{ origin: \"{origin}\", credentials: true }} }})` \
         (not `origin: \"*\"`, which forbids credentials); stickyscope's replica: `--cors-origin {origin}`; \
         the page: `io(url, {{ withCredentials: true }})`"
    )
}

/// Every session lands on one replica.
pub const SPREAD: &str = "balance by a cookie, not by the client's address: `ip_hash`/`hash $remote_addr` (nginx), \
     `loadbalancer.strategy=hrw` (Traefik) or `sessionAffinity: ClientIP` (Kubernetes) put every user behind one NAT \
     or proxy on one replica; with one replica only, scale it: `docker service scale <stack>_replica=3`";

/// Replicas do not share messages.
pub const ADAPTER: &str = "share events between replicas with an adapter: Socket.IO `io.adapter(createAdapter(pubClient, subClient))` \
     from `@socket.io/redis-adapter`; stickyscope's replica: `REDIS_URL=redis://redis:6379`";

/// A rate limit refuses sessions being opened.
pub const RATE_LIMIT: &str = "let a burst of new sessions through: nginx `limit_req zone=<zone> burst=600 nodelay;` for requests without \
     a `sid`, and limit established sessions per `sid` instead of per address (see stack/nginx/nginx.conf); \
     `limit_req_status 429;` so clients can tell a limit from an outage";

/// The balancer does not notice a dead replica.
pub const HEALTH_CHECK: &str = "`traefik.http.services.<service>.loadbalancer.healthcheck.path=/healthz` with \
     `…healthcheck.interval=1s` and `…healthcheck.timeout=1s`: without a health check the balancer keeps sending a dead \
     replica's users to it; and `…passivehealthcheck.maxfailedattempts=1` with `…passivehealthcheck.failurewindow=3s`, \
     so the first forward that fails takes it out at once";

/// Nothing answers Engine.IO at the path.
pub fn path(path: &str) -> String {
    format!(
        "give --path the server's `path` option (`new Server(httpServer, {{ path: \"{path}\" }})`), and make the proxy pass \
         it: `location {path} {{ proxy_pass …; }}` / `traefik.http.routers.<router>.rule=PathPrefix(`{}`)`",
        path.trim_end_matches('/')
    )
}

/// `3000 ms` as `3 s`, `500 ms` as `500 ms`.
pub fn ms_words(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_timeout_fix_is_above_ping_interval_plus_ping_timeout() {
        let fix = read_timeout(25_000, 20_000);
        assert!(
            fix.contains("proxy_read_timeout 55s; # > pingInterval 25 s + pingTimeout 20 s"),
            "{fix}"
        );
        assert!(read_timeout(3_000, 7_000).contains("proxy_read_timeout 20s;"));
    }

    #[test]
    fn fixes_name_the_cookie_origin_and_path_given() {
        assert!(sticky_service("SERVERID").contains("sticky.cookie.name=SERVERID"));
        assert!(cors("https://app.example")
            .contains("origin: \"https://app.example\", credentials: true"));
        assert!(path("/ws/socket.io/").contains("PathPrefix(`/ws/socket.io`)"));
    }
}
