//! Header and cookie names of the stack's routing contract, shared by the replicas, the
//! built-in balancer, the swarm stack's Traefik labels and the wire taps; and what a
//! replica's id (its `X-Replica` value) may be.

/// Response header naming the replica that answered (sent by stickyscope's replicas).
pub const X_REPLICA: &str = "x-replica";
/// Response header naming the local address the replica received the request on.
pub const X_REPLICA_ADDR: &str = "x-replica-addr";
/// Request header that selects the round-robin router when its value is `off`.
pub const STICKINESS_HEADER: &str = "x-stickiness";
/// Name of the sticky cookie (the swarm stack's Traefik labels use the same).
pub const STICKY_COOKIE: &str = "sticky_replica";
/// Request header a control request (`/_stack/…` on the embedded balancer) must carry. A web
/// page on another site cannot send a custom header without a CORS preflight, and the
/// balancer answers no preflight.
pub const CONTROL_HEADER: &str = "x-stickyscope-control";
/// The `Server-Timing` metric a replica sends with each long-poll answer: how long it held
/// the poll before it had a packet to send (`held;dur=2998.4`, in ms).
pub const SERVER_TIMING_HELD: &str = "held";

/// Longest replica id (an `X-Replica` value, shown on a node of the topology).
pub const REPLICA_ID_MAX: usize = 64;

/// A replica id as a replica's `--id` takes it: 1 to [`REPLICA_ID_MAX`] visible ASCII
/// characters (it is sent as the `X-Replica` header on every answer and names a node).
pub fn parse_replica_id(id: &str) -> Result<String, String> {
    if id.is_empty() {
        return Err("a replica id cannot be empty (it is sent as X-Replica)".to_owned());
    }
    if id.len() > REPLICA_ID_MAX {
        return Err(format!(
            "a replica id is at most {REPLICA_ID_MAX} characters, not {}",
            id.len()
        ));
    }
    if let Some(bad) = id.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "a replica id is visible ASCII (it is sent as X-Replica): {bad:?} is not"
        ));
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_ids_are_short_visible_ascii() {
        assert_eq!(parse_replica_id("web-1").as_deref(), Ok("web-1"));
        assert!(parse_replica_id("")
            .unwrap_err()
            .contains("cannot be empty"));
        assert!(parse_replica_id("a b").is_err());
        assert!(parse_replica_id("caf\u{e9}").is_err());
        assert!(parse_replica_id(&"x".repeat(65)).is_err());
    }
}
