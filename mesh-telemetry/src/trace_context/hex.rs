//! Lower-case hex for trace ids: written from a table of digit pairs and parsed through a table
//! of digit values (a `traceparent` is parsed on every inbound call and written on every
//! outbound one).

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The two lower-case hex digits of every byte, built at compile time: one load per byte
/// instead of two shifts, masks and loads (a `traceparent` is written on every outbound call).
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut pairs = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [HEX[i >> 4], HEX[i & 0x0f]];
        i += 1;
    }
    pairs
};

pub(super) fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
}

pub(super) fn write_traceparent(buf: &mut [u8; 55], trace_id: u128, span_id: u64, sampled: bool) {
    buf[0] = b'0';
    buf[1] = b'0';
    buf[2] = b'-';
    hex_into(&mut buf[3..35], trace_id.to_be_bytes().as_slice());
    buf[35] = b'-';
    hex_into(&mut buf[36..52], span_id.to_be_bytes().as_slice());
    buf[52] = b'-';
    buf[53] = b'0';
    buf[54] = if sampled { b'1' } else { b'0' };
}

/// `bytes` as `N` lower-case hex digits, from the table of pairs: a 32-digit id written through
/// `fmt`'s `{:032x}` ran some 300 instructions per call (the formatter's padding and its
/// 128-bit digit loop). Collecting the digits as `char`s into a `String` costs more still (a
/// push per character), so the buffer is checked as UTF-8 once and copied.
pub(super) fn hex_string<const N: usize>(bytes: &[u8]) -> String {
    let mut out = [0u8; N];
    hex_into(&mut out, bytes);
    // invariant: `hex_into` writes only ASCII hex digits, which are UTF-8.
    #[allow(clippy::expect_used)]
    std::str::from_utf8(&out)
        .expect("invariant: hex digits are ASCII")
        .to_owned()
}

/// Each byte's value as a lower-case hex digit, `INVALID` for any other byte.
const HEX_VALUES: [u8; 256] = {
    let mut values = [INVALID; 256];
    let mut i = 0;
    while i < 16 {
        values[HEX[i] as usize] = i as u8;
        i += 1;
    }
    values
};

/// Marks a byte that is not a lower-case hex digit in [`HEX_VALUES`] (any value with a high
/// nibble would do: a digit's value never has one).
const INVALID: u8 = 0xff;

/// Parses lower-case hex (at most 32 digits) strictly.
pub(super) fn parse_hex(s: &[u8]) -> Option<u128> {
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    // Two 64-bit halves: a 128-bit shift per digit costs several instructions where a 64-bit
    // one costs one.
    let (high, low) = s.split_at(s.len().saturating_sub(16));
    let value = u128::from(parse_hex_u64(high)?);
    // `low` has at most 16 digits: the shift is at most 64 bits, within a u128.
    Some((value << (4 * low.len())) | u128::from(parse_hex_u64(low)?))
}

/// Parses at most 16 lower-case hex digits (an empty slice is 0): eight digits at a time in
/// one 64-bit word ([`parse_8`]), the rest through the table, every digit checked in one test
/// at the end instead of branching on each.
fn parse_hex_u64(s: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    let mut words = s.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        // At most two words: the shift is by 32 bits, within the u64.
        value = (value << 32) | u64::from(parse_8(u64::from_be_bytes(bytes))?);
    }
    let mut seen = 0u8;
    for &c in words.remainder() {
        let digit = HEX_VALUES[usize::from(c)];
        seen |= digit;
        value = (value << 4) | u64::from(digit & 0x0f);
    }
    (seen & 0xf0 == 0).then_some(value)
}

/// Eight lower-case hex digits, the first in the word's top byte, as their 32-bit value, or
/// `None` when any byte is not one: each byte is compared with the digits' bounds all at once
/// (an addition sets a byte's top bit when it is at or above a bound; bytes under 0x80 never
/// carry into their neighbour), then the digits' values are packed by shifts. A 32-digit trace
/// id took some 250 instructions through the table, one load and shift per digit; this takes
/// about a quarter of that (a `traceparent` is parsed on every inbound call).
fn parse_8(word: u64) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    if word & TOPS != 0 {
        return None;
    }
    let at_least = |bound: u8| word + (0x80 - u64::from(bound)) * ONES;
    let digit = at_least(b'0') & !at_least(b'9' + 1);
    let letter = at_least(b'a') & !at_least(b'f' + 1);
    let letter = letter & TOPS;
    if (digit & TOPS) | letter != TOPS {
        return None;
    }
    // '0'..'9' are 0x30..0x39 and 'a'..'f' 0x61..0x66: the low nibble, plus 9 for a letter.
    let values = (word & (0x0f * ONES)) + (letter >> 7) * 9;
    let pairs = (values | (values >> 4)) & 0x00ff_00ff_00ff_00ff;
    let quads = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    // The mask keeps 32 bits: the conversion cannot fail.
    u32::try_from((quads | (quads >> 16)) & 0xffff_ffff).ok()
}

#[cfg(test)]
mod tests;
