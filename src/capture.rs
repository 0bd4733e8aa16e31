//! Capture export: wire records as JSON Lines, one [`WireRecord`] per line (schema in the
//! README, "Capture format"), and reading them back.

use std::io::{self, BufRead, Write};
use std::path::Path;

use stickyscope_vocab::record::WireRecord;

/// Why a capture could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// File or stream I/O failed.
    #[error("capture I/O: {0}")]
    Io(#[from] io::Error),
    /// A line is not a wire record.
    #[error("capture line {line}: {source}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        source: serde_json::Error,
    },
}

/// Writes `events` as JSON Lines; returns how many were written.
pub fn write_jsonl<'a, W: Write>(
    events: impl IntoIterator<Item = &'a WireRecord>,
    mut out: W,
) -> Result<usize, CaptureError> {
    let mut n = 0;
    for event in events {
        serde_json::to_writer(&mut out, event).map_err(io::Error::from)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// Writes `events` to a new file at `path` (replacing it); returns how many.
pub fn export_file<'a>(
    path: &Path,
    events: impl IntoIterator<Item = &'a WireRecord>,
) -> Result<usize, CaptureError> {
    let file = std::fs::File::create(path)?;
    write_jsonl(events, io::BufWriter::new(file))
}

/// Reads JSON Lines back; blank lines are skipped.
pub fn read_jsonl<R: BufRead>(input: R) -> Result<Vec<WireRecord>, CaptureError> {
    let mut events = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line).map_err(|source| CaptureError::BadLine {
            line: i + 1,
            source,
        })?;
        events.push(event);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stickyscope_contract::RequestKind;
    use stickyscope_vocab::protocol::decode_payload;
    use stickyscope_vocab::record::{Failure, FailureKind, Transport, WireKind};

    fn sample() -> WireRecord {
        WireRecord {
            seq: 7,
            sid: Some("S1".into()),
            engineio: Some(4),
            replica: Some("2".into()),
            replica_addr: Some("127.0.0.1:4000".into()),
            latency_us: Some(812),
            bytes_down: 43,
            packets_down: decode_payload(b"2\x1e42[\"chat\",{}]"),
            raw_down: r#"{"code":"1","message":"Session ID unknown"}"#.into(),
            failure: Some(Failure {
                kind: FailureKind::Refused,
                reason: "Session ID unknown".into(),
            }),
            ..WireRecord::new(
                "agent",
                1_764_000_000_000,
                Transport::Polling,
                WireKind::Http {
                    request: RequestKind::PollGet,
                    method: "GET".into(),
                    status: Some(400),
                },
            )
        }
    }

    #[test]
    fn round_trips_and_documents_its_shape() {
        let events = vec![sample(), sample()];
        let mut buf = Vec::new();
        assert_eq!(write_jsonl(&events, &mut buf).unwrap(), 2);
        let text = String::from_utf8(buf.clone()).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["kind"]["type"], "http");
        assert_eq!(first["kind"]["request"], "poll_get");
        assert_eq!(first["failure"]["kind"], "refused");
        assert_eq!(first["packets_down"][0]["type"], "ping");
        assert_eq!(first["packets_down"][1]["socket"]["event"], "chat");
        assert_eq!(read_jsonl(&buf[..]).unwrap(), events);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let input = b"\n{\"seq\":1}\n";
        let err = read_jsonl(&input[..]).unwrap_err();
        assert!(err.to_string().starts_with("capture line 2:"), "{err}");
    }
}
