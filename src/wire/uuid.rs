//! PostgreSQL's `uuid`: 16 bytes, read in `uuid_in`'s syntax (optional
//! braces, any case, a hyphen optional after each group of four digits)
//! and printed as lower-case 8-4-4-4-12.

/// The 16 bytes of a UUID written in `uuid_in`'s syntax, if it is one.
pub fn parse(text: &str) -> Option<[u8; 16]> {
    let inner = match text.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => text,
    };
    let mut bytes = [0u8; 16];
    let mut digits = 0usize;
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        let d = c.to_digit(16)? as u8;
        let byte = bytes.get_mut(digits / 2)?;
        *byte = (*byte << 4) | d;
        digits += 1;
        // A hyphen may follow each group of four digits, except the last.
        if digits.is_multiple_of(4) && digits < 32 && chars.peek() == Some(&'-') {
            chars.next();
        }
    }
    (digits == 32).then_some(bytes)
}

/// `bytes` as lower-case 8-4-4-4-12.
pub fn format(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A random (version 4) UUID, as `gen_random_uuid()` makes.
pub fn random() -> Result<[u8; 16], getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_uuid_in_reads() {
        let canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for s in [
            canonical,
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
        ] {
            assert_eq!(
                parse(s).map(|b| format(&b)).as_deref(),
                Some(canonical),
                "{s}"
            );
        }
        for bad in [
            "",
            "a0eebc99",
            "{a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "g0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0eebc999c0b4ef8bb6d6bb9bd380a1100",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let r = random().unwrap();
        assert_eq!((r[6] >> 4, r[8] >> 6), (4, 2));
    }
}
