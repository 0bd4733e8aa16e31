//! A HAR in Chromium's shape, written by hand: a sticky session that polls and upgrades,
//! a round-robin session refused with `Session ID unknown` by another replica, a page
//! request that is not Socket.IO.

use super::*;
use stickyscope_vocab::naming::Source;

fn entry(
    at: &str,
    method: &str,
    query: &str,
    status: u16,
    replica: &str,
    body: &str,
    extra: &str,
) -> String {
    format!(
        r#"{{"startedDateTime":"{at}","time":12.5,
            "request":{{"method":"{method}","url":"http://127.0.0.1:8000/socket.io/?{query}","headers":[],"cookies":[]{post}}},
            "response":{{"status":{status},"statusText":"","headers":[{{"name":"X-Replica","value":"{replica}"}}],"cookies":[],
                         "content":{{"size":{len},"mimeType":"text/plain","text":{text}}}}}{extra}}}"#,
        post = if method == "POST" {
            r#","postData":{"mimeType":"text/plain","text":"40"}"#
        } else {
            ""
        },
        len = body.len(),
        text = serde_json::to_string(body).unwrap(),
    )
}

fn har() -> String {
    let open = |sid: &str| {
        format!(
            r#"0{{"sid":"{sid}","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
        )
    };
    let frames = r#","_webSocketMessages":[
        {"type":"send","time":1796430139.5,"opcode":1,"data":"2probe"},
        {"type":"receive","time":1796430139.51,"opcode":1,"data":"3probe"},
        {"type":"send","time":1796430139.52,"opcode":1,"data":"5"},
        {"type":"receive","time":1796430141.0,"opcode":1,"data":"2"},
        {"type":"send","time":1796430141.01,"opcode":1,"data":"3"}]"#;
    let entries = [
        entry(
            "2026-12-05T00:22:18.000Z",
            "GET",
            "EIO=4&transport=polling&t=a",
            200,
            "1",
            &open("stickyAAAAAA"),
            "",
        ),
        entry(
            "2026-12-05T00:22:18.100Z",
            "POST",
            "EIO=4&transport=polling&sid=stickyAAAAAA",
            200,
            "1",
            "ok",
            "",
        ),
        entry(
            "2026-12-05T00:22:18.200Z",
            "GET",
            "EIO=4&transport=polling&sid=stickyAAAAAA",
            200,
            "1",
            "40{\"sid\":\"n1\"}",
            "",
        ),
        entry(
            "2026-12-05T00:22:19.400Z",
            "GET",
            "EIO=4&transport=websocket&sid=stickyAAAAAA",
            101,
            "1",
            "",
            frames,
        ),
        entry(
            "2026-12-05T00:22:18.050Z",
            "GET",
            "EIO=4&transport=polling&t=b",
            200,
            "2",
            &open("roundBBBBBBB"),
            "",
        ),
        entry(
            "2026-12-05T00:22:18.300Z",
            "GET",
            "EIO=4&transport=polling&sid=roundBBBBBBB",
            400,
            "3",
            r#"{"code":1,"message":"Session ID unknown"}"#,
            "",
        ),
        entry(
            "2026-12-05T00:22:18.400Z",
            "GET",
            "EIO=4&transport=polling&sid=roundBBBBBBB",
            400,
            "1",
            r#"{"code":1,"message":"Session ID unknown"}"#,
            "",
        ),
    ];
    let page = r#"{"startedDateTime":"2026-12-05T00:22:17.900Z","time":3,
        "request":{"method":"GET","url":"http://127.0.0.1:8000/","headers":[],"cookies":[]},
        "response":{"status":200,"statusText":"OK","headers":[],"cookies":[],"content":{"size":0,"text":""}}}"#;
    chromium_har(&format!("{page},{}", entries.join(",")))
}

/// A HAR as Chromium's DevTools writes it, around `entries` (JSON objects, comma-separated).
fn chromium_har(entries: &str) -> String {
    format!(
        r#"{{"log":{{"version":"1.2","creator":{{"name":"WebInspector","version":"537.36"}},"entries":[{entries}]}}}}"#
    )
}

fn read_it() -> HarRead {
    let har: Har = serde_json::from_str(&har()).unwrap();
    rebuild(har, &Identify::default()).unwrap()
}

#[test]
fn sessions_are_rebuilt_from_sids_and_replicas_named_from_the_answers() {
    let read = read_it();
    assert_eq!(read.sessions, ["sid stickyAA", "sid roundBBB"]);
    assert_eq!((read.socketio, read.others), (7, 1));
    assert_eq!(read.gateway, "http://127.0.0.1:8000");
    assert_eq!(read.started_ms, 1_796_430_138_000);
    assert_eq!(read.creator, "WebInspector 537.36");
    let wires: Vec<&WireRecord> = read
        .lines
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Wire(w) => Some(&**w),
            _ => None,
        })
        .collect();
    // Seven requests and five frames.
    assert_eq!(wires.len(), 12);
    assert!(wires
        .iter()
        .all(|w| w.replica_source == Some(Source::ReplicaHeader)));
    // The refused poll: the replica's own words, on the replica that refused it.
    let refused = wires
        .iter()
        .find(|w| w.failure.is_some())
        .expect("a refusal");
    assert_eq!(refused.user, "sid roundBBB");
    assert_eq!(refused.replica.as_deref(), Some("3"));
    let failure = refused.failure.as_ref().unwrap();
    assert_eq!(
        (failure.kind, failure.reason.as_str()),
        (FailureKind::Refused, "Session ID unknown")
    );
    // Frames ride the replica that answered the 101, decoded.
    let frames: Vec<String> = wires
        .iter()
        .filter(|w| matches!(w.kind, WireKind::Ws { .. }))
        .map(|w| {
            format!(
                "{}:{:?}",
                w.replica.as_deref().unwrap_or("?"),
                w.packets().next()
            )
        })
        .collect();
    assert_eq!(frames.len(), 5);
    assert!(
        frames[0].starts_with("1:Some(Ping { probe: true })"),
        "{frames:?}"
    );
    assert!(frames[2].starts_with("1:Some(Upgrade)"), "{frames:?}");
    // Times follow the HAR's.
    let (at, _) = read
        .lines
        .iter()
        .find(|(_, e)| matches!(e, Event::Wire(w) if matches!(w.kind, WireKind::Ws { .. })))
        .unwrap();
    assert!((at - 1.5).abs() < 1e-6, "{at}");
}

#[test]
fn a_session_connects_on_its_handshake_and_breaks_at_its_first_refusal_once() {
    let read = read_it();
    let states: Vec<(String, String)> = read
        .lines
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Session { user, state } => Some((
                user.clone(),
                match state {
                    SessionState::Connected {
                        replica, websocket, ..
                    } => format!(
                        "connected {} ws={websocket}",
                        replica.as_deref().unwrap_or("?")
                    ),
                    SessionState::Failed { reason } => format!("failed: {reason}"),
                    other => format!("{other:?}"),
                },
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            ("sid stickyAA".to_owned(), "connected 1 ws=false".to_owned()),
            ("sid roundBBB".to_owned(), "connected 2 ws=false".to_owned()),
            (
                "sid roundBBB".to_owned(),
                "failed: Session ID unknown".to_owned()
            ),
            ("sid stickyAA".to_owned(), "connected 1 ws=true".to_owned()),
        ]
    );
}

#[test]
fn bad_hars_are_refused_in_words() {
    assert!(looks_like_har(b"  {\n  \"log\": {"));
    assert!(!looks_like_har(b"{\"stickyscope_capture\":1}"));
    let none: Har = serde_json::from_str(
        r#"{"log":{"entries":[{"startedDateTime":"2026-12-05T00:22:17.900Z",
            "request":{"method":"GET","url":"http://a/"},"response":{"status":200}}]}}"#,
    )
    .unwrap();
    let err = rebuild(none, &Identify::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the HAR holds 1 request(s) and none of them is Socket.IO (no request with EIO= and transport= in its URL): record the page while it connects"
    );
    let path = std::env::temp_dir().join(format!("stickyscope-har-{}.har", std::process::id()));
    std::fs::write(&path, "{\"log\": 3}").unwrap();
    let err = read(&path, &Identify::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("this is not a HAR (HAR 1.2, as browsers export it):"),
        "{err}"
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn what_stickyscope_exports_as_a_har_reads_back_as_it_was() {
    let read = read_it();
    let records: Vec<WireRecord> = read
        .lines
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Wire(w) => Some((**w).clone()),
            _ => None,
        })
        .collect();
    let target = export::Target {
        gateway: "http://127.0.0.1:8000",
        path: "/socket.io/",
    };
    let document = export::har_of(&target, &records);
    let entries = document["log"]["entries"].as_array().unwrap();
    // Seven requests; the frames ride their upgrade's entry, as Chromium writes them.
    assert_eq!(entries.len(), 7);
    let upgrade = entries
        .iter()
        .find(|e| e["response"]["status"] == 101)
        .unwrap();
    assert_eq!(upgrade["_webSocketMessages"].as_array().unwrap().len(), 5);
    assert_eq!(
        upgrade["request"]["url"],
        "http://127.0.0.1:8000/socket.io/?EIO=4&transport=websocket&sid=stickyAAAAAA"
    );
    let again: Har = serde_json::from_value(document).unwrap();
    let back = rebuild(again, &Identify::default()).unwrap();
    let summary = |lines: &[(f64, Event)]| -> Vec<String> {
        lines
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Wire(w) => Some(format!(
                    "{} {:?} {:?} {:?} {:?}",
                    w.user,
                    w.kind,
                    w.replica,
                    w.failure.as_ref().map(|f| &f.reason),
                    w.packets().collect::<Vec<_>>()
                )),
                Event::Session { user, state } => Some(format!("{user} {state:?}")),
                _ => None,
            })
            .collect()
    };
    assert_eq!(summary(&back.lines), summary(&read.lines));
}

#[test]
fn a_har_streams_entry_by_entry_firefox_shaped_or_with_keys_in_any_order() {
    // Firefox: local offsets, pages first, the creator after the entries, no frames.
    let text = r#"{"comment":"saved by hand","log":{"version":"1.2","pages":[{"id":"page_1"}],
        "entries":[
          {"pageref":"page_1","startedDateTime":"2026-12-05T01:22:18.000+01:00","time":4,
           "request":{"method":"GET","url":"http://127.0.0.1:8000/socket.io/?EIO=4&transport=polling&t=x","headers":[],"cookies":[],"queryString":[],"headersSize":-1,"bodySize":0},
           "response":{"status":200,"statusText":"OK","headers":[{"name":"x-replica","value":"2"}],"cookies":[],
                       "content":{"mimeType":"text/plain","size":10,"text":"0{\"sid\":\"ffAAAAAAAA\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000}"},"redirectURL":"","headersSize":-1,"bodySize":-1},
           "cache":{},"timings":{"send":0,"wait":4,"receive":0}},
          {"startedDateTime":"2026-12-05T01:22:18.100+01:00","time":1,
           "request":{"method":"GET","url":"http://127.0.0.1:8000/app.css"},
           "response":{"status":200,"content":{"text":"body{}"}}}],
        "creator":{"name":"Firefox","version":"128.0"}}}"#;
    let path = std::env::temp_dir().join(format!("stickyscope-ff-{}.har", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let read = read(&path, &Identify::default()).unwrap();
    assert_eq!(read.creator, "Firefox 128.0");
    assert_eq!((read.socketio, read.others), (1, 1));
    assert_eq!(read.started_ms, 1_796_430_138_000);
    assert_eq!(read.sessions, ["sid ffAAAAAA"]);
    let named = read.lines.iter().find_map(|(_, e)| match e {
        Event::Wire(w) => w.replica.clone(),
        _ => None,
    });
    assert_eq!(named.as_deref(), Some("2"), "X-Replica in any case");
    // A document that is no HAR, or a HAR whose log is not one, is refused in words.
    for (bad, words) in [
        ("{}", "missing field `log`"),
        ("{\"log\": 3}", "expected a HAR log"),
        ("[1, 2]", "expected a HAR document"),
    ] {
        std::fs::write(&path, bad).unwrap();
        let err = super::read(&path, &Identify::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(words), "{bad}: {err}");
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_socket_io_2_server_answering_a_v4_request_in_v3_framing_is_read_as_v3_as_the_tap_reads_it() {
    let open = r#"88:0{"sid":"twoAAAAAAAAA","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}2:40"#;
    let har = chromium_har(&entry(
        "2026-12-05T00:22:18.000Z",
        "GET",
        "EIO=4&transport=polling&t=a",
        200,
        "1",
        open,
        "",
    ));
    let read = rebuild(serde_json::from_str(&har).unwrap(), &Identify::default()).unwrap();
    let wire = read
        .lines
        .iter()
        .find_map(|(_, e)| match e {
            Event::Wire(w) => Some(&**w),
            _ => None,
        })
        .expect("a wire record");
    assert_eq!(wire.engineio, Some(3), "the server spoke v3");
    assert_eq!(wire.sid.as_deref(), Some("twoAAAAAAAAA"));
    assert!(
        matches!(
            wire.packets_down.as_slice(),
            [EnginePacket::Open(_), EnginePacket::Message { .. }]
        ),
        "{:?}",
        wire.packets_down
    );
}
