//! The balancer's servers and their state, shared by routing, health checks, the topology
//! API and the stack's controls.
//!
//! A server is in rotation ("UP") when it is both enabled (not stopped by an operator) and
//! healthy (its last health check, or the last connection to it, succeeded).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use super::routing::{self, Candidate, Decision, Service};

/// One server behind the balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// `http://ip:port`, the identity Traefik uses.
    pub url: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Its sticky cookie value.
    pub cookie: String,
    /// Replica id, when known (embedded stack).
    pub replica: Option<String>,
    /// False once an operator stopped or killed it.
    pub enabled: bool,
    /// Result of the last health check or connection.
    pub healthy: bool,
}

impl Backend {
    /// In rotation.
    pub fn is_up(&self) -> bool {
        self.enabled && self.healthy
    }
}

/// The server list.
#[derive(Debug, Default)]
pub struct Pool {
    backends: RwLock<Vec<Backend>>,
    sticky_turn: AtomicUsize,
    round_robin_turn: AtomicUsize,
}

impl Pool {
    /// Adds a server, or re-enables it if its address is known; it starts UP.
    pub fn upsert(&self, addr: SocketAddr, replica: Option<String>) {
        let url = format!("http://{addr}");
        let mut backends = self.write();
        if let Some(b) = backends.iter_mut().find(|b| b.addr == addr) {
            b.enabled = true;
            b.healthy = true;
            b.replica = replica;
        } else {
            backends.push(Backend {
                cookie: routing::cookie_value(&url),
                url,
                addr,
                replica,
                enabled: true,
                healthy: true,
            });
        }
    }

    /// Takes a server out of rotation at once (operator stop or kill) or puts it back.
    pub fn set_enabled(&self, addr: SocketAddr, enabled: bool) {
        if let Some(b) = self.write().iter_mut().find(|b| b.addr == addr) {
            b.enabled = enabled;
        }
    }

    /// Records a health observation; returns true when it changed the server's state.
    pub fn set_healthy(&self, addr: SocketAddr, healthy: bool) -> bool {
        let mut backends = self.write();
        match backends.iter_mut().find(|b| b.addr == addr) {
            Some(b) if b.healthy != healthy => {
                b.healthy = healthy;
                true
            }
            _ => false,
        }
    }

    /// A copy of the list.
    pub fn backends(&self) -> Vec<Backend> {
        self.read().clone()
    }

    /// Servers in rotation.
    pub fn up_count(&self) -> usize {
        self.read().iter().filter(|b| b.is_up()).count()
    }

    /// Routes one request; `None` when no server is up.
    pub fn route(&self, service: Service, cookie: Option<&str>) -> Option<(Backend, Decision)> {
        let backends = self.read();
        let candidates: Vec<Candidate<'_>> = backends
            .iter()
            .map(|b| Candidate {
                cookie: &b.cookie,
                up: b.is_up(),
            })
            .collect();
        let sticky_hit = service == Service::Sticky
            && cookie.is_some_and(|c| candidates.iter().any(|cand| cand.up && cand.cookie == c));
        // Only requests that need a turn advance the counter, as with Traefik's WRR.
        let turn = if sticky_hit {
            0
        } else {
            let counter = match service {
                Service::Sticky => &self.sticky_turn,
                Service::RoundRobin => &self.round_robin_turn,
            };
            counter.fetch_add(1, Ordering::Relaxed)
        };
        let decision = routing::decide(&candidates, service, cookie, turn)?;
        Some((backends[decision.server].clone(), decision))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Backend>> {
        self.backends.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Backend>> {
        self.backends.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn sticky_hits_do_not_disturb_the_rotation() {
        let pool = Pool::default();
        for port in 1..=3 {
            pool.upsert(addr(port), Some(port.to_string()));
        }
        let (first, d) = pool.route(Service::Sticky, None).unwrap();
        let cookie = d.set_cookie.unwrap();
        for _ in 0..5 {
            let (again, d) = pool.route(Service::Sticky, Some(&cookie)).unwrap();
            assert_eq!((again.addr, d.set_cookie), (first.addr, None));
        }
        let (second, _) = pool.route(Service::Sticky, None).unwrap();
        assert_ne!(second.addr, first.addr);
    }

    #[test]
    fn disabled_and_unhealthy_servers_leave_rotation_and_come_back() {
        let pool = Pool::default();
        pool.upsert(addr(1), None);
        pool.upsert(addr(2), None);
        pool.set_enabled(addr(1), false);
        assert!(pool.set_healthy(addr(2), false));
        assert!(!pool.set_healthy(addr(2), false));
        assert_eq!(pool.up_count(), 0);
        assert!(pool.route(Service::RoundRobin, None).is_none());
        pool.upsert(addr(1), None);
        assert_eq!(
            pool.route(Service::RoundRobin, None).unwrap().0.addr,
            addr(1)
        );
    }
}
