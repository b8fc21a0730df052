//! Rule windows: an integer and a unit, `30s`, `30m`, `24h`, `14d`, `2w`.

/// Parses a window into seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    // ASCII whitespace only: as the JSON Schema's pattern says (`\s` is wider
    // in some regex engines, narrower in others).
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let expected = || format!("expected a duration like `30m`, `24h` or `14d` (units s, m, h, d, w), found `{text}`");
    let too_long = || format!("`{text}` is longer than any window can be");
    let n: i64 = match digits.parse() {
        Ok(n) => n,
        Err(_) if !digits.is_empty() => return Err(too_long()),
        Err(_) => return Err(expected()),
    };
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(expected()),
    };
    match n.checked_mul(unit_secs) {
        Some(secs) if secs > 0 => Ok(secs),
        Some(_) => Err(format!("expected a positive duration, found `{text}`")),
        None => Err(too_long()),
    }
}

/// Formats seconds in the largest unit that divides them (`86400` → `1d`).
pub fn format_secs(secs: i64) -> String {
    for (unit, size) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs % size == 0 && secs >= size {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("14d"), Ok(14 * 86_400));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
        assert_eq!(parse_duration("45s"), Ok(45));
    }

    #[test]
    fn rejects_garbage_with_the_text() {
        for bad in ["", "h", "24", "24 hours", "-1h", "0h", "1.5h"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("expected"), "{bad}: {err}");
        }
        for huge in ["99999999999999999w", "99999999999999999999s"] {
            let err = parse_duration(huge).unwrap_err();
            assert_eq!(err, format!("`{huge}` is longer than any window can be"));
        }
    }

    #[test]
    fn formats_in_the_largest_unit() {
        assert_eq!(format_secs(86_400), "1d");
        assert_eq!(format_secs(90 * 60), "90m");
        assert_eq!(format_secs(14 * 86_400), "2w");
        assert_eq!(format_secs(61), "61s");
    }
}
