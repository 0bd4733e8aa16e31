//! A local chain that cannot start says which part failed and why, and leaves nothing
//! running. In a test binary of its own: it counts this process's children.

mod common;

use std::time::Duration;

use common::{alive, chain_config, descendants, wait_for};
use stickyscope::stack::chain::{Chain, ChainError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Bad input: a broken nginx configuration, a Traefik configuration Traefik refuses, a
/// replica that dies on start, a taken port — each a clear error naming the part, and
/// nothing left running.
async fn a_chain_that_cannot_start_says_which_part_and_leaves_nothing_running() {
    let before = descendants(std::process::id() as i32);

    let mut broken_nginx = chain_config(1);
    broken_nginx.nginx_conf = broken_nginx.nginx_conf.replace(
        "worker_connections 16384;",
        "worker_connections 16384; frobnicate on;",
    );
    let err = Chain::start(broken_nginx).await.unwrap_err();
    assert!(matches!(err, ChainError::NginxTest(_)), "{err}");
    assert!(
        err.to_string().contains("unknown directive \"frobnicate\""),
        "{err}"
    );

    for traefiks in [0, stickyscope::stack::chain::MAX_TRAEFIKS + 1] {
        let mut config = chain_config(1);
        config.traefiks = traefiks;
        let err = Chain::start(config).await.unwrap_err();
        assert!(
            matches!(err, ChainError::Traefiks(n) if n == traefiks),
            "{err}"
        );
        assert!(err.to_string().contains("a chain runs 1 to 8"), "{err}");
    }

    let mut bad_rule = chain_config(1);
    for (key, value) in &mut bad_rule.swarm_file.replica_labels {
        if key.ends_with("routers.socketio-sticky.rule") {
            *value = "PathPrefix(`/socket.io`".into();
        }
    }
    let err = Chain::start(bad_rule).await.unwrap_err().to_string();
    assert!(err.starts_with("traefik did not come up"), "{err}");
    assert!(
        err.contains("socketio-sticky"),
        "Traefik's own error line: {err}"
    );

    let mut crashing = chain_config(1);
    crashing.replica_program = stickyscope::stack::chain::ReplicaProgram {
        program: "/bin/false".into(),
        args: vec![],
    };
    let err = Chain::start(crashing).await.unwrap_err().to_string();
    assert!(
        err.starts_with("replica 1 did not come up: it exited (exit status 1)"),
        "{err}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut on_taken = chain_config(1);
    on_taken.port = taken.local_addr().unwrap().port();
    let err = Chain::start(on_taken).await.unwrap_err();
    assert!(matches!(err, ChainError::PortTaken(_)), "{err}");

    wait_for(Duration::from_secs(5), "nothing left running", || {
        let before = before.clone();
        async move {
            descendants(std::process::id() as i32)
                .into_iter()
                .filter(|p| !before.contains(p))
                .all(|p| !alive(p))
        }
    })
    .await;
}
