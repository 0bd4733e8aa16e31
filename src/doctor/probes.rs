//! The doctor's checks made of a few requests each: Socket.IO at the path (1), the sticky
//! cookie on a WebSocket-first `101` (3), a polling session's upgrade (4), and CORS for
//! the page's origin (6). Network; the judging is in plain `if`s next to the requests,
//! with the lines they judged by as evidence.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use stickyscope_vocab::doctor::{CheckId, CheckResult, Outcome};
use stickyscope_vocab::events::EngineIoChoice;
use stickyscope_vocab::naming::Identify;
use stickyscope_vocab::protocol::engineio::OpenInfo;
use tokio_tungstenite::tungstenite::Message;

use super::fixes;
use super::user::{engine_target, name_of, Opened, PollingUser};
use super::verdicts::cookie_name;
use super::wire::{DoctorWire, WireError};

/// What check 1 found the server to be.
#[derive(Debug, Clone)]
pub struct Found {
    /// The Engine.IO version sessions speak (3 or 4).
    pub eio: u8,
    /// The handshake's data.
    pub open: OpenInfo,
    /// The polling handshake's `Set-Cookie` of the sticky cookie, if any.
    pub sticky_set: Option<String>,
}

/// Check 1: Socket.IO answers at the path; the versions it speaks, its heartbeat. An
/// unreachable gateway is an error (the doctor's exit 2), not a check.
pub async fn answers(
    wire: &DoctorWire,
    identify: &Identify,
    choice: EngineIoChoice,
) -> Result<(CheckResult, Option<Found>), WireError> {
    let id = CheckId::Answers;
    let path = wire.access().path.clone();
    let first = if choice == EngineIoChoice::V3 { 3 } else { 4 };
    let mut evidence = Vec::new();
    let user = match PollingUser::handshake(wire, identify, first, None, &[]).await? {
        Opened::Open(user) => user,
        Opened::Not(seen)
            if first == 4 && seen.answer.status == 400 && choice == EngineIoChoice::Auto =>
        {
            // A v3-only server refuses EIO=4 ("Unsupported protocol version").
            evidence.push(seen.line());
            match PollingUser::handshake(wire, identify, 3, None, &[]).await? {
                Opened::Open(user) => user,
                Opened::Not(seen) => {
                    return Ok((not_engineio(&path, &seen.answer, evidence), None))
                }
            }
        }
        Opened::Not(seen) => return Ok((not_engineio(&path, &seen.answer, evidence), None)),
    };
    evidence.push(user.handshake_seen().line());
    let open = user.open.clone();
    let eio = user.eio;
    let sticky_set = user
        .handshake_seen()
        .answer
        .set_cookies()
        .into_iter()
        .find(|c| cookie_name(c) == Some(identify.cookie.as_str()))
        .map(str::to_owned);
    (*user).close(wire).await;
    // Which other version it speaks too.
    let other = if eio == 4 { 3 } else { 4 };
    let also = match PollingUser::handshake(wire, identify, other, None, &[]).await? {
        Opened::Open(other_user) => {
            let framed = other_user.eio;
            other_user.close(wire).await;
            if framed == eio {
                String::new()
            } else {
                format!(" and {other}")
            }
        }
        Opened::Not(seen) => {
            evidence.push(seen.line());
            String::new()
        }
    };
    let v3_note = if eio == 3 {
        " (Socket.IO 2: the client pings, the server answers)"
    } else if also.is_empty() {
        " (not 3: Socket.IO 2 clients cannot connect)"
    } else {
        ""
    };
    let summary = format!(
        "Engine.IO {eio}{also} at {path}{v3_note}; pingInterval {}, pingTimeout {}, upgrades {:?}",
        fixes::ms_words(open.ping_interval),
        fixes::ms_words(open.ping_timeout),
        open.upgrades
    );
    Ok((
        CheckResult::new(id, Outcome::Pass, summary).with_evidence(evidence),
        Some(Found {
            eio,
            open,
            sticky_set,
        }),
    ))
}

/// Check 1 failed: what answered instead of Engine.IO, and why that is.
fn not_engineio(
    path: &str,
    answer: &super::wire::Answer,
    mut evidence: Vec<String>,
) -> CheckResult {
    let id = CheckId::Answers;
    evidence.push(answer.line());
    let body = answer.body_text(120);
    let (summary, fix) = match answer.status {
        404 => (
            format!("nothing at {path}: 404"),
            Some(fixes::path(path)),
        ),
        503 if body.contains("no available server") => (
            "the balancer has no server up: `503 no available server`".to_owned(),
            Some("start the replicas, and check the balancer's health check path answers 200 (`…loadbalancer.healthcheck.path=/healthz`)".to_owned()),
        ),
        200 => (
            format!("{path} answers, but not with Engine.IO: {body}"),
            Some(fixes::path(path)),
        ),
        status => (
            format!("{path} answers {status}, not an Engine.IO handshake: {body}"),
            None,
        ),
    };
    let mut result = CheckResult::new(id, Outcome::Fail, summary).with_evidence(evidence);
    result.fix = fix;
    result
}

/// Check 3: a WebSocket-first connection's `101` sets the sticky cookie.
pub async fn cookie_on_upgrade(
    wire: &DoctorWire,
    identify: &Identify,
    found: &Found,
) -> CheckResult {
    let id = CheckId::CookieOnUpgrade;
    let Some(polling_cookie) = &found.sticky_set else {
        return CheckResult::skipped(
            id,
            format!(
                "the polling handshake sets no cookie {} either: this stack does not pin by it",
                identify.cookie
            ),
        );
    };
    let target = engine_target(&wire.access().path, found.eio, "websocket", None, 0);
    let mut jar = wire.new_jar();
    let (answer, socket) = match wire
        .upgrade(&target, Some(&mut jar), &[], Duration::from_secs(10))
        .await
    {
        Ok(done) => done,
        Err(e) => return CheckResult::new(id, Outcome::Fail, format!("no answer: {e}")),
    };
    if let Some(mut socket) = socket {
        let _ = socket.close(None).await;
    }
    let mut evidence = vec![answer.line()];
    evidence.extend(
        answer
            .set_cookies()
            .into_iter()
            .map(|c| format!("  Set-Cookie: {c}")),
    );
    if answer.status != 101 {
        let (cause, fix) = upgrade_refused(&answer);
        return CheckResult::new(
            id,
            Outcome::Fail,
            format!(
                "a WebSocket-first connection got no 101: {cause}: {}",
                answer.line()
            ),
        )
        .with_evidence(evidence)
        .with_fix(fix);
    }
    match answer
        .set_cookies()
        .into_iter()
        .find(|c| cookie_name(c) == Some(identify.cookie.as_str()))
    {
        Some(line) => CheckResult::new(id, Outcome::Pass, format!("the 101 sets {line}"))
            .with_evidence(evidence),
        None => {
            evidence.push(format!("the polling handshake sets {polling_cookie}"));
            CheckResult::new(
                id,
                Outcome::Fail,
                format!(
                    "the 101 sets no cookie {}: a WebSocket-first client is never pinned, so its fallback to polling or its reconnect lands anywhere",
                    identify.cookie
                ),
            )
            .with_evidence(evidence)
            .with_fix(fixes::cookie_on_upgrade(&identify.cookie))
        }
    }
}

/// Check 4: a polling session's upgrade passes every proxy and lands on its replica.
pub async fn upgrade(wire: &DoctorWire, identify: &Identify, found: &Found) -> CheckResult {
    let id = CheckId::Upgrade;
    if !found.open.upgrades.iter().any(|u| u == "websocket") {
        return CheckResult::new(
            id,
            Outcome::Warn,
            format!(
                "the server offers no upgrade (upgrades {:?}): sessions stay on polling",
                found.open.upgrades
            ),
        );
    }
    let mut user = match PollingUser::handshake(wire, identify, found.eio, None, &[]).await {
        Ok(Opened::Open(user)) => user,
        Ok(Opened::Not(seen)) => {
            return CheckResult::new(
                id,
                Outcome::Fail,
                format!("no session to upgrade: {}", seen.line()),
            )
        }
        Err(e) => {
            return CheckResult::new(id, Outcome::Fail, format!("no session to upgrade: {e}"))
        }
    };
    let mut evidence = vec![user.handshake_seen().line()];
    let target = engine_target(
        &wire.access().path,
        found.eio,
        "websocket",
        Some(user.sid()),
        0,
    );
    let sent = user.jar.get(&identify.cookie).map(str::to_owned);
    let (answer, socket) = match wire
        .upgrade(&target, Some(&mut user.jar), &[], Duration::from_secs(10))
        .await
    {
        Ok(done) => done,
        Err(e) => {
            return CheckResult::new(id, Outcome::Fail, format!("no answer to the upgrade: {e}"))
                .with_evidence(evidence)
        }
    };
    let (replica, _) = name_of(identify, &answer, sent.as_deref());
    let on = replica
        .as_deref()
        .map(|r| format!(" [replica {r}]"))
        .unwrap_or_default();
    evidence.push(format!("{}{on}", answer.line()));
    if answer.status != 101 {
        let (cause, fix) = upgrade_refused(&answer);
        return CheckResult::new(id, Outcome::Fail, format!("{cause}: {}", answer.line()))
            .with_evidence(evidence)
            .with_fix(fix);
    }
    if let (Some(session), Some(upgraded)) = (user.replica(), replica.as_deref()) {
        if session != upgraded {
            return CheckResult::new(
                id,
                Outcome::Fail,
                format!("the upgrade landed on replica {upgraded}, the session is on {session}"),
            )
            .with_evidence(evidence)
            .with_fix(fixes::UPGRADE_ELSEWHERE);
        }
    }
    let Some(mut socket) = socket else {
        return CheckResult::new(id, Outcome::Fail, "101, then no WebSocket")
            .with_evidence(evidence);
    };
    let started = Instant::now();
    let probed = async {
        socket.send(Message::text("2probe")).await.ok()?;
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                if text.as_str() == "3probe" {
                    return Some(());
                }
            }
        }
        None
    };
    let probed = tokio::time::timeout(Duration::from_secs(5), probed)
        .await
        .ok()
        .flatten();
    if probed.is_none() {
        evidence.push("→ 2probe, no 3probe".into());
        return CheckResult::new(
            id,
            Outcome::Fail,
            "101, but the WebSocket closed without answering the probe: it reached a replica that does not know the session",
        )
        .with_evidence(evidence)
        .with_fix(fixes::UPGRADE_ELSEWHERE);
    }
    evidence.push(format!(
        "→ 2probe ← 3probe ({} ms) → 5",
        started.elapsed().as_millis()
    ));
    let _ = socket.send(Message::text("5")).await;
    let _ = socket.send(Message::text("1")).await;
    let _ = socket.close(None).await;
    let on = user
        .replica()
        .map(|r| format!(" on replica {r}"))
        .unwrap_or_default();
    CheckResult::new(
        id,
        Outcome::Pass,
        format!("upgraded to WebSocket{on}: 101, probe answered"),
    )
    .with_evidence(evidence)
}

/// Check 6: CORS for the page's origin allows credentials, on the answers and the
/// preflight.
pub async fn cors(wire: &DoctorWire, found: &Found, origin: Option<&str>) -> CheckResult {
    let id = CheckId::Cors;
    let Some(origin) = origin else {
        return CheckResult::skipped(
            id,
            "give --origin https://your.app (the page's origin) to check what a browser on it may do",
        );
    };
    let path = wire.access().path.clone();
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    let with_origin = [("origin", origin.to_owned())];
    let target = engine_target(&path, found.eio, "polling", None, 1);
    let judge = |answer: &super::wire::Answer, what: &str, problems: &mut Vec<String>| {
        let allow = answer.header("access-control-allow-origin");
        let credentials = answer.header("access-control-allow-credentials");
        match allow {
            None => problems.push(format!("the {what} has no Access-Control-Allow-Origin")),
            Some("*") => problems.push(format!(
                "the {what} allows any origin (*), which forbids credentials"
            )),
            Some(other) if other != origin => {
                problems.push(format!("the {what} allows {other}, not {origin}"))
            }
            Some(_) => {}
        }
        if credentials != Some("true") {
            problems.push(format!(
                "the {what} has no Access-Control-Allow-Credentials: true, so the browser neither sends nor keeps the sticky cookie"
            ));
        }
    };
    match wire
        .send(
            Method::GET,
            &target,
            None,
            &with_origin,
            None,
            Duration::from_secs(10),
        )
        .await
    {
        Ok(answer) => {
            evidence.push(format!("Origin: {origin} — {}", answer.line()));
            evidence.extend(cors_lines(&answer));
            judge(&answer, "handshake's answer", &mut problems);
        }
        Err(e) => problems.push(format!("the handshake got no answer: {e}")),
    }
    let preflight_headers = [
        ("origin", origin.to_owned()),
        ("access-control-request-method", "POST".to_owned()),
        ("access-control-request-headers", "content-type".to_owned()),
    ];
    match wire
        .send(
            Method::OPTIONS,
            &target,
            None,
            &preflight_headers,
            None,
            Duration::from_secs(10),
        )
        .await
    {
        Ok(answer) => {
            evidence.push(answer.line());
            evidence.extend(cors_lines(&answer));
            if !(200..300).contains(&answer.status) {
                problems.push(format!("the preflight is answered {}", answer.status));
            } else {
                judge(&answer, "preflight", &mut problems);
            }
        }
        Err(e) => problems.push(format!("the preflight got no answer: {e}")),
    }
    if problems.is_empty() {
        CheckResult::new(
            id,
            Outcome::Pass,
            format!("{origin} may call with credentials (answers and preflight)"),
        )
        .with_evidence(evidence)
    } else {
        CheckResult::new(id, Outcome::Fail, problems.join("; "))
            .with_evidence(evidence)
            .with_fix(fixes::cors(origin))
    }
}

/// Why an upgrade request got no `101`, and the fix.
fn upgrade_refused(answer: &super::wire::Answer) -> (&'static str, &'static str) {
    let body = answer.body_text(200);
    if body.contains("Session ID unknown") {
        (
            "the upgrade reached a replica that does not know the session",
            fixes::UPGRADE_ELSEWHERE,
        )
    } else if matches!(answer.status, 502..=504) {
        ("a proxy could not reach a replica", fixes::UPGRADE_HEADERS)
    } else {
        // A server answering a WebSocket transport request that is not an upgrade: 400
        // (Engine.IO's "Bad request"), 426, 500, or a poll's 200.
        (
            "the upgrade did not pass a proxy: it arrived as a plain request, without `Upgrade`",
            fixes::UPGRADE_HEADERS,
        )
    }
}

fn cors_lines(answer: &super::wire::Answer) -> Vec<String> {
    answer
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("access-control-"))
        .map(|(n, v)| format!("  {n}: {v}"))
        .collect()
}
