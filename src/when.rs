//! Points in time as people type them on a command line or in a query
//! string, turned into unix seconds: `1700000000`, `2026-11-26`,
//! `2026-11-26T10:30:00Z`, `2026-11-26 10:30:00+02:00`, or an age such as
//! `90s`, `15m`, `2h`, `3d`, `1w` (that long before `now`).
//!
//! Pure: `now` is passed in. Only UTC offsets are understood, never time zone
//! names, so a timestamp means the same thing on every machine.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a time: use unix seconds, YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (or +HH:MM), or an age like 2h or 3d")]
pub struct WhenError {
    text: String,
}

/// Parses `text` into unix seconds.
pub fn parse_time(text: &str, now: i64) -> Result<i64, WhenError> {
    let t = text.trim();
    let err = || WhenError { text: text.to_owned() };
    if t.is_empty() {
        return Err(err());
    }
    if let Ok(secs) = t.parse::<i64>() {
        return Ok(secs);
    }
    if let Some(age) = parse_age(t) {
        return Ok(now.saturating_sub(age));
    }
    parse_datetime(t).ok_or_else(err)
}

fn parse_age(t: &str) -> Option<i64> {
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = t.split_at(split);
    let n: i64 = digits.parse().ok()?;
    let unit_secs = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(unit_secs)
}

fn number(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_datetime(t: &str) -> Option<i64> {
    let date = t.get(..10)?;
    let mut parts = date.split('-');
    let (y, m, d) = (number(parts.next()?)?, number(parts.next()?)?, number(parts.next()?)?);
    if date.len() != 10 || !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    let rest = t.get(10..)?;
    if rest.is_empty() {
        return Some(days * 86_400);
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let time = rest.get(..8)?;
    let mut hms = time.split(':');
    let (h, mi, s) = (number(hms.next()?)?, number(hms.next()?)?, number(hms.next()?)?);
    if time.len() != 8 || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut zone = rest.get(8..)?;
    // Fractions of a second are accepted and dropped.
    if let Some(frac) = zone.strip_prefix('.') {
        let digits = frac.find(|c: char| !c.is_ascii_digit()).unwrap_or(frac.len());
        zone = frac.get(digits..)?;
    }
    let offset = match zone {
        "Z" | "z" | "" => 0,
        _ => {
            let sign = match zone.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let (oh, om) = zone.get(1..)?.split_once(':')?;
            let (oh, om) = (number(oh)?, number(om)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SSZ`, for tables.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const NOW: i64 = 1_764_115_200; // 2025-11-26T00:00:00Z

    #[rstest]
    #[case::unix("1700000000", 1_700_000_000)]
    #[case::date("2025-11-26", NOW)]
    #[case::utc("2025-11-26T01:02:03Z", NOW + 3723)]
    #[case::space_and_fraction("2025-11-26 01:02:03.250Z", NOW + 3723)]
    #[case::offset("2025-11-26T02:00:00+02:00", NOW)]
    #[case::negative_offset("2025-11-25T22:00:00-02:00", NOW)]
    #[case::leap_day("2024-02-29", 1_709_164_800)]
    #[case::epoch("1970-01-01T00:00:00Z", 0)]
    #[case::hours_ago("2h", NOW - 7200)]
    #[case::days_ago("3d", NOW - 3 * 86_400)]
    fn times_parse(#[case] text: &str, #[case] expected: i64) {
        assert_eq!(parse_time(text, NOW), Ok(expected));
    }

    #[rstest]
    #[case("")]
    #[case("yesterday")]
    #[case("2025-13-01")]
    #[case("2025-02-30")]
    #[case("2025-11-26T25:00:00Z")]
    #[case("2025-11-26T10:00:00 CET")]
    #[case("5y")]
    #[case("99999999999999999999d")]
    fn bad_times_are_errors(#[case] text: &str) {
        let err = parse_time(text, NOW).unwrap_err();
        assert!(err.to_string().contains("is not a time"), "{err}");
    }

    #[test]
    fn formatting_inverts_parsing() {
        for secs in [0, NOW + 3723, 1_709_164_800 + 86_399, 4_102_444_800] {
            let text = format_utc(secs);
            assert_eq!(parse_time(&text.replace(' ', "T"), 0), Ok(secs), "{text}");
        }
    }
}
