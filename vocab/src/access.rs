//! Where Socket.IO lives on a stack and who the users are to it: the `path` Socket.IO is
//! mounted on, the namespace the users join, the auth payload of their `CONNECT`, the
//! headers sent on every request and the cookies of a login, the CA an `https://` gateway's
//! certificate is checked against (or that it is not) — and which of those are secrets, so
//! that what is shown, saved or reported never spells them out.
//!
//! Pure data and its checks: the command line reads values into it, the sessions and their
//! taps use it.

use std::collections::BTreeMap;

/// Socket.IO's default `path`.
pub const DEFAULT_PATH: &str = "/socket.io/";
/// What a secret is shown as.
pub const MASK: &str = "«secret»";

/// Where Socket.IO lives and who the users are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Socket.IO's `path`, with a leading and a trailing `/` (`/socket.io/`).
    pub path: String,
    /// The namespace the users join (`/`, `/chat`).
    pub namespace: String,
    /// The `CONNECT` packet's auth payload for every user (a JSON object).
    pub auth: Option<serde_json::Value>,
    /// Per-user auth payloads, over [`Access::auth`].
    pub auth_of: BTreeMap<String, serde_json::Value>,
    /// Headers sent on every request (the WebSocket upgrade included).
    pub headers: Vec<(String, String)>,
    /// Cookies every user's jar starts with (a login's session cookie).
    pub cookies: Vec<(String, String)>,
    /// Certificates (PEM) of a private CA the gateway's certificate is trusted by, beside
    /// the system's roots.
    pub ca_pem: Option<String>,
    /// Whether the gateway's certificate goes unchecked (a self-signed staging one).
    pub insecure: bool,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            path: DEFAULT_PATH.to_owned(),
            namespace: "/".to_owned(),
            auth: None,
            auth_of: BTreeMap::new(),
            headers: Vec::new(),
            cookies: Vec::new(),
            ca_pem: None,
            insecure: false,
        }
    }
}

impl Access {
    /// The auth payload of `user`'s `CONNECT`, if any.
    pub fn auth_for(&self, user: &str) -> Option<&serde_json::Value> {
        self.auth_of.get(user).or(self.auth.as_ref())
    }

    /// The secrets in it, longest first: header values, cookie values and every string in
    /// the auth payloads (short ones — under 4 characters — are left, as masking them would
    /// mask ordinary text).
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = Vec::new();
        secrets.extend(self.headers.iter().map(|(_, v)| v.clone()));
        secrets.extend(self.cookies.iter().map(|(_, v)| v.clone()));
        for payload in self.auth.iter().chain(self.auth_of.values()) {
            strings_in(payload, &mut secrets);
        }
        secrets.retain(|s| s.chars().count() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        secrets
    }
}

fn strings_in(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

/// `text` with every secret in it replaced by [`MASK`] (as it stands and JSON-escaped).
pub fn masked(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
        let escaped = serde_json::to_string(secret).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        if escaped != secret && out.contains(escaped) {
            out = out.replace(escaped, MASK);
        }
    }
    out
}

/// Checks a `--path`: it starts with `/`; a trailing `/` is added.
pub fn parse_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!(
            "{text:?} does not start with /: Socket.IO's path is like /socket.io/ or /ws/socket.io"
        ));
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c == '?' || c == '#')
    {
        return Err(format!("{text:?} is not a URL path"));
    }
    Ok(if text.ends_with('/') {
        text.to_owned()
    } else {
        format!("{text}/")
    })
}

/// Checks a `--namespace`: it starts with `/` (`/`, `/chat`).
pub fn parse_namespace(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!(
            "{text:?} does not start with /: a namespace is like / or /chat"
        ));
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c == ',' || c == '?')
    {
        return Err(format!("{text:?} is not a namespace"));
    }
    Ok(text.to_owned())
}

/// Checks a `--header 'Name: value'`.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| "a header is 'Name: value', and this has no colon".to_owned())?;
    let name = name.trim();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("{name:?} is not a header name"));
    }
    let value = value.trim();
    if value.chars().any(|c| c.is_control()) {
        return Err(format!("the value of {name} has control characters"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Checks a `--cookie name=value`.
pub fn parse_cookie(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| "a cookie is name=value, and this has no =".to_owned())?;
    let name = name.trim();
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "()<>@,;:\\\"/[]?={}".contains(c))
    {
        return Err(format!("{name:?} is not a cookie name"));
    }
    let value = value.trim();
    if value
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == ';' || c == ',' || c == '"')
    {
        return Err(format!(
            "the value of cookie {name} has characters a cookie cannot carry"
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Checks an `--auth`: a JSON object, for every user, or `USER=` before it for one.
pub fn parse_auth(text: &str) -> Result<(Option<String>, serde_json::Value), String> {
    let (user, json) = match text.split_once('=') {
        Some((user, json))
            if !user.is_empty()
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            (Some(user.to_owned()), json)
        }
        _ => (None, text),
    };
    let value: serde_json::Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("the auth payload is not JSON ({e})"))?;
    if !value.is_object() {
        return Err("the auth payload is a JSON object, like {\"token\":\"…\"}".to_owned());
    }
    Ok((user, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_namespaces_start_with_a_slash() {
        assert_eq!(parse_path("/ws/socket.io").as_deref(), Ok("/ws/socket.io/"));
        assert_eq!(parse_path("/socket.io/").as_deref(), Ok("/socket.io/"));
        assert!(parse_path("ws/socket.io")
            .unwrap_err()
            .contains("does not start with /"));
        assert_eq!(parse_namespace("/chat").as_deref(), Ok("/chat"));
        assert!(parse_namespace("chat").is_err());
    }

    #[test]
    fn headers_cookies_and_auth_say_what_is_wrong() {
        assert_eq!(
            parse_header("Authorization: Bearer abc"),
            Ok(("Authorization".into(), "Bearer abc".into()))
        );
        assert!(parse_header("Authorization Bearer")
            .unwrap_err()
            .contains("no colon"));
        assert!(parse_header("Bad Name: x").is_err());
        assert_eq!(
            parse_cookie("session=s3cr3t"),
            Ok(("session".into(), "s3cr3t".into()))
        );
        assert!(parse_cookie("session").unwrap_err().contains("no ="));
        let (user, value) = parse_auth(r#"agent={"token":"t-1"}"#).unwrap();
        assert_eq!(user.as_deref(), Some("agent"));
        assert_eq!(value["token"], "t-1");
        let (user, _) = parse_auth(r#"{"token":"a=b"}"#).unwrap();
        assert_eq!(user, None);
        assert!(parse_auth("[1]").unwrap_err().contains("JSON object"));
        assert!(parse_auth("token").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn secrets_are_masked_wherever_they_appear() {
        let access = Access {
            auth: Some(serde_json::json!({"token": "tok-123", "n": 1})),
            headers: vec![("Authorization".into(), "Bearer b\"q".into())],
            cookies: vec![("session".into(), "abc".into())],
            ..Access::default()
        };
        let secrets = access.secrets();
        assert_eq!(secrets, ["Bearer b\"q", "tok-123"]);
        assert_eq!(
            masked(r#"40/chat,{"token":"tok-123"}"#, &secrets),
            r#"40/chat,{"token":"«secret»"}"#
        );
        assert_eq!(
            masked(r#"{"h":"Bearer b\"q"}"#, &secrets),
            r#"{"h":"«secret»"}"#
        );
    }
}
