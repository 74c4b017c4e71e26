//! Request path normalization, as Istio's `meshConfig.pathNormalization` configures Envoy.
//!
//! Authorization and routing decide on the path. If they saw `/public/../private` while the
//! application resolved it to `/private`, a DENY on `/private` would be bypassed by spelling (the
//! class of CVE-2019-9901). So the path is normalized once, before every policy and routing
//! decision, and the application and the upstream receive the normalized path.
//!
//! The levels are Istio's ([`PathNormalization`]):
//!
//! | level | what it does |
//! | --- | --- |
//! | `NONE` | nothing |
//! | `BASE` (default) | RFC 3986 normalization as Envoy's `normalize_path`: percent-encoded unreserved characters decoded (`%61` → `a`, `%2e` → `.`), `\` → `/`, dot segments removed (`/a/./b/../c` → `/a/c`, never above the root) |
//! | `MERGE_SLASHES` | `BASE`, then runs of `/` merged (`//a///b` → `/a/b`) |
//! | `DECODE_AND_MERGE_SLASHES` | escaped slashes decoded first (`%2F` → `/`, `%5C` → `\`, Envoy's `UNESCAPE_AND_FORWARD`), then `MERGE_SLASHES` |
//!
//! As in Istio, `BASE` and `MERGE_SLASHES` keep `%2F` and `%5C` as they are (Envoy's
//! `KEEP_UNCHANGED`): a segment such as `group%2Fproject` is one segment to the mesh and to the
//! application. Use `DECODE_AND_MERGE_SLASHES` when an application decodes them itself.
//!
//! At every level but `NONE`, a path that cannot be normalized unambiguously is refused (the
//! caller answers 400): `%00`, and a `%` not followed by two hex digits. The query is never
//! touched.
//!
//! ```
//! use mesh_core::normalize::{normalize_path, PathNormalization};
//!
//! let level = PathNormalization::Base;
//! assert_eq!(normalize_path("/public/%2e%2e/private", level).unwrap().as_deref(), Some("/private"));
//! assert_eq!(normalize_path("/already/clean", level).unwrap(), None); // nothing to do, no copy
//! assert!(normalize_path("/a%00b", level).is_err());
//! ```

use std::fmt;

/// Istio's `meshConfig.pathNormalization.normalization`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PathNormalization {
    /// `NONE`: the path is used as it arrives.
    None,
    /// `BASE` (Istio's default, also spelled `DEFAULT`): RFC 3986 normalization.
    #[default]
    Base,
    /// `MERGE_SLASHES`: `BASE`, then runs of slashes merged.
    MergeSlashes,
    /// `DECODE_AND_MERGE_SLASHES`: escaped slashes decoded, then `MERGE_SLASHES`.
    DecodeAndMergeSlashes,
}

impl PathNormalization {
    /// The level named as in Istio's MeshConfig (`NONE`, `BASE`, `DEFAULT`, `MERGE_SLASHES`,
    /// `DECODE_AND_MERGE_SLASHES`).
    pub fn from_istio(name: &str) -> Option<Self> {
        Some(match name {
            "NONE" => Self::None,
            "BASE" | "DEFAULT" => Self::Base,
            "MERGE_SLASHES" => Self::MergeSlashes,
            "DECODE_AND_MERGE_SLASHES" => Self::DecodeAndMergeSlashes,
            _ => return None,
        })
    }

    /// The level's name as Istio writes it.
    pub fn as_istio(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Base => "BASE",
            Self::MergeSlashes => "MERGE_SLASHES",
            Self::DecodeAndMergeSlashes => "DECODE_AND_MERGE_SLASHES",
        }
    }

    fn merges_slashes(self) -> bool {
        matches!(self, Self::MergeSlashes | Self::DecodeAndMergeSlashes)
    }

    fn decodes_slashes(self) -> bool {
        self == Self::DecodeAndMergeSlashes
    }
}

impl fmt::Display for PathNormalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_istio())
    }
}

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidPath {
    /// `%00`: a NUL byte cannot be part of a path.
    Nul,
    /// A `%` not followed by two hex digits.
    BadEscape,
}

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nul => "the path contains an encoded NUL byte (%00)",
            Self::BadEscape => "the path contains a `%` not followed by two hex digits",
        })
    }
}

impl std::error::Error for InvalidPath {}

/// The normalized form of `path` (the path alone, without the query) at `level`: `Ok(None)` when
/// it is already normal (the common case, checked without allocating), `Ok(Some(path))` when it
/// changed, `Err` when it must be refused.
pub fn normalize_path(path: &str, level: PathNormalization) -> Result<Option<String>, InvalidPath> {
    if level == PathNormalization::None || !needs_work(path.as_bytes(), level) {
        return Ok(None);
    }
    let decoded = decode(path.as_bytes(), level)?;
    let mut out = remove_dot_segments(&decoded);
    if level.merges_slashes() {
        merge_slashes(&mut out);
    }
    // Every byte is the input's or an ASCII byte decoded from an escape, and splitting on `/`
    // never cuts a multi-byte sequence: the result is UTF-8. Checked all the same (one scan of a
    // path that is being rewritten anyway) rather than assumed.
    let out = String::from_utf8(out).map_err(|_| InvalidPath::BadEscape)?;
    Ok((out != path).then_some(out))
}

/// Normalizes `uri`'s path in place at `level`, keeping its scheme, authority and query (an
/// absolute-form `http://host/./a` becomes `http://host/a`). Nothing is allocated when the path
/// is already normal.
pub fn normalize_uri(uri: &mut http::Uri, level: PathNormalization) -> Result<(), InvalidPath> {
    let Some(path) = normalize_path(uri.path(), level)? else {
        return Ok(());
    };
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = std::mem::take(uri).into_parts();
    // The normalized path has only characters the original URI had (or unreserved ones decoded
    // from it), so it parses; if it somehow did not, refusing is the safe answer.
    parts.path_and_query = Some(
        http::uri::PathAndQuery::try_from(path_and_query).map_err(|_| InvalidPath::BadEscape)?,
    );
    *uri = http::Uri::from_parts(parts).map_err(|_| InvalidPath::BadEscape)?;
    Ok(())
}

/// The bytes that can make a path need work (`%`, `\`, and the `/` and `.` of dot segments and
/// doubled slashes): one table lookup per byte of the usual path, whose other bytes are letters.
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'%' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'/' as usize] = true;
    table[b'.' as usize] = true;
    table
};

/// Whether `path` has anything the level would change or refuse: a `%`, a `\`, a dot segment,
/// or (when merging) a `//`.
fn needs_work(path: &[u8], level: PathNormalization) -> bool {
    let merges = level.merges_slashes();
    for (i, &b) in path.iter().enumerate() {
        if !SPECIAL[usize::from(b)] {
            continue;
        }
        match b {
            b'%' | b'\\' => return true,
            // What follows a `/` decides: another `/` (merged), or a dot segment, `/.` followed
            // by `/`, `.` + (`/` or end), or the end.
            b'/' => match path.get(i + 1) {
                Some(b'/') if merges => return true,
                Some(b'.') => {
                    let rest = &path[i + 2..];
                    if rest.is_empty()
                        || rest[0] == b'/'
                        || (rest[0] == b'.' && (rest.len() == 1 || rest[1] == b'/'))
                    {
                        return true;
                    }
                }
                _ => {}
            },
            // A `.` matters only after a `/`, seen there.
            _ => {}
        }
    }
    false
}

/// Percent-decodes unreserved characters (and, at `DECODE_AND_MERGE_SLASHES`, `/` and `\`),
/// keeps other escapes as written, and turns `\` into `/`.
fn decode(path: &[u8], level: PathNormalization) -> Result<Vec<u8>, InvalidPath> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    path.get(i + 1).and_then(|&h| hex(h)),
                    path.get(i + 2).and_then(|&l| hex(l)),
                ) else {
                    return Err(InvalidPath::BadEscape);
                };
                let c = hi << 4 | lo;
                match c {
                    0 => return Err(InvalidPath::Nul),
                    c if is_unreserved(c) => out.push(c),
                    b'/' | b'\\' if level.decodes_slashes() => out.push(b'/'),
                    _ => out.extend_from_slice(&path[i..i + 3]),
                }
                i += 3;
            }
            b'\\' => {
                out.push(b'/');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 section 2.3.
fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 section 5.2.4 for an absolute path: `.` segments dropped, `..` removes the segment
/// before it (never above the root); a path ending in a dot segment keeps a trailing `/`.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let Some(rest) = path.strip_prefix(b"/") else {
        // Not an absolute path (`*`, or empty): nothing to resolve against.
        return path.to_vec();
    };
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for segment in rest.split(|&b| b == b'/') {
        trailing_slash = false;
        match segment {
            b"." => trailing_slash = true,
            b".." => {
                segments.pop();
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if trailing_slash || out.is_empty() {
        out.push(b'/');
    }
    out
}

fn merge_slashes(path: &mut Vec<u8>) {
    let mut prev = 0u8;
    path.retain(|&b| {
        let keep = !(b == b'/' && prev == b'/');
        prev = b;
        keep
    });
}

#[cfg(test)]
mod tests;
