//! Header and cookie names of the stack's routing contract, shared by the replicas, the
//! built-in balancer, the swarm stack's Traefik labels and the wire taps.

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
