//! Durations, Java `TimeUnit` names, the default cadence rule and `shift_range`.

use serde_json::Value;

use crate::error::{QueryError, Result};

/// A time unit, as Java's `TimeUnit` (only the ones Heroic accepts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl TimeUnit {
    pub fn millis(self) -> i64 {
        match self {
            TimeUnit::Milliseconds => 1,
            TimeUnit::Seconds => 1_000,
            TimeUnit::Minutes => 60_000,
            TimeUnit::Hours => 3_600_000,
            TimeUnit::Days => 86_400_000,
        }
    }

    /// Java `TimeUnit.valueOf(name.toUpperCase())`: `MILLISECONDS` … `DAYS`,
    /// any case. `WEEKS`/`MONTHS` (in Heroic's docs) never worked.
    pub fn from_java_name(name: &str) -> Option<TimeUnit> {
        Some(match name.to_ascii_uppercase().as_str() {
            "MILLISECONDS" => TimeUnit::Milliseconds,
            "SECONDS" => TimeUnit::Seconds,
            "MINUTES" => TimeUnit::Minutes,
            "HOURS" => TimeUnit::Hours,
            "DAYS" => TimeUnit::Days,
            _ => return None,
        })
    }

    pub fn java_name(self) -> &'static str {
        match self {
            TimeUnit::Milliseconds => "MILLISECONDS",
            TimeUnit::Seconds => "SECONDS",
            TimeUnit::Minutes => "MINUTES",
            TimeUnit::Hours => "HOURS",
            TimeUnit::Days => "DAYS",
        }
    }

    /// The HQL / duration-string suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            TimeUnit::Milliseconds => "ms",
            TimeUnit::Seconds => "s",
            TimeUnit::Minutes => "m",
            TimeUnit::Hours => "h",
            TimeUnit::Days => "d",
        }
    }

    /// A duration suffix (`ms s m h H d`). `w`, `M`, `y` are reported as
    /// unsupported rather than unknown so the message can say why.
    pub fn from_suffix(s: &str) -> std::result::Result<TimeUnit, String> {
        Ok(match s {
            "" | "ms" => TimeUnit::Milliseconds,
            "s" => TimeUnit::Seconds,
            "m" => TimeUnit::Minutes,
            "h" | "H" => TimeUnit::Hours,
            "d" => TimeUnit::Days,
            "w" | "M" | "y" => {
                return Err(format!(
                    "unsupported duration unit '{s}': use ms, s, m, h or d (weeks, months and years are not supported)"
                ))
            }
            other => return Err(format!("unknown duration unit '{other}': expected ms, s, m, h or d")),
        })
    }
}

/// A length of time with the unit it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Duration {
    pub value: i64,
    pub unit: TimeUnit,
}

impl Duration {
    pub fn new(value: i64, unit: TimeUnit) -> Self {
        Duration { value, unit }
    }

    pub fn millis(value: i64) -> Self {
        Duration { value, unit: TimeUnit::Milliseconds }
    }

    pub fn to_millis(self) -> i64 {
        self.value.saturating_mul(self.unit.millis())
    }

    /// Parses `"5m"`, `"10ms"`, `"3"` (milliseconds). As in Heroic's JSON,
    /// `"2w"` means 14 days.
    pub fn parse(s: &str) -> std::result::Result<Duration, String> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid duration \"{s}\": expected a number followed by ms, s, m, h or d"));
        }
        let value: i64 = s[..digits].parse().map_err(|_| format!("invalid duration \"{s}\": number too large"))?;
        let suffix = &s[digits..];
        if suffix == "w" {
            let days = value.checked_mul(7).ok_or_else(|| format!("invalid duration \"{s}\": number too large"))?;
            return Ok(Duration::new(days, TimeUnit::Days));
        }
        let unit = TimeUnit::from_suffix(suffix).map_err(|e| format!("invalid duration \"{s}\": {e}"))?;
        Ok(Duration::new(value, unit))
    }

    /// A JSON duration: a number of milliseconds (a fraction is truncated,
    /// as Jackson reads a number into Heroic's `long`) or a duration string.
    pub fn from_json(v: &Value, path: &str) -> Result<Duration> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite() && *f < i64::MAX as f64).map(|f| f as i64))
                .filter(|n| *n >= 0)
                .map(Duration::millis)
                .ok_or_else(|| QueryError::json(path, format!("invalid duration {n}: expected a non-negative number"))),
            Value::String(s) => Duration::parse(s).map_err(|e| QueryError::json(path, e)),
            other => Err(QueryError::json(path, format!("expected a duration (\"5m\" or milliseconds), got {other}"))),
        }
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.value, self.unit.suffix())
    }
}

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The "nice" bucket sizes the default cadence is rounded down to.
const INTERVAL_FACTORS: [i64; 26] = [
    1,
    5,
    10,
    50,
    100,
    250,
    500,
    SECOND,
    5 * SECOND,
    10 * SECOND,
    15 * SECOND,
    30 * SECOND,
    MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    3 * DAY,
    7 * DAY,
    14 * DAY,
];

/// Number of buckets the default cadence aims for.
pub const INTERVAL_GOAL: i64 = 240;

/// Heroic's default bucket size for a range: `(end-start)/240`, rounded down
/// to the largest nice step strictly below it (at least 1 ms).
pub fn cadence_from_range(start: i64, end: i64) -> i64 {
    let nominal = end.saturating_sub(start) / INTERVAL_GOAL;
    INTERVAL_FACTORS.iter().copied().rfind(|f| *f < nominal).unwrap_or(nominal.max(1))
}

/// How close to `now` a range end may be before the range is shifted back.
pub const SHIFT_TOLERANCE_MS: i64 = 10_000;

/// The `shift_range` feature: rounds the range down to the cadence and, if
/// its end is within 10 s of `now` (or after it), shifts it back by whole
/// cadences so that no bucket still being filled is returned.
pub fn shift_range(start: i64, end: i64, cadence: i64, now: i64) -> Result<(i64, i64)> {
    if start > now {
        return Err(QueryError::Invalid("range start is after now".into()));
    }
    let (start, end) = if cadence > 0 { (start - start % cadence, end - end % cadence) } else { (start, end) };
    // Saturating: the caller checks the range's bounds; nothing here may
    // overflow whatever it is given.
    let now_delta = now.saturating_sub(end);
    if now_delta > SHIFT_TOLERANCE_MS {
        return Ok((start, end));
    }
    let diff = now_delta.min(0).saturating_neg().saturating_add(SHIFT_TOLERANCE_MS);
    let shift = if cadence <= 0 { diff } else { diff.saturating_add(cadence - 1) / cadence * cadence };
    Ok((start.saturating_sub(shift), end.saturating_sub(shift)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(Duration::parse("5m").unwrap().to_millis(), 300_000);
        assert_eq!(Duration::parse("10ms").unwrap().to_millis(), 10);
        assert_eq!(Duration::parse("7").unwrap().to_millis(), 7);
        assert_eq!(Duration::parse("1H").unwrap().to_millis(), 3_600_000);
        assert_eq!(Duration::parse("2w").unwrap().to_millis(), 14 * DAY);
        assert!(Duration::parse("5y").unwrap_err().contains("not supported"));
        assert!(Duration::parse("m5").is_err());
        assert!(Duration::parse("5q").unwrap_err().contains("unknown duration unit"));
    }

    #[test]
    fn default_cadence() {
        assert_eq!(cadence_from_range(0, 40), 1);
        // 2h/240 = 30 s exactly: strictly below → 15 s (Heroic's headSet)
        assert_eq!(cadence_from_range(0, 2 * HOUR), 15 * SECOND);
        assert_eq!(cadence_from_range(0, 2 * HOUR + 240), 30 * SECOND);
        assert_eq!(cadence_from_range(0, DAY), 5 * MINUTE);
        // exactly a nice step: strictly below it is chosen
        assert_eq!(cadence_from_range(0, 240 * MINUTE), 30 * SECOND);
        assert_eq!(cadence_from_range(0, 10_000 * DAY), 14 * DAY);
    }

    #[test]
    fn shift_range_cases() {
        // The cases of Heroic's CoreQueryManagerTest.
        assert_eq!(shift_range(50_000, 150_000, 5_000, 150_000).unwrap(), (40_000, 140_000));
        assert_eq!(shift_range(50_000, 153_000, 5_000, 154_000).unwrap(), (40_000, 140_000));
        assert_eq!(shift_range(50_000, 153_000, 5_000, 184_000).unwrap(), (50_000, 150_000));
        assert_eq!(shift_range(50_000, 180_000, 5_000, 150_000).unwrap(), (10_000, 140_000));
        assert!(shift_range(50_000, 153_000, 5_000, 40_000).is_err());
    }
}
