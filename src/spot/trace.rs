//! Real spot availability traces, replayed cyclically, with optional prices.
//!
//! A trace is a sequence of samples (rows), each holding its state, available
//! or not, until the next one. Consecutive samples with the same state are
//! merged into runs, and runs alternate, so a query is one binary search over
//! the run starts. Prices, when given, are kept as runs of equal price with
//! the integral of price over time up to each run's start, so the cost of any
//! window is two binary searches.
//!
//! Time in a query is simulation time `t` (from a replication's start); a
//! replication sees the trace from position `offset` at `t = 0`, so the trace
//! position at `t` is `(offset + t) mod length`. Semantics and formats are in
//! `docs/spot-traces.md`.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::base::time::{NANOS_PER_SEC, SimTime};
pub use crate::base::trace_file::TraceError;
use crate::base::trace_file::{CsvTable, parse_timestamp};

const NANOS_PER_HOUR: f64 = 3600.0 * NANOS_PER_SEC as f64;

/// Traces longer than this (about 146 years) are refused, so that a position
/// plus a length never overflows.
const MAX_LENGTH_NS: u64 = u64::MAX / 4;

/// What a `1` means in a trace file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Convention {
    /// `1` = a spot instance could be obtained and kept (the AWS CSVs).
    Available,
    /// `1` = preempted or unavailable (the GCP JSON `data` lists).
    Preempted,
}

impl Convention {
    fn is_available(self, one: bool) -> bool {
        match self {
            Convention::Available => one,
            Convention::Preempted => !one,
        }
    }
}

/// A spot availability trace for one zone.
#[derive(Clone, PartialEq)]
pub struct SpotTrace {
    /// The file it was read from, as named in the experiment.
    pub file: String,
    /// Start of each run of equal state, in ns from the trace's start;
    /// `runs[0] == 0`. Runs alternate between available and not.
    runs: Vec<u64>,
    /// The state of run 0; run k has it when k is even.
    first_available: bool,
    /// The cycle length in ns (> 0).
    length: u64,
    /// Time available per cycle, in ns.
    available_ns: u64,
    /// Start of each row as read, in ns from the trace's start, so per-row
    /// prices can be attached later.
    rows: Vec<u64>,
    prices: Option<Prices>,
}

/// Prices as runs of equal price, with the running integral.
#[derive(Clone, PartialEq)]
struct Prices {
    /// Start of each run of equal price (ns); `starts[0] == 0`.
    starts: Vec<u64>,
    /// USD per instance-hour in each run.
    per_hour: Vec<f64>,
    /// USD per instance from position 0 to `starts[k]`.
    cumulative: Vec<f64>,
    /// USD per instance over one whole cycle.
    cycle: f64,
    /// The time-weighted mean price, USD per instance-hour.
    mean: f64,
}

impl Prices {
    /// Merges rows of equal price and integrates.
    fn new(rows: &[u64], prices: &[f64], length: u64) -> Prices {
        let mut starts = Vec::new();
        let mut per_hour: Vec<f64> = Vec::new();
        for (&start, &price) in rows.iter().zip(prices) {
            if per_hour.last() != Some(&price) {
                starts.push(start);
                per_hour.push(price);
            }
        }
        let mut cumulative = Vec::with_capacity(starts.len());
        let (mut sum, mut mean) = (0.0, 0.0);
        for k in 0..starts.len() {
            cumulative.push(sum);
            let span = starts.get(k + 1).copied().unwrap_or(length) - starts[k];
            sum += per_hour[k] * span as f64 / NANOS_PER_HOUR;
            // Weights as shares of the cycle: a constant price is its own mean, exactly.
            mean += per_hour[k] * (span as f64 / length as f64);
        }
        Prices { starts, per_hour, cumulative, cycle: sum, mean }
    }

    /// USD from position 0 to position `p` (`p < length`).
    #[inline]
    fn integral_to(&self, p: u64, hint: &mut usize) -> f64 {
        let k = index_near(&self.starts, p, hint);
        self.cumulative[k] + self.per_hour[k] * (p - self.starts[k]) as f64 / NANOS_PER_HOUR
    }
}

impl SpotTrace {
    /// Reads an AWS-style CSV: a header naming the columns `date` and
    /// `availability`, then one row per sample with the date as
    /// `YYYY-MM-DD HH:MM:SS` (UTC; a `T` separator and a fraction of a
    /// second are accepted) and the value `0` or `1`. Dates must increase
    /// strictly. Row i's state holds on `[t_i, t_{i+1})`; the last row holds
    /// for the median gap between rows (the mean of the two middle gaps
    /// when their number is even, rounded down to the nanosecond), so the
    /// length is `last − first + median gap`. Blank lines and lines starting
    /// with `#` are skipped. Errors name the 1-based line.
    pub fn parse_csv(file: &str, text: &str, convention: Convention) -> Result<SpotTrace, TraceError> {
        let csv = CsvTable::parse(text).map_err(|e| match e.line {
            None => TraceError::whole("the file is empty: expected a header `date,availability` and data rows"),
            Some(_) => e,
        })?;
        let (Some(di), Some(ai)) = (csv.column(&["date"]), csv.column(&["availability"])) else {
            return Err(TraceError::at(
                csv.header_line,
                format!(
                    "expected a header naming the columns `date` and `availability`, found \"{}\"",
                    csv.header_text()
                ),
            ));
        };
        let mut stamps: Vec<i64> = Vec::new();
        let mut states = Vec::new();
        for (line, row) in &csv.rows {
            let line = *line;
            let (Some(date), Some(value)) = (row.get(di), row.get(ai)) else {
                return Err(TraceError::at(
                    line,
                    format!("expected {} columns as in the header, found {}", csv.header.len(), row.len()),
                ));
            };
            let Some(ns) = parse_timestamp(date) else {
                return Err(TraceError::at(
                    line,
                    format!("expected a date such as \"2023-02-15 22:08:16\" (UTC), found \"{date}\""),
                ));
            };
            let one = match value {
                "1" => true,
                "0" => false,
                _ => {
                    return Err(TraceError::at(line, format!("expected an availability of 0 or 1, found \"{value}\"")));
                }
            };
            if let Some(&prev) = stamps.last()
                && ns <= prev
            {
                return Err(TraceError::at(
                    line,
                    format!("dates must increase strictly: {date} does not come after the row before"),
                ));
            }
            stamps.push(ns);
            states.push(convention.is_available(one));
        }
        if stamps.len() < 2 {
            return Err(TraceError::whole(format!(
                "expected at least two data rows (the last row lasts for the median gap between rows), found {}",
                stamps.len()
            )));
        }
        let first = stamps[0];
        let rows: Vec<u64> = stamps.iter().map(|&s| (s - first) as u64).collect();
        let mut gaps: Vec<u64> = rows.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_unstable();
        let m = gaps.len();
        let median = if m % 2 == 1 { gaps[m / 2] } else { gaps[m / 2 - 1] / 2 + gaps[m / 2] / 2 };
        let length = rows[rows.len() - 1].checked_add(median).filter(|&l| l <= MAX_LENGTH_NS);
        let Some(length) = length else {
            return Err(TraceError::whole("the trace spans more than a century: check the dates"));
        };
        Ok(SpotTrace::from_rows(file, rows, &states, length))
    }

    /// Reads a GCP-style JSON object: `data`, a list of 0/1 samples spaced
    /// `metadata.gap_seconds` apart (sample i holds on `[i gap, (i+1) gap)`,
    /// so the length is the number of samples times the gap), and, when
    /// present, `metadata.price_info.price` (USD per hour) as a constant
    /// price. Other fields are ignored. Syntax errors name the line.
    pub fn parse_json(file: &str, text: &str, convention: Convention) -> Result<SpotTrace, TraceError> {
        let doc: Value = serde_json::from_str(text).map_err(json_error)?;
        let Some(metadata) = doc.get("metadata").filter(|m| m.is_object()) else {
            return Err(TraceError::whole("expected an object `metadata` with `gap_seconds`"));
        };
        let gap = match metadata.get("gap_seconds").and_then(Value::as_f64) {
            Some(g) if g.is_finite() && g > 0.0 => SimTime::from_secs_f64(g).as_nanos(),
            Some(g) => {
                return Err(TraceError::whole(format!("`metadata.gap_seconds`: expected a number > 0, found {g}")));
            }
            None => {
                return Err(TraceError::whole(
                    "`metadata.gap_seconds` is missing or not a number: expected the seconds between samples",
                ));
            }
        };
        if gap == 0 {
            return Err(TraceError::whole("`metadata.gap_seconds`: expected at least a nanosecond"));
        }
        let Some(data) = doc.get("data").and_then(Value::as_array) else {
            return Err(TraceError::whole("expected a list `data` of samples, 0 or 1"));
        };
        if data.is_empty() {
            return Err(TraceError::whole("`data` is empty: expected at least one sample"));
        }
        let mut states = Vec::with_capacity(data.len());
        for (i, v) in data.iter().enumerate() {
            let one = match v.as_u64() {
                Some(1) => true,
                Some(0) => false,
                _ => return Err(TraceError::whole(format!("`data[{i}]`: expected 0 or 1, found {v}"))),
            };
            states.push(convention.is_available(one));
        }
        let length = gap.checked_mul(data.len() as u64).filter(|&l| l <= MAX_LENGTH_NS);
        let Some(length) = length else {
            return Err(TraceError::whole("the trace spans more than a century: check `metadata.gap_seconds`"));
        };
        let rows: Vec<u64> = (0..data.len() as u64).map(|i| i * gap).collect();
        let mut trace = SpotTrace::from_rows(file, rows, &states, length);
        if let Some(price) = metadata.get("price_info").and_then(|p| p.get("price")) {
            match price.as_f64() {
                Some(p) if p.is_finite() && p >= 0.0 => trace.prices = Some(Prices::new(&[0], &[p], length)),
                _ => {
                    return Err(TraceError::whole(format!(
                        "`metadata.price_info.price`: expected a price >= 0 in USD per hour, found {price}"
                    )));
                }
            }
        }
        Ok(trace)
    }

    /// The same samples replayed `tick` apart, whatever their dates: row i
    /// holds on `[i tick, (i+1) tick)`, as simulators with fixed ticks (such
    /// as Can't Be Late's) read the AWS CSVs. A constant price is kept;
    /// per-row prices are attached after this.
    pub fn with_tick(self, tick: SimTime) -> Result<SpotTrace, TraceError> {
        let mut hint = 0;
        let states: Vec<bool> =
            self.rows.iter().map(|&r| self.run_available(index_near(&self.runs, r, &mut hint))).collect();
        let n = self.rows.len() as u64;
        let Some(length) = tick.as_nanos().checked_mul(n).filter(|&l| l > 0 && l <= MAX_LENGTH_NS) else {
            return Err(TraceError::whole("`tick` times the number of rows spans more than a century"));
        };
        let rows = (0..n).map(|i| i * tick.as_nanos()).collect();
        let mut trace = SpotTrace::from_rows(&self.file, rows, &states, length);
        trace.prices = self.prices.map(|p| Prices::new(&[0], &p.per_hour[..1], length));
        Ok(trace)
    }

    /// Attaches one price per row or sample (USD per instance-hour), each
    /// holding over its row's span; replaces any price read with the trace.
    pub fn with_prices(mut self, prices: Vec<f64>) -> Result<SpotTrace, TraceError> {
        if prices.len() != self.rows.len() {
            return Err(TraceError::whole(format!(
                "expected one price per row of the trace ({}), found {}",
                self.rows.len(),
                prices.len()
            )));
        }
        if let Some((i, p)) = prices.iter().enumerate().find(|(_, p)| !(p.is_finite() && **p >= 0.0)) {
            return Err(TraceError::whole(format!(
                "price {i} (0-based): expected a price >= 0 in USD per hour, found {p}"
            )));
        }
        self.prices = Some(Prices::new(&self.rows, &prices, self.length));
        Ok(self)
    }

    /// Builds the runs from per-row states (`rows[0] == 0`, increasing,
    /// all `< length`).
    fn from_rows(file: &str, rows: Vec<u64>, states: &[bool], length: u64) -> SpotTrace {
        let mut runs = Vec::new();
        let mut available_ns = 0;
        let mut last = None;
        for (k, (&start, &state)) in rows.iter().zip(states).enumerate() {
            if last != Some(state) {
                runs.push(start);
                last = Some(state);
            }
            if state {
                available_ns += rows.get(k + 1).copied().unwrap_or(length) - start;
            }
        }
        SpotTrace { file: file.to_string(), runs, first_available: states[0], length, available_ns, rows, prices: None }
    }

    /// The length of one cycle.
    pub fn length(&self) -> SimTime {
        SimTime::from_nanos(self.length)
    }

    /// The share of the cycle that is available, in [0, 1].
    pub fn availability(&self) -> f64 {
        self.available_ns as f64 / self.length as f64
    }

    /// The mean length of an available stretch over the cycle (stretches
    /// that meet across the wrap count once): the mean time between
    /// interruptions of a launch. `MAX` if always available.
    pub fn mean_uptime(&self) -> SimTime {
        let runs = self.runs.len();
        let mut stretches = (0..runs).filter(|&k| self.run_available(k)).count() as u64;
        if runs > 1 && self.run_available(0) && self.run_available(runs - 1) {
            stretches -= 1;
        }
        match stretches {
            0 => SimTime::ZERO,
            _ if self.available_ns == self.length => SimTime::MAX,
            n => SimTime::from_nanos(self.available_ns / n),
        }
    }

    pub fn has_prices(&self) -> bool {
        self.prices.is_some()
    }

    /// The one price of the whole cycle, when the trace has prices and they
    /// never change (a JSON trace's `price_info.price`, or per-row prices
    /// that are all equal).
    pub fn constant_price(&self) -> Option<f64> {
        self.prices.as_ref().filter(|p| p.per_hour.len() == 1).map(|p| p.per_hour[0])
    }

    /// The time-weighted mean price over the cycle, USD per instance-hour.
    pub fn mean_price(&self) -> Option<f64> {
        self.prices.as_ref().map(|p| p.mean)
    }

    /// The trace position of simulation time `t` for a replication that
    /// starts at `offset`.
    #[inline]
    fn position(&self, offset: SimTime, t: SimTime) -> u64 {
        let (o, _) = self.wrap(offset.as_nanos());
        let p = self.wrap(t.as_nanos()).0 + o;
        if p >= self.length { p - self.length } else { p }
    }

    /// `x` as (position in the cycle, whole cycles); the division is skipped
    /// in the usual case of `x < length`.
    #[inline]
    fn wrap(&self, x: u64) -> (u64, u64) {
        if x < self.length { (x, 0) } else { (x % self.length, x / self.length) }
    }

    /// The run that holds position `p`.
    #[inline]
    fn run_at(&self, p: u64, hint: &mut usize) -> usize {
        index_near(&self.runs, p, hint)
    }

    #[inline]
    fn run_available(&self, k: usize) -> bool {
        self.first_available ^ (k & 1 == 1)
    }

    /// Whether the zone is available at simulation time `t`.
    pub fn available(&self, offset: SimTime, t: SimTime) -> bool {
        self.available_from(&mut Cursor::default(), offset, t)
    }

    /// The first time at or after `t` when the zone is available: `t` itself
    /// if it is available at `t`, `SimTime::MAX` if it never is.
    pub fn next_available(&self, offset: SimTime, t: SimTime) -> SimTime {
        self.next_in_state(&mut Cursor::default(), offset, t, true)
    }

    /// The first time at or after `t` when the zone is unavailable: `t`
    /// itself if it is unavailable at `t`, `SimTime::MAX` if it is always
    /// available.
    pub fn next_unavailable(&self, offset: SimTime, t: SimTime) -> SimTime {
        self.next_in_state(&mut Cursor::default(), offset, t, false)
    }

    /// `available`, starting the search where `cursor` last landed.
    pub fn available_from(&self, cursor: &mut Cursor, offset: SimTime, t: SimTime) -> bool {
        self.run_available(self.run_at(self.position(offset, t), &mut cursor.run))
    }

    /// `next_available`, starting the search where `cursor` last landed.
    pub fn next_available_from(&self, cursor: &mut Cursor, offset: SimTime, t: SimTime) -> SimTime {
        self.next_in_state(cursor, offset, t, true)
    }

    /// `next_unavailable`, starting the search where `cursor` last landed.
    pub fn next_unavailable_from(&self, cursor: &mut Cursor, offset: SimTime, t: SimTime) -> SimTime {
        self.next_in_state(cursor, offset, t, false)
    }

    #[inline]
    fn next_in_state(&self, cursor: &mut Cursor, offset: SimTime, t: SimTime, want: bool) -> SimTime {
        let p = self.position(offset, t);
        let k = self.run_at(p, &mut cursor.run);
        if self.run_available(k) == want {
            return t;
        }
        // Runs alternate, so the next run has the wanted state, unless this
        // is the last run: then the trace wraps to run 0, which may have the
        // same state as the last run (runs are not merged across the wrap).
        let at = if k + 1 < self.runs.len() {
            self.runs[k + 1]
        } else if self.run_available(0) == want {
            self.length
        } else if self.runs.len() > 1 {
            self.length + self.runs[1]
        } else {
            return SimTime::MAX;
        };
        t + SimTime::from_nanos(at - p)
    }

    /// The integral of the price over simulation times `[a, b)`, in USD per
    /// instance (USD per hour times hours), across any number of wraps; zero
    /// when `b <= a`, `None` without prices.
    pub fn cost(&self, offset: SimTime, a: SimTime, b: SimTime) -> Option<f64> {
        self.cost_from(&mut Cursor::default(), offset, a, b)
    }

    /// `cost`, starting the searches where `cursor` last landed.
    pub fn cost_from(&self, cursor: &mut Cursor, offset: SimTime, a: SimTime, b: SimTime) -> Option<f64> {
        let prices = self.prices.as_ref()?;
        if b <= a {
            return Some(0.0);
        }
        let (o, _) = self.wrap(offset.as_nanos());
        // Position and whole cycles of offset + x, without overflowing.
        let locate = |x: SimTime| {
            let (r, c) = self.wrap(x.as_nanos());
            let r = r + o;
            if r >= self.length { (r - self.length, c + 1) } else { (r, c) }
        };
        let (pa, ca) = locate(a);
        let (pb, cb) = locate(b);
        let from = prices.integral_to(pa, &mut cursor.price);
        let to = prices.integral_to(pb, &mut cursor.price);
        Some((cb - ca) as f64 * prices.cycle + to - from)
    }
}

/// Where one replication's last queries landed. Its time moves forward, so
/// the next query usually lands in the same run or a few after: a short walk
/// from the cursor then replaces the binary search.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cursor {
    run: usize,
    price: usize,
}

/// The index k of the last `starts[k] <= p` (`starts[0] == 0 <= p`), walking
/// forward from `hint` for a few steps before falling back to a binary search.
#[inline]
fn index_near(starts: &[u64], p: u64, hint: &mut usize) -> usize {
    let mut k = *hint;
    if k < starts.len() && starts[k] <= p {
        for _ in 0..4 {
            if k + 1 < starts.len() && starts[k + 1] <= p {
                k += 1;
            } else {
                *hint = k;
                return k;
            }
        }
    }
    k = starts.partition_point(|&s| s <= p) - 1;
    *hint = k;
    k
}

impl fmt::Debug for SpotTrace {
    /// A summary: the runs themselves would fill a screen.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpotTrace")
            .field("file", &self.file)
            .field("length", &self.length())
            .field("rows", &self.rows.len())
            .field("runs", &self.runs.len())
            .field("availability", &self.availability())
            .field("mean_price", &self.mean_price())
            .finish()
    }
}

impl Serialize for SpotTrace {
    /// The file and what was read from it, for the manifest.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("file", &self.file)?;
        map.serialize_entry("length", &self.length())?;
        map.serialize_entry("availability", &self.availability())?;
        map.serialize_entry("mean_price", &self.mean_price())?;
        map.end()
    }
}

/// A serde_json syntax error with its line, without the "at line L column C"
/// that serde_json appends.
pub(crate) fn json_error(e: serde_json::Error) -> TraceError {
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let message = format!("not valid JSON (column {}): {message}", e.column());
    if e.line() > 0 { TraceError::at(e.line(), message) } else { TraceError::whole(message) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 60 * NANOS_PER_SEC;

    fn mins(m: u64) -> SimTime {
        SimTime::from_mins(m)
    }

    /// Six 10-minute rows, available, available, not, not, available, not;
    /// the last row lasts the median gap (10 minutes): a 60-minute cycle.
    const HAND: &str = "date,availability\n2024-02-28 23:40:00,1\n2024-02-28 23:50:00,1\n2024-02-29 00:00:00,0\n2024-02-29 00:10:00,0\n2024-02-29 00:20:00,1\n2024-02-29 00:30:00,0\n";

    fn hand() -> SpotTrace {
        SpotTrace::parse_csv("hand.csv", HAND, Convention::Available).unwrap()
    }

    #[test]
    fn hand_made_trace_shape() {
        let t = hand();
        assert_eq!(t.length(), mins(60));
        assert_eq!(t.runs, vec![0, 20 * M, 40 * M, 50 * M]);
        assert!(t.first_available);
        assert_eq!(t.availability(), 0.5);
        assert!(!t.has_prices() && t.mean_price().is_none());
        assert_eq!(t.cost(SimTime::ZERO, SimTime::ZERO, mins(10)), None);
    }

    #[test]
    fn hand_made_queries_without_offset() {
        let t = hand();
        let z = SimTime::ZERO;
        // Runs: [0, 20) available, [20, 40) not, [40, 50) available, [50, 60) not.
        for (m, want) in [(0, true), (19, true), (20, false), (39, false), (40, true), (49, true), (50, false)] {
            assert_eq!(t.available(z, mins(m)), want, "{m} min");
        }
        assert!(t.available(z, SimTime::from_nanos(20 * M - 1)));
        // Wraps: 60 min is position 0, 125 min is position 5.
        assert!(t.available(z, mins(60)) && t.available(z, mins(125)) && !t.available(z, mins(115)));

        assert_eq!(t.next_unavailable(z, z), mins(20));
        assert_eq!(t.next_unavailable(z, mins(5)), mins(20));
        assert_eq!(t.next_unavailable(z, mins(20)), mins(20)); // itself
        assert_eq!(t.next_unavailable(z, mins(45)), mins(50));
        assert_eq!(t.next_unavailable(z, mins(65)), mins(80)); // second cycle
        assert_eq!(t.next_unavailable(z, mins(600 + 41)), mins(650));

        assert_eq!(t.next_available(z, mins(5)), mins(5)); // itself
        assert_eq!(t.next_available(z, mins(25)), mins(40));
        assert_eq!(t.next_available(z, mins(55)), mins(60)); // wraps to run 0
        assert_eq!(t.next_available(z, mins(59)), mins(60));
        assert_eq!(t.next_available(z, mins(170)), mins(180));
    }

    #[test]
    fn hand_made_queries_with_offsets() {
        let t = hand();
        // Offset 45 min: t = 0 is position 45 (available until 50).
        let o = mins(45);
        assert!(t.available(o, SimTime::ZERO));
        assert_eq!(t.next_unavailable(o, SimTime::ZERO), mins(5));
        assert_eq!(t.next_available(o, mins(5)), mins(15)); // position 50 -> 60 = 0
        assert!(t.available(o, mins(15)));
        assert_eq!(t.next_unavailable(o, mins(30)), mins(35)); // position 15 -> 20
        assert_eq!(t.next_available(o, mins(40)), mins(55)); // position 25 -> 40
        // Offset 59 min 59 s: one second before the wrap, unavailable.
        let o = SimTime::from_secs(3599);
        assert!(!t.available(o, SimTime::ZERO));
        assert_eq!(t.next_available(o, SimTime::ZERO), SimTime::from_secs(1));
        // An offset of a whole cycle or more is reduced modulo the length.
        assert_eq!(t.next_available(mins(60 + 25), SimTime::ZERO), t.next_available(mins(25), SimTime::ZERO));
        // Far in the future, without overflow.
        let far = SimTime::from_hours(24 * 365 * 100);
        assert_eq!(t.next_unavailable(mins(45), far), far + mins(5));
    }

    #[test]
    fn wrap_when_first_and_last_runs_share_a_state() {
        // 1, 0, 1: runs [0, 10) and [20, 30) available, not merged across the wrap.
        let t = SpotTrace::parse_csv(
            "x.csv",
            "date,availability\n2023-01-01 00:00:00,1\n2023-01-01 00:10:00,0\n2023-01-01 00:20:00,1\n",
            Convention::Available,
        )
        .unwrap();
        assert_eq!(t.length(), mins(30));
        assert_eq!(t.next_unavailable(mins(25), SimTime::ZERO), mins(15)); // 25 -> 30 + 10
        assert_eq!(t.next_available(mins(25), SimTime::ZERO), SimTime::ZERO);
        assert_eq!(t.next_available(mins(15), SimTime::ZERO), mins(5));
        // Preempted: 0 available, 1, 0.
        let p = SpotTrace::parse_csv(
            "x.csv",
            "date,availability\n2023-01-01 00:00:00,1\n2023-01-01 00:10:00,0\n2023-01-01 00:20:00,1\n",
            Convention::Preempted,
        )
        .unwrap();
        assert_eq!(p.next_available(mins(25), SimTime::ZERO), mins(15));
        assert!((p.availability() - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn both_conventions_and_both_formats_agree() {
        let csv = hand();
        let preempted_csv = HAND.replace(",1\n", ",x\n").replace(",0\n", ",1\n").replace(",x\n", ",0\n");
        let p = SpotTrace::parse_csv("hand.csv", &preempted_csv, Convention::Preempted).unwrap();
        let json = SpotTrace::parse_json(
            "hand.json",
            r#"{"metadata": {"gap_seconds": 600}, "data": [0, 0, 1, 1, 0, 1]}"#,
            Convention::Preempted,
        )
        .unwrap();
        let avail_json = SpotTrace::parse_json(
            "hand.json",
            r#"{"metadata": {"gap_seconds": 600}, "data": [1, 1, 0, 0, 1, 0]}"#,
            Convention::Available,
        )
        .unwrap();
        for other in [&p, &json, &avail_json] {
            assert_eq!((&other.runs, other.first_available, other.length), (&csv.runs, true, csv.length));
        }
        // The same numbers read the other way round: the complement.
        let flipped = SpotTrace::parse_csv("hand.csv", HAND, Convention::Preempted).unwrap();
        assert_eq!(flipped.next_available(SimTime::ZERO, SimTime::ZERO), mins(20));
        assert_eq!(flipped.availability(), 0.5);
        assert!(!flipped.first_available);
    }

    #[test]
    fn last_row_lasts_the_median_gap() {
        let rows = |stamps: &[&str]| {
            let mut text = String::from("date,availability\n");
            for s in stamps {
                text += &format!("{s},1\n");
            }
            SpotTrace::parse_csv("m.csv", &text, Convention::Available).unwrap().length()
        };
        // Gaps 10, 20, 10 minutes: median 10.
        assert_eq!(
            rows(&["2023-03-01 00:00:00", "2023-03-01 00:10:00", "2023-03-01 00:30:00", "2023-03-01 00:40:00"]),
            mins(50)
        );
        // Gaps 10, 20: median 15.
        assert_eq!(rows(&["2023-03-01 00:00:00", "2023-03-01 00:10:00", "2023-03-01 00:30:00"]), mins(45));
        // Gaps of 195.5 and 196 s across a year end, with fractions of a second: median 195.75.
        assert_eq!(
            rows(&["2022-12-31 23:56:45", "2023-01-01T00:00:00.5Z", "2023-01-01 00:03:16.5"]),
            SimTime::from_secs_f64(195.5 + 196.0 + 195.75)
        );
    }

    #[test]
    fn dates_count_leap_days() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_timestamp("2000-03-01 00:00:00"), Some(951_868_800 * NANOS_PER_SEC as i64));
        assert_eq!(parse_timestamp("2023-02-15 22:08:16"), Some(1_676_498_896 * NANOS_PER_SEC as i64));
        assert_eq!(parse_timestamp("2024-12-31T23:59:59.25"), Some(1_735_689_599_250_000_000));
        for bad in ["2023-02-29 00:00:00", "2023-13-01 00:00:00", "2023-01-01", "2023-01-01 24:00:00"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn prices_integrate_across_wraps() {
        // USD/h per row: 1, 1, 2, 2, 4, 4 over 10-minute rows: 14/6 USD per cycle.
        let t = hand().with_prices(vec![1.0, 1.0, 2.0, 2.0, 4.0, 4.0]).unwrap();
        assert!(t.has_prices());
        let close = |x: Option<f64>, y: f64| (x.unwrap() - y).abs() < 1e-12;
        assert!(close(t.mean_price(), 14.0 / 6.0));
        let z = SimTime::ZERO;
        assert!(close(t.cost(z, z, mins(60)), 14.0 / 6.0));
        assert!(close(t.cost(z, mins(5), mins(25)), 5.0 / 60.0 + 10.0 / 60.0 + 2.0 * 5.0 / 60.0));
        // Offset 45: [45, 60) at 4 USD/h, then [0, 15) at 1 USD/h.
        assert!(close(t.cost(mins(45), z, mins(30)), 1.0 + 0.25));
        // Two whole cycles plus [0, 30).
        assert!(close(t.cost(z, z, mins(150)), 2.0 * 14.0 / 6.0 + 4.0 / 6.0));
        // From the middle of one cycle to the middle of a later one.
        assert!(close(t.cost(z, mins(50), mins(130)), 4.0 / 6.0 + 14.0 / 6.0 + 1.0 / 6.0));
        assert_eq!(t.cost(z, mins(30), mins(30)), Some(0.0));
        assert_eq!(t.cost(z, mins(30), mins(20)), Some(0.0));
        // Constant price from GCP metadata.
        let g = SpotTrace::parse_json(
            "g.json",
            r#"{"metadata": {"gap_seconds": 600, "price_info": {"price": 12.5}}, "data": [0, 1]}"#,
            Convention::Preempted,
        )
        .unwrap();
        assert_eq!(g.mean_price(), Some(12.5));
        assert!(close(g.cost(mins(15), z, mins(45)), 12.5 * 0.75));
        // Per-sample prices replace it.
        let g = g.with_prices(vec![1.0, 3.0]).unwrap();
        assert!(close(g.mean_price(), 2.0));
        assert!(
            hand()
                .with_prices(vec![1.0; 5])
                .unwrap_err()
                .message
                .contains("one price per row of the trace (6), found 5")
        );
        assert!(hand().with_prices(vec![1.0, 1.0, -1.0, 1.0, 1.0, 1.0]).unwrap_err().message.contains("price 2"));
        assert!(hand().with_prices(vec![f64::NAN; 6]).is_err());
    }

    #[test]
    fn always_and_never_available() {
        let always = SpotTrace::parse_json(
            "a.json",
            r#"{"metadata": {"gap_seconds": 600}, "data": [0, 0, 0]}"#,
            Convention::Preempted,
        )
        .unwrap();
        let t = mins(77);
        assert_eq!(always.availability(), 1.0);
        assert_eq!(always.next_unavailable(mins(3), t), SimTime::MAX);
        assert_eq!(always.next_available(mins(3), t), t);
        let never = SpotTrace::parse_json(
            "n.json",
            r#"{"metadata": {"gap_seconds": 600}, "data": [0, 0, 0]}"#,
            Convention::Available,
        )
        .unwrap();
        assert_eq!(never.availability(), 0.0);
        assert_eq!(never.next_available(mins(3), t), SimTime::MAX);
        assert_eq!(never.next_unavailable(mins(3), t), t);
        assert!(!never.available(SimTime::ZERO, SimTime::MAX));
    }

    #[test]
    fn csv_errors_name_the_line() {
        let err = |text: &str| {
            let e = SpotTrace::parse_csv("e.csv", text, Convention::Available).unwrap_err();
            (e.line, e.message)
        };
        let (line, m) = err("date,availability\n2023-01-01 00:00:00,1\n\n2023-01-01 00:03:00,2\n");
        assert_eq!(line, Some(4));
        assert!(m.contains("expected an availability of 0 or 1, found \"2\""), "{m}");
        let (line, m) = err("date,availability\n2023-01-01 00:00:00,1\n2023-02-30 00:03:00,1\n");
        assert_eq!(line, Some(3));
        assert!(m.contains("expected a date"), "{m}");
        let (line, m) = err("date,availability\n2023-01-01 00:03:00,1\n2023-01-01 00:03:00,1\n");
        assert_eq!(line, Some(3));
        assert!(m.contains("increase strictly"), "{m}");
        let (line, m) = err("# comment\ntime,available\n2023-01-01 00:03:00,1\n");
        assert_eq!(line, Some(2));
        assert!(m.contains("`date` and `availability`"), "{m}");
        let (line, m) = err("availability,date\n1\n");
        assert_eq!(line, Some(2));
        assert!(m.contains("expected 2 columns"), "{m}");
        let (line, m) = err("date,availability\n2023-01-01 00:03:00,1\n");
        assert_eq!(line, None);
        assert!(m.starts_with("expected at least two data rows") && m.ends_with("found 1"), "{m}");
        assert_eq!(err("").0, None);
        // Columns in any order, quoted cells, CRLF line ends.
        let t = SpotTrace::parse_csv(
            "q.csv",
            "\"availability\",\"date\"\r\n0,\"2023-01-01 00:00:00\"\r\n1,2023-01-01 00:05:00\r\n",
            Convention::Available,
        )
        .unwrap();
        assert_eq!((t.length(), t.availability()), (mins(10), 0.5));
    }

    #[test]
    fn json_errors() {
        let err = |text: &str| SpotTrace::parse_json("e.json", text, Convention::Preempted).unwrap_err();
        let e = err("{\n  \"metadata\": {\"gap_seconds\": 600},\n  \"data\": [0, 1,, 0]\n}");
        assert_eq!(e.line, Some(3));
        assert!(e.message.starts_with("not valid JSON (column 17): expected value"), "{}", e.message);
        assert!(err(r#"{"data": [0]}"#).message.contains("`metadata`"));
        assert!(err(r#"{"metadata": {}, "data": [0]}"#).message.contains("`metadata.gap_seconds` is missing"));
        assert!(err(r#"{"metadata": {"gap_seconds": 0}, "data": [0]}"#).message.contains("expected a number > 0"));
        assert!(err(r#"{"metadata": {"gap_seconds": 600}, "data": []}"#).message.contains("`data` is empty"));
        assert!(err(r#"{"metadata": {"gap_seconds": 600}}"#).message.contains("a list `data`"));
        let e = err(r#"{"metadata": {"gap_seconds": 600}, "data": [0, 1, 2]}"#);
        assert_eq!((e.line, e.message.as_str()), (None, "`data[2]`: expected 0 or 1, found 2"));
        let e = err(r#"{"metadata": {"gap_seconds": 600, "price_info": {"price": "x"}}, "data": [0]}"#);
        assert!(e.message.contains("`metadata.price_info.price`"), "{}", e.message);
    }

    #[test]
    fn queries_agree_with_a_scan() {
        // Every query against a brute-force walk over 1-minute steps.
        let t = hand();
        let step = mins(1);
        for offset in 0..60 {
            let o = mins(offset);
            for start in 0..130 {
                let s = mins(start);
                let mut u = s;
                while t.available(o, u) {
                    u += step;
                }
                assert_eq!(t.next_unavailable(o, s), u, "offset {offset}, t {start}");
                let mut a = s;
                while !t.available(o, a) {
                    a += step;
                }
                assert_eq!(t.next_available(o, s), a, "offset {offset}, t {start}");
            }
        }
    }

    #[test]
    fn bundled_traces_load() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/traces");
        let prices: std::collections::BTreeMap<String, Vec<f64>> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("aws-v100/spot-prices.json")).unwrap()).unwrap();
        let mut zones = 0;
        for entry in std::fs::read_dir(dir.join("aws-v100")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "csv") {
                continue;
            }
            let zone = path.file_stem().unwrap().to_str().unwrap().to_string();
            let t = SpotTrace::parse_csv(&zone, &std::fs::read_to_string(&path).unwrap(), Convention::Available)
                .unwrap()
                .with_prices(prices[&format!("{zone}_v100_1")].clone())
                .unwrap();
            // 2023-02-15 22:08:16 to 2023-04-02 11:54:51 plus the 195 s median gap.
            assert_eq!(t.length(), SimTime::from_secs(3_937_595 + 195), "{zone}");
            assert_eq!(t.rows.len(), 20_158);
            let p = t.mean_price().unwrap();
            assert!((0.5..3.06).contains(&p), "{zone}: {p}");
            let expected = match zone.as_str() {
                "us-east-1a" => 0.167,
                "us-west-2a" => 0.883,
                _ => t.availability(),
            };
            assert!((t.availability() - expected).abs() < 0.01, "{zone}: {}", t.availability());
            zones += 1;
        }
        assert_eq!(zones, 6);
        let mut zones = 0;
        for entry in std::fs::read_dir(dir.join("gcp-h100")).unwrap() {
            let path = entry.unwrap().path();
            let t =
                SpotTrace::parse_json("g", &std::fs::read_to_string(&path).unwrap(), Convention::Preempted).unwrap();
            assert_eq!(t.length(), SimTime::from_secs(2114 * 600), "{path:?}");
            assert!(t.mean_price().unwrap() > 10.0);
            assert!(t.availability() > 0.0 && t.availability() < 1.0);
            zones += 1;
        }
        assert_eq!(zones, 3);
    }
}
