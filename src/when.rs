//! Times as people type them, one grammar for every command and the
//! collector's query strings, and how custos shows them.
//!
//! Points in time ([`parse_time`], unix seconds): `1700000000` or
//! `@1700000000`; `2026-11-26`, `2026-11-26 10:30`, `2026-11-26T10:30:00Z`,
//! `2026-11-26 10:30:00+02:00`; `now`, `today`, `yesterday` (midnight UTC);
//! or an age, that long before `now`: `90s`, `15m`, `2h`, `3d`, `1w`,
//! `1h30m`, `2 hours ago`, `30 minutes`.
//!
//! Positions in a recording ([`parse_offset`], seconds from its start):
//! `1:30`, `1:02:03`, `0:05.5`, a span (`90`, `90s`, `1h2m3s`,
//! `2 minutes`), relative to where playback is (`+30s`, `-1m`), or a share
//! of it (`50%`).
//!
//! Durations in configuration files ([`parse_duration`]): `90s`, `10m`,
//! `2h`, or plain seconds (a policy rule's `timeout`).
//!
//! Shown: [`format_utc`] and [`format_date`] for tables, [`format_rfc3339_us`]
//! for exported events, [`format_clock`] for positions, [`format_age`] for
//! how long ago or how long left.
//!
//! This is the only clock, calendar and duration code in the crate: one
//! proleptic Gregorian conversion each way, one "now" ([`unix_now`]).
//! Everything but [`unix_now`] is pure: `now` is passed in. Only UTC offsets
//! are understood, never time zone names, so a timestamp means the same thing
//! on every machine.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhenError {
    #[error("{0:?} is not a time: use unix seconds (or @UNIX), YYYY-MM-DD [HH:MM[:SS]][Z|+HH:MM], now, today, yesterday, or an age like 2h, 3d or '2 hours ago'")]
    Time(String),
    #[error("{0:?} is not a time in the recording (try 1:30, 90s, 1h2m, +30s, -1m or 50%)")]
    Offset(String),
}

/// Parses `text` into unix seconds.
pub fn parse_time(text: &str, now: i64) -> Result<i64, WhenError> {
    let t = text.trim().to_ascii_lowercase();
    let err = || WhenError::Time(text.to_owned());
    if t.is_empty() {
        return Err(err());
    }
    let midnight = now - now.rem_euclid(86_400);
    match t.as_str() {
        "now" => return Ok(now),
        "today" => return Ok(midnight),
        "yesterday" => return Ok(midnight - 86_400),
        _ => {}
    }
    let unix = t.strip_prefix('@').unwrap_or(&t);
    if let Ok(secs) = unix.parse::<i64>() {
        return Ok(secs);
    }
    if t.starts_with('@') {
        return Err(err());
    }
    if t.len() >= 10 && t.as_bytes().get(4) == Some(&b'-') {
        return parse_datetime(&t).ok_or_else(err);
    }
    let age = t.strip_suffix("ago").unwrap_or(&t);
    let secs = span_secs(age).filter(|s| *s < 1e12).ok_or_else(err)?;
    // Float to whole seconds: checked above to be far below i64's range.
    #[allow(clippy::cast_possible_truncation)]
    Ok(now.saturating_sub(secs as i64))
}

/// A position typed by the viewer, in seconds from the start. `now` is the
/// current position, for `+30s`/`-1m`; `duration` for percentages.
pub fn parse_offset(text: &str, now: f64, duration: f64) -> Result<f64, WhenError> {
    let err = || WhenError::Offset(text.to_owned());
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

/// A span in seconds: `90`, `90s`, `2m`, `1h2m3s`, `1.5h`, `2 hours`,
/// `3 days`, `1w`.
pub fn span_secs(text: &str) -> Option<f64> {
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
    total.is_finite().then_some(total)
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
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    // HH:MM or HH:MM:SS.
    let len = if rest.as_bytes().get(5) == Some(&b':') { 8 } else { 5 };
    let time = rest.get(..len)?;
    let mut hms = time.split(':');
    let (h, mi) = (number(hms.next()?)?, number(hms.next()?)?);
    let s = match hms.next() {
        Some(s) => number(s)?,
        None => 0,
    };
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut zone = rest.get(len..)?;
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

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SSZ`, for tables.
pub fn format_utc(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` for microseconds since the unix epoch
/// (UTC), for exported events.
pub fn format_rfc3339_us(us: u64) -> String {
    let secs = i64::try_from(us / 1_000_000).unwrap_or(i64::MAX);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z", rem / 3600, rem % 3600 / 60, rem % 60, us % 1_000_000)
}

/// `2026-11-26 10:04` (UTC), for the replay browser.
pub fn format_date(unix: u64) -> String {
    let text = format_utc(i64::try_from(unix).unwrap_or(i64::MAX));
    text.get(..16).unwrap_or(&text).to_owned()
}

/// A position or duration: `1:02:03`, or `02:03` under an hour.
pub fn format_clock(secs: f64) -> String {
    // Saturating float-to-int conversion: negative and NaN become 0.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = if secs.is_finite() && secs > 0.0 { secs as u64 } else { 0 };
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// How long ago, or how long left: `42s`, `5m03s`, `2h07m`; negative is 0.
pub fn format_age(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// A duration in a configuration file: `"90s"`, `"10m"`, `"2h"`, `"7d"`,
/// or plain seconds; more than zero. The error says what was wrong, for the caller
/// to prefix with the field.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a duration like \"90s\", \"10m\", \"2h\" or \"7d\""))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use s, m, h or d)")),
    };
    if secs == 0 {
        return Err("must be more than zero".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// Seconds since the epoch: the one reading of the wall clock, for the
/// edges that need "now" (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// [`unix_now`] as the signed seconds the collector's database stores.
pub fn unix_now_i64() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX)
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
    #[case::words_ago("2 hours ago", NOW - 7200)]
    #[case::compound("1h30m", NOW - 5400)]
    #[case::at_unix("@1700000000", 1_700_000_000)]
    #[case::minutes_only("2025-11-26 10:00", NOW + 36_000)]
    #[case::lower_case("2025-11-26t10:00:30z", NOW + 36_030)]
    #[case::now("now", NOW)]
    #[case::today("today", NOW)]
    #[case::yesterday("yesterday", NOW - 86_400)]
    fn times_parse(#[case] text: &str, #[case] expected: i64) {
        assert_eq!(parse_time(text, NOW), Ok(expected));
    }

    #[rstest]
    #[case("")]
    #[case("last tuesday")]
    #[case("@soon")]
    #[case("2025-11-26 25:00")]
    #[case("2025-13-01")]
    #[case("2025-02-30")]
    #[case("2025-11-26T25:00:00Z")]
    #[case("2025-11-26T10:00:00 CET")]
    #[case("5y")]
    #[case("99999999999999999999d")]
    fn bad_times_are_errors(#[case] text: &str) {
        let err = parse_time(text, NOW).unwrap_err();
        assert!(err.to_string().contains("is not a time:"), "{err}");
    }

    #[rstest]
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

    #[rstest]
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

    #[test]
    fn dates_and_clocks_format() {
        assert_eq!(format_date(1_795_706_653), "2026-11-26 15:24");
        assert_eq!(format_date(0), "1970-01-01 00:00");
        assert_eq!(format_clock(3723.9), "1:02:03");
        assert_eq!(format_clock(65.0), "01:05");
        assert_eq!(format_clock(f64::NAN), "00:00");
    }

    #[test]
    fn rfc3339_dates_are_gregorian() {
        assert_eq!(format_rfc3339_us(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_rfc3339_us(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(format_rfc3339_us(4_107_542_399_999_999), "2100-02-28T23:59:59.999999Z");
    }

    #[test]
    fn ages_format() {
        assert_eq!(format_age(-3), "0s");
        assert_eq!(format_age(59), "59s");
        assert_eq!(format_age(303), "5m03s");
        assert_eq!(format_age(7620), "2h07m");
    }

    #[rstest]
    #[case("90", 90)]
    #[case("90s", 90)]
    #[case(" 10m ", 600)]
    #[case("2h", 7200)]
    #[case("7d", 604_800)]
    fn config_durations_parse(#[case] text: &str, #[case] secs: u64) {
        assert_eq!(parse_duration(text), Ok(std::time::Duration::from_secs(secs)));
    }

    #[rstest]
    #[case("", "\"\" is not a duration like \"90s\", \"10m\", \"2h\" or \"7d\"")]
    #[case("1.5h", "\"1.5h\": unknown unit \".5h\" (use s, m, h or d)")]
    #[case("3w", "\"3w\": unknown unit \"w\" (use s, m, h or d)")]
    #[case("0m", "must be more than zero")]
    fn bad_config_durations_are_named(#[case] text: &str, #[case] expected: &str) {
        assert_eq!(parse_duration(text).unwrap_err(), expected);
    }

    #[test]
    fn formatting_inverts_parsing() {
        for secs in [0, NOW + 3723, 1_709_164_800 + 86_399, 4_102_444_800] {
            let text = format_utc(secs);
            assert_eq!(parse_time(&text.replace(' ', "T"), 0), Ok(secs), "{text}");
        }
    }
}
