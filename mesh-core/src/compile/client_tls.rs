//! DestinationRule `tls` (`ClientTLSSettings`) → [`ClientTls`], with Istio's validation.

use std::path::PathBuf;

use super::Cx;
use crate::policy::{ClientTls, ClientTlsMode};
use crate::spec::destination_rule::ClientTlsSettingsSpec;

const MODES: [(&str, ClientTlsMode); 4] = [
    ("DISABLE", ClientTlsMode::Disable),
    ("SIMPLE", ClientTlsMode::Simple),
    ("MUTUAL", ClientTlsMode::Mutual),
    ("ISTIO_MUTUAL", ClientTlsMode::IstioMutual),
];

/// Compiles one `tls` block at `path`; `None` (with errors in `cx`) when invalid.
pub(crate) fn compile(
    spec: &ClientTlsSettingsSpec,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<ClientTls> {
    let before = cx.error_count();
    let mode = match spec.mode.as_deref() {
        // Istio's default mode is DISABLE.
        None => ClientTlsMode::Disable,
        Some(m) => match MODES.iter().find(|(n, _)| *n == m) {
            Some((_, mode)) => *mode,
            None => {
                let hint = crate::diag::closest(m, MODES.iter().map(|(n, _)| *n))
                    .map(|h| format!(", did you mean `{h}`?"))
                    .unwrap_or_default();
                cx.error(
                    &format!("{path}.mode"),
                    format!("unknown mode `{m}`{hint} (DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL)"),
                );
                return None;
            }
        },
    };
    if spec.credential_name.is_some() {
        cx.error(
            &format!("{path}.credentialName"),
            "is not supported by this mesh in folder mode (give `clientCertificate`, `privateKey` and `caCertificates` file paths)",
        );
    }
    if spec.ca_crl.is_some() {
        cx.unsupported(&format!("{path}.caCrl"));
    }
    let file = |field: &str, value: &Option<String>, cx: &mut Cx<'_>| -> Option<PathBuf> {
        match value.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) => {
                if mode == ClientTlsMode::IstioMutual {
                    cx.error(
                        &format!("{path}.{field}"),
                        "must not be set with ISTIO_MUTUAL (the workload's own certificate is used)",
                    );
                }
                Some(PathBuf::from(v))
            }
        }
    };
    let client_certificate = file("clientCertificate", &spec.client_certificate, cx);
    let private_key = file("privateKey", &spec.private_key, cx);
    let ca_certificates = file("caCertificates", &spec.ca_certificates, cx);
    if mode == ClientTlsMode::Mutual && spec.credential_name.is_none() {
        for (field, set) in [
            ("clientCertificate", client_certificate.is_some()),
            ("privateKey", private_key.is_some()),
        ] {
            if !set {
                cx.error(&format!("{path}.{field}"), "is required with mode MUTUAL");
            }
        }
    }
    for (i, san) in spec.subject_alt_names.iter().enumerate() {
        if san.trim().is_empty() {
            cx.error(&format!("{path}.subjectAltNames[{i}]"), "must not be empty");
        }
    }
    let sni = spec
        .sni
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if let Some(sni) = &sni
        && rustls_name(sni).is_none()
    {
        cx.error(
            &format!("{path}.sni"),
            format!("`{sni}` is not a server name"),
        );
    }
    if cx.error_count() > before {
        return None;
    }
    if spec.insecure_skip_verify == Some(true) && mode == ClientTlsMode::IstioMutual {
        cx.warn(
            &format!("{path}.insecureSkipVerify"),
            "has no effect with ISTIO_MUTUAL (as in Istio: the server's mesh identity is always verified)",
        );
    }
    Some(ClientTls {
        mode,
        client_certificate,
        private_key,
        ca_certificates,
        subject_alt_names: spec
            .subject_alt_names
            .iter()
            .map(|s| s.trim().to_owned())
            .collect(),
        sni,
        insecure_skip_verify: spec.insecure_skip_verify.unwrap_or(false),
    })
}

/// A DNS name or IP address, as TLS server names are.
fn rustls_name(name: &str) -> Option<()> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Some(());
    }
    let ok = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(())
}

#[cfg(test)]
mod tests;
