//! Gateway `servers[].tls` (`ServerTLSSettings`) → [`ServerTls`], with Istio's rules.

use std::path::PathBuf;

use super::Cx;
use crate::policy::{ServerTls, ServerTlsMode};
use crate::spec::gateway::ServerTlsSpec;

/// Compiles one `tls` block at `path`; `None` (with errors in `cx`) when invalid.
pub(crate) fn compile(spec: &ServerTlsSpec, path: &str, cx: &mut Cx<'_>) -> Option<ServerTls> {
    let before = cx.error_count();
    for (field, set) in [
        ("caCrl", spec.ca_crl.is_some()),
        ("credentialNames", spec.credential_names.is_some()),
        ("tlsCertificates", spec.tls_certificates.is_some()),
        ("subjectAltNames", spec.subject_alt_names.is_some()),
        (
            "verifyCertificateSpki",
            spec.verify_certificate_spki.is_some(),
        ),
        (
            "verifyCertificateHash",
            spec.verify_certificate_hash.is_some(),
        ),
        ("maxProtocolVersion", spec.max_protocol_version.is_some()),
        ("cipherSuites", spec.cipher_suites.is_some()),
    ] {
        if set {
            cx.unsupported(&format!("{path}.{field}"));
        }
    }
    let https_redirect = spec.https_redirect.unwrap_or(false);
    let mode = match spec.mode.as_deref() {
        None if https_redirect => None,
        // Istio's default mode is PASSTHROUGH.
        None => {
            cx.error(
                &format!("{path}.mode"),
                "is required: PASSTHROUGH (Istio's default) is not supported by this mesh (SIMPLE and MUTUAL are)",
            );
            None
        }
        Some("SIMPLE") => Some(ServerTlsMode::Simple),
        Some("MUTUAL") => Some(ServerTlsMode::Mutual),
        Some(m @ ("PASSTHROUGH" | "AUTO_PASSTHROUGH" | "ISTIO_MUTUAL" | "OPTIONAL_MUTUAL")) => {
            cx.error(
                &format!("{path}.mode"),
                format!("`{m}` is not supported by this mesh (SIMPLE and MUTUAL are)"),
            );
            None
        }
        Some(m) => {
            cx.error(
                &format!("{path}.mode"),
                format!(
                    "unknown mode `{m}` (PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL or OPTIONAL_MUTUAL)"
                ),
            );
            None
        }
    };
    let file = |value: &Option<String>| -> Option<PathBuf> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let server_certificate = file(&spec.server_certificate);
    let private_key = file(&spec.private_key);
    let ca_certificates = file(&spec.ca_certificates);
    let credential_name = spec
        .credential_name
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    if mode.is_some() && credential_name.is_none() {
        for (field, set) in [
            ("serverCertificate", server_certificate.is_some()),
            ("privateKey", private_key.is_some()),
        ] {
            if !set {
                cx.error(
                    &format!("{path}.{field}"),
                    "is required with mode SIMPLE or MUTUAL (or give credentialName)",
                );
            }
        }
        if mode == Some(ServerTlsMode::Mutual) && ca_certificates.is_none() {
            cx.error(
                &format!("{path}.caCertificates"),
                "is required with mode MUTUAL (or give credentialName)",
            );
        }
    }
    let tls13_only = match spec.min_protocol_version.as_deref() {
        None | Some("TLS_AUTO" | "TLSV1_2") => false,
        Some("TLSV1_3") => true,
        Some(v @ ("TLSV1_0" | "TLSV1_1")) => {
            cx.warn(
                &format!("{path}.minProtocolVersion"),
                format!("`{v}` is below what this mesh speaks: TLS 1.2 is the minimum"),
            );
            false
        }
        Some(v) => {
            cx.error(
                &format!("{path}.minProtocolVersion"),
                format!("unknown version `{v}` (TLS_AUTO, TLSV1_0, TLSV1_1, TLSV1_2 or TLSV1_3)"),
            );
            false
        }
    };
    if cx.error_count() > before {
        return None;
    }
    Some(ServerTls {
        https_redirect,
        mode,
        server_certificate,
        private_key,
        ca_certificates,
        credential_name,
        tls13_only,
    })
}

#[cfg(test)]
mod tests;
