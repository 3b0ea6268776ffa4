//! Durations as pipeline files write them: `90s`, `15m`, `1h`, `1h30m`, `500ms`.

use std::time::Duration;

/// Parses a duration; the error says what was expected.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` has no unit"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{text}` is not a duration"));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            "" => return Err(format!("`{text}` has a number without a unit")),
            other => return Err(format!("`{other}` is not a unit of time")),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(value).ok().and_then(|v| unit.checked_mul(v));
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("`{text}` is too large"))?;
    }
    Ok(total)
}

/// Formats a duration the way it would be written: `15m`, `1h30m`, `2.5s`, `300ms`.
pub(crate) fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 && secs < 60 {
        return if secs == 0 {
            format!("{}ms", d.subsec_millis())
        } else {
            format!("{:.1}s", d.as_secs_f64())
        };
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value != 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let ok = [
            ("90s", 90_000),
            ("15m", 900_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("2d", 172_800_000),
        ];
        for (text, ms) in ok {
            assert_eq!(parse(text), Ok(Duration::from_millis(ms)), "{text}");
        }
        for bad in [
            "",
            "10",
            "ten",
            "10x",
            "s",
            "1h 30m",
            "99999999999999999999s",
            "4294967296h",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn formats() {
        for (ms, text) in [
            (900_000, "15m"),
            (5_400_000, "1h30m"),
            (2_500, "2.5s"),
            (300, "300ms"),
            (0, "0s"),
        ] {
            assert_eq!(format(Duration::from_millis(ms)), text);
        }
    }
}
