//! docker-swarm.yml says what the app relies on: both Traefik services over the replicas,
//! the cookie, the two routers with their rules and priorities, the health check, the ports,
//! the swarm provider, and the replicas' identity and adapter.

use serde_yaml::Value;

fn stack() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-swarm.yml")).unwrap();
    serde_yaml::from_str(&text).expect("docker-swarm.yml is YAML")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn label(labels: &[String], key: &str) -> Option<String> {
    labels
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

#[test]
fn replicas_carry_both_services_and_both_routers() {
    let s = stack();
    let replica = &s["services"]["replica"];
    assert_eq!(replica["deploy"]["replicas"].as_u64(), Some(3));
    assert_eq!(
        replica["environment"]["REPLICA_ID"].as_str(),
        Some("{{.Task.Slot}}")
    );
    assert!(replica["environment"]["REDIS_URL"]
        .as_str()
        .unwrap()
        .starts_with("redis://redis:"));
    assert!(strings(&replica["healthcheck"]["test"]).contains(&"--healthcheck".to_owned()));

    let labels = strings(&replica["deploy"]["labels"]);
    let sticky = "traefik.http.services.replicas-sticky.loadbalancer";
    let rr = "traefik.http.services.replicas-roundrobin.loadbalancer";
    assert_eq!(
        label(&labels, &format!("{sticky}.server.port")).as_deref(),
        Some("3000")
    );
    assert_eq!(
        label(&labels, &format!("{rr}.server.port")).as_deref(),
        Some("3000")
    );
    assert_eq!(
        label(&labels, &format!("{sticky}.sticky.cookie.name")).as_deref(),
        Some("sticky_replica")
    );
    assert_eq!(
        label(&labels, &format!("{sticky}.sticky.cookie.httpOnly")).as_deref(),
        Some("true")
    );
    assert_eq!(
        label(&labels, &format!("{sticky}.sticky.cookie.sameSite")).as_deref(),
        Some("lax")
    );
    assert_eq!(
        label(&labels, &format!("{sticky}.healthcheck.path")).as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        label(&labels, &format!("{sticky}.healthcheck.interval")).as_deref(),
        Some("1s")
    );
    assert!(
        labels
            .iter()
            .all(|l| !l.starts_with(&format!("{rr}.sticky"))),
        "round-robin is not sticky"
    );
    assert_eq!(
        label(&labels, "traefik.swarm.lbswarm").as_deref(),
        Some("false")
    );

    let router =
        |name: &str, key: &str| label(&labels, &format!("traefik.http.routers.{name}.{key}"));
    assert_eq!(
        router("socketio-sticky", "rule").as_deref(),
        Some("PathPrefix(`/socket.io`)")
    );
    assert_eq!(
        router("socketio-sticky", "service").as_deref(),
        Some("replicas-sticky")
    );
    assert_eq!(
        router("socketio-roundrobin", "rule").as_deref(),
        Some("PathPrefix(`/socket.io`) && Header(`X-Stickiness`, `off`)")
    );
    assert_eq!(
        router("socketio-roundrobin", "service").as_deref(),
        Some("replicas-roundrobin")
    );
    let priority = |name: &str| router(name, "priority").unwrap().parse::<i64>().unwrap();
    assert!(priority("socketio-roundrobin") > priority("socketio-sticky"));
}

#[test]
fn traefik_is_the_pinned_v3_on_the_swarm_provider_with_its_api_behind_basic_auth() {
    let s = stack();
    let traefik = &s["services"]["traefik"];
    assert_eq!(
        traefik["image"].as_str(),
        Some(
            format!(
                "traefik:v{}",
                stickyscope::stack::chain::binaries::TRAEFIK_VERSION
            )
            .as_str()
        ),
        "one exact version, the one CI and the local chain run"
    );
    let command = strings(&traefik["command"]);
    assert!(command.contains(&"--providers.swarm=true".to_owned()));
    assert!(
        command.iter().all(|c| !c.contains("swarmMode")),
        "v2's flag stops v3"
    );
    assert!(command.contains(&"--api.dashboard=true".to_owned()));
    assert!(
        command.iter().all(|c| !c.contains("api.insecure")),
        "the API is never open to the world"
    );
    assert!(strings(&traefik["ports"]).contains(&"9090:8080".to_owned()));
    assert!(command.iter().any(|c| c == "--entryPoints.web.address=:80"));
    assert!(command
        .iter()
        .any(|c| c == "--entryPoints.api.address=:8080"));
    let labels = strings(&traefik["deploy"]["labels"]);
    assert_eq!(
        label(&labels, "traefik.http.routers.api.service").as_deref(),
        Some("api@internal")
    );
    assert_eq!(
        label(&labels, "traefik.http.routers.api.entrypoints").as_deref(),
        Some("api")
    );
    assert_eq!(
        label(&labels, "traefik.http.routers.api.middlewares").as_deref(),
        Some("api-auth")
    );
    assert_eq!(
        label(
            &labels,
            "traefik.http.middlewares.api-auth.basicauth.usersfile"
        )
        .as_deref(),
        Some("/run/secrets/traefik_api_users")
    );
    assert!(strings(&traefik["secrets"]).contains(&"traefik_api_users".to_owned()));
    assert_eq!(
        s["secrets"]["traefik_api_users"]["external"].as_bool(),
        Some(true)
    );
    let deploy =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/stack/deploy.sh")).unwrap();
    assert!(deploy.contains("docker secret create traefik_api_users"));
    assert!(deploy.contains("openssl passwd -apr1"));
}

#[test]
fn nginx_is_the_gateway_on_8000_and_redis_is_there() {
    let s = stack();
    assert!(strings(&s["services"]["nginx"]["ports"]).contains(&"8000:80".to_owned()));
    assert_eq!(
        s["services"]["nginx"]["image"].as_str(),
        Some("stickyscope-nginx:latest")
    );
    assert_eq!(
        s["services"]["replica"]["image"].as_str(),
        Some("stickyscope-replica:latest")
    );
    assert!(s["services"]["redis"]["image"]
        .as_str()
        .unwrap()
        .starts_with("redis:7"));
    // The deploy script builds the images the stack file names, with their contexts (online;
    // offline it is run for real by tests/swarm.rs).
    let deploy =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/stack/deploy.sh")).unwrap();
    assert!(deploy.contains("build stickyscope-replica:latest . stack/replica/Dockerfile"));
    assert!(deploy.contains("build stickyscope-nginx:latest stack/nginx"));
    assert!(deploy.contains("files=(-c docker-swarm.yml)"));
}
