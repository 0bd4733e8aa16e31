//! TLS toward an `https://` gateway: the connector (the system's roots, plus a private CA's
//! certificates, or — `--insecure` — no check at all), SNI by the gateway's host name,
//! HTTP/1.1 by ALPN; and a certificate the check refused, said in a sentence with the flag
//! that fixes it. The taps still listen in plain HTTP on loopback toward the users' clients.

use stickyscope_vocab::record::{Failure, FailureKind};

use super::TapError;

/// The connector for the gateway: the system's roots and `ca_pem`'s certificates, or no
/// check when `insecure`. Each kind is built once per process and shared (a clone is
/// cheap): loading the system's roots costs milliseconds of CPU, and a probe of 300
/// sessions starts 300 taps.
pub(super) fn connector(
    ca_pem: Option<&str>,
    insecure: bool,
) -> Result<tokio_native_tls::TlsConnector, TapError> {
    type Built = std::collections::HashMap<(Option<String>, bool), tokio_native_tls::TlsConnector>;
    static BUILT: std::sync::Mutex<Option<Built>> = std::sync::Mutex::new(None);
    let key = (ca_pem.map(str::to_owned), insecure);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(Default::default);
    if let Some(connector) = built.get(&key) {
        return Ok(connector.clone());
    }
    let connector = build(ca_pem, insecure)?;
    built.insert(key, connector.clone());
    Ok(connector)
}

fn build(ca_pem: Option<&str>, insecure: bool) -> Result<tokio_native_tls::TlsConnector, TapError> {
    let mut builder = native_tls::TlsConnector::builder();
    builder.request_alpns(&["http/1.1"]);
    if let Some(pem) = ca_pem {
        for certificate in pem_certificates(pem)? {
            builder.add_root_certificate(certificate);
        }
    }
    if insecure {
        builder
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    }
    builder
        .build()
        .map(tokio_native_tls::TlsConnector::from)
        .map_err(|e| TapError::Tls(e.to_string()))
}

/// Every certificate in a PEM text; an error when there is none or one does not read.
pub fn pem_certificates(pem: &str) -> Result<Vec<native_tls::Certificate>, TapError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut certificates = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let Some(length) = rest[start..].find(END) else {
            return Err(TapError::Tls(
                "a certificate in the PEM has no END line".into(),
            ));
        };
        let block = &rest[start..start + length + END.len()];
        let certificate = native_tls::Certificate::from_pem(block.as_bytes())
            .map_err(|e| TapError::Tls(format!("a certificate in the PEM does not read: {e}")))?;
        certificates.push(certificate);
        rest = &rest[start + length + END.len()..];
    }
    if certificates.is_empty() {
        return Err(TapError::Tls(
            "no certificate in it (no -----BEGIN CERTIFICATE----- block)".into(),
        ));
    }
    Ok(certificates)
}

/// A TLS failure anywhere in `error`'s chain, said in a sentence naming `host` and what
/// would fix it; `None` when the failure is not TLS's.
pub(super) fn tls_failure(
    error: &(dyn std::error::Error + 'static),
    host: &str,
) -> Option<Failure> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut words = None;
    while let Some(current) = cause {
        if current.downcast_ref::<native_tls::Error>().is_some() {
            words = Some(current.to_string());
        }
        cause = current.source();
    }
    let words = words?;
    let lower = words.to_ascii_lowercase();
    let reason = if lower.contains("expired") {
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
        format!("{host} does not speak TLS on that port ({words}): an http:// gateway given as https://?")
    } else {
        format!("TLS with {host} failed: {words}")
    };
    Some(Failure {
        kind: FailureKind::Unreachable,
        reason,
    })
}
