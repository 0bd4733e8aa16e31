//! From what crossed the wire to a check's result: the outcome, the evidence lines and the
//! fix, for the checks that judge one held session (stickiness, what pins it, long polls)
//! and the sessions opened in numbers (spread, rate limits). Pure: the exchanges are given,
//! so every cause the doctor names is tested here without a stack.

use std::collections::BTreeMap;
use std::time::Duration;

use stickyscope_vocab::doctor::{CheckId, CheckResult, Outcome};

use super::fixes;
use super::user::Seen;

/// How a held session ended, when it ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Held for the whole time, or until a request was refused (the refusal is in what
    /// was seen).
    Held,
    /// The app refused the namespace's `CONNECT`, in its words.
    AppRefused(String),
    /// A request got no answer (connection cut, timeout), in words.
    NoAnswer(String),
    /// The server closed the session.
    Closed,
}

/// What the doctor knows of the stack's cookie: its name, and the path Socket.IO lives on.
#[derive(Debug, Clone)]
pub struct CookieRules<'a> {
    /// The sticky cookie's name.
    pub name: &'a str,
    /// Socket.IO's path (`/socket.io/`).
    pub path: &'a str,
    /// Whether the gateway is https.
    pub tls: bool,
}

/// What a `Set-Cookie` of the sticky cookie says, as notes; the worst first.
pub fn cookie_notes(
    set_cookie: &str,
    rules: &CookieRules,
) -> Vec<(Outcome, String, Option<String>)> {
    let Ok(cookie) = cookie::Cookie::parse(set_cookie.to_owned()) else {
        return vec![(
            Outcome::Warn,
            format!("Set-Cookie {set_cookie:?} does not parse as a cookie"),
            None,
        )];
    };
    let mut notes = Vec::new();
    if let Some(path) = cookie.path() {
        let covers = rules.path.starts_with(path)
            && (path.ends_with('/')
                || rules.path[path.len()..].starts_with('/')
                || rules.path.len() == path.len());
        if !covers {
            notes.push((
                Outcome::Warn,
                format!("its Path={path} does not cover {}: a browser does not send it with Socket.IO's requests", rules.path),
                Some(fixes::cookie_path(rules.path)),
            ));
        }
    }
    if cookie.same_site() == Some(cookie::SameSite::None) && cookie.secure() != Some(true) {
        notes.push((
            Outcome::Fail,
            "it is SameSite=None without Secure: browsers reject it".to_owned(),
            Some(fixes::SAMESITE_NONE.to_owned()),
        ));
    }
    if cookie.secure() == Some(true) && !rules.tls {
        notes.push((
            Outcome::Warn,
            "it is Secure over plain http: browsers keep it only from localhost".to_owned(),
            Some(fixes::SECURE_OVER_HTTP.to_owned()),
        ));
    }
    if let Some(max_age) = cookie.max_age() {
        if max_age.whole_seconds() < 60 {
            notes.push((
                Outcome::Warn,
                format!(
                    "it expires after {} s: a session outliving it moves to another replica",
                    max_age.whole_seconds()
                ),
                None,
            ));
        }
    }
    notes
}

/// Check 2: did the held session stay on one replica, and what pins it.
pub fn sticky(
    seen: &[Seen],
    ended: &Ended,
    rules: &CookieRules,
    held_for: Duration,
) -> CheckResult {
    let id = CheckId::Sticky;
    let mut evidence: Vec<String> = Vec::new();
    let Some(handshake) = seen.first() else {
        return CheckResult::new(id, Outcome::Fail, "no handshake");
    };
    evidence.push(handshake.line());
    let sticky_line = handshake
        .answer
        .set_cookies()
        .into_iter()
        .find(|c| cookie_name(c) == Some(rules.name))
        .map(str::to_owned);
    for line in handshake.answer.set_cookies() {
        evidence.push(format!("  Set-Cookie: {line}"));
    }
    for refused in seen.iter().flat_map(|s| &s.answer.refused_cookies) {
        evidence.push(format!("  {refused}"));
    }
    if let Ended::AppRefused(words) = ended {
        evidence.push(words.clone());
        return CheckResult::new(
            id,
            Outcome::Fail,
            format!("refused by the app, not by stickiness: {words}"),
        )
        .with_evidence(evidence)
        .with_fix("give what the app's middleware asks for: --auth '{\"token\":\"…\"}' (or --header, --cookie)");
    }

    let refused = seen.iter().skip(1).find(|s| s.refused());
    let replicas: Vec<&str> = seen.iter().filter_map(|s| s.replica.as_deref()).collect();
    let mut distinct = replicas.clone();
    distinct.sort_unstable();
    distinct.dedup();

    if let Some(refused) = refused {
        evidence.extend(
            seen.iter()
                .skip(1)
                .filter(|s| s.at <= refused.at)
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(Seen::line),
        );
        let when = format!("{:.1} s", refused.at.as_secs_f64());
        let what = refused.answer.line();
        let cut = matches!(refused.answer.status, 502 | 504) && refused.what == "poll";
        let rejected_by_browser = seen.iter().any(|s| !s.answer.refused_cookies.is_empty());
        let (cause, fix) = if cut {
            (
                "a proxy cut a held poll (see the long-poll check)".to_owned(),
                None,
            )
        } else if rejected_by_browser {
            let fix = if seen
                .iter()
                .flat_map(|s| &s.answer.refused_cookies)
                .any(|r| r.contains("SameSite=None"))
            {
                fixes::SAMESITE_NONE
            } else {
                fixes::SECURE_OVER_HTTP
            };
            (
                format!(
                    "browsers refuse the balancer's cookie {}, so it is never sent back",
                    rules.name
                ),
                Some(fix.to_owned()),
            )
        } else if sticky_line.is_none() && seen.iter().all(|s| s.sent_sticky.is_none()) {
            let others: Vec<&str> = handshake
                .answer
                .set_cookies()
                .into_iter()
                .filter_map(cookie_name)
                .collect();
            let also = if others.is_empty() {
                String::new()
            } else {
                format!(
                    " (it set {}: if that is the balancer's, give --sticky-cookie NAME)",
                    others.join(", ")
                )
            };
            (
                format!(
                    "the balancer set no sticky cookie {} on the handshake{also}: the router serving {} does not use a sticky service",
                    rules.name, rules.path
                ),
                Some(fixes::sticky_service(rules.name)),
            )
        } else if refused.sent_sticky.is_some() {
            (
                format!(
                    "the request carried {}={} and still reached a replica that does not know the session: the cookie pins a server that balances again (a VIP)",
                    rules.name,
                    refused.sent_sticky.as_deref().unwrap_or_default()
                ),
                Some(fixes::VIP.to_owned()),
            )
        } else {
            (
                "the request did not carry the sticky cookie".to_owned(),
                Some(fixes::sticky_service(rules.name)),
            )
        };
        let mut result = CheckResult::new(
            id,
            Outcome::Fail,
            format!("the session broke after {when}: {what}; {cause}"),
        )
        .with_evidence(evidence);
        result.fix = fix;
        return result;
    }

    if let Ended::NoAnswer(words) = ended {
        evidence.push(words.clone());
        return CheckResult::new(
            id,
            Outcome::Fail,
            format!("a request got no answer: {words}"),
        )
        .with_evidence(evidence);
    }

    let polls = seen.iter().filter(|s| s.what == "poll").count();
    let requests = seen.len();
    let on = match distinct.as_slice() {
        [] => format!(
            "which replica could not be known ({})",
            seen.iter()
                .find_map(|s| s.unnamed.clone())
                .unwrap_or_else(|| "nothing names it".into())
        ),
        [one] => format!("all on replica {one}"),
        many => format!("on replicas {}", many.join(", ")),
    };
    evidence.push(format!(
        "{requests} requests ({polls} polls) over {:.1} s, {on}",
        seen.last().map_or(0.0, |s| s.at.as_secs_f64())
    ));
    let pinned = match &sticky_line {
        Some(line) => format!("pinned by the cookie {line}"),
        None => format!("no cookie {} set: pinned by something else (client address?), or only one replica answers", rules.name),
    };
    if distinct.len() > 1 {
        return CheckResult::new(
            id,
            Outcome::Warn,
            format!("answered by several replicas ({}) without a refusal: the replicas seem to share sessions", distinct.join(", ")),
        )
        .with_evidence(evidence);
    }
    let mut worst = Outcome::Pass;
    let mut notes = Vec::new();
    let mut fix = None;
    if let Some(line) = &sticky_line {
        for (outcome, note, note_fix) in cookie_notes(line, rules) {
            worst = worst.max(outcome);
            notes.push(note);
            if fix.is_none() {
                fix = note_fix;
            }
        }
    }
    let summary = if notes.is_empty() {
        format!(
            "held {:.0} s on one replica, {pinned}",
            held_for.as_secs_f64()
        )
    } else {
        format!(
            "held {:.0} s on one replica, but the cookie: {}",
            held_for.as_secs_f64(),
            notes.join("; ")
        )
    };
    let mut result = CheckResult::new(id, worst, summary).with_evidence(evidence);
    result.fix = fix;
    result
}

/// Check 5: were held polls answered by the server, or cut by a proxy.
pub fn long_poll(
    seen: &[Seen],
    ended: &Ended,
    ping_interval: Duration,
    ping_timeout: Duration,
) -> CheckResult {
    let id = CheckId::LongPoll;
    let interval_ms = ping_interval.as_millis() as u64;
    let timeout_ms = ping_timeout.as_millis() as u64;
    let fix = fixes::read_timeout(interval_ms, timeout_ms);
    let polls: Vec<&Seen> = seen.iter().filter(|s| s.what == "poll").collect();
    let cut = polls.iter().find(|s| {
        matches!(s.answer.status, 502 | 504) || (s.answer.status == 200 && s.answer.body.is_empty())
    });
    if let Some(cut) = cut {
        return CheckResult::new(
            id,
            Outcome::Fail,
            format!(
                "a held poll was cut after {:.1} s with {} — before the server's ping at {}: a proxy's read timeout is shorter than pingInterval + pingTimeout",
                cut.answer.elapsed.as_secs_f64(),
                cut.answer.status,
                fixes::ms_words(interval_ms)
            ),
        )
        .with_evidence(vec![cut.line()])
        .with_fix(fix);
    }
    if let Ended::NoAnswer(words) = ended {
        return CheckResult::new(
            id,
            Outcome::Fail,
            format!("a held poll ended without an answer: {words}"),
        )
        .with_evidence(vec![words.clone()])
        .with_fix(fix);
    }
    let longest = polls
        .iter()
        .filter(|s| s.answer.status == 200)
        .max_by_key(|s| s.answer.elapsed);
    match longest {
        Some(poll) if poll.answer.elapsed.as_millis() as u64 * 10 >= interval_ms.saturating_mul(8) => {
            CheckResult::new(
                id,
                Outcome::Pass,
                format!(
                    "a poll held {:.1} s (pingInterval {}) came back from the server through every hop",
                    poll.answer.elapsed.as_secs_f64(),
                    fixes::ms_words(interval_ms)
                ),
            )
            .with_evidence(vec![poll.line()])
        }
        Some(poll) => CheckResult::new(
            id,
            Outcome::Warn,
            format!(
                "no poll was held for the whole ping interval (the longest: {:.1} s of {}): the server answered sooner, so a proxy's read timeout is not known",
                poll.answer.elapsed.as_secs_f64(),
                fixes::ms_words(interval_ms)
            ),
        )
        .with_evidence(vec![poll.line()]),
        None => CheckResult::skipped(id, "no poll was answered (see the stickiness check)"),
    }
}

/// Check 7: sessions opened one after another, each with a second request: on how many
/// replicas, and did each stay on its own. `up` is how many replicas the stack lists UP,
/// when it says.
pub fn spread(sessions: &[(Seen, Option<Seen>)], up: Option<usize>) -> CheckResult {
    let id = CheckId::Spread;
    let mut by_replica: BTreeMap<&str, usize> = BTreeMap::new();
    let mut broke = Vec::new();
    let mut unnamed = None;
    for (handshake, second) in sessions {
        match &handshake.replica {
            Some(replica) => *by_replica.entry(replica).or_default() += 1,
            None => unnamed = unnamed.or(handshake.unnamed.clone()),
        }
        if let Some(second) = second {
            if second.refused() {
                broke.push(second.line());
            }
        }
    }
    let table = by_replica
        .iter()
        .map(|(r, n)| format!("{r}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let n = sessions.len();
    let mut evidence = vec![format!("{n} sessions by replica: {table}")];
    if !broke.is_empty() {
        evidence.extend(broke.iter().take(3).cloned());
        return CheckResult::new(
            id,
            Outcome::Fail,
            format!(
                "{} of {n} sessions broke on their second request (see the stickiness check)",
                broke.len()
            ),
        )
        .with_evidence(evidence);
    }
    if by_replica.is_empty() {
        return CheckResult::skipped(
            id,
            format!(
                "which replica answered is not known: {}",
                unnamed.unwrap_or_default()
            ),
        );
    }
    if by_replica.len() > 1 {
        return CheckResult::new(
            id,
            Outcome::Pass,
            format!(
                "{n} sessions on {} replicas, each staying on its own",
                by_replica.len()
            ),
        )
        .with_evidence(evidence);
    }
    let only = by_replica.keys().next().copied().unwrap_or_default();
    match up {
        Some(up) if up > 1 => CheckResult::new(
            id,
            Outcome::Fail,
            format!("all {n} sessions on replica {only} while {up} are up: the balancer picks by client address, not per session"),
        )
        .with_evidence(evidence)
        .with_fix(fixes::SPREAD),
        Some(_) => CheckResult::new(
            id,
            Outcome::Warn,
            format!("all {n} sessions on replica {only}, the only one up: nothing to spread over"),
        )
        .with_evidence(evidence)
        .with_fix(fixes::SPREAD),
        None => CheckResult::new(
            id,
            Outcome::Warn,
            format!("all {n} sessions on replica {only}: either there is one replica, or the balancer picks by client address (every session here comes from one)"),
        )
        .with_evidence(evidence)
        .with_fix(fixes::SPREAD),
    }
}

/// Check 9: handshakes sent at once — how many were refused, and how.
pub fn headroom(answers: &[Result<Seen, String>]) -> CheckResult {
    let id = CheckId::Headroom;
    let n = answers.len();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut example: BTreeMap<u16, String> = BTreeMap::new();
    for answer in answers {
        match answer {
            Ok(seen) => {
                *statuses.entry(seen.answer.status).or_default() += 1;
                example
                    .entry(seen.answer.status)
                    .or_insert_with(|| seen.line());
            }
            Err(e) => errors.push(e.clone()),
        }
    }
    let table = statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut evidence = vec![format!(
        "{n} handshakes at once: {table}{}",
        if errors.is_empty() {
            String::new()
        } else {
            format!(", no answer: {}", errors.len())
        }
    )];
    evidence.extend(example.values().cloned());
    evidence.extend(errors.iter().take(2).cloned());
    let limited = statuses.get(&429).copied().unwrap_or(0);
    let unavailable = statuses.get(&503).copied().unwrap_or(0);
    if limited > 0 {
        return CheckResult::new(
            id,
            Outcome::Fail,
            format!("{limited} of {n} sessions opened at once were refused with 429 Too Many Requests: a rate limit a reconnect storm or a crowd trips"),
        )
        .with_evidence(evidence)
        .with_fix(fixes::RATE_LIMIT);
    }
    if unavailable > 0 {
        return CheckResult::new(
            id,
            Outcome::Fail,
            format!("{unavailable} of {n} sessions opened at once were refused with 503: a rate limit (nginx's limit_req answers 503 unless told otherwise) or replicas overwhelmed"),
        )
        .with_evidence(evidence)
        .with_fix(fixes::RATE_LIMIT);
    }
    let ok = statuses.get(&200).copied().unwrap_or(0);
    if ok == n {
        return CheckResult::new(
            id,
            Outcome::Pass,
            format!("all {n} sessions opened at once were accepted"),
        )
        .with_evidence(evidence);
    }
    CheckResult::new(
        id,
        Outcome::Warn,
        format!("{ok} of {n} sessions opened at once were accepted; the rest: {table}"),
    )
    .with_evidence(evidence)
}

/// A `Set-Cookie` line's cookie name.
pub fn cookie_name(line: &str) -> Option<&str> {
    line.split(';')
        .next()?
        .split_once('=')
        .map(|(n, _)| n.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::wire::Answer;

    fn answer(request: &str, status: u16, headers: &[(&str, &str)], body: &str, ms: u64) -> Answer {
        Answer {
            request: request.into(),
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: bytes::Bytes::from(body.to_owned()),
            elapsed: Duration::from_millis(ms),
            refused_cookies: Vec::new(),
        }
    }

    fn seen(
        what: &'static str,
        a: Answer,
        replica: Option<&str>,
        sent: Option<&str>,
        at_ms: u64,
    ) -> Seen {
        let set = a.sets_cookie("sticky_replica");
        Seen {
            what,
            answer: a,
            replica: replica.map(str::to_owned),
            unnamed: None,
            sent_sticky: sent.map(str::to_owned),
            set_sticky: set,
            at: Duration::from_millis(at_ms),
        }
    }

    const RULES: CookieRules = CookieRules {
        name: "sticky_replica",
        path: "/socket.io/",
        tls: false,
    };

    fn handshake(cookie: Option<&str>) -> Seen {
        let headers: Vec<(&str, &str)> =
            cookie.map(|c| vec![("set-cookie", c)]).unwrap_or_default();
        seen(
            "handshake",
            answer(
                "GET /socket.io/?EIO=4&transport=polling",
                200,
                &headers,
                "0{\"sid\":\"a\"}",
                3,
            ),
            Some("1"),
            None,
            0,
        )
    }

    fn unknown_session(sent: Option<&str>) -> Seen {
        seen(
            "poll",
            answer(
                "GET /socket.io/?EIO=4&transport=polling&sid=a",
                400,
                &[],
                r#"{"code":1,"message":"Session ID unknown"}"#,
                2,
            ),
            Some("2"),
            sent,
            40,
        )
    }

    #[test]
    fn no_cookie_then_session_id_unknown_names_the_router_without_a_sticky_service() {
        let result = sticky(
            &[handshake(None), unknown_session(None)],
            &Ended::Held,
            &RULES,
            Duration::from_secs(5),
        );
        assert_eq!(result.outcome, Outcome::Fail);
        assert!(
            result.summary.contains("Session ID unknown"),
            "{}",
            result.summary
        );
        assert!(
            result
                .summary
                .contains("set no sticky cookie sticky_replica"),
            "{}",
            result.summary
        );
        assert!(result.fix.unwrap().contains("routers.<router>.service"));
    }

    #[test]
    fn a_cookie_sent_and_still_refused_names_a_vip() {
        let result = sticky(
            &[
                handshake(Some("sticky_replica=abc; Path=/; HttpOnly")),
                unknown_session(Some("abc")),
            ],
            &Ended::Held,
            &RULES,
            Duration::from_secs(5),
        );
        assert_eq!(result.outcome, Outcome::Fail);
        assert!(result.summary.contains("VIP"), "{}", result.summary);
    }

    #[test]
    fn a_cookie_browsers_refuse_is_the_cause() {
        let mut first = handshake(Some("sticky_replica=abc; SameSite=None"));
        first.answer.refused_cookies.push(
            "Set-Cookie sticky_replica=abc is SameSite=None without Secure: browsers reject it"
                .into(),
        );
        let result = sticky(
            &[first, unknown_session(None)],
            &Ended::Held,
            &RULES,
            Duration::from_secs(5),
        );
        assert_eq!(result.outcome, Outcome::Fail);
        assert!(
            result.summary.contains("browsers refuse"),
            "{}",
            result.summary
        );
        assert!(result.fix.unwrap().contains("sticky.cookie.secure=true"));
    }

    #[test]
    fn a_held_session_passes_and_says_what_pins_it_and_warns_on_a_path_that_misses() {
        let poll = seen(
            "poll",
            answer("GET …", 200, &[], "2", 3000),
            Some("1"),
            Some("abc"),
            10,
        );
        let ok = sticky(
            &[handshake(Some("sticky_replica=abc; Path=/")), poll.clone()],
            &Ended::Held,
            &RULES,
            Duration::from_secs(7),
        );
        assert_eq!(ok.outcome, Outcome::Pass, "{ok:?}");
        assert!(
            ok.summary
                .contains("pinned by the cookie sticky_replica=abc"),
            "{}",
            ok.summary
        );
        let narrow = sticky(
            &[handshake(Some("sticky_replica=abc; Path=/api")), poll],
            &Ended::Held,
            &RULES,
            Duration::from_secs(7),
        );
        assert_eq!(narrow.outcome, Outcome::Warn);
        assert!(
            narrow
                .summary
                .contains("Path=/api does not cover /socket.io/"),
            "{}",
            narrow.summary
        );
    }

    #[test]
    fn an_app_refusal_is_said_as_the_apps() {
        let result = sticky(
            &[handshake(None)],
            &Ended::AppRefused(
                "the app refused the CONNECT: {\"message\":\"not authorized\"}".into(),
            ),
            &RULES,
            Duration::ZERO,
        );
        assert_eq!(result.outcome, Outcome::Fail);
        assert!(
            result.summary.starts_with("refused by the app"),
            "{}",
            result.summary
        );
    }

    #[test]
    fn a_poll_cut_by_a_proxy_fails_the_long_poll_check_with_the_timeout_fix() {
        let cut = seen(
            "poll",
            answer("GET …", 504, &[], "<html>504 Gateway Time-out</html>", 1001),
            None,
            None,
            5,
        );
        let result = long_poll(
            &[handshake(None), cut],
            &Ended::Held,
            Duration::from_secs(3),
            Duration::from_secs(7),
        );
        assert_eq!(result.outcome, Outcome::Fail);
        assert!(result.fix.unwrap().contains("proxy_read_timeout 20s;"));
        let held = seen("poll", answer("GET …", 200, &[], "2", 3002), None, None, 5);
        let result = long_poll(
            &[handshake(None), held],
            &Ended::Held,
            Duration::from_secs(3),
            Duration::from_secs(7),
        );
        assert_eq!(result.outcome, Outcome::Pass, "{result:?}");
    }

    #[test]
    fn one_replica_for_every_session_fails_only_when_more_are_up() {
        let sessions: Vec<(Seen, Option<Seen>)> = (0..6).map(|_| (handshake(None), None)).collect();
        assert_eq!(spread(&sessions, Some(3)).outcome, Outcome::Fail);
        assert_eq!(spread(&sessions, Some(1)).outcome, Outcome::Warn);
        assert_eq!(spread(&sessions, None).outcome, Outcome::Warn);
        let mut two = sessions.clone();
        two[0].0.replica = Some("2".into());
        assert_eq!(spread(&two, Some(3)).outcome, Outcome::Pass);
    }

    #[test]
    fn a_429_among_sessions_opened_at_once_is_a_rate_limit() {
        let ok = |s| {
            Ok(seen(
                "handshake",
                answer("GET …", s, &[], "", 1),
                None,
                None,
                0,
            ))
        };
        let result = headroom(&[ok(200), ok(429), ok(200)]);
        assert_eq!(result.outcome, Outcome::Fail);
        assert!(result.summary.contains("1 of 3"), "{}", result.summary);
        assert_eq!(headroom(&[ok(200), ok(200)]).outcome, Outcome::Pass);
    }
}
