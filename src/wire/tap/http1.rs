//! HTTP/1.1 heads and bodies as the tap's relay reads them, without a `HeaderMap` on the
//! way: whether a request head is one the relay takes (and its body's length), an answer
//! head's status and how its body ends, a chunked body's framing followed across reads, and
//! — for the record, off the path — an answer head's headers.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};

use super::MAX_BODY;
use crate::http_serve::lists_token;

/// Most headers a request or answer head may have.
const MAX_HEADERS: usize = 64;

/// Largest head read.
pub(super) const MAX_HEAD: usize = 64 * 1024;

/// A request head as read.
pub(super) struct RequestHead {
    pub(super) method: Method,
    /// Where the request target lies in the head.
    pub(super) path: std::ops::Range<usize>,
    /// Bytes of the head, CRLFs included.
    pub(super) len: usize,
    pub(super) body_len: usize,
}

/// An answer head as read: what relaying it needs.
pub(super) struct AnswerHead {
    pub(super) status: StatusCode,
    pub(super) len: usize,
    pub(super) framing: BodyFraming,
    /// Whether the gateway closes its connection after this answer.
    pub(super) closes: bool,
    /// Where in the buffer it was read from each `Set-Cookie` value lies.
    pub(super) set_cookies: Vec<std::ops::Range<usize>>,
}

/// How an answer's body ends.
pub(super) enum BodyFraming {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

/// Why no answer head came.
pub(super) enum AnswerError {
    /// The connection closed (or was reset) before a whole head.
    Closed,
    Reset,
    /// What came was not HTTP/1.1.
    NotHttp,
}

/// An answer head in `buf`, `None` while incomplete; `head_request`: the answer to a HEAD,
/// which has no body whatever its head says.
pub(super) fn parse_answer_head(
    buf: &[u8],
    head_request: bool,
) -> Result<Option<AnswerHead>, AnswerError> {
    // Headers left uninitialised until parsed: filling 64 of them first costs each parse.
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(AnswerError::NotHttp),
    };
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(AnswerError::NotHttp)?;
    let headers = &*parsed.headers;
    let chunked = lists(headers, "transfer-encoding", "chunked");
    let closes = lists(headers, "connection", "close") || parsed.version == Some(0);
    let length = value_of(headers, "content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let framing = if head_request
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational()
    {
        BodyFraming::None
    } else if chunked {
        BodyFraming::Chunked
    } else if let Some(n) = length {
        BodyFraming::Length(n)
    } else {
        BodyFraming::UntilClose
    };
    let set_cookies = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("set-cookie"))
        .map(|h| {
            let start = h.value.as_ptr() as usize - buf.as_ptr() as usize;
            start..start + h.value.len()
        })
        .collect();
    Ok(Some(AnswerHead {
        status,
        len,
        framing,
        closes,
        set_cookies,
    }))
}

/// Follows a chunked body's framing over the raw bytes, keeping the data.
#[derive(Default)]
pub(super) struct ChunkedBody {
    state: ChunkState,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChunkState {
    /// Reading a size line.
    #[default]
    Size,
    /// In a chunk's data, this much left.
    Data(usize),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk, until an empty one.
    Trailer,
    Done,
    /// Framing that is not chunked framing: the answer cannot be followed to its end.
    Broken,
}

impl ChunkedBody {
    /// Takes what it can of `raw` (complete lines, data), keeping chunk data in `body`;
    /// returns how many bytes it took.
    pub(super) fn feed(&mut self, raw: &[u8], body: &mut BytesMut) -> usize {
        let mut at = 0;
        while at < raw.len() && !matches!(self.state, ChunkState::Done | ChunkState::Broken) {
            match self.state {
                ChunkState::Size | ChunkState::Trailer | ChunkState::DataEnd => {
                    let Some(end) = raw[at..].windows(2).position(|w| w == b"\r\n") else {
                        break;
                    };
                    let line = &raw[at..at + end];
                    at += end + 2;
                    self.state = match self.state {
                        ChunkState::Size => {
                            let size = std::str::from_utf8(line)
                                .ok()
                                .and_then(|l| l.split(';').next())
                                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
                            match size {
                                Some(0) => ChunkState::Trailer,
                                Some(size) => ChunkState::Data(size),
                                None => ChunkState::Broken,
                            }
                        }
                        ChunkState::Trailer if line.is_empty() => ChunkState::Done,
                        ChunkState::Trailer => ChunkState::Trailer,
                        ChunkState::DataEnd if line.is_empty() => ChunkState::Size,
                        _ => ChunkState::Broken,
                    };
                }
                ChunkState::Data(left) => {
                    let take = left.min(raw.len() - at);
                    if body.len() < MAX_BODY {
                        body.extend_from_slice(&raw[at..at + take]);
                    }
                    at += take;
                    self.state = if take == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    };
                }
                ChunkState::Done | ChunkState::Broken => break,
            }
        }
        // A partial line waits for more bytes, but not without end.
        if raw.len() - at > MAX_HEAD {
            self.state = ChunkState::Broken;
        }
        at
    }

    pub(super) fn done(&self) -> bool {
        self.state == ChunkState::Done
    }

    pub(super) fn broken(&self) -> bool {
        self.state == ChunkState::Broken
    }
}

/// A request head the relay takes itself, with what `take` makes of it (once parsed, the
/// head is read no second time), `None` while incomplete, or `Err` for one the proxy takes
/// (see the module's doc).
pub(super) fn parse_request_head<T>(
    buf: &[u8],
    take: impl FnOnce(&httparse::Request<'_, '_>) -> T,
) -> Result<Option<(RequestHead, T)>, ()> {
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    if parsed.version != Some(1) {
        return Err(());
    }
    let method = parsed
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(())?;
    let target = parsed.path.ok_or(())?;
    // An origin-form target (`/…`) only: the others (absolute, `*`) are the proxy's.
    if !target.starts_with('/') {
        return Err(());
    }
    let start = target.as_ptr() as usize - buf.as_ptr() as usize;
    let path = start..start + target.len();
    let headers = &*parsed.headers;
    let upgrade = value_of(headers, "upgrade").is_some() && lists(headers, "connection", "upgrade");
    if upgrade
        || method == Method::CONNECT
        || value_of(headers, "transfer-encoding").is_some()
        || value_of(headers, "expect").is_some()
    {
        return Err(());
    }
    let mut lengths = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"));
    let body_len = match (lengths.next(), lengths.next()) {
        (None, _) => 0,
        (Some(h), None) => std::str::from_utf8(h.value)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n <= MAX_BODY)
            .ok_or(())?,
        // Two lengths: the proxy refuses it.
        (Some(_), Some(_)) => return Err(()),
    };
    let taken = take(&parsed);
    Ok(Some((
        RequestHead {
            method,
            path,
            len,
            body_len,
        },
        taken,
    )))
}

/// The first value of header `name` (in any case).
fn value_of<'h>(headers: &'h [httparse::Header<'_>], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// Whether any value of the comma-separated header `name` lists `token`.
fn lists(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .any(|h| lists_token(h.value, token))
}

/// The status and headers of the answer head `raw` (whole, as read), for the record.
pub(super) fn answer_headers(raw: &[u8]) -> (StatusCode, HeaderMap) {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let _ = parsed.parse(raw);
    // A head `parse_answer_head` took whole, status included.
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) {
            headers.append(name, value);
        }
    }
    (status, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_is_followed_across_pieces_and_its_data_kept() {
        let raw = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
        for split in 1..raw.len() {
            let mut chunks = ChunkedBody::default();
            let mut body = BytesMut::new();
            let mut pending = Vec::new();
            let mut taken_total = 0;
            for piece in [&raw[..split], &raw[split..]] {
                pending.extend_from_slice(piece);
                let taken = chunks.feed(&pending, &mut body);
                taken_total += taken;
                pending.drain(..taken);
            }
            assert!(chunks.done(), "split at {split}");
            assert_eq!(taken_total, raw.len());
            assert_eq!(&body[..], b"hello world");
        }
    }

    #[test]
    fn framing_that_is_not_chunked_is_broken_not_guessed() {
        for raw in [&b"zz\r\nhello\r\n0\r\n\r\n"[..], b"5\r\nhelloXX0\r\n\r\n"] {
            let mut chunks = ChunkedBody::default();
            chunks.feed(raw, &mut BytesMut::new());
            assert!(chunks.broken(), "{}", String::from_utf8_lossy(raw));
        }
        let mut endless = ChunkedBody::default();
        endless.feed(&[b'1'; MAX_HEAD + 2], &mut BytesMut::new());
        assert!(endless.broken(), "a size line without end");
    }

    #[test]
    fn request_heads_the_relay_leaves_to_the_proxy() {
        let mine = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(parse_request_head(mine, |_| ()), Ok(Some((h, ()))) if h.body_len == 0));
        let post = b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\n40";
        assert!(matches!(parse_request_head(post, |_| ()), Ok(Some((h, ()))) if h.body_len == 3));
        assert!(matches!(
            parse_request_head(b"GET / HTTP/1.1\r\nHo", |_| ()),
            Ok(None)
        ));
        for theirs in [
            &b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
            b"GET http://gateway.test/socket.io/ HTTP/1.1\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"\x16\x03\x01 not http at all\r\n\r\n",
        ] {
            assert!(
                parse_request_head(theirs, |_| ()).is_err(),
                "{}",
                String::from_utf8_lossy(theirs)
            );
        }
    }

    #[test]
    fn answer_heads_say_how_their_body_ends() {
        let framing = |raw: &[u8]| match parse_answer_head(raw, false) {
            Ok(Some(h)) => match h.framing {
                BodyFraming::None => "none".to_owned(),
                BodyFraming::Length(n) => format!("length {n}"),
                BodyFraming::Chunked => "chunked".into(),
                BodyFraming::UntilClose => "until close".into(),
            },
            Ok(None) => "partial".into(),
            Err(_) => "not http".into(),
        };
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"),
            "length 4"
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "chunked"
        );
        assert_eq!(framing(b"HTTP/1.1 204 No Content\r\n\r\n"), "none");
        assert_eq!(framing(b"HTTP/1.1 200 OK\r\n\r\n"), "until close");
        assert_eq!(framing(b"HTTP/1.1 200 OK\r\nContent-"), "partial");
        let to_head = parse_answer_head(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", true);
        assert!(
            matches!(
                to_head,
                Ok(Some(AnswerHead {
                    framing: BodyFraming::None,
                    ..
                }))
            ),
            "an answer to HEAD has no body"
        );
        assert_eq!(framing(b"\x15\x03\x03\x00\x02\x02\x46\r\n\r\n"), "not http");
    }
}
