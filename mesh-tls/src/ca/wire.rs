//! The two protobuf messages of istiod's `IstioCertificateService` and gRPC's message framing,
//! written by hand so that no build step needs protoc.
//!
//! ```proto
//! message IstioCertificateRequest { string csr = 1; int64 validity_duration = 3; ... }
//! message IstioCertificateResponse { repeated string cert_chain = 1; }
//! ```

/// Why a message could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed CreateCertificate response: {0}")]
pub struct WireError(pub(crate) &'static str);

/// Encodes an `IstioCertificateRequest`.
pub fn encode_request(csr_pem: &str, validity_seconds: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(csr_pem.len() + 16);
    out.push(0x0a); // field 1, length-delimited
    varint(csr_pem.len() as u64, &mut out);
    out.extend_from_slice(csr_pem.as_bytes());
    out.push(0x18); // field 3, varint
    varint(validity_seconds as u64, &mut out);
    out
}

/// Decodes an `IstioCertificateRequest` (for fake CAs in tests): the CSR and the validity.
pub fn decode_request(mut bytes: &[u8]) -> Result<(String, i64), WireError> {
    let (mut csr, mut validity) = (String::new(), 0);
    while !bytes.is_empty() {
        let (field, value) = next_field(&mut bytes)?;
        match (field, value) {
            (1, Value::Bytes(b)) => csr = text(b)?,
            (3, Value::Varint(v)) => validity = v as i64,
            _ => {}
        }
    }
    Ok((csr, validity))
}

/// Encodes an `IstioCertificateResponse` (for fake CAs in tests).
pub fn encode_response(chain: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for cert in chain {
        out.push(0x0a);
        varint(cert.len() as u64, &mut out);
        out.extend_from_slice(cert.as_bytes());
    }
    out
}

/// Decodes an `IstioCertificateResponse`: the chain, leaf first, each PEM.
pub fn decode_response(mut bytes: &[u8]) -> Result<Vec<String>, WireError> {
    let mut chain = Vec::new();
    while !bytes.is_empty() {
        if let (1, Value::Bytes(b)) = next_field(&mut bytes)? {
            chain.push(text(b)?);
        }
    }
    Ok(chain)
}

/// One gRPC message: a zero (uncompressed) byte, the length (big endian), the message.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The message of a gRPC body holding exactly one uncompressed message.
pub fn unframe(body: &[u8]) -> Result<&[u8], WireError> {
    let Some((header, rest)) = body.split_first_chunk::<5>() else {
        return Err(WireError("shorter than a gRPC message header"));
    };
    if header[0] != 0 {
        return Err(WireError("compressed messages are not supported"));
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if rest.len() != len {
        return Err(WireError("the gRPC message length does not match the body"));
    }
    Ok(rest)
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn next_field<'a>(bytes: &mut &'a [u8]) -> Result<(u64, Value<'a>), WireError> {
    let key = read_varint(bytes)?;
    let value = match key & 7 {
        0 => Value::Varint(read_varint(bytes)?),
        1 => skip(bytes, 8).map(|_| Value::Fixed)?,
        2 => {
            let len = usize::try_from(read_varint(bytes)?)
                .map_err(|_| WireError("a length does not fit in memory"))?;
            Value::Bytes(skip(bytes, len)?)
        }
        5 => skip(bytes, 4).map(|_| Value::Fixed)?,
        _ => return Err(WireError("unknown wire type")),
    };
    Ok((key >> 3, value))
}

fn skip<'a>(bytes: &mut &'a [u8], len: usize) -> Result<&'a [u8], WireError> {
    if bytes.len() < len {
        return Err(WireError("a field runs past the end"));
    }
    let (head, tail) = bytes.split_at(len);
    *bytes = tail;
    Ok(head)
}

fn read_varint(bytes: &mut &[u8]) -> Result<u64, WireError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&byte, rest)) = bytes.split_first() else {
            return Err(WireError("a varint runs past the end"));
        };
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError("a varint is longer than 10 bytes"))
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn text(bytes: &[u8]) -> Result<String, WireError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| WireError("a string is not UTF-8"))
}
