//! Simulated time: integer nanoseconds, so sums and differences are exact.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

/// An instant or a span of simulated time, in nanoseconds.
///
/// One type serves both, as in most discrete-event engines; the arithmetic
/// saturates instead of wrapping so that "never" (`SimTime::MAX`) stays "never".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

pub const NANOS_PER_SEC: u64 = 1_000_000_000;

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    /// Stands for "never": about 584 years.
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }
    pub const fn from_millis(ms: u64) -> Self {
        SimTime(ms * 1_000_000)
    }
    pub const fn from_secs(s: u64) -> Self {
        SimTime(s * NANOS_PER_SEC)
    }
    pub const fn from_mins(m: u64) -> Self {
        SimTime::from_secs(m * 60)
    }
    pub const fn from_hours(h: u64) -> Self {
        SimTime::from_secs(h * 3600)
    }

    /// The one conversion from sampled `f64` seconds to ticks: round to the
    /// nearest nanosecond (halves up); negative and NaN become zero, values
    /// past the range become `MAX`.
    pub fn from_secs_f64(secs: f64) -> Self {
        // `+ 0.5` and truncation, not `f64::round`: the same for the positive
        // values that reach it, and no libm call on the per-request path.
        let ns = secs * NANOS_PER_SEC as f64 + 0.5;
        if ns.is_nan() || ns < 1.0 {
            SimTime::ZERO
        } else if ns >= u64::MAX as f64 {
            SimTime::MAX
        } else {
            SimTime(ns as u64)
        }
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    pub fn as_hours_f64(self) -> f64 {
        self.as_secs_f64() / 3600.0
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub fn saturating_sub(self, other: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(other.0))
    }
    /// `self * k`, saturating.
    pub fn times(self, k: u64) -> SimTime {
        SimTime(self.0.saturating_mul(k))
    }
    /// How many whole `span`s fit in `self` (`span` must be non-zero).
    pub fn div_floor(self, span: SimTime) -> u64 {
        self.0 / span.0
    }
}

impl Add for SimTime {
    type Output = SimTime;
    fn add(self, rhs: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }
}
impl AddAssign for SimTime {
    fn add_assign(&mut self, rhs: SimTime) {
        *self = *self + rhs;
    }
}
impl Sub for SimTime {
    type Output = SimTime;
    /// Saturates at zero: a span is never negative.
    fn sub(self, rhs: SimTime) -> SimTime {
        self.saturating_sub(rhs)
    }
}
impl SubAssign for SimTime {
    fn sub_assign(&mut self, rhs: SimTime) {
        *self = *self - rhs;
    }
}

const UNITS: [(&str, u64); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("h", 3600 * NANOS_PER_SEC),
    ("d", 86_400 * NANOS_PER_SEC),
];

/// Parses a duration with a unit: `"250ms"`, `"30s"`, `"5m"`, `"1.5h"`, `"3d"`.
/// Compound forms (`"1h30m"`) are accepted too.
pub fn parse_duration(text: &str) -> Result<SimTime, String> {
    let expected = "a duration with a unit, such as \"250ms\", \"30s\", \"5m\", \"2h\" or \"3d\"";
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("expected {expected}, found an empty string"));
    }
    let mut total = 0.0_f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let tail = tail.trim_start();
        let unit_len = tail.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = num.replace('_', "").parse().map_err(|_| format!("expected {expected}, found \"{text}\""))?;
        if unit.is_empty() {
            return Err(format!("\"{text}\" has no unit: expected {expected}"));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(format!("unknown unit \"{unit}\" in \"{text}\": expected one of ns, us, ms, s, m, h, d"));
        };
        total += value * scale as f64;
        rest = tail.trim_start();
    }
    Ok(SimTime::from_secs_f64(total / NANOS_PER_SEC as f64))
}

impl fmt::Display for SimTime {
    /// The largest unit that shows the value exactly, else seconds with decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == SimTime::MAX {
            return f.write_str("never");
        }
        if self.0 == 0 {
            return f.write_str("0s");
        }
        for &(unit, scale) in UNITS.iter().rev() {
            if self.0.is_multiple_of(scale) {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}s", self.as_secs_f64())
    }
}

impl serde::Serialize for SimTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("250ms").unwrap(), SimTime::from_nanos(250_000_000));
        assert_eq!(parse_duration("30s").unwrap(), SimTime::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), SimTime::from_mins(5));
        assert_eq!(parse_duration("2h").unwrap(), SimTime::from_hours(2));
        assert_eq!(parse_duration("3d").unwrap(), SimTime::from_hours(72));
        assert_eq!(parse_duration("1.5h").unwrap(), SimTime::from_mins(90));
        assert_eq!(parse_duration("1h30m").unwrap(), SimTime::from_mins(90));
        assert_eq!(parse_duration("0s").unwrap(), SimTime::ZERO);
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("30 minutes").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in ["250ms", "30s", "5m", "2h", "3d", "90m", "0s"] {
            let t = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&t.to_string()).unwrap(), t, "{text}");
        }
        assert_eq!(SimTime::from_mins(90).to_string(), "90m");
    }

    #[test]
    fn arithmetic_is_exact_and_saturating() {
        let a = SimTime::from_secs_f64(0.1);
        let b = SimTime::from_secs_f64(0.2);
        assert_eq!(a + b - b, a);
        assert_eq!(a - b, SimTime::ZERO);
        assert_eq!(SimTime::MAX + a, SimTime::MAX);
        assert_eq!(SimTime::from_secs_f64(-1.0), SimTime::ZERO);
        assert_eq!(SimTime::from_secs_f64(f64::NAN), SimTime::ZERO);
        assert_eq!(SimTime::from_secs_f64(1e30), SimTime::MAX);
    }
}
