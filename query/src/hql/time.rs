//! `{HH:MM[:ss[.SSS]]}` and `{yyyy-MM-dd [time]}` literals, in UTC.

/// Milliseconds since midnight.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let parts: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse::<i64>().map_err(|_| format!("invalid time '{s}'")))
        .collect::<Result<_, _>>()?;
    let (h, m, sec) = (parts[0], parts[1], parts.get(2).copied().unwrap_or(0));
    if h > 23 || m > 59 || sec > 59 {
        return Err(format!("invalid time '{s}': expected HH:MM[:ss[.SSS]]"));
    }
    // `.5` is half a second: the digits are a fraction, padded to millis.
    let millis = match frac {
        Some(f) if f.len() > 3 => return Err(format!("invalid time '{s}': at most 3 digits of milliseconds")),
        Some(f) => format!("{f:0<3}").parse::<i64>().map_err(|_| format!("invalid time '{s}'"))?,
        None => 0,
    };
    Ok(((h * 60 + m) * 60 + sec) * 1000 + millis)
}

/// Milliseconds since the epoch for `yyyy-MM-dd` plus an optional time.
pub fn parse_date_time(date: &str, time: Option<&str>) -> Result<i64, String> {
    let parts: Vec<i64> = date
        .split('-')
        .map(|p| p.parse::<i64>().map_err(|_| format!("invalid date '{date}'")))
        .collect::<Result<_, _>>()?;
    let (y, mo, d) = (parts[0], parts[1], parts[2]);
    // Four-digit years, as Heroic's `yyyy`: also keeps the arithmetic below
    // far from overflowing.
    if !(0..=9999).contains(&y) {
        return Err(format!("invalid date '{date}': the year must be between 0 and 9999"));
    }
    if !(1..=12).contains(&mo) || !(1..=days_in_month(y, mo)).contains(&d) {
        return Err(format!("invalid date '{date}': expected yyyy-MM-dd"));
    }
    let t = time.map(parse_time).transpose()?.unwrap_or(0);
    Ok(days_from_civil(y, mo, d) * 86_400_000 + t)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(parse_time("12:30").unwrap(), 45_000_000);
        assert_eq!(parse_time("00:00:01.5").unwrap(), 1_500);
        assert!(parse_time("25:00").is_err());
        assert_eq!(parse_date_time("1970-01-02", None).unwrap(), 86_400_000);
        assert_eq!(parse_date_time("2016-07-29", Some("16:25")).unwrap(), 1_469_809_500_000);
        assert!(parse_date_time("2016-02-30", None).is_err());
    }
}
