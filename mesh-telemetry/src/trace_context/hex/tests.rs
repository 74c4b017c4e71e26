use super::*;

#[test]
fn every_byte_is_written_as_its_two_lower_case_digits() {
    for i in 0..=255u8 {
        let mut out = [0u8; 2];
        hex_into(&mut out, &[i]);
        assert_eq!(std::str::from_utf8(&out).unwrap(), format!("{i:02x}"));
    }
}

/// The old parser, digit by digit: the reference the table-driven one must agree with.
fn parse_hex_reference(s: &[u8]) -> Option<u128> {
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    s.iter().try_fold(0u128, |v, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some((v << 4) | u128::from(d))
    })
}

#[test]
fn hex_parses_as_the_digit_by_digit_reference_at_every_length_and_bad_byte() {
    let digits = b"4bf92f3577b34da6a3ce929d0e0e4736ff";
    for len in 0..=34 {
        let s = &digits[..len];
        assert_eq!(parse_hex(s), parse_hex_reference(s), "{len} digits");
        // Every byte that is not a lower-case digit, at the first, a middle and the last place.
        for bad in (0..=255u8).filter(|b| !b"0123456789abcdef".contains(b)) {
            for at in [0, len / 2, len.saturating_sub(1)] {
                let mut t = s.to_vec();
                if let Some(slot) = t.get_mut(at) {
                    *slot = bad;
                }
                assert_eq!(parse_hex(&t), parse_hex_reference(&t), "{t:?}");
            }
        }
    }
    assert_eq!(
        parse_hex(b"ffffffffffffffffffffffffffffffff"),
        Some(u128::MAX)
    );
    assert_eq!(parse_hex(b"10000000000000000"), Some(1u128 << 64));
}

#[test]
fn eight_digits_in_a_word_parse_as_the_reference_for_every_byte_at_every_place() {
    let digits = *b"09afbe17";
    assert_eq!(parse_8(u64::from_be_bytes(digits)), Some(0x09af_be17));
    for at in 0..8 {
        for byte in 0..=255u8 {
            let mut t = digits;
            t[at] = byte;
            let want = parse_hex_reference(&t).map(|v| v as u32);
            assert_eq!(parse_8(u64::from_be_bytes(t)), want, "{t:?}");
        }
    }
}
