//! TLS toward an `https://` gateway, as [`crate::tls_trust`] trusts it (SNI by the
//! gateway's host name, HTTP/1.1 by ALPN), and a certificate the check refused as the
//! record's failure. The taps still listen in plain HTTP on loopback toward the users'
//! clients.

use stickyscope_vocab::record::{Failure, FailureKind};

use super::TapError;
use crate::tls_trust::{self, Trust};

/// The connector for the gateway (shared per kind across the process).
pub(super) fn connector(trust: &Trust) -> Result<tokio_native_tls::TlsConnector, TapError> {
    tls_trust::connector(trust)
        .map(tokio_native_tls::TlsConnector::from)
        .map_err(|e| TapError::Tls(e.to_string()))
}

/// A TLS failure anywhere in `error`'s chain, said in a sentence naming `host` and what
/// would fix it; `None` when the failure is not TLS's.
pub(super) fn tls_failure(
    error: &(dyn std::error::Error + 'static),
    host: &str,
) -> Option<Failure> {
    tls_trust::refusal_sentence(error, host).map(|reason| Failure {
        kind: FailureKind::Unreachable,
        reason,
    })
}
