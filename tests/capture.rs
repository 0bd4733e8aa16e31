//! Captures: what `probe --capture` records reads back with `stickyscope inspect` into the
//! very report the probe printed — without a stack; what `probe --har` writes reads back
//! with the same replicas and refusals; a capture cut short is read to its last whole line
//! and said; one of a newer format, a HAR with no Socket.IO, or a file that is neither, is
//! refused in words; the size bound holds.

mod common;

use common::probe_json;
use serde_json::Value;

/// `stickyscope inspect ARGS`: exit code, stdout, stderr.
fn inspect(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .arg("inspect")
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "stickyscope-capture-test-{}-{name}",
        std::process::id()
    ))
}

#[test]
fn what_probe_captured_inspect_reports_as_probe_did_without_a_stack() {
    let path = temp("broken.jsonl");
    let file = path.display().to_string();
    // Stickiness off: the session breaks with Session ID unknown, so the report has
    // refusals, a breakage and a verdict of 1 to agree on. One session, not three: three
    // sessions on three round-robin replicas can step in lockstep, each request of each
    // session landing on its own replica again, and none breaks (seen in CI).
    let (code, mut live, stderr) = probe_json(
        "3s",
        &["--sessions", "1", "--stickiness", "off", "--capture", &file],
    );
    assert_eq!(code, 1, "{live:#}\n{stderr}");
    let said = live["capture"].take();
    assert!(
        said.as_str().is_some_and(|s| s.starts_with(&file)),
        "{said}"
    );
    live.as_object_mut().unwrap().remove("capture");

    let (code, stdout, stderr) = inspect(&["--json", &file]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let read: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(read, live, "inspect's report differs from the probe's");
    assert!(read["replicas"]
        .as_object()
        .unwrap()
        .values()
        .any(|r| r["rejected"].as_object().is_some_and(|m| !m.is_empty())));

    // Cut in the middle of a line, as a crash leaves it: read to the last whole line.
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.len() / 2;
    let cut = (cut..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap();
    std::fs::write(&path, &text[..cut]).unwrap();
    let (code, stdout, stderr) = inspect(&[&file]);
    assert!(code == 0 || code == 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("the capture is cut in line"), "{stderr}");
    assert!(stdout.contains("probe of "), "{stdout}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_newer_format_or_a_file_that_is_no_capture_is_refused_in_words() {
    let newer = temp("newer.jsonl");
    std::fs::write(
        &newer,
        "{\"stickyscope_capture\":9,\"source\":\"probe\"}\n{\"at_s\":0}\n",
    )
    .unwrap();
    let (code, _, stderr) = inspect(&[&newer.display().to_string()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("format 9") && stderr.contains("format 1"),
        "{stderr}"
    );
    let har = temp("session.har");
    std::fs::write(&har, "{\"log\":{\"version\":\"1.2\",\"entries\":[]}}\n").unwrap();
    let (code, _, stderr) = inspect(&[&har.display().to_string()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("the HAR holds 0 request(s) and none of them is Socket.IO"),
        "{stderr}"
    );
    let neither = temp("notes.txt");
    std::fs::write(&neither, "meeting notes\n").unwrap();
    let (code, _, stderr) = inspect(&[&neither.display().to_string()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a stickyscope capture"), "{stderr}");
    let _ = std::fs::remove_file(&neither);
    let (code, _, stderr) = inspect(&["/nonexistent/capture.jsonl"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("No such file"), "{stderr}");
    for path in [newer, har] {
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn a_capture_stops_at_its_size_bound_and_says_so() {
    let path = temp("bounded.jsonl");
    let file = path.display().to_string();
    let (code, live, stderr) = probe_json(
        "2s",
        &[
            "--sessions",
            "2",
            "--capture",
            &file,
            "--capture-max",
            "2KB",
        ],
    );
    assert_eq!(code, 0, "{live:#}\n{stderr}");
    assert!(
        live["capture"]
            .as_str()
            .is_some_and(|s| s.contains("stopped at its size bound")),
        "{live:#}"
    );
    let size = std::fs::metadata(&path).unwrap().len();
    // The bound, and the end line that says why it stopped.
    assert!(size <= 2_000 + 200, "{size}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.lines().last().unwrap().contains("\"size limit\""),
        "{text}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stickyscope"))
        .args(["probe", "--capture", &file, "--capture-max", "12"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a size of at least 1KB"), "{stderr}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn what_probe_writes_as_a_har_reads_back_with_the_same_replicas_and_refusals() {
    let har = temp("probe.har");
    let file = har.display().to_string();
    let (code, mut live, stderr) = probe_json(
        "3s",
        &["--sessions", "1", "--stickiness", "off", "--har", &file],
    );
    assert_eq!(code, 1, "{live:#}\n{stderr}");
    let said = live["har"].take();
    assert!(
        said.as_str()
            .is_some_and(|s| s.starts_with(&file) && s.contains("requests")),
        "{said}"
    );
    let (code, stdout, stderr) = inspect(&["--json", &file]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let read: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(read["from_har"], "stickyscope 0.1.0");
    // Every replica with what named it, its handshakes and its refusals, as the probe saw
    // them (heartbeats too: the frames and polls carry the same packets).
    assert_eq!(read["replicas"], live["replicas"], "{read:#}\n{live:#}");
    let _ = std::fs::remove_file(&har);
}
