//! Captures on disk (the format is `stickyscope_vocab::capture`'s): written as they are
//! recorded — flushed at least once a second, so a crash loses at most the last second, and
//! bounded in size (past the bound, nothing more is written and the end line says so) —
//! and read back as a stream, one line at a time, never whole: a file cut in the middle of
//! a line is read up to its last whole line, and said to be truncated.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use stickyscope_vocab::capture::{
    self as format, CaptureHeader, CaptureLine, First, Happened, LineError, FORMAT_VERSION,
};
use stickyscope_vocab::events::TransportChoice;

/// How often a capture being written reaches the disk, at least.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Why a capture could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// File or stream I/O failed.
    #[error("capture I/O: {0}")]
    Io(#[from] io::Error),
    /// The file is not a capture this build reads.
    #[error("{0}")]
    Format(#[from] LineError),
    /// A whole line is not what the format says.
    #[error("capture line {line}: {reason}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file is empty.
    #[error("the capture is empty")]
    Empty,
}

/// A capture being written.
pub struct CaptureWriter {
    out: BufWriter<File>,
    flushed: Instant,
    bytes: u64,
    limit: u64,
    full: bool,
}

/// What a finished capture holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Its size in bytes.
    pub bytes: u64,
    /// Whether it stopped at its size bound.
    pub full: bool,
}

impl CaptureWriter {
    /// A new capture at `path` (replacing it) starting with `header`, bounded to `limit`
    /// bytes.
    pub fn create(path: &Path, header: &CaptureHeader, limit: u64) -> Result<Self, CaptureError> {
        let mut writer = CaptureWriter {
            out: BufWriter::new(File::create(path)?),
            flushed: Instant::now(),
            bytes: 0,
            limit,
            full: false,
        };
        let line = serde_json::to_string(header).map_err(io::Error::from)?;
        writer.put(&line)?;
        writer.out.flush()?;
        Ok(writer)
    }

    fn put(&mut self, line: &str) -> io::Result<()> {
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }

    /// Adds what happened `at_s` seconds into the recording; past the size bound, nothing.
    pub fn add(&mut self, at_s: f64, happened: Happened) -> Result<(), CaptureError> {
        if self.full {
            return Ok(());
        }
        let line =
            serde_json::to_string(&CaptureLine { at_s, happened }).map_err(io::Error::from)?;
        if self.bytes + line.len() as u64 + 1 > self.limit {
            self.full = true;
            return Ok(());
        }
        self.put(&line)?;
        if self.flushed.elapsed() >= FLUSH_EVERY {
            self.out.flush()?;
            self.flushed = Instant::now();
        }
        Ok(())
    }

    /// Flushes what is buffered when the last flush is a second old: a writer called
    /// rarely still loses at most the last second.
    pub fn tick(&mut self) -> Result<(), CaptureError> {
        if self.flushed.elapsed() >= FLUSH_EVERY {
            self.out.flush()?;
            self.flushed = Instant::now();
        }
        Ok(())
    }

    /// Ends the capture `at_s` seconds in (`done`, or `size limit` when it filled up).
    pub fn finish(mut self, at_s: f64) -> Result<Written, CaptureError> {
        let why = if self.full { "size limit" } else { "done" };
        let end = serde_json::to_string(&CaptureLine {
            at_s,
            happened: Happened::End { why: why.into() },
        })
        .map_err(io::Error::from)?;
        self.put(&end)?;
        self.out.flush()?;
        Ok(Written {
            bytes: self.bytes,
            full: self.full,
        })
    }
}

/// A capture written on a thread of its own, for a caller that must never wait on a disk
/// (the window): [`CaptureTee::add`] hands a line over and returns. The thread flushes at
/// least once a second, even when nothing new comes.
pub struct CaptureTee {
    tx: std::sync::mpsc::Sender<TeeLine>,
    thread: Option<std::thread::JoinHandle<Result<Written, CaptureError>>>,
    path: std::path::PathBuf,
}

enum TeeLine {
    Line(f64, Happened),
    Finish(f64),
}

impl CaptureTee {
    /// Creates the capture at `path` now (so a path that cannot be written is known at
    /// once) and starts its thread.
    pub fn start(path: &Path, header: &CaptureHeader, limit: u64) -> Result<Self, CaptureError> {
        let mut writer = CaptureWriter::create(path, header, limit)?;
        let (tx, rx) = std::sync::mpsc::channel::<TeeLine>();
        let thread = std::thread::Builder::new()
            .name("stickyscope-capture".into())
            .spawn(move || {
                let mut last = 0.0_f64;
                loop {
                    match rx.recv_timeout(FLUSH_EVERY) {
                        Ok(TeeLine::Line(at_s, happened)) => {
                            last = last.max(at_s);
                            writer.add(at_s, happened)?;
                        }
                        Ok(TeeLine::Finish(at_s)) => return writer.finish(last.max(at_s)),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                            return writer.finish(last)
                        }
                    }
                    writer.tick()?;
                }
            })?;
        Ok(CaptureTee {
            tx,
            thread: Some(thread),
            path: path.to_owned(),
        })
    }

    /// Adds what happened `at_s` seconds into the recording.
    pub fn add(&self, at_s: f64, happened: Happened) {
        // A thread that stopped on an error says so when the capture is finished.
        let _ = self.tx.send(TeeLine::Line(at_s, happened));
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ends the capture `at_s` seconds in and waits for the last line to be written.
    pub fn finish(mut self, at_s: f64) -> Result<Written, CaptureError> {
        let _ = self.tx.send(TeeLine::Finish(at_s));
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(written)) => written,
            _ => Err(CaptureError::Io(io::Error::other(
                "the capture's writer thread stopped",
            ))),
        }
    }
}

/// A capture being read, a line at a time.
pub struct CaptureReader<R> {
    input: R,
    line_no: usize,
    /// The header (for a version-0 file, one made up from what it holds: no gateway).
    pub header: CaptureHeader,
    legacy_start: Option<u64>,
    first: Option<CaptureLine>,
    /// The line the file was cut in, when it was.
    pub truncated_at: Option<usize>,
    buffer: String,
}

/// Opens the capture at `path`.
pub fn open(path: &Path) -> Result<CaptureReader<BufReader<File>>, CaptureError> {
    CaptureReader::new(BufReader::new(File::open(path)?))
}

impl<R: BufRead> CaptureReader<R> {
    /// Reads `input`'s first line.
    pub fn new(mut input: R) -> Result<Self, CaptureError> {
        let mut buffer = String::new();
        if input.read_line(&mut buffer)? == 0 {
            return Err(CaptureError::Empty);
        }
        let (header, legacy_start, first) = match format::first_line(buffer.trim_end())? {
            First::Header(header) => (*header, None, None),
            First::Legacy(wire) => {
                let start = wire.at_ms;
                let header = CaptureHeader {
                    stickyscope_capture: 0,
                    source: "export (format 0)".into(),
                    stickyscope: String::new(),
                    started_ms: start,
                    gateway: "(not recorded)".into(),
                    stack: "(not recorded)".into(),
                    transport: TransportChoice::Polling,
                    sticky: true,
                    sessions: Vec::new(),
                };
                (header, Some(start), Some(format::legacy(*wire, start)))
            }
        };
        Ok(CaptureReader {
            input,
            line_no: 1,
            header,
            legacy_start,
            first,
            truncated_at: None,
            buffer: String::new(),
        })
    }

    /// The format version of the file (0: bare wire records).
    pub fn version(&self) -> u32 {
        self.header.stickyscope_capture.min(FORMAT_VERSION)
    }
}

impl<R: BufRead> Iterator for CaptureReader<R> {
    type Item = Result<CaptureLine, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(first) = self.first.take() {
            return Some(Ok(first));
        }
        if self.truncated_at.is_some() {
            return None;
        }
        loop {
            self.buffer.clear();
            match self.input.read_line(&mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e.into())),
            }
            self.line_no += 1;
            let whole = self.buffer.ends_with('\n');
            let text = self.buffer.trim_end();
            if text.is_empty() {
                continue;
            }
            return match format::line(text, self.legacy_start) {
                Ok(line) => Some(Ok(line)),
                // The last line, cut short: a recording that did not end cleanly.
                Err(_) if !whole => {
                    self.truncated_at = Some(self.line_no);
                    None
                }
                Err(e) => Some(Err(CaptureError::BadLine {
                    line: self.line_no,
                    reason: e.to_string(),
                })),
            };
        }
    }
}

/// Writes a whole capture at once (the window's export of what its timeline keeps):
/// `header`, then `lines` (seconds from the start, what happened); returns how many lines.
pub fn export_file(
    path: &Path,
    header: &CaptureHeader,
    lines: impl IntoIterator<Item = (f64, Happened)>,
) -> Result<usize, CaptureError> {
    let mut writer = CaptureWriter::create(path, header, u64::MAX)?;
    let (mut n, mut last) = (0, 0.0_f64);
    for (at_s, happened) in lines {
        last = last.max(at_s);
        writer.add(at_s, happened)?;
        n += 1;
    }
    writer.finish(last)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stickyscope_contract::RequestKind;
    use stickyscope_vocab::events::SessionState;
    use stickyscope_vocab::protocol::decode_payload;
    use stickyscope_vocab::record::{Failure, FailureKind, Transport, WireKind, WireRecord};

    fn sample(at_ms: u64) -> WireRecord {
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
                at_ms,
                Transport::Polling,
                WireKind::Http {
                    request: RequestKind::PollGet,
                    method: "GET".into(),
                    status: Some(400),
                },
            )
        }
    }

    fn header() -> CaptureHeader {
        CaptureHeader {
            stickyscope_capture: FORMAT_VERSION,
            source: "probe".into(),
            stickyscope: "0.1.0".into(),
            started_ms: 1_764_000_000_000,
            gateway: "http://127.0.0.1:8000".into(),
            stack: "gateway".into(),
            transport: TransportChoice::Polling,
            sticky: true,
            sessions: vec!["agent".into()],
        }
    }

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("stickyscope-capture-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_tee_flushes_within_a_second_of_quiet_and_ends_with_the_end_line() {
        let path = temp("tee");
        let tee = CaptureTee::start(&path, &header(), u64::MAX).unwrap();
        tee.add(0.5, Happened::Wire(Box::new(sample(1_764_000_000_500))));
        // Nothing more comes: the line is on disk within the flush period anyway (what a
        // crash would leave).
        let deadline = Instant::now() + FLUSH_EVERY * 3;
        while std::fs::read_to_string(&path).unwrap().lines().count() < 2 {
            assert!(Instant::now() < deadline, "not flushed while quiet");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let written = tee.finish(2.0).unwrap();
        let lines: Vec<CaptureLine> = open(&path).unwrap().map(Result::unwrap).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[1],
            CaptureLine {
                at_s: 2.0,
                happened: Happened::End { why: "done".into() }
            }
        );
        assert_eq!(written.bytes, std::fs::metadata(&path).unwrap().len());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_capture_reads_back_as_written_and_documents_its_shape() {
        let path = temp("round");
        let mut writer = CaptureWriter::create(&path, &header(), u64::MAX).unwrap();
        writer
            .add(0.5, Happened::Wire(Box::new(sample(1_764_000_000_500))))
            .unwrap();
        writer
            .add(
                0.6,
                Happened::Session {
                    user: "agent".into(),
                    state: SessionState::Connecting,
                },
            )
            .unwrap();
        let written = writer.finish(1.0).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written.bytes, text.len() as u64);
        let second: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(second["wire"]["kind"]["request"], "poll_get");
        assert_eq!(second["wire"]["failure"]["kind"], "refused");
        assert_eq!(second["wire"]["packets_down"][1]["socket"]["event"], "chat");
        let reader = open(&path).unwrap();
        assert_eq!(reader.header, header());
        let lines: Vec<CaptureLine> = reader.map(Result::unwrap).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0].happened,
            Happened::Wire(Box::new(sample(1_764_000_000_500)))
        );
        assert_eq!(lines[2].happened, Happened::End { why: "done".into() });
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_file_cut_mid_line_is_read_to_its_last_whole_line_and_said_truncated() {
        let path = temp("cut");
        let mut writer = CaptureWriter::create(&path, &header(), u64::MAX).unwrap();
        for i in 0..3 {
            writer
                .add(
                    f64::from(i),
                    Happened::Wire(Box::new(sample(1_764_000_000_000))),
                )
                .unwrap();
        }
        writer.finish(3.0).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let cut = text.len() - text.lines().last().unwrap().len() - 40;
        std::fs::write(&path, &text[..cut]).unwrap();
        let mut reader = open(&path).unwrap();
        let read = reader.by_ref().filter(Result::is_ok).count();
        assert_eq!(read, 2);
        assert_eq!(reader.truncated_at, Some(4));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_bad_whole_line_is_an_error_with_its_number_and_the_old_export_still_reads() {
        let bad = format!(
            "{}\n{{\"at_s\":1}}\n",
            serde_json::to_string(&header()).unwrap()
        );
        let mut reader = CaptureReader::new(bad.as_bytes()).unwrap();
        let err = reader.next().unwrap().unwrap_err();
        assert!(err.to_string().starts_with("capture line 2:"), "{err}");
        let old = format!(
            "{}\n{}\n",
            serde_json::to_string(&sample(1_000)).unwrap(),
            serde_json::to_string(&sample(3_500)).unwrap()
        );
        let reader = CaptureReader::new(old.as_bytes()).unwrap();
        assert_eq!(reader.version(), 0);
        let times: Vec<f64> = reader.map(|l| l.unwrap().at_s).collect();
        assert_eq!(times, [0.0, 2.5]);
        assert!(matches!(
            CaptureReader::new(&b""[..]),
            Err(CaptureError::Empty)
        ));
    }

    #[test]
    fn past_its_size_bound_a_capture_takes_nothing_more_and_its_end_says_so() {
        let path = temp("bound");
        let mut writer = CaptureWriter::create(&path, &header(), 2_000).unwrap();
        for i in 0..100 {
            writer
                .add(
                    f64::from(i),
                    Happened::Wire(Box::new(sample(1_764_000_000_000))),
                )
                .unwrap();
        }
        let written = writer.finish(100.0).unwrap();
        assert!(written.full);
        let lines: Vec<CaptureLine> = open(&path).unwrap().map(Result::unwrap).collect();
        assert!(lines.len() < 10, "{}", lines.len());
        assert_eq!(
            lines.last().unwrap().happened,
            Happened::End {
                why: "size limit".into()
            }
        );
        let _ = std::fs::remove_file(&path);
    }
}
