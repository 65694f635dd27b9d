//! Times an auditor types and reads: positions in a recording (`g 1:30`,
//! `90s`, `+30s`, `50%`), points in the calendar (`--since '2 hours ago'`,
//! `2026-11-26 10:00`), and how both are shown. Pure functions: "now" is
//! passed in. Calendar times are UTC, which is what a report across hosts
//! in different zones needs.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimeError {
    #[error("{0:?} is not a time in the recording (try 1:30, 90s, 1h2m, +30s, -1m or 50%)")]
    Offset(String),
    #[error("{0:?} is not a point in time (try '2 hours ago', 30m, yesterday, 2026-11-26, '2026-11-26 10:00' or @UNIX)")]
    Since(String),
}

/// A position typed by the viewer, in seconds from the start. `now` is the
/// current position, for `+30s`/`-1m`; `duration` for percentages.
pub fn parse_offset(text: &str, now: f64, duration: f64) -> Result<f64, TimeError> {
    let err = || TimeError::Offset(text.to_owned());
    let t = text.trim();
    if let Some(p) = t.strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| err())?;
        if !(0.0..=100.0).contains(&p) {
            return Err(err());
        }
        return Ok(duration * p / 100.0);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1.0, t.get(1..).unwrap_or_default()),
        Some(b'-') => (-1.0, t.get(1..).unwrap_or_default()),
        _ => (0.0, t),
    };
    let secs = if rest.contains(':') { clock_secs(rest) } else { span_secs(rest) }.ok_or_else(err)?;
    Ok(if sign == 0.0 { secs } else { (now + sign * secs).max(0.0) })
}

/// `1:30`, `1:02:03`, `0:05.5`.
fn clock_secs(text: &str) -> Option<f64> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut secs = 0.0;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let v: f64 = if last { part.parse().ok()? } else { f64::from(part.parse::<u32>().ok()?) };
        if !v.is_finite() || v < 0.0 {
            return None;
        }
        secs = secs * 60.0 + v;
    }
    Some(secs)
}

/// `90`, `90s`, `2m`, `1h2m3s`, `1.5h`, `2 hours`, `3 days`.
fn span_secs(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(v) = text.parse::<f64>() {
        return (v.is_finite() && v >= 0.0).then_some(v);
    }
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let value: f64 = rest.get(..num_end)?.parse().ok()?;
        rest = rest.get(num_end..)?.trim_start();
        let unit_end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = rest.get(..unit_end)?;
        rest = rest.get(unit_end..)?.trim_start();
        let scale = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            _ => return None,
        };
        total += value * scale;
    }
    Some(total)
}

/// A point in time for `--since`/`--until`, as unix seconds.
pub fn parse_since(text: &str, now: u64) -> Result<u64, TimeError> {
    let err = || TimeError::Since(text.to_owned());
    let t = text.trim().to_ascii_lowercase();
    let midnight = now - now % 86_400;
    match t.as_str() {
        "now" => return Ok(now),
        "today" => return Ok(midnight),
        "yesterday" => return Ok(midnight.saturating_sub(86_400)),
        _ => {}
    }
    if let Some(unix) = t.strip_prefix('@') {
        return unix.parse().map_err(|_| err());
    }
    if t.len() >= 10 && t.as_bytes().get(4) == Some(&b'-') {
        return parse_date(&t).ok_or_else(err);
    }
    let span = t.strip_suffix("ago").unwrap_or(&t);
    let secs = span_secs(span).ok_or_else(err)?;
    // Float to whole seconds: spans are far below u64's range.
    Ok(now.saturating_sub(secs as u64))
}

/// `YYYY-MM-DD`, optionally followed by ` HH:MM[:SS]` or `THH:MM[:SS]`.
fn parse_date(text: &str) -> Option<u64> {
    let (date, time) = match text.split_once([' ', 't']) {
        Some((d, t)) => (d, Some(t.trim_end_matches('z'))),
        None => (text, None),
    };
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = days_from_civil(year, month, day).checked_mul(86_400)?;
    if let Some(time) = time {
        let mut parts = time.split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let m: i64 = parts.next().unwrap_or("0").parse().ok()?;
        let s: i64 = parts.next().unwrap_or("0").parse().ok()?;
        if parts.next().is_some() || h > 23 || m > 59 || s > 60 {
            return None;
        }
        secs += h * 3600 + m * 60 + s;
    }
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

/// `2026-11-26 10:04` (UTC).
pub fn format_date(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let (y, m, d) = civil_from_days(days);
    let rem = unix % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

/// A position or duration: `1:02:03`, or `02:03` under an hour.
pub fn format_clock(secs: f64) -> String {
    let total = if secs.is_finite() && secs > 0.0 { secs as u64 } else { 0 };
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// Seconds since the epoch, for the edges that need "now".
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case("90", 90.0)]
    #[case("1:30", 90.0)]
    #[case("1:02:03", 3723.0)]
    #[case("0:05.5", 5.5)]
    #[case("90s", 90.0)]
    #[case("1h2m3s", 3723.0)]
    #[case("2 minutes", 120.0)]
    #[case("+30s", 130.0)]
    #[case("-1m", 40.0)]
    #[case("-5m", 0.0)]
    #[case("50%", 500.0)]
    fn offsets_parse(#[case] text: &str, #[case] expected: f64) {
        assert_eq!(parse_offset(text, 100.0, 1000.0), Ok(expected));
    }

    #[rstest::rstest]
    #[case("")]
    #[case("abc")]
    #[case("1:")]
    #[case("1:2:3:4")]
    #[case("5 parsecs")]
    #[case("150%")]
    #[case("-")]
    fn bad_offsets_are_named(#[case] text: &str) {
        let err = parse_offset(text, 0.0, 10.0).unwrap_err();
        assert!(err.to_string().contains("is not a time in the recording"), "{err}");
    }

    const NOW: u64 = 1_795_706_653; // 2026-11-26 15:24:13 UTC

    #[rstest::rstest]
    #[case("2 hours ago", NOW - 7200)]
    #[case("30m", NOW - 1800)]
    #[case("1d", NOW - 86_400)]
    #[case("today", 1_795_651_200)]
    #[case("yesterday", 1_795_564_800)]
    #[case("2026-11-26", 1_795_651_200)]
    #[case("2026-11-26 10:00", 1_795_687_200)]
    #[case("2026-11-26T10:00:30Z", 1_795_687_230)]
    #[case("@1700000000", 1_700_000_000)]
    fn since_parses(#[case] text: &str, #[case] expected: u64) {
        assert_eq!(parse_since(text, NOW), Ok(expected));
    }

    #[rstest::rstest]
    #[case("last tuesday")]
    #[case("2026-13-01")]
    #[case("2026-11-26 25:00")]
    #[case("@soon")]
    fn bad_since_is_named(#[case] text: &str) {
        let err = parse_since(text, NOW).unwrap_err();
        assert!(err.to_string().contains("is not a point in time"), "{err}");
    }

    #[test]
    fn dates_and_clocks_format() {
        assert_eq!(format_date(NOW), "2026-11-26 15:24");
        assert_eq!(format_date(0), "1970-01-01 00:00");
        assert_eq!(format_clock(3723.9), "1:02:03");
        assert_eq!(format_clock(65.0), "01:05");
        assert_eq!(format_clock(f64::NAN), "00:00");
        for days in [-1000, 0, 365, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
