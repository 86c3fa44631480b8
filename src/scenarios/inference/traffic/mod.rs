//! Traffic: rate traces, request traces, synthetic traffic; arrival processes.
//!
//! A `Traffic` is what `[traffic]` describes. For one replication it becomes
//! either a piecewise-constant `RateProfile` with Poisson arrivals over it, or
//! (for a request trace replayed as is) the trace's own timestamps. The
//! formulas are in `docs/traffic.md`.

use std::f64::consts::TAU;
use std::sync::Arc;

use rand::RngExt;
use rand_distr::{Distribution, Exp1, StandardNormal};
use serde::Serialize;
use serde::ser::SerializeMap;

pub mod counts;
pub mod mooncake;
pub mod prefix;
pub mod sessions;
pub mod tokens;

use crate::base::time::SimTime;
pub use crate::base::trace_file::{CsvTable, TraceError, parse_timestamp};
use crate::engine::{Purpose, SimRng, Streams};
use crate::input::error::number;
use tokens::Tokens;

/// The most pieces one replication's rate profile may have (16 bytes each).
pub const MAX_PIECES: u64 = 4_000_000;
/// The default bin of `replay = "rates"`, and the bin of the profile of an
/// as-is replay.
pub const DEFAULT_BIN: SimTime = SimTime::from_mins(1);
/// The default period of synthetic traffic.
pub const DEFAULT_PERIOD: SimTime = SimTime::from_hours(24);
/// The default step of synthetic traffic.
pub const DEFAULT_STEP: SimTime = SimTime::from_mins(1);

/// The traffic of an experiment: where the rate comes from, a factor on it,
/// and how long it runs.
#[derive(Clone, Debug)]
pub struct Traffic {
    pub source: TrafficSource,
    /// Multiplies every rate (for `Replay::AsIs`, the share of requests kept).
    pub scale: f64,
    /// Arrivals fall in `[0, duration)`.
    pub duration: SimTime,
    /// Token counts per request (the LLM engine's).
    pub tokens: Option<Tokens>,
}

#[derive(Clone, Debug)]
pub enum TrafficSource {
    /// A rate trace: rate `rates[i]` (requests/s) holds on
    /// `[starts[i], starts[i + 1])`, the last one until `length`; times in
    /// seconds from the first row. Repeats with period `length`.
    Rates { file: String, starts: Vec<f64>, rates: Vec<f64>, length: f64 },
    /// A request trace: one timestamp per request, in seconds from the first
    /// request, ascending. `length` = last − first + the mean gap.
    Requests {
        file: String,
        times: Arc<[f64]>,
        /// The column `sizes` came from, if any.
        size_column: Option<String>,
        sizes: Option<Arc<[f64]>>,
        length: f64,
        replay: Replay,
    },
    /// A diurnal rate with noise and spikes, one constant piece per `step`.
    Synthetic { mean_rps: f64, diurnal_amplitude: f64, period: SimTime, noise: f64, step: SimTime, spikes: Vec<Spike> },
}

/// How a request trace becomes arrivals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// The timestamps themselves, repeated cyclically.
    AsIs,
    /// Counts per `bin` become a rate profile; arrivals are Poisson over it.
    Rates { bin: SimTime },
}

/// A period in which synthetic traffic is multiplied by `multiplier`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spike {
    pub start: SimTime,
    pub duration: SimTime,
    pub multiplier: f64,
}

/// One request: when it arrives and, for request traces with a size column,
/// its size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arrival {
    pub at: SimTime,
    pub size: Option<f64>,
    /// The request trace's row it replays or was drawn from, when the
    /// trace's rows matter (sizes or token counts).
    pub row: Option<u32>,
}

/// A rate in requests per second, piecewise constant on `[0, end)`: rate
/// `rates[i]` on `[starts[i], starts[i + 1])`, the last one until `end`.
#[derive(Clone, Debug, PartialEq)]
pub struct RateProfile {
    starts: Vec<SimTime>,
    rates: Vec<f64>,
    end: SimTime,
}

impl RateProfile {
    /// Checks the invariants: `starts` begins at zero, increases strictly and
    /// stays below `end`; rates are finite and >= 0. An empty profile needs
    /// `end` zero.
    pub fn new(starts: Vec<SimTime>, rates: Vec<f64>, end: SimTime) -> Result<Self, String> {
        if starts.len() != rates.len() {
            return Err(format!("{} starts but {} rates", starts.len(), rates.len()));
        }
        if starts.is_empty() {
            return if end.is_zero() {
                Ok(RateProfile { starts, rates, end })
            } else {
                Err("no pieces, but the end is not zero".into())
            };
        }
        if !starts[0].is_zero() {
            return Err(format!("the first piece starts at {}, not 0s", starts[0]));
        }
        if starts.windows(2).any(|w| w[0] >= w[1]) || *starts.last().expect("non-empty") >= end {
            return Err("piece starts must increase strictly and stay below the end".into());
        }
        if let Some(r) = rates.iter().find(|r| !(r.is_finite() && **r >= 0.0)) {
            return Err(format!("expected rates >= 0, found {r}"));
        }
        Ok(RateProfile { starts, rates, end })
    }

    /// One rate over `[0, end)`.
    pub fn constant(rate: f64, end: SimTime) -> Self {
        if end.is_zero() {
            return RateProfile { starts: Vec::new(), rates: Vec::new(), end };
        }
        RateProfile { starts: vec![SimTime::ZERO], rates: vec![rate.max(0.0)], end }
    }

    pub fn end(&self) -> SimTime {
        self.end
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The rate at `t`; zero from `end` on.
    pub fn rate_at(&self, t: SimTime) -> f64 {
        if t >= self.end {
            return 0.0;
        }
        let i = self.starts.partition_point(|&s| s <= t);
        if i == 0 { 0.0 } else { self.rates[i - 1] }
    }

    /// `(start, end, rate)` of each piece, in time order.
    pub fn pieces(&self) -> impl Iterator<Item = (SimTime, SimTime, f64)> + '_ {
        (0..self.starts.len()).map(move |i| (self.starts[i], self.piece_end(i), self.rates[i]))
    }

    fn piece_end(&self, i: usize) -> SimTime {
        self.starts.get(i + 1).copied().unwrap_or(self.end)
    }

    /// The integral of the rate over `[0, end)`: the mean number of arrivals.
    pub fn expected_requests(&self) -> f64 {
        self.pieces().map(|(s, e, r)| r * (e - s).as_secs_f64()).sum()
    }

    /// The time-average rate, requests per second (zero for an empty profile).
    pub fn mean_rate(&self) -> f64 {
        if self.end.is_zero() { 0.0 } else { self.expected_requests() / self.end.as_secs_f64() }
    }
}

/// Builds a profile piece by piece, dropping pieces that rounding made empty
/// and merging neighbours of equal rate.
struct ProfileBuilder {
    starts: Vec<SimTime>,
    rates: Vec<f64>,
    end: SimTime,
}

impl ProfileBuilder {
    fn new(end: SimTime) -> Self {
        ProfileBuilder { starts: Vec::new(), rates: Vec::new(), end }
    }

    /// Starts a piece of `rate` at `start`; returns false once `start` is at
    /// or past the end.
    fn push(&mut self, start: SimTime, rate: f64) -> bool {
        if start >= self.end {
            return false;
        }
        let rate = if rate.is_finite() && rate > 0.0 { rate } else { 0.0 };
        match self.starts.last() {
            Some(&last) if last >= start => {
                // Empty after rounding: the later piece wins.
                *self.rates.last_mut().expect("same length") = rate;
                self.merge_last();
            }
            _ if self.rates.last() == Some(&rate) => {}
            _ => {
                self.starts.push(start);
                self.rates.push(rate);
            }
        }
        true
    }

    fn merge_last(&mut self) {
        let n = self.rates.len();
        if n >= 2 && self.rates[n - 1] == self.rates[n - 2] {
            self.starts.pop();
            self.rates.pop();
        }
    }

    fn build(mut self) -> RateProfile {
        if self.starts.is_empty() && !self.end.is_zero() {
            self.starts.push(SimTime::ZERO);
            self.rates.push(0.0);
        }
        debug_assert!(self.starts.first().is_none_or(|s| s.is_zero()));
        RateProfile { starts: self.starts, rates: self.rates, end: self.end }
    }
}

impl Traffic {
    /// Poisson arrivals at a constant `rate` per second for `duration`, no
    /// token counts: the traffic of load tests and of closed-form checks.
    pub fn constant(rate: f64, duration: SimTime) -> Traffic {
        let source = TrafficSource::Synthetic {
            mean_rps: rate,
            diurnal_amplitude: 0.0,
            period: duration,
            noise: 0.0,
            step: duration,
            spikes: Vec::new(),
        };
        Traffic { source, scale: 1.0, duration, tokens: None }
    }

    /// One replication's rate profile on `[0, duration)`, `scale` applied.
    /// Traces repeat cyclically; synthetic noise comes from
    /// `Purpose::TrafficNoise`. For an as-is replay this is the expected rate
    /// (1-minute counts × scale), for timelines.
    pub fn profile(&self, streams: &Streams) -> RateProfile {
        let mut b = ProfileBuilder::new(self.duration);
        match &self.source {
            TrafficSource::Rates { starts, rates, length, .. } => {
                cyclic(&mut b, *length, starts, |i| rates[i] * self.scale);
            }
            TrafficSource::Requests { times, length, replay, .. } => {
                let bin = match replay {
                    Replay::AsIs => DEFAULT_BIN,
                    Replay::Rates { bin } => *bin,
                };
                let (starts, rates) = bin_rates(times, *length, bin);
                cyclic(&mut b, *length, &starts, |i| rates[i] * self.scale);
            }
            TrafficSource::Synthetic { mean_rps, diurnal_amplitude, period, noise, step, spikes } => {
                let mut rng = (*noise > 0.0).then(|| streams.rng(Purpose::TrafficNoise));
                let step = (*step).max(SimTime::from_nanos(1));
                let period_s = period.as_secs_f64();
                let mut start = SimTime::ZERO;
                while start < self.duration {
                    let end = (start + step).min(self.duration);
                    let mid = SimTime::from_nanos(start.as_nanos() + (end - start).as_nanos() / 2);
                    let mut rate = mean_rps * (1.0 - diurnal_amplitude * (TAU * mid.as_secs_f64() / period_s).cos());
                    if let Some(rng) = rng.as_mut() {
                        let z: f64 = StandardNormal.sample(rng);
                        rate *= (1.0 + noise * z).max(0.0);
                    }
                    for s in spikes {
                        if s.start <= mid && mid < s.start + s.duration {
                            rate *= s.multiplier;
                        }
                    }
                    b.push(start, rate * self.scale);
                    start = end;
                }
            }
        }
        b.build()
    }

    /// The mean number of requests of one replication (replication 0's rate
    /// profile: noise aside, every replication's).
    pub fn expected_requests(&self) -> f64 {
        self.profile(&Streams::new(0, 0)).expected_requests()
    }

    /// One replication's arrivals, in ascending time, all before `duration`.
    pub fn arrivals(&self, streams: &Streams) -> Arrivals {
        match &self.source {
            TrafficSource::Requests { times, sizes, length, replay: Replay::AsIs, .. } => {
                let thinning = (self.scale < 1.0).then(|| streams.rng(Purpose::TrafficThinning));
                Arrivals {
                    inner: Inner::Replay(Replayer {
                        times: times.clone(),
                        sizes: sizes.clone(),
                        rows: sizes.is_some() || self.has_token_columns(),
                        length: *length,
                        end: self.duration,
                        i: 0,
                        cycle: 0,
                        keep: self.scale,
                        thinning,
                        last: SimTime::ZERO,
                        done: times.is_empty(),
                    }),
                }
            }
            TrafficSource::Requests { sizes, times, .. } if sizes.is_some() || self.has_token_columns() => {
                let mut a = Arrivals::poisson(self.profile(streams), streams.rng(Purpose::Arrivals));
                if let Inner::Poisson(p) = &mut a.inner
                    && !times.is_empty()
                {
                    p.rows = Some((times.len() as u32, sizes.clone(), streams.rng(Purpose::TrafficSizes)));
                }
                a
            }
            _ => Arrivals::poisson(self.profile(streams), streams.rng(Purpose::Arrivals)),
        }
    }

    /// Whether its requests carry prompts' content (SPEC 2.11).
    pub fn carries_prompts(&self) -> bool {
        matches!(self.tokens, Some(Tokens::Prompts { .. } | Tokens::Sessions(_)))
    }

    /// Its synthetic sessions, if it has them.
    pub fn sessions(&self) -> Option<&std::sync::Arc<sessions::Sessions>> {
        match &self.tokens {
            Some(Tokens::Sessions(s)) => Some(s),
            _ => None,
        }
    }

    fn has_token_columns(&self) -> bool {
        matches!(self.tokens, Some(Tokens::Columns { .. } | Tokens::Prompts { .. }))
    }

    /// How many pieces `profile` will make, at most (before merging).
    pub fn piece_bound(&self) -> u64 {
        let d = self.duration.as_secs_f64();
        let cycles = |length: f64| if length > 0.0 { (d / length).ceil() } else { 1.0 };
        let n = match &self.source {
            TrafficSource::Rates { starts, length, .. } => cycles(*length) * starts.len() as f64,
            TrafficSource::Requests { length, replay, .. } => {
                let bin = match replay {
                    Replay::AsIs => DEFAULT_BIN,
                    Replay::Rates { bin } => *bin,
                };
                cycles(*length) * (length / bin.as_secs_f64().max(1e-9)).ceil()
            }
            TrafficSource::Synthetic { step, .. } => (d / step.as_secs_f64().max(1e-9)).ceil(),
        };
        if n.is_finite() && n < u64::MAX as f64 { n as u64 } else { u64::MAX }
    }
}

/// Lays `starts` (seconds, from 0, within one cycle of `length` seconds)
/// end to end until the builder's end.
fn cyclic(b: &mut ProfileBuilder, length: f64, starts: &[f64], rate: impl Fn(usize) -> f64) {
    if starts.is_empty() {
        return;
    }
    let mut k = 0u64;
    loop {
        let offset = k as f64 * length;
        for (i, &s) in starts.iter().enumerate() {
            if !b.push(SimTime::from_secs_f64(offset + s), rate(i)) {
                return;
            }
        }
        if length.is_nan() || length <= 0.0 {
            return; // one pass: the last piece runs to the end
        }
        k += 1;
    }
}

/// The counts of `times` (seconds, ascending, from 0) in bins of `bin` over
/// `[0, length)`, as rates: bin starts in seconds and requests per second.
/// The last bin is shorter when `length` is not a multiple of `bin`.
pub fn bin_rates(times: &[f64], length: f64, bin: SimTime) -> (Vec<f64>, Vec<f64>) {
    let w = bin.as_secs_f64();
    if w <= 0.0 || length.is_nan() || length <= 0.0 {
        return (vec![0.0], vec![times.len() as f64 / length.max(f64::MIN_POSITIVE)]);
    }
    let n = ((length / w).ceil() as usize).max(1);
    let mut counts = vec![0u64; n];
    for &t in times {
        let k = ((t / w) as usize).min(n - 1);
        counts[k] += 1;
    }
    let starts: Vec<f64> = (0..n).map(|k| k as f64 * w).collect();
    let rates = counts
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let width = ((k + 1) as f64 * w).min(length) - starts[k];
            if width > 0.0 { c as f64 / width } else { 0.0 }
        })
        .collect();
    (starts, rates)
}

/// The arrivals of one replication: an iterator of ascending `Arrival`s.
pub struct Arrivals {
    inner: Inner,
}

enum Inner {
    Poisson(Nhpp),
    Replay(Replayer),
}

impl Arrivals {
    /// A non-homogeneous Poisson process over `profile`, drawn from `rng`.
    pub fn poisson(profile: RateProfile, rng: SimRng) -> Self {
        let mut p = Nhpp { rng, profile, i: 0, base: SimTime::ZERO, len: 0.0, rate: 0.0, off: 0.0, rows: None };
        p.enter(0);
        Arrivals { inner: Inner::Poisson(p) }
    }
}

impl Iterator for Arrivals {
    type Item = Arrival;

    #[inline]
    fn next(&mut self) -> Option<Arrival> {
        match &mut self.inner {
            Inner::Poisson(p) => p.next(),
            Inner::Replay(r) => r.next(),
        }
    }
}

/// Rows of a trace drawn per arrival: their number, their sizes, the draws.
type RowDraws = (u32, Option<Arc<[f64]>>, SimRng);

/// Exact NHPP sampling by inversion of the integrated intensity: one Exp(1)
/// draw per arrival, spent across pieces (rate × length each) until it fits.
struct Nhpp {
    rng: SimRng,
    profile: RateProfile,
    /// The current piece.
    i: usize,
    base: SimTime,
    /// Its length and rate, seconds and requests/s.
    len: f64,
    rate: f64,
    /// Seconds from `base` to the last arrival in this piece (0 on entry).
    off: f64,
    /// Each arrival draws a row of the trace (rows, their sizes, the draws).
    rows: Option<RowDraws>,
}

impl Nhpp {
    fn enter(&mut self, i: usize) {
        self.i = i;
        self.off = 0.0;
        if i < self.profile.starts.len() {
            self.base = self.profile.starts[i];
            self.len = (self.profile.piece_end(i) - self.base).as_secs_f64();
            self.rate = self.profile.rates[i];
        }
    }

    #[inline]
    fn next(&mut self) -> Option<Arrival> {
        let n = self.profile.starts.len();
        if self.i >= n {
            return None;
        }
        let mut e: f64 = Exp1.sample(&mut self.rng);
        loop {
            let room = (self.len - self.off) * self.rate;
            if e < room {
                self.off += e / self.rate;
                let at = self.base + SimTime::from_secs_f64(self.off);
                if at >= self.profile.end {
                    self.i = n;
                    return None;
                }
                let row = self.rows.as_mut().map(|(n, _, rng)| rng.random_range(0..*n as usize));
                let size = self.rows.as_ref().and_then(|(_, s, _)| Some(s.as_ref()?[row?]));
                return Some(Arrival { at, size, row: row.map(|r| r as u32) });
            }
            e -= room.max(0.0);
            if self.i + 1 >= n {
                self.i = n;
                return None;
            }
            self.enter(self.i + 1);
        }
    }
}

/// Replays a request trace, cycle `k` shifted by `k × length`, keeping each
/// request with probability `keep` when `keep` < 1.
struct Replayer {
    times: Arc<[f64]>,
    sizes: Option<Arc<[f64]>>,
    /// Whether arrivals carry their row.
    rows: bool,
    length: f64,
    end: SimTime,
    i: usize,
    cycle: u64,
    keep: f64,
    thinning: Option<SimRng>,
    last: SimTime,
    done: bool,
}

impl Replayer {
    #[inline]
    fn next(&mut self) -> Option<Arrival> {
        while !self.done {
            if self.i == self.times.len() {
                if self.length.is_nan() || self.length <= 0.0 {
                    self.done = true;
                    return None;
                }
                self.i = 0;
                self.cycle += 1;
            }
            let i = self.i;
            self.i += 1;
            // Never earlier than the previous one, whatever the rounding.
            let at = SimTime::from_secs_f64(self.cycle as f64 * self.length + self.times[i]).max(self.last);
            if at >= self.end {
                self.done = true;
                return None;
            }
            if let Some(rng) = self.thinning.as_mut()
                && rng.random::<f64>() >= self.keep
            {
                continue;
            }
            self.last = at;
            let row = self.rows.then_some(i as u32);
            return Some(Arrival { at, size: self.sizes.as_ref().map(|s| s[i]), row });
        }
        None
    }
}

// ---------------------------------------------------------------------------
// Trace files

/// A rate trace: row times (seconds from the first row), rates, and the
/// cycle length.
#[derive(Clone, Debug, PartialEq)]
pub struct RateTrace {
    pub starts: Vec<f64>,
    pub rates: Vec<f64>,
    pub length: f64,
}

/// A request trace: times in seconds from the first request, optional
/// sizes, and the cycle length.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestTrace {
    pub times: Vec<f64>,
    pub sizes: Option<Vec<f64>>,
    pub length: f64,
}

/// Parses a rate trace: a header naming `time_s` and `rate` (other columns
/// are ignored), then rows with times in seconds increasing strictly and
/// rates in requests per second, >= 0. Times are shifted so the first row is
/// at 0; the last rate holds for the median gap between rows.
pub fn parse_rate_trace(text: &str) -> Result<RateTrace, TraceError> {
    let csv = CsvTable::parse(text)?;
    let (Some(ti), Some(ri)) = (csv.column(&["time_s"]), csv.column(&["rate"])) else {
        return Err(TraceError::at(
            csv.header_line,
            format!("expected a header naming the columns `time_s` and `rate`, found \"{}\"", csv.header_text()),
        ));
    };
    let mut starts = Vec::with_capacity(csv.rows.len());
    let mut rates = Vec::with_capacity(csv.rows.len());
    for (line, row) in &csv.rows {
        let t_text = csv.cell(row, ti, *line)?;
        let r_text = csv.cell(row, ri, *line)?;
        let t: f64 = match t_text.parse::<f64>() {
            Ok(t) if t.is_finite() => t,
            _ => return Err(TraceError::at(*line, format!("expected a time in seconds, found \"{t_text}\""))),
        };
        let r: f64 = match r_text.parse::<f64>() {
            Ok(r) if r.is_finite() && r >= 0.0 => r,
            _ => return Err(TraceError::at(*line, format!("expected a rate >= 0, found \"{r_text}\""))),
        };
        if let Some(&prev) = starts.last()
            && t <= prev
        {
            return Err(TraceError::at(
                *line,
                format!(
                    "times must increase strictly: {t_text} comes after {} (the rows are not sorted?)",
                    number(prev)
                ),
            ));
        }
        starts.push(t);
        rates.push(r);
    }
    if starts.len() < 2 {
        return Err(TraceError::whole(format!(
            "expected at least two data rows (the last rate lasts for the median gap between rows), found {}",
            starts.len()
        )));
    }
    let t0 = starts[0];
    for s in &mut starts {
        *s -= t0;
    }
    let mut gaps: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    let m = gaps.len();
    let median = if m % 2 == 1 { gaps[m / 2] } else { 0.5 * (gaps[m / 2 - 1] + gaps[m / 2]) };
    let length = starts[starts.len() - 1] + median;
    Ok(RateTrace { starts, rates, length })
}

/// Reads a request trace's times from its table (parsed once, so that the
/// token columns come from the same read): a header with a time column,
/// `TIMESTAMP` (`YYYY-MM-DD hh:mm:ss[.fraction]`, also with `T`) or `time_s`
/// (seconds), and, when `size_column` is given, that column (numbers >= 0).
/// Rows must not go back in time. Times become seconds from the first
/// request; the length is last − first plus the mean gap. A trace with no
/// gap (one row, or every row at one instant) has the length `duration_s`,
/// the traffic's duration: it plays once (one request alone is the most
/// basic LLM experiment).
pub fn parse_request_trace(
    csv: &CsvTable,
    size_column: Option<&str>,
    duration_s: f64,
) -> Result<RequestTrace, TraceError> {
    let (ti, stamped) = match (csv.column(&["TIMESTAMP"]), csv.column(&["time_s"])) {
        (Some(i), _) => (i, true),
        (None, Some(i)) => (i, false),
        (None, None) => {
            return Err(TraceError::at(
                csv.header_line,
                format!("expected a header with a `TIMESTAMP` or `time_s` column, found \"{}\"", csv.header_text()),
            ));
        }
    };
    let si = match size_column {
        Some(name) => Some(csv.column(&[name]).ok_or_else(|| {
            TraceError::at(
                csv.header_line,
                format!("no column `{name}` for `size_column`; the columns are {}", csv.header.join(", ")),
            )
        })?),
        None => None,
    };
    // Nanoseconds for timestamps (exact differences), seconds for time_s.
    let mut raw_ns: Vec<i64> = Vec::new();
    let mut raw_s: Vec<f64> = Vec::new();
    let mut sizes = si.map(|_| Vec::with_capacity(csv.rows.len()));
    for (line, row) in &csv.rows {
        let text = csv.cell(row, ti, *line)?;
        if stamped {
            let ns = parse_timestamp(text).ok_or_else(|| {
                TraceError::at(
                    *line,
                    format!("expected a timestamp such as \"2023-11-16 18:15:46.6805900\", found \"{text}\""),
                )
            })?;
            if let Some(&prev) = raw_ns.last()
                && ns < prev
            {
                return Err(TraceError::at(*line, format!("time goes backwards: {text} is before the row above it")));
            }
            raw_ns.push(ns);
        } else {
            let t = match text.parse::<f64>() {
                Ok(t) if t.is_finite() => t,
                _ => return Err(TraceError::at(*line, format!("expected a time in seconds, found \"{text}\""))),
            };
            if let Some(&prev) = raw_s.last()
                && t < prev
            {
                return Err(TraceError::at(*line, format!("time goes backwards: {text} is before {}", number(prev))));
            }
            raw_s.push(t);
        }
        if let (Some(si), Some(sizes)) = (si, sizes.as_mut()) {
            let text = csv.cell(row, si, *line)?;
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => sizes.push(x),
                _ => return Err(TraceError::at(*line, format!("expected a size >= 0, found \"{text}\""))),
            }
        }
    }
    let times: Vec<f64> = if stamped {
        let t0 = raw_ns.first().copied().unwrap_or(0);
        raw_ns.iter().map(|&ns| (ns - t0) as f64 / 1e9).collect()
    } else {
        let t0 = raw_s.first().copied().unwrap_or(0.0);
        raw_s.iter().map(|&t| t - t0).collect()
    };
    if times.is_empty() {
        return Err(TraceError::whole("expected at least one request, found none"));
    }
    let length = request_trace_length(&times, duration_s);
    Ok(RequestTrace { times, sizes, length })
}

/// A request trace's replay length: its span and one mean gap (so a
/// looped replay keeps the rate), or `duration_s` for a single instant.
pub fn request_trace_length(times: &[f64], duration_s: f64) -> f64 {
    let span = times.last().copied().unwrap_or(0.0);
    if span > 0.0 { span + span / (times.len() - 1) as f64 } else { duration_s }
}

// ---------------------------------------------------------------------------
// Serialisation in the experiment file's keys

impl Serialize for Traffic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match &self.source {
            TrafficSource::Rates { file, starts, length, .. } => {
                map.serialize_entry("trace", file)?;
                map.serialize_entry("format", "rates")?;
                map.serialize_entry("rows", &starts.len())?;
                map.serialize_entry("trace_length", &SimTime::from_secs_f64(*length))?;
            }
            TrafficSource::Requests { file, times, size_column, length, replay, .. } => {
                map.serialize_entry("trace", file)?;
                map.serialize_entry("format", "requests")?;
                match replay {
                    Replay::AsIs => map.serialize_entry("replay", "as-is")?,
                    Replay::Rates { bin } => {
                        map.serialize_entry("replay", "rates")?;
                        map.serialize_entry("bin", bin)?;
                    }
                }
                if let Some(c) = size_column {
                    map.serialize_entry("size_column", c)?;
                }
                map.serialize_entry("requests", &times.len())?;
                map.serialize_entry("trace_length", &SimTime::from_secs_f64(*length))?;
            }
            TrafficSource::Synthetic { mean_rps, diurnal_amplitude, period, noise, step, spikes } => {
                struct Syn<'a>(f64, f64, SimTime, f64, SimTime, &'a [Spike]);
                impl Serialize for Syn<'_> {
                    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                        let mut m = s.serialize_map(None)?;
                        m.serialize_entry("mean_rps", &self.0)?;
                        m.serialize_entry("diurnal_amplitude", &self.1)?;
                        m.serialize_entry("period", &self.2)?;
                        m.serialize_entry("noise", &self.3)?;
                        m.serialize_entry("step", &self.4)?;
                        m.serialize_entry("spikes", self.5)?;
                        m.end()
                    }
                }
                map.serialize_entry("synthetic", &Syn(*mean_rps, *diurnal_amplitude, *period, *noise, *step, spikes))?;
            }
        }
        map.serialize_entry("scale", &self.scale)?;
        map.serialize_entry("duration", &self.duration)?;
        if let Some(tokens) = &self.tokens {
            map.serialize_entry("tokens", tokens)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: SimTime = SimTime::from_mins(1);

    fn synthetic(mean: f64, amp: f64, noise: f64, spikes: Vec<Spike>, duration: SimTime) -> Traffic {
        Traffic {
            source: TrafficSource::Synthetic {
                mean_rps: mean,
                diurnal_amplitude: amp,
                period: DEFAULT_PERIOD,
                noise,
                step: DEFAULT_STEP,
                spikes,
            },
            scale: 1.0,
            duration,
            tokens: None,
        }
    }

    fn requests(times: &[f64], sizes: Option<&[f64]>, replay: Replay, scale: f64, duration: SimTime) -> Traffic {
        let span = times[times.len() - 1];
        Traffic {
            source: TrafficSource::Requests {
                file: "r.csv".into(),
                times: times.into(),
                size_column: sizes.map(|_| "size".into()),
                sizes: sizes.map(Into::into),
                length: span + span / (times.len() - 1) as f64,
                replay,
            },
            scale,
            duration,
            tokens: None,
        }
    }

    /// (mean, variance) z-scores of per-piece counts against Poisson(λΔt).
    fn count_z(profile: &RateProfile, reps: u64) -> Vec<(f64, f64)> {
        let pieces: Vec<_> = profile.pieces().collect();
        let mut counts = vec![vec![0u32; reps as usize]; pieces.len()];
        for r in 0..reps {
            let rng = Streams::new(5, r).rng(Purpose::Arrivals);
            let mut last = SimTime::ZERO;
            for a in Arrivals::poisson(profile.clone(), rng) {
                assert!(a.at >= last && a.at < profile.end());
                last = a.at;
                let k = pieces.partition_point(|p| p.0 <= a.at) - 1;
                counts[k][r as usize] += 1;
            }
        }
        let n = reps as f64;
        pieces
            .iter()
            .zip(&counts)
            .map(|(&(s, e, rate), c)| {
                let mu = rate * (e - s).as_secs_f64();
                let mean = c.iter().map(|&x| x as f64).sum::<f64>() / n;
                let var = c.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
                if mu == 0.0 {
                    assert_eq!(mean, 0.0);
                    return (0.0, 0.0);
                }
                let z_mean = (mean - mu) / (mu / n).sqrt();
                // Var(S²) ≈ (μ4 − σ⁴)/n with μ4 = λ(1 + 3λ) for a Poisson.
                let z_var = (var - mu) / ((mu + 2.0 * mu * mu) / n).sqrt();
                (z_mean, z_var)
            })
            .collect()
    }

    #[test]
    fn nhpp_counts_per_piece_are_poisson() {
        let s = SimTime::from_secs;
        let profile = RateProfile::new(
            vec![s(0), s(10), s(25), s(26), s(40), SimTime::from_nanos(40_500_000_000)],
            vec![2.0, 0.0, 30.0, 0.5, 7.0, 1.0],
            s(50),
        )
        .unwrap();
        for (i, (zm, zv)) in count_z(&profile, 20_000).into_iter().enumerate() {
            assert!(zm.abs() < 4.0 && zv.abs() < 4.0, "piece {i}: z(mean) = {zm}, z(var) = {zv}");
        }
    }

    #[test]
    fn nhpp_over_a_synthetic_day() {
        let t = synthetic(3.0, 0.8, 0.2, vec![], SimTime::from_hours(24));
        let profile = t.profile(&Streams::new(9, 0));
        let expected = profile.expected_requests();
        let reps = 200;
        let total: usize = (0..reps)
            .map(|r| Arrivals::poisson(profile.clone(), Streams::new(9, r).rng(Purpose::Arrivals)).count())
            .sum();
        let z = (total as f64 - expected * reps as f64) / (expected * reps as f64).sqrt();
        assert!(z.abs() < 4.0, "z = {z}");
    }

    #[test]
    fn arrivals_are_reproducible() {
        // Speed is measured by `cargo bench --bench engine -- traffic_arrivals`.
        let t = synthetic(300.0, 0.5, 0.1, vec![], SimTime::from_hours(1));
        let streams = Streams::new(3, 1);
        let a: Vec<_> = t.arrivals(&streams).collect();
        assert_eq!(a, t.arrivals(&streams).collect::<Vec<_>>());
        assert_ne!(a, t.arrivals(&Streams::new(3, 2)).collect::<Vec<_>>());
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at) && a.last().unwrap().at < t.duration);
    }

    #[test]
    fn as_is_replays_exactly_and_wraps() {
        let times = [0.0, 1.5, 1.5, 4.0];
        let sizes = [10.0, 20.0, 30.0, 40.0];
        // length = 4 + 4/3.
        let t = requests(&times, Some(&sizes), Replay::AsIs, 1.0, SimTime::from_secs(12));
        let got: Vec<_> = t.arrivals(&Streams::new(1, 0)).collect();
        let len = 4.0 + 4.0 / 3.0;
        let want: Vec<Arrival> = (0..3)
            .flat_map(|k| {
                times.iter().zip(sizes).enumerate().map(move |(i, (&t, s))| Arrival {
                    at: SimTime::from_secs_f64(k as f64 * len + t),
                    size: Some(s),
                    row: Some(i as u32),
                })
            })
            .filter(|a| a.at < SimTime::from_secs(12))
            .collect();
        assert_eq!(got, want);
        assert_eq!(got.len(), 9); // the third cycle starts at 10.67 s; its last two are past 12 s
    }

    #[test]
    fn thinning_keeps_the_scaled_share() {
        let times: Vec<f64> = (0..10_000).map(|i| i as f64 * 0.01).collect();
        let t = requests(&times, None, Replay::AsIs, 0.3, SimTime::from_secs(100));
        let n = 10_000.0;
        let kept = t.arrivals(&Streams::new(2, 0)).count() as f64;
        let z = (kept - 0.3 * n) / (n * 0.3 * 0.7).sqrt();
        assert!(z.abs() < 4.0, "kept {kept}, z = {z}");
        // Common random numbers: a lower scale keeps a subset.
        let lower = requests(&times, None, Replay::AsIs, 0.2, SimTime::from_secs(100));
        let a: Vec<_> = t.arrivals(&Streams::new(2, 0)).map(|a| a.at).collect();
        assert!(lower.arrivals(&Streams::new(2, 0)).all(|b| a.binary_search(&b.at).is_ok()));
    }

    #[test]
    fn synthetic_shape() {
        let day = SimTime::from_hours(24);
        let t = synthetic(10.0, 0.6, 0.0, vec![], day);
        let p = t.profile(&Streams::new(1, 0));
        // One piece per minute; equal neighbours (either side of the peak) may merge.
        assert!((1438..=1440).contains(&p.len()), "{}", p.len());
        assert!((p.mean_rate() - 10.0).abs() < 1e-9, "{}", p.mean_rate());
        let (peak, _, max) = p.pieces().max_by(|a, b| a.2.total_cmp(&b.2)).unwrap();
        let (trough, _, min) = p.pieces().min_by(|a, b| a.2.total_cmp(&b.2)).unwrap();
        assert!((peak.as_hours_f64() - 12.0).abs() < 0.05 && max <= 16.0 && max > 15.99, "{peak} {max}");
        assert!(trough.as_hours_f64() < 0.05 || trough.as_hours_f64() > 23.95, "{trough}");
        assert!((4.0..4.01).contains(&min));
        // Two days: the same shape again; scale multiplies.
        let mut t2 = synthetic(10.0, 0.6, 0.0, vec![], day.times(2));
        t2.scale = 2.5;
        let p2 = t2.profile(&Streams::new(1, 0));
        assert!((p2.mean_rate() - 25.0).abs() < 1e-9);
        assert!((p2.rate_at(SimTime::from_hours(30)) - 2.5 * p.rate_at(SimTime::from_hours(6))).abs() < 1e-9);
    }

    #[test]
    fn synthetic_noise_is_its_own_stream() {
        let day = SimTime::from_hours(24);
        let t = synthetic(10.0, 0.0, 0.3, vec![], day);
        let a = t.profile(&Streams::new(1, 0));
        assert_eq!(a, t.profile(&Streams::new(1, 0)));
        assert_ne!(a, t.profile(&Streams::new(1, 1)));
        let factors: Vec<f64> = a.pieces().map(|p| p.2 / 10.0).collect();
        let mean = factors.iter().sum::<f64>() / factors.len() as f64;
        let sd = (factors.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / (factors.len() - 1) as f64).sqrt();
        assert!((mean - 1.0).abs() < 4.0 * 0.3 / (1440f64).sqrt(), "{mean}");
        assert!((sd - 0.3).abs() < 0.03, "{sd}");
        let clipped = synthetic(10.0, 0.0, 3.0, vec![], day).profile(&Streams::new(1, 0));
        assert!(clipped.pieces().all(|p| p.2 >= 0.0) && clipped.pieces().any(|p| p.2 == 0.0));
    }

    #[test]
    fn spikes_multiply_where_they_cover_the_midpoint() {
        let h = SimTime::from_hours;
        let spikes = vec![
            Spike { start: h(2), duration: h(2), multiplier: 3.0 },
            Spike { start: h(3), duration: h(2), multiplier: 2.0 },
        ];
        let p = synthetic(5.0, 0.0, 0.0, spikes, h(6)).profile(&Streams::new(1, 0));
        let m = SimTime::from_mins;
        assert_eq!(p.rate_at(m(119)), 5.0);
        assert_eq!(p.rate_at(m(120)), 15.0);
        assert_eq!(p.rate_at(m(180)), 30.0);
        assert_eq!(p.rate_at(m(240)), 10.0);
        assert_eq!(p.rate_at(m(300)), 5.0);
        assert_eq!(p.len(), 5); // equal neighbours merge
        assert!((p.expected_requests() - 5.0 * 3600.0 * (1.0 + 1.0 + 3.0 + 6.0 + 2.0 + 1.0)).abs() < 1e-6);
    }

    #[test]
    fn rate_trace_repeats_cyclically() {
        let trace = parse_rate_trace("time_s,rate\n10,1\n20,0\n40,3\n").unwrap();
        assert_eq!(trace.starts, [0.0, 10.0, 30.0]);
        assert_eq!(trace.length, 45.0); // median gap of 10 and 20 is 15
        let t = Traffic {
            source: TrafficSource::Rates { file: "x".into(), starts: trace.starts, rates: trace.rates, length: 45.0 },
            scale: 2.0,
            duration: SimTime::from_secs(100),
            tokens: None,
        };
        let p = t.profile(&Streams::new(1, 0));
        let s = SimTime::from_secs;
        let pieces: Vec<_> = p.pieces().collect();
        assert_eq!(
            pieces,
            [
                (s(0), s(10), 2.0),
                (s(10), s(30), 0.0),
                (s(30), s(45), 6.0),
                (s(45), s(55), 2.0),
                (s(55), s(75), 0.0),
                (s(75), s(90), 6.0),
                (s(90), s(100), 2.0)
            ]
        );
        assert_eq!(p.rate_at(s(100)), 0.0);
        assert_eq!(p.expected_requests(), 2.0 * 30.0 + 6.0 * 30.0);
        assert!(t.arrivals(&Streams::new(1, 0)).all(|a| p.rate_at(a.at) > 0.0));
    }

    #[test]
    fn binning_a_request_trace() {
        // 150 s long (+ a mean gap), bins of 60 s: 3, 1, 2 requests.
        let times = [0.0, 10.0, 59.999, 60.0, 125.0, 149.0];
        let (starts, rates) = bin_rates(&times, 149.0 + 149.0 / 5.0, MIN);
        assert_eq!(starts, [0.0, 60.0, 120.0]);
        assert_eq!(rates[0], 3.0 / 60.0);
        assert_eq!(rates[1], 1.0 / 60.0);
        assert!((rates[2] - 2.0 / 58.8).abs() < 1e-12);
        let t = requests(
            &times,
            Some(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            Replay::Rates { bin: MIN },
            1.0,
            SimTime::from_mins(10),
        );
        let p = t.profile(&Streams::new(1, 0));
        assert_eq!(p.rate_at(SimTime::from_secs(180)), 3.0 / 60.0); // second cycle starts at 178.8 s
        let a: Vec<_> = t.arrivals(&Streams::new(1, 0)).collect();
        assert!(a.iter().all(|a| a.size.is_some_and(|s| (1.0..=6.0).contains(&s))));
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        // The as-is profile is the 1-minute counts, scaled.
        let asis = requests(&times, None, Replay::AsIs, 0.5, SimTime::from_mins(10));
        assert_eq!(asis.profile(&Streams::new(1, 0)).rate_at(SimTime::ZERO), 0.5 * 3.0 / 60.0);
    }

    #[test]
    fn profile_checks_and_edges() {
        let s = SimTime::from_secs;
        assert!(RateProfile::new(vec![s(1)], vec![1.0], s(2)).is_err());
        assert!(RateProfile::new(vec![s(0), s(0)], vec![1.0, 1.0], s(2)).is_err());
        assert!(RateProfile::new(vec![s(0)], vec![-1.0], s(2)).is_err());
        assert!(RateProfile::new(vec![s(0)], vec![f64::NAN], s(2)).is_err());
        assert!(RateProfile::new(vec![s(0), s(2)], vec![1.0, 1.0], s(2)).is_err());
        assert!(RateProfile::new(vec![s(0)], vec![1.0, 2.0], s(2)).is_err());
        assert!(RateProfile::new(vec![], vec![], s(2)).is_err());
        let empty = RateProfile::new(vec![], vec![], SimTime::ZERO).unwrap();
        assert_eq!(empty.mean_rate(), 0.0);
        assert_eq!(Arrivals::poisson(empty, Streams::new(1, 0).rng(Purpose::Arrivals)).count(), 0);
        let zero = RateProfile::constant(0.0, s(1000));
        assert_eq!(Arrivals::poisson(zero, Streams::new(1, 0).rng(Purpose::Arrivals)).count(), 0);
        let mut a = Arrivals::poisson(RateProfile::constant(5.0, s(1)), Streams::new(1, 0).rng(Purpose::Arrivals));
        while a.next().is_some() {}
        assert_eq!(a.next(), None);
    }

    #[test]
    fn rate_trace_errors_name_the_line() {
        let err = |text: &str| parse_rate_trace(text).unwrap_err();
        assert_eq!(err(""), TraceError::whole("the file is empty: expected a header row and data rows"));
        assert_eq!(err("t,r\n0,1\n").line, Some(1));
        assert!(err("time_s,rate\n0,1\n").message.contains("at least two"));
        let e = err("time_s,rate\n0,1\n\n# note\n60,abc\n");
        assert_eq!(e.to_string(), "line 5: expected a rate >= 0, found \"abc\"");
        assert_eq!(err("time_s,rate\n0,1\n60,-2\n").line, Some(3));
        assert_eq!(err("time_s,rate\n0,1\n60,inf\n").line, Some(3));
        assert_eq!(err("time_s,rate\n0,1\nx,2\n").line, Some(3));
        let e = err("time_s,rate\n1e308,1\n0,2\n");
        assert!(e.message.ends_with("0 comes after 1e308 (the rows are not sorted?)"), "{}", e.message);
        let e = err("time_s,rate\n0,1\n60,2\n60,3\n");
        assert!(e.line == Some(4) && e.message.contains("increase strictly"), "{e}");
        let e = err("time_s,rate\n0,1\n60\n");
        assert!(e.line == Some(3) && e.message.contains("columns"), "{e}");
        // Quotes, CRLF, extra columns and a shifted start are fine.
        let ok = parse_rate_trace("\"rate\",time_s,note\r\n2,100,a\r\n3,160,b\r\n").unwrap();
        assert_eq!((ok.starts, ok.rates, ok.length), (vec![0.0, 60.0], vec![2.0, 3.0], 120.0));
    }

    #[test]
    fn request_trace_parsing_and_errors() {
        let text = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
                    2023-11-16 23:59:59.5000000,374,44\n\
                    2023-11-17 00:00:00.2500000,396,109\n\
                    2023-11-17 00:00:01.5,879,55\n";
        let parse = |text: &str, size: Option<&str>| parse_request_trace(&CsvTable::parse(text)?, size, 3600.0);
        let t = parse(text, Some("generatedtokens")).unwrap();
        assert_eq!(t.times, [0.0, 0.75, 2.0]);
        assert_eq!(t.sizes, Some(vec![44.0, 109.0, 55.0]));
        assert_eq!(t.length, 3.0);
        assert_eq!(parse("time_s\n5\n6\n6\n9\n", None).unwrap().times, [0.0, 1.0, 1.0, 4.0]);

        let err = |text: &str, size: Option<&str>| parse(text, size).unwrap_err();
        assert_eq!(err("when,x\n1,2\n", None).line, Some(1));
        let e = err(text, Some("Tokens"));
        assert!(e.line == Some(1) && e.message.contains("no column `Tokens`"), "{e}");
        let e = err("time_s\n5\n4\n", None);
        assert!(e.line == Some(3) && e.message.contains("backwards"), "{e}");
        let e = err("TIMESTAMP\n2023-11-16 10:00:00\n2023-11-16 09:59:59.9\n", None);
        assert!(e.line == Some(3) && e.message.contains("backwards"), "{e}");
        for bad in [
            "2023-13-01 00:00:00",
            "2023-02-29 00:00:00",
            "2023-11-16",
            "2023-11-16 24:00:00",
            "x",
            "2023-11-16 10:00:00.5a",
        ] {
            let e = err(&format!("TIMESTAMP\n2023-11-16 00:00:00\n{bad}\n"), None);
            assert!(e.line == Some(3) && e.message.contains("expected a timestamp"), "{bad}: {e}");
        }
        let e = err("time_s,n\n0,1\n1,-1\n", Some("n"));
        assert_eq!(e.to_string(), "line 3: expected a size >= 0, found \"-1\"");
        assert!(err("time_s\n", None).message.contains("at least one request"));
        // No gap to give a length: the traffic's duration is the length.
        for one in ["time_s\n0\n", "time_s\n3\n3\n"] {
            let t = parse(one, None).unwrap();
            assert_eq!((t.times.iter().all(|&x| x == 0.0), t.length), (true, 3600.0), "{one}");
        }
        assert!(err("time_s\n0\nnan\n", None).message.contains("expected a time"));
        assert!(err("time_s,n\n0,1\n1\n", Some("n")).message.contains("columns"));
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_timestamp("1970-01-02T00:00:01.5Z"), Some(86_401_500_000_000));
        assert_eq!(parse_timestamp("2000-03-01 00:00:00"), Some(951_868_800 * 1_000_000_000));
        assert_eq!(parse_timestamp("2024-02-29 00:00:00"), Some(1_709_164_800 * 1_000_000_000));
        assert_eq!(parse_timestamp("2023-11-16 18:15:46.68059001234"), Some(1_700_158_546_680_590_012));
    }

    #[test]
    fn serialises_in_experiment_keys() {
        let t = synthetic(5.0, 0.5, 0.1, vec![Spike { start: MIN, duration: MIN, multiplier: 2.0 }], MIN.times(60));
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"synthetic\":{\"mean_rps\":5.0"), "{json}");
        assert!(json.contains("\"spikes\":[{\"start\":\"1m\",\"duration\":\"1m\",\"multiplier\":2.0}]"), "{json}");
        assert!(json.ends_with("\"scale\":1.0,\"duration\":\"1h\"}"), "{json}");
        let r = requests(&[0.0, 1.0], None, Replay::Rates { bin: MIN }, 1.0, MIN);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"format\":\"requests\",\"replay\":\"rates\",\"bin\":\"1m\""), "{json}");
    }
}
