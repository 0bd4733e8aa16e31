//! HAR 1.2 as browsers export it (Chromium's DevTools and Playwright, Firefox), streamed an
//! entry at a time ([`stream`]): the parts stickyscope reads — each entry's start, request (method, URL, headers, cookies, body),
//! response (status, headers, cookies, body, base64 or not), time, and Chromium's
//! `_webSocketMessages` — and the start time's RFC 3339 text as milliseconds. Anything else a
//! HAR holds is ignored. Pure.

use serde::Deserialize;

/// The document.
#[derive(Debug, Deserialize)]
pub struct Har {
    /// Its one log.
    pub log: Log,
}

/// The log.
#[derive(Debug, Deserialize)]
pub struct Log {
    /// What made it (`WebInspector`, `Playwright`, `Firefox`).
    #[serde(default)]
    pub creator: Option<Creator>,
    /// The requests, in any order.
    #[serde(default)]
    pub entries: Vec<Entry>,
}

/// The program that made the HAR.
#[derive(Debug, Deserialize)]
pub struct Creator {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its version.
    #[serde(default)]
    pub version: String,
}

/// One request and its answer.
#[derive(Debug, Deserialize)]
pub struct Entry {
    /// When it started (RFC 3339).
    #[serde(rename = "startedDateTime")]
    pub started: String,
    /// Milliseconds it took, in all (-1 or absent when unknown).
    #[serde(default)]
    pub time: Option<f64>,
    /// The request.
    pub request: Request,
    /// The answer.
    pub response: Response,
    /// Chromium: the WebSocket's frames, for an upgrade.
    #[serde(rename = "_webSocketMessages", default)]
    pub websocket_messages: Vec<WebSocketMessage>,
    /// Chromium: why no answer came (`net::ERR_CONNECTION_REFUSED`).
    #[serde(rename = "_error", default)]
    pub error: Option<String>,
    /// A HAR stickyscope wrote: the replica and what named it, as recorded.
    #[serde(rename = "_stickyscope", default)]
    pub stickyscope: Option<Recorded>,
}

/// What stickyscope's own HAR export keeps of a record that HAR has no field for.
#[derive(Debug, Deserialize)]
pub struct Recorded {
    /// The user whose session it was.
    #[serde(default)]
    pub user: Option<String>,
    /// The replica.
    #[serde(default)]
    pub replica: Option<String>,
    /// What named it.
    #[serde(default)]
    pub named_by: Option<stickyscope_vocab::naming::Source>,
}

/// A request.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// `GET`, `POST`.
    pub method: String,
    /// The whole URL.
    pub url: String,
    /// Its headers.
    #[serde(default)]
    pub headers: Vec<NameValue>,
    /// Its cookies.
    #[serde(default)]
    pub cookies: Vec<NameValue>,
    /// Its body.
    #[serde(rename = "postData", default)]
    pub post_data: Option<PostData>,
}

/// A request's body.
#[derive(Debug, Deserialize)]
pub struct PostData {
    /// As text.
    #[serde(default)]
    pub text: Option<String>,
}

/// An answer.
#[derive(Debug, Deserialize)]
pub struct Response {
    /// Its status (0 or -1 when none came).
    pub status: i64,
    /// Its reason phrase.
    #[serde(rename = "statusText", default)]
    pub status_text: String,
    /// Its headers.
    #[serde(default)]
    pub headers: Vec<NameValue>,
    /// The cookies it set.
    #[serde(default)]
    pub cookies: Vec<NameValue>,
    /// Its body.
    #[serde(default)]
    pub content: Option<Content>,
}

/// An answer's body.
#[derive(Debug, Deserialize)]
pub struct Content {
    /// The body, when the HAR kept it.
    #[serde(default)]
    pub text: Option<String>,
    /// `base64` when the text is.
    #[serde(default)]
    pub encoding: Option<String>,
}

/// A header or a cookie.
#[derive(Debug, Deserialize)]
pub struct NameValue {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// One WebSocket frame, as Chromium records it.
#[derive(Debug, Deserialize)]
pub struct WebSocketMessage {
    /// `send` or `receive`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When: seconds since the Unix epoch (Chromium's DevTools), or milliseconds
    /// (Playwright); see [`frame_ms`].
    pub time: f64,
    /// 1 text, 2 binary.
    #[serde(default)]
    pub opcode: u8,
    /// Its payload (base64 for binary frames).
    #[serde(default)]
    pub data: String,
}

impl Response {
    /// Whether the HAR kept the body (a browser leaves it out of some answers, e.g. of a
    /// request the page gave up on).
    pub fn kept_body(&self) -> bool {
        self.content.as_ref().is_some_and(|c| c.text.is_some())
    }

    /// The body as bytes, decoded from base64 when the HAR says so; empty when not kept.
    pub fn body(&self) -> Vec<u8> {
        use base64::Engine as _;
        let Some(content) = &self.content else {
            return Vec::new();
        };
        let text = content.text.as_deref().unwrap_or_default();
        if content.encoding.as_deref() == Some("base64") {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .unwrap_or_default()
        } else {
            text.as_bytes().to_vec()
        }
    }
}

/// A frame's time as milliseconds since the Unix epoch: DevTools writes seconds
/// (`1796430139.5`), Playwright milliseconds (`1796430139500.4`); any time after 1973 in
/// seconds is below 10^11, in milliseconds above it.
pub fn frame_ms(time: f64) -> u64 {
    let ms = if time.abs() < 1e11 {
        time * 1000.0
    } else {
        time
    };
    ms.round().max(0.0) as u64
}

/// Streams a HAR from `input`, handing `each` every entry as it is parsed (the document
/// is never held whole); returns what made the HAR (`WebInspector 537.36`).
pub fn stream(
    input: impl std::io::Read,
    each: impl FnMut(Entry),
) -> Result<String, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_reader(input);
    let mut creator = String::new();
    DocumentSeed {
        each,
        creator: &mut creator,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(creator)
}

/// `{"log": …}`, anything else ignored.
struct DocumentSeed<'c, F> {
    each: F,
    creator: &'c mut String,
}

/// `{"creator": …, "entries": […]}`, anything else ignored.
struct LogSeed<'c, F> {
    each: F,
    creator: &'c mut String,
}

/// `[entry, …]`, each handed over.
struct EntriesSeed<F>(F);

impl<'de, F: FnMut(Entry)> serde::de::DeserializeSeed<'de> for DocumentSeed<'_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Entry)> serde::de::Visitor<'de> for DocumentSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a HAR document: {\"log\": {\"entries\": […]}}")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen_log = false;
        let (mut each, creator) = (Some(self.each), self.creator);
        while let Some(key) = map.next_key::<String>()? {
            match (key.as_str(), each.take()) {
                ("log", Some(each)) => {
                    map.next_value_seed(LogSeed {
                        each,
                        creator: &mut *creator,
                    })?;
                    seen_log = true;
                }
                (_, kept) => {
                    each = kept;
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        if !seen_log {
            return Err(serde::de::Error::missing_field("log"));
        }
        Ok(())
    }
}

impl<'de, F: FnMut(Entry)> serde::de::DeserializeSeed<'de> for LogSeed<'_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Entry)> serde::de::Visitor<'de> for LogSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a HAR log: {\"entries\": […]}")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut each = Some(self.each);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "creator" => {
                    let c: Creator = map.next_value()?;
                    *self.creator = format!("{} {}", c.name, c.version).trim().to_owned();
                }
                "entries" => match each.take() {
                    Some(f) => map.next_value_seed(EntriesSeed(f))?,
                    None => return Err(serde::de::Error::duplicate_field("entries")),
                },
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'de, F: FnMut(Entry)> serde::de::DeserializeSeed<'de> for EntriesSeed<F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Entry)> serde::de::Visitor<'de> for EntriesSeed<F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of HAR entries")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(entry) = seq.next_element::<Entry>()? {
            (self.0)(entry);
        }
        Ok(())
    }
}

/// The first header called `name` (any case).
pub fn header<'a>(headers: &'a [NameValue], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// `2026-12-05T00:12:34.567Z` (or with an offset, `+01:00`) as milliseconds since the Unix
/// epoch; `None` when it is not such a time.
pub fn epoch_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let (date, rest) = text.split_once('T')?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    // The clock, then the zone: `Z`, `+hh:mm`, `-hh:mm`.
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let mut c = clock.split(':');
    let hour: i64 = c.next()?.parse().ok()?;
    let minute: i64 = c.next()?.parse().ok()?;
    let seconds: f64 = c.next().unwrap_or("0").parse().ok()?;
    let offset_minutes: i64 = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':').unwrap_or((&zone[1..], "0"));
            sign * (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Days from the civil date (the proleptic Gregorian calendar).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = (days * 86_400 + hour * 3_600 + minute * 60 - offset_minutes * 60) * 1_000
        + (seconds * 1_000.0).round() as i64;
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_times_read_as_milliseconds() {
        // `date -d 2026-12-05T00:22:18Z +%s` is 1796430138.
        assert_eq!(epoch_ms("2026-12-05T00:22:18Z"), Some(1_796_430_138_000));
        assert_eq!(
            epoch_ms("2026-12-05T00:22:18.123Z"),
            Some(1_796_430_138_123)
        );
        // Firefox writes the local offset.
        assert_eq!(
            epoch_ms("2026-12-05T01:22:18.123+01:00"),
            Some(1_796_430_138_123)
        );
        assert_eq!(epoch_ms("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(epoch_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(frame_ms(1_796_430_139.5), 1_796_430_139_500);
        assert_eq!(frame_ms(1_796_430_139_500.4), 1_796_430_139_500);
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-12-05",
            "2026-12-05T25:00",
        ] {
            assert_eq!(epoch_ms(bad), None, "{bad}");
        }
    }
}
