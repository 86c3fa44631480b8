//! What trace files (traffic and spot traces) share: their error type and
//! their timestamps.

use std::fmt;

/// A problem in a trace file, with the file's own 1-based line number when
/// one line is to blame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TraceError {
    pub line: Option<usize>,
    pub message: String,
}

impl TraceError {
    pub fn at(line: usize, message: impl Into<String>) -> Self {
        TraceError { line: Some(line), message: message.into() }
    }
    /// A problem with the file as a whole.
    pub fn whole(message: impl Into<String>) -> Self {
        TraceError { line: None, message: message.into() }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// `YYYY-MM-DD hh:mm:ss[.fraction]` (or with `T`, optional `Z`) as
/// nanoseconds since 1970-01-01 UTC; digits past nanoseconds are dropped.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (hms, frac) = match time.trim().split_once('.') {
        Some((hms, frac)) => (hms, frac),
        None => (time.trim(), ""),
    };
    let mut t = hms.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let m: i64 = t.next()?.parse().ok()?;
    let s: i64 = t.next()?.parse().ok()?;
    if t.next().is_some() || !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..61).contains(&s) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = 0;
    for k in 0..9 {
        nanos = nanos * 10 + frac.as_bytes().get(k).map_or(0, |b| (b - b'0') as i64);
    }
    let secs = days_from_epoch(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
fn days_from_epoch(y: i64, m: u32, d: u32) -> i64 {
    // Count whole years in 400-year eras from year 0 (a March-based year puts
    // the leap day last), then the days within the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
