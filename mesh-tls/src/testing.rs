//! A throwaway certificate authority for tests (feature `testing`): a root, an intermediate,
//! and workload leaves with any URI SANs, validity and key encoding, written as PEM in Istio's
//! layout. Never use it outside tests.
#![allow(clippy::expect_used)]

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

use crate::{CertSource, Credentials};

/// How a leaf's private key is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// `PRIVATE KEY` (PKCS#8), ECDSA P-256.
    Pkcs8,
    /// `EC PRIVATE KEY` (SEC1, with the curve named), ECDSA P-256, as Istio's agent writes it.
    Sec1,
    /// `RSA PRIVATE KEY` (PKCS#1), RSA 2048.
    Rsa,
}

/// What a leaf certificate holds.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    /// URI SANs, e.g. `spiffe://cluster.local/ns/default/sa/service1`.
    pub uris: Vec<String>,
    /// DNS SANs.
    pub dns: Vec<String>,
    /// The serial number.
    pub serial: u64,
    /// `(year, month, day)` of notBefore.
    pub not_before: (i32, u8, u8),
    /// `(year, month, day)` of notAfter.
    pub not_after: (i32, u8, u8),
    /// How the key is written.
    pub key_format: KeyFormat,
}

impl LeafSpec {
    /// A leaf for one SPIFFE ID, valid from 2020 to 2090, PKCS#8 key.
    pub fn spiffe(id: &str) -> Self {
        Self {
            uris: vec![id.to_owned()],
            dns: Vec::new(),
            serial: 1,
            not_before: (2020, 1, 1),
            not_after: (2090, 1, 1),
            key_format: KeyFormat::Pkcs8,
        }
    }

    /// The same leaf with another serial number.
    pub fn serial(mut self, serial: u64) -> Self {
        self.serial = serial;
        self
    }

    /// The same leaf valid from `not_before` to `not_after`, each `(year, month, day)`.
    pub fn validity(mut self, not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// The same leaf with its key written as `format`.
    pub fn key_format(mut self, format: KeyFormat) -> Self {
        self.key_format = format;
        self
    }
}

/// A leaf: its chain (leaf, then intermediate), its key, and the root, all PEM.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// `cert-chain.pem`: the leaf first, then the intermediate.
    pub chain_pem: String,
    /// `key.pem`.
    pub key_pem: String,
    /// `root-cert.pem`.
    pub root_pem: String,
}

impl Leaf {
    /// Writes the three files of Istio's layout into `dir`.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::write(dir.join("cert-chain.pem"), &self.chain_pem)?;
        std::fs::write(dir.join("key.pem"), &self.key_pem)?;
        std::fs::write(dir.join("root-cert.pem"), &self.root_pem)
    }

    /// The leaf loaded as [`Credentials`], as a workload would load its three files.
    ///
    /// # Panics
    /// When the files do not load (a leaf this CA made always does; a test that wants a
    /// refusal calls [`Credentials::from_pem`] itself).
    pub fn credentials(&self) -> Credentials {
        Credentials::from_pem(
            self.chain_pem.as_bytes(),
            self.key_pem.as_bytes(),
            self.root_pem.as_bytes(),
        )
        .expect("test CA: a leaf it made loads")
    }

    /// [`Leaf::credentials`] in a [`CertSource`].
    pub fn source(&self) -> CertSource {
        CertSource::new(self.credentials())
    }
}

/// A root and an intermediate CA that sign leaves.
pub struct TestCa {
    root: CertifiedIssuer<'static, KeyPair>,
    intermediate: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A fresh root (`name` root) and intermediate.
    pub fn new(name: &str) -> Self {
        let mut root = ca_params(&format!("{name} root"));
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root =
            CertifiedIssuer::self_signed(root, key()).expect("test CA: the root signs itself");
        let mut intermediate = ca_params(&format!("{name} intermediate"));
        intermediate.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let intermediate = CertifiedIssuer::signed_by(intermediate, key(), &root)
            .expect("test CA: the root signs the intermediate");
        Self { root, intermediate }
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> String {
        self.root.pem()
    }

    /// A leaf signed by the intermediate.
    pub fn leaf(&self, spec: &LeafSpec) -> Leaf {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "mesh-tls test");
        for uri in &spec.uris {
            let uri = uri.clone().try_into().expect("test CA: an ASCII URI");
            params.subject_alt_names.push(SanType::URI(uri));
        }
        for dns in &spec.dns {
            let dns = dns.clone().try_into().expect("test CA: an ASCII DNS name");
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
        params.serial_number = Some(SerialNumber::from(spec.serial));
        let (y, m, d) = spec.not_before;
        params.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = spec.not_after;
        params.not_after = rcgen::date_time_ymd(y, m, d);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = match spec.key_format {
            KeyFormat::Rsa => KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
                .expect("test CA: an RSA key generates"),
            _ => key(),
        };
        let cert = params
            .signed_by(&key, &self.intermediate)
            .expect("test CA: the intermediate signs the leaf");
        let pkcs8 = key.serialize_der();
        let key_pem = match spec.key_format {
            KeyFormat::Pkcs8 => key.serialize_pem(),
            KeyFormat::Sec1 => pem("EC PRIVATE KEY", &sec1_with_curve(&pkcs8_inner(&pkcs8))),
            KeyFormat::Rsa => pem("RSA PRIVATE KEY", &pkcs8_inner(&pkcs8)),
        };
        Leaf {
            chain_pem: format!("{}{}", cert.pem(), self.intermediate.pem()),
            key_pem,
            root_pem: self.root.pem(),
        }
    }
}

fn key() -> KeyPair {
    KeyPair::generate().expect("test CA: an ECDSA P-256 key generates")
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2090, 1, 1);
    params
}

fn pem(label: &str, der: &[u8]) -> String {
    let mut out = format!("-----BEGIN {label}-----\n");
    let text = base64(der);
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One DER element at the start of `der`: (tag, header length, content length).
fn element(der: &[u8]) -> (u8, usize, usize) {
    let tag = der[0];
    let first = der[1];
    if first < 0x80 {
        return (tag, 2, usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    let len = der[2..2 + n]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    (tag, 2 + n, len)
}

fn header(tag: u8, len: usize) -> Vec<u8> {
    match len {
        0..0x80 => vec![tag, len as u8],
        0x80..0x100 => vec![tag, 0x81, len as u8],
        _ => vec![tag, 0x82, (len >> 8) as u8, len as u8],
    }
}

/// The key inside a PKCS#8 `PrivateKeyInfo`: SEC1 for EC, PKCS#1 for RSA.
fn pkcs8_inner(pkcs8: &[u8]) -> Vec<u8> {
    let (_, outer_header, _) = element(pkcs8);
    let mut at = outer_header;
    for _ in 0..2 {
        // version, then the algorithm identifier
        let (_, h, len) = element(&pkcs8[at..]);
        at += h + len;
    }
    let (_, h, len) = element(&pkcs8[at..]);
    pkcs8[at + h..at + h + len].to_vec()
}

/// Adds `parameters [0] prime256v1` to a SEC1 key that lacks it, as OpenSSL and Go write it.
fn sec1_with_curve(sec1: &[u8]) -> Vec<u8> {
    const P256: &[u8] = &[
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    let (_, outer_header, _) = element(sec1);
    let mut at = outer_header;
    let mut parts = Vec::new();
    while at < sec1.len() {
        let (tag, h, len) = element(&sec1[at..]);
        parts.push((tag, &sec1[at..at + h + len]));
        at += h + len;
    }
    let mut body = Vec::new();
    for (tag, bytes) in parts {
        if tag == 0xa1 {
            body.extend_from_slice(P256);
        }
        if tag != 0xa0 {
            body.extend_from_slice(bytes);
        }
    }
    let mut out = header(0x30, body.len());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
impl TestCa {
    /// Signs a CSR with the intermediate, as a CA would: the chain (leaf, intermediate, root),
    /// each PEM. Validity: from `now - back` for `validity`, in seconds.
    pub(crate) fn sign_csr(
        &self,
        csr_pem: &str,
        serial: u64,
        back: u64,
        validity: u64,
    ) -> Vec<String> {
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .expect("test CA: the CSR parses");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("test CA: the clock is after 1970")
            .as_secs();
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let start = now.saturating_sub(back);
        csr.params.not_before = epoch + std::time::Duration::from_secs(start);
        csr.params.not_after = epoch + std::time::Duration::from_secs(start + validity);
        csr.params.serial_number = Some(SerialNumber::from(serial));
        csr.params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        csr.params.use_authority_key_identifier_extension = true;
        let leaf = csr
            .signed_by(&self.intermediate)
            .expect("test CA: the intermediate signs the CSR");
        vec![leaf.pem(), self.intermediate.pem(), self.root.pem()]
    }
}
