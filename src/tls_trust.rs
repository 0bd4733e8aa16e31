//! How stickyscope trusts an `https://` peer — the gateway and Traefik's API alike: the
//! system's roots plus a private CA's certificates (`--ca-file`), or — `--insecure` — no
//! check at all; one connector per kind per process; and a certificate the check refused,
//! said in a sentence naming the flag that fixes it.

use std::collections::HashMap;
use std::sync::Mutex;

/// What an `https://` peer's certificate is checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Trust {
    /// A private CA's certificate(s), PEM, trusted beside the system's roots.
    pub ca_pem: Option<String>,
    /// No check at all (a self-signed staging certificate).
    pub insecure: bool,
}

impl Trust {
    /// What the user's `--ca-file` and `--insecure` say.
    pub fn of(access: &stickyscope_vocab::access::Access) -> Self {
        Trust {
            ca_pem: access.ca_pem.clone(),
            insecure: access.insecure,
        }
    }
}

/// Why a trust cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TrustError(String);

/// The connector for `trust`, HTTP/1.1 by ALPN. Each kind is built once per process and
/// shared (a clone is cheap): loading the system's roots costs milliseconds of CPU, and a
/// probe of 300 sessions starts 300 taps.
pub fn connector(trust: &Trust) -> Result<native_tls::TlsConnector, TrustError> {
    static BUILT: Mutex<Option<HashMap<Trust, native_tls::TlsConnector>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(connector) = built.get(trust) {
        return Ok(connector.clone());
    }
    let connector = build(trust)?;
    built.insert(trust.clone(), connector.clone());
    Ok(connector)
}

fn build(trust: &Trust) -> Result<native_tls::TlsConnector, TrustError> {
    let mut builder = native_tls::TlsConnector::builder();
    builder.request_alpns(&["http/1.1"]);
    if let Some(pem) = &trust.ca_pem {
        for certificate in pem_certificates(pem)? {
            builder.add_root_certificate(certificate);
        }
    }
    if trust.insecure {
        builder
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    }
    builder.build().map_err(|e| TrustError(e.to_string()))
}

/// Every certificate in a PEM text; an error when there is none or one does not read.
pub fn pem_certificates(pem: &str) -> Result<Vec<native_tls::Certificate>, TrustError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut certificates = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let Some(length) = rest[start..].find(END) else {
            return Err(TrustError(
                "a certificate in the PEM has no END line".into(),
            ));
        };
        let block = &rest[start..start + length + END.len()];
        let certificate = native_tls::Certificate::from_pem(block.as_bytes())
            .map_err(|e| TrustError(format!("a certificate in the PEM does not read: {e}")))?;
        certificates.push(certificate);
        rest = &rest[start + length + END.len()..];
    }
    if certificates.is_empty() {
        return Err(TrustError(
            "no certificate in it (no -----BEGIN CERTIFICATE----- block)".into(),
        ));
    }
    Ok(certificates)
}

/// A TLS failure anywhere in `error`'s chain, said in a sentence naming `host` and what
/// would fix it; `None` when the failure is not TLS's.
pub fn refusal_sentence(error: &(dyn std::error::Error + 'static), host: &str) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut words = None;
    while let Some(current) = cause {
        if current.downcast_ref::<native_tls::Error>().is_some() {
            words = Some(current.to_string());
        }
        cause = current.source();
    }
    let words = words?;
    Some(sentence(&words, host))
}

/// What a TLS library's words mean, for `host`, with the flag that fixes it.
fn sentence(words: &str, host: &str) -> String {
    let lower = words.to_ascii_lowercase();
    if lower.contains("expired") {
        format!("the certificate of {host} has expired ({words}); renew it, or give --insecure to connect anyway")
    } else if lower.contains("mismatch")
        || lower.contains("hostname")
        || lower.contains("not valid for")
    {
        format!("the certificate of {host} is not for that name (wrong name: {words}); use the name it is for, or give --insecure")
    } else if lower.contains("self-signed")
        || lower.contains("self signed")
        || lower.contains("unable to get local issuer")
        || lower.contains("unknown ca")
        || lower.contains("unable to get issuer")
    {
        format!("the certificate of {host} is signed by an unknown issuer ({words}); give --ca-file PEM with your CA's certificate, or --insecure for a self-signed staging certificate")
    } else if lower.contains("wrong version number") || lower.contains("record layer") {
        format!(
            "{host} does not speak TLS on that port ({words}): an http:// URL given as https://?"
        )
    } else {
        format!("TLS with {host} failed: {words}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_names_the_flag_that_fixes_it() {
        let said = |words: &str| sentence(words, "staging.example:443");
        assert!(said("certificate has expired").contains("renew it"));
        assert!(said("hostname mismatch").contains("wrong name"));
        assert!(said("self-signed certificate in certificate chain").contains("--ca-file PEM"));
        assert!(said("unable to get local issuer certificate").contains("--insecure"));
        assert!(said("wrong version number").contains("does not speak TLS"));
        assert!(said("handshake failure").starts_with("TLS with staging.example:443 failed"));
    }

    #[test]
    fn a_pem_without_a_certificate_is_refused_in_words() {
        let refusal = |pem: &str| match pem_certificates(pem) {
            Ok(_) => panic!("{pem:?} read as certificates"),
            Err(e) => e.to_string(),
        };
        assert!(refusal("just text").contains("no certificate in it"));
        assert!(refusal("-----BEGIN CERTIFICATE-----\nAAAA\n").contains("no END line"));
        let garbage = refusal("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n");
        assert!(garbage.contains("does not read"), "{garbage}");
    }
}
