//! One Engine.IO user over HTTP long-polling, spoken by hand so that the doctor sees every
//! request and answer: the handshake, the namespace's `CONNECT` (with the auth payload),
//! polls held by the server, the heartbeat (v4: the server pings and this answers; v3: this
//! pings while a poll is held), and the close. Every exchange is kept as a [`Seen`], naming
//! the replica that answered when anything names it. Network; no egui.

use std::time::{Duration, Instant};

use hyper::Method;
use stickyscope_vocab::naming::Identify;
use stickyscope_vocab::protocol::engineio::{self, EnginePacket, OpenInfo};
use stickyscope_vocab::protocol::engineio_v3;
use stickyscope_vocab::protocol::socketio::SocketKind;

use super::verdicts::Ended;
use super::wire::{Answer, DoctorWire, WireError};
use crate::wire::jar::CookieJar;

/// Longest pingInterval or pingTimeout the doctor times by (Engine.IO servers allow up to
/// minutes; a larger number in a handshake is a broken server's, and must not overflow).
const LONGEST_HEARTBEAT_MS: u64 = 10 * 60 * 1000;

/// A handshake's heartbeat number as a duration, bounded by [`LONGEST_HEARTBEAT_MS`].
pub fn heartbeat_ms(ms: u64) -> Duration {
    Duration::from_millis(ms.min(LONGEST_HEARTBEAT_MS))
}

/// What one request of a user was, and what answered it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `handshake`, `poll`, `post`, `upgrade`.
    pub what: &'static str,
    /// The answer, whole.
    pub answer: Answer,
    /// The replica that answered, when named.
    pub replica: Option<String>,
    /// Why it is not named, when it is not.
    pub unnamed: Option<String>,
    /// The sticky cookie's value the request carried.
    pub sent_sticky: Option<String>,
    /// The sticky cookie's value the answer set.
    pub set_sticky: Option<String>,
    /// When it was sent, from the user's start.
    pub at: Duration,
}

impl Seen {
    /// Whether the server refused it (any 4xx or 5xx).
    pub fn refused(&self) -> bool {
        self.answer.status >= 400
    }

    /// `poll → 200 on replica 2 (25012 ms)`-like evidence.
    pub fn line(&self) -> String {
        let on = match &self.replica {
            Some(replica) => format!(" [replica {replica}]"),
            None => String::new(),
        };
        format!("{}{on}", self.answer.line())
    }
}

/// How a user names replicas: the stack's sources.
pub fn name_of(
    identify: &Identify,
    answer: &Answer,
    sent_sticky: Option<&str>,
) -> (Option<String>, Option<String>) {
    let x_replica = answer.header(&stickyscope_contract::names::X_REPLICA.to_ascii_lowercase());
    let header = identify
        .header
        .as_deref()
        .and_then(|h| answer.header(&h.to_ascii_lowercase()));
    let set = answer.sets_cookie(&identify.cookie);
    match identify.identify(x_replica, header, set.as_deref(), sent_sticky) {
        Ok((name, _)) => (Some(name), None),
        Err(why) => (None, Some(why.to_string())),
    }
}

/// How joining the namespace went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// Joined.
    Yes,
    /// A request was refused (the refusal is in what was seen).
    Refused,
    /// The app refused the `CONNECT` (`CONNECT_ERROR`), in its words.
    AppRefused(String),
    /// No answer came, in words.
    NoAnswer(String),
}

/// The answer to a handshake.
pub enum Opened {
    /// A session.
    Open(Box<PollingUser>),
    /// Not a session: what answered instead.
    Not(Box<Seen>),
}

/// One user's polling session.
pub struct PollingUser {
    /// The jar, a browser's.
    pub jar: CookieJar,
    /// The Engine.IO version spoken (3 or 4).
    pub eio: u8,
    /// The handshake's data.
    pub open: OpenInfo,
    /// Every exchange, in order.
    pub seen: Vec<Seen>,
    identify: Identify,
    started: Instant,
    counter: u64,
    next_ping: Instant,
}

/// `{path}?EIO=…&transport=…[&sid=…]&t=…`.
pub fn engine_target(path: &str, eio: u8, transport: &str, sid: Option<&str>, t: u64) -> String {
    let sid = sid.map(|s| format!("&sid={s}")).unwrap_or_default();
    format!("{path}?EIO={eio}&transport={transport}{sid}&t=doctor{t}")
}

/// The packets in a polling answer, as `eio` frames them (v4 servers answer v3 framing when
/// they are Socket.IO 2, so the body decides).
pub fn packets(body: &[u8]) -> Vec<EnginePacket> {
    if engineio_v3::looks_like_v3(body) {
        engineio_v3::decode_payload(body)
    } else {
        engineio::decode_payload(body)
    }
}

/// A polling POST's body for `packets`, as `eio` frames it.
fn payload(eio: u8, packets: &[&str]) -> String {
    if eio == 3 {
        engineio_v3::encode_payload(packets.iter().copied())
    } else {
        packets.join("\u{1e}")
    }
}

impl PollingUser {
    /// A handshake with a fresh jar (or `jar`) in Engine.IO `eio`.
    pub async fn handshake(
        wire: &DoctorWire,
        identify: &Identify,
        eio: u8,
        jar: Option<CookieJar>,
        extra: &[(&str, String)],
    ) -> Result<Opened, WireError> {
        let started = Instant::now();
        let mut jar = jar.unwrap_or_else(|| wire.new_jar());
        let sent_sticky = jar.get(&identify.cookie).map(str::to_owned);
        let target = engine_target(&wire.access().path, eio, "polling", None, 0);
        let answer = wire
            .send(
                Method::GET,
                &target,
                Some(&mut jar),
                extra,
                None,
                Duration::from_secs(10),
            )
            .await?;
        let seen = seen("handshake", answer, identify, sent_sticky, Duration::ZERO);
        let open = (seen.answer.status == 200)
            .then(|| packets(&seen.answer.body))
            .and_then(|p| {
                p.into_iter().find_map(|p| match p {
                    EnginePacket::Open(open) => Some(open),
                    _ => None,
                })
            });
        let Some(open) = open else {
            return Ok(Opened::Not(Box::new(seen)));
        };
        let eio = if engineio_v3::looks_like_v3(&seen.answer.body) {
            3
        } else {
            eio
        };
        Ok(Opened::Open(Box::new(PollingUser {
            jar,
            eio,
            next_ping: Instant::now() + heartbeat_ms(open.ping_interval),
            open,
            seen: vec![seen],
            identify: identify.clone(),
            started,
            counter: 0,
        })))
    }

    /// The session's id.
    pub fn sid(&self) -> &str {
        &self.open.sid
    }

    /// The replica the handshake named.
    pub fn replica(&self) -> Option<&str> {
        self.seen.first().and_then(|s| s.replica.as_deref())
    }

    /// The handshake's answer.
    pub fn handshake_seen(&self) -> &Seen {
        &self.seen[0]
    }

    fn target(&mut self, wire: &DoctorWire) -> String {
        self.counter += 1;
        engine_target(
            &wire.access().path,
            self.eio,
            "polling",
            Some(&self.open.sid),
            self.counter,
        )
    }

    /// Posts `packets`; the answer is kept.
    pub async fn post(&mut self, wire: &DoctorWire, packets: &[&str]) -> Result<&Seen, WireError> {
        let target = self.target(wire);
        let at = self.started.elapsed();
        let sent = self.jar.get(&self.identify.cookie).map(str::to_owned);
        let answer = wire
            .send(
                Method::POST,
                &target,
                Some(&mut self.jar),
                &[],
                Some(payload(self.eio, packets)),
                Duration::from_secs(10),
            )
            .await?;
        self.seen
            .push(seen("post", answer, &self.identify, sent, at));
        Ok(self.seen.last().expect("just pushed"))
    }

    /// Joins the namespace (with the auth payload).
    pub async fn join(&mut self, wire: &DoctorWire) -> Result<Joined, WireError> {
        let access = wire.access();
        let namespace = access.namespace.clone();
        let auth = access.auth.clone();
        if self.eio == 3 && namespace == "/" {
            // Socket.IO 2 joins `/` by itself.
            return Ok(Joined::Yes);
        }
        let prefix = if namespace == "/" {
            String::new()
        } else {
            format!("{namespace},")
        };
        let packet = match (&auth, self.eio) {
            (Some(auth), 4) => format!("40{prefix}{auth}"),
            _ => format!("40{}", prefix.trim_end_matches(',')),
        };
        let post = self.post(wire, &[&packet]).await?;
        if post.refused() {
            return Ok(Joined::Refused);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let Some(packets) = self.poll(wire).await? else {
                return Ok(Joined::Refused);
            };
            for packet in packets {
                if let EnginePacket::Message {
                    socket: Some(socket),
                } = packet
                {
                    match socket.kind {
                        SocketKind::Connect => return Ok(Joined::Yes),
                        SocketKind::ConnectError => {
                            return Ok(Joined::AppRefused(format!(
                                "the app refused the CONNECT: {}",
                                if socket.data.is_empty() {
                                    "(no reason)".to_owned()
                                } else {
                                    socket.data
                                }
                            )))
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(Joined::NoAnswer(
            "no answer to the CONNECT within 10 s".into(),
        ))
    }

    /// One poll, held by the server until it has a packet; the heartbeat is kept (v4: pings
    /// answered after; v3: a ping posted when due while the poll is held). The packets it
    /// brought; none when it was refused (the refusal is in what was seen).
    pub async fn poll(
        &mut self,
        wire: &DoctorWire,
    ) -> Result<Option<Vec<EnginePacket>>, WireError> {
        let target = self.target(wire);
        let at = self.started.elapsed();
        let sent = self.jar.get(&self.identify.cookie).map(str::to_owned);
        let bound = heartbeat_ms(self.open.ping_interval)
            + heartbeat_ms(self.open.ping_timeout)
            + Duration::from_secs(5);
        let ping_target = self.target(wire);
        let cookie_header = self.jar.header(None);
        let eio = self.eio;
        let next_ping = self.next_ping;
        let mut jar = self.jar.clone();
        let mut pinged: Option<Answer> = None;
        let answer = {
            let get = wire.send(Method::GET, &target, Some(&mut jar), &[], None, bound);
            tokio::pin!(get);
            loop {
                tokio::select! {
                    answer = &mut get => break answer?,
                    _ = tokio::time::sleep_until(next_ping.into()), if eio == 3 && pinged.is_none() => {
                        let extra: Vec<(&str, String)> =
                            cookie_header.iter().map(|c| ("cookie", c.clone())).collect();
                        let ping = wire
                            .send(
                                Method::POST,
                                &ping_target,
                                None,
                                &extra,
                                Some(payload(3, &["2"])),
                                Duration::from_secs(10),
                            )
                            .await?;
                        pinged = Some(ping);
                    }
                }
            }
        };
        self.jar = jar;
        if let Some(ping) = pinged {
            let at = next_ping.saturating_duration_since(self.started);
            self.seen
                .push(seen("post", ping, &self.identify, sent.clone(), at));
            self.next_ping += heartbeat_ms(self.open.ping_interval);
        }
        self.seen
            .push(seen("poll", answer, &self.identify, sent, at));
        let last = self.seen.last().expect("just pushed");
        if last.refused() {
            return Ok(None);
        }
        let packets = packets(&last.answer.body);
        if packets
            .iter()
            .any(|p| matches!(p, EnginePacket::Ping { probe: false }))
            && eio == 4
        {
            self.post(wire, &["3"]).await?;
        }
        if eio == 3 && Instant::now() >= self.next_ping {
            self.post(wire, &["2"]).await?;
            self.next_ping = Instant::now() + heartbeat_ms(self.open.ping_interval);
        }
        Ok(Some(packets))
    }

    /// Polls for `how_long`, or until a request is refused or the server closes the session.
    pub async fn hold(
        &mut self,
        wire: &DoctorWire,
        how_long: Duration,
    ) -> Result<Ended, WireError> {
        let until = Instant::now() + how_long;
        while Instant::now() < until {
            let Some(packets) = self.poll(wire).await? else {
                // The refusal is in what was seen.
                return Ok(Ended::Held);
            };
            if packets.iter().any(|p| matches!(p, EnginePacket::Close)) {
                return Ok(Ended::Closed);
            }
        }
        Ok(Ended::Held)
    }

    /// Closes the session (best effort: the server frees it).
    pub async fn close(mut self, wire: &DoctorWire) {
        let _ = self.post(wire, &["1"]).await;
    }
}

fn seen(
    what: &'static str,
    answer: Answer,
    identify: &Identify,
    sent_sticky: Option<String>,
    at: Duration,
) -> Seen {
    let (replica, unnamed) = name_of(identify, &answer, sent_sticky.as_deref());
    let set_sticky = answer.sets_cookie(&identify.cookie);
    Seen {
        what,
        answer,
        replica,
        unnamed,
        sent_sticky,
        set_sticky,
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshakes_absurd_heartbeat_is_bounded_not_an_overflow() {
        assert_eq!(heartbeat_ms(u64::MAX), Duration::from_secs(600));
        assert_eq!(heartbeat_ms(25_000), Duration::from_secs(25));
        let fix = super::super::fixes::read_timeout(u64::MAX, u64::MAX);
        assert!(fix.contains("proxy_read_timeout"), "{fix}");
    }

    #[test]
    fn payloads_are_framed_as_each_version_frames_them() {
        assert_eq!(payload(4, &["40", "3"]), "40\u{1e}3");
        assert_eq!(payload(3, &["2"]), "1:2");
        assert_eq!(
            engine_target("/socket.io/", 4, "polling", Some("abc"), 7),
            "/socket.io/?EIO=4&transport=polling&sid=abc&t=doctor7"
        );
    }
}
