//! Reading a large browser HAR: `stickyscope inspect FILE.har`'s path (the HAR streamed entry
//! by entry, its Socket.IO requests kept and rebuilt into records and sessions) over a HAR of
//! about 400 MB shaped like a real page's (`--size-mb N` to change it): a Socket.IO session
//! every 50 requests, the rest images with base64 bodies of 64 KB, as DevTools embeds them.
//! Prints the time, the rate, and this process's peak resident memory before and after
//! (VmHWM), to show the HAR is never held whole.
//!
//! `cargo bench --bench har_read [-- --size-mb 400]`

mod common;

use std::io::Write;
use std::time::Instant;

use common::peak_mib;

/// One entry of the HAR.
fn entry(at_s: u64, url: &str, replica: u64, body: &str, base64: bool) -> String {
    serde_json::json!({
        "startedDateTime": format!("2026-12-05T00:{:02}:{:02}.000Z", (at_s / 60) % 60, at_s % 60),
        "time": 3.0,
        "request": {"method": "GET", "url": url, "headers": [], "cookies": []},
        "response": {
            "status": 200, "statusText": "OK", "cookies": [],
            "headers": [{"name": "X-Replica", "value": replica.to_string()}],
            "content": if base64 {
                serde_json::json!({"text": body, "encoding": "base64"})
            } else {
                serde_json::json!({"text": body})
            },
        },
    })
    .to_string()
}

fn main() -> anyhow::Result<()> {
    let size_mb: u64 = std::env::args()
        .skip_while(|a| a != "--size-mb")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let path = std::env::temp_dir().join(format!("stickyscope-bench-{}.har", std::process::id()));
    let made = Instant::now();
    let image: String = std::iter::repeat_n("iVBORw0KGgoAAAANSUhEUgAA", 64 * 1024 / 24).collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    out.write_all(br#"{"log":{"version":"1.2","creator":{"name":"WebInspector","version":"537.36"},"entries":["#)?;
    let (mut written, mut i, mut sessions) = (0u64, 0u64, 0u64);
    while written < size_mb * 1_000_000 {
        let line = if i % 50 == 0 {
            sessions += 1;
            let sid = format!("sid{sessions:013}");
            let open = format!(
                r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000}}"#
            );
            let url = "http://127.0.0.1:8000/socket.io/?EIO=4&transport=polling";
            format!(
                "{},{}",
                entry(
                    i / 50,
                    &format!("{url}&t=a"),
                    sessions % 3 + 1,
                    &open,
                    false
                ),
                entry(
                    i / 50,
                    &format!("{url}&sid={sid}"),
                    sessions % 3 + 1,
                    "2",
                    false
                )
            )
        } else {
            entry(
                i / 50,
                &format!("http://127.0.0.1:8000/img/{i}.png"),
                0,
                &image,
                true,
            )
        };
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(line.as_bytes())?;
        written += line.len() as u64 + 1;
        i += 1;
    }
    out.write_all(b"]}}")?;
    out.flush()?;
    drop(out);
    println!(
        "made a HAR of {:.0} MB ({sessions} Socket.IO sessions among images) in {:.1} s",
        written as f64 / 1e6,
        made.elapsed().as_secs_f64()
    );

    let before = peak_mib();
    let started = Instant::now();
    let read = stickyscope::har::read(&path, &Default::default())?;
    let took = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    println!(
        "read {} Socket.IO requests ({} others left out) into {} sessions in {took:.2} s ({:.0} MB/s)",
        read.socketio,
        read.others,
        read.sessions.len(),
        written as f64 / 1e6 / took
    );
    println!(
        "peak resident memory: {before:.0} MiB before reading, {:.0} MiB after",
        peak_mib()
    );
    Ok(())
}
