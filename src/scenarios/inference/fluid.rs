//! The fluid engine: fixed steps, aggregate arrivals, and a queueing
//! approximation for latency. Fast for long traces and big sweeps; the fleet,
//! its billing and the autoscaler are the request engine's (`Control`).
//!
//! Within a step of length dt at arrival rate λ, with c = in-service
//! instances × workers servers of rate μ = 1/E\[S\]:
//!
//! - with no backlog and λ < cμ, the step is an M/G/c queue in steady state,
//!   approximated à la Allen–Cunneen: an arrival waits with probability
//!   C = ErlangC(c, λ/μ), and then for an exponential time of mean
//!   (1 + cs²)/2 · 1/(cμ − λ), where cs² is the service time's squared
//!   coefficient of variation (exact for exponential service, cs² = 1);
//! - otherwise a backlog Q of waiting requests grows or drains at λ − cμ, and
//!   an arrival waits Q/(cμ), the time to serve the backlog ahead of it;
//! - the backlog is capped at `queue_limit` per in-service instance (the
//!   excess is rejected) and at cμ·timeout (the excess times out).
//!
//! Latency quantiles come from a weighted quadrature: the service time's
//! quantiles at 128 evenly spaced probabilities, each paired with a
//! stratified waiting-time quantile (a Latin-hypercube pairing), recorded in
//! the latency histogram with the weight of the arrivals.
//! `docs/inference-model.md` states how close it comes to the request engine.

use hdrhistogram::Histogram;

use super::control::{Changes, Control, held_per_copy};
use super::design::{Endpoint, Outcome, TimelineRow, latency_histogram};
use super::queueing::erlang_c;
use crate::base::time::SimTime;
use crate::engine::Streams;
use crate::engine::progress::Ticker;

/// Points of the latency quadrature.
const POINTS: usize = 128;
/// Pairs service quantile j with waiting quantile (j · STRIDE) mod POINTS;
/// odd, so the pairing is a permutation.
const STRIDE: usize = 79;
/// Histogram counts per arriving request: fluid weights are fractional.
const WEIGHT_SCALE: f64 = 1000.0;

/// A steady-state regime: constant servers and rate, no backlog.
#[derive(Clone, Copy, PartialEq)]
struct Regime {
    servers: u32,
    rate: f64,
}

/// The latency quadrature of one replication.
struct Quadrature {
    /// Service-time quantiles at u_j = (j + 0.5)/POINTS, ascending.
    service: Vec<f64>,
    /// ln(1 − u_k) at the same probabilities.
    ln_tail: Vec<f64>,
    /// How many service quantiles are within the SLO.
    within_slo: usize,
    /// Allen–Cunneen: waits scale with (ca² + cs²)/2, Poisson arrivals ca² = 1.
    wait_scale: f64,
    /// The exact mean service time (the quadrature's is close, not exact).
    mean_service_s: f64,
    slo_s: f64,
    timeout_s: f64,
    /// Weight of arrivals that do not wait, per service point: recorded once
    /// at the end instead of once per regime.
    zero_wait: Vec<f64>,
    /// The same for the current timeline period, when there is a timeline.
    period_zero_wait: Option<Vec<f64>>,
}

/// Records `weight` requests of latency `latency_s`.
fn record(hist: &mut Histogram<u64>, latency_s: f64, weight: f64) {
    let count = (weight * WEIGHT_SCALE).round() as u64;
    if count > 0 {
        let _ = hist.record_n(((latency_s * 1e6) as u64).max(1), count);
    }
}

impl Quadrature {
    fn new(ep: &Endpoint, timeline: bool) -> Self {
        let u = |j: usize| (j as f64 + 0.5) / POINTS as f64;
        let service: Vec<f64> = (0..POINTS).map(|j| ep.service_time.quantile_secs(u(j))).collect();
        let slo_s = ep.slo.as_secs_f64();
        Quadrature {
            within_slo: service.partition_point(|&s| s <= slo_s),
            service,
            ln_tail: (0..POINTS).map(|k| (-u(k)).ln_1p()).collect(),
            wait_scale: (1.0 + ep.service_time.scv()) / 2.0,
            mean_service_s: ep.mean_service_s(),
            slo_s,
            timeout_s: ep.timeout.as_secs_f64(),
            zero_wait: vec![0.0; POINTS],
            period_zero_wait: timeline.then(|| vec![0.0; POINTS]),
        }
    }

    /// Records `weight` requests whose wait is 0 with probability 1 − c and
    /// exponential of rate θ otherwise.
    fn steady(&mut self, weight: f64, c: f64, theta: f64, out: &mut Outcome, mut period: Option<&mut Histogram<u64>>) {
        let m = POINTS as f64;
        let per_point = weight / m;
        let ln_c = c.ln();
        for (j, &s) in self.service.iter().enumerate() {
            // The waiting-time quantile paired with service quantile j.
            let k = (j * STRIDE) % POINTS;
            if (k as f64 + 0.5) / m < 1.0 - c {
                self.zero_wait[j] += per_point;
                if let Some(z) = self.period_zero_wait.as_mut() {
                    z[j] += per_point;
                }
                continue;
            }
            let latency = s + (ln_c - self.ln_tail[k]) / theta;
            record(&mut out.latency_us, latency, per_point);
            if let Some(h) = period.as_deref_mut() {
                record(h, latency, per_point);
            }
        }
        // P(S + W <= slo) = P(S <= slo) − c E[e^{−θ(slo − S)}; S <= slo]; the
        // terms shrink fast away from the SLO, so the sum stops early.
        let mut tail = 0.0;
        for &s in self.service[..self.within_slo].iter().rev() {
            let x = theta * (self.slo_s - s);
            if x > 40.0 {
                break;
            }
            tail += (-x).exp();
        }
        out.slo_met += weight * (self.within_slo as f64 - c * tail) / m;
        out.waited += weight * c;
        out.latency_sum_s += weight * (self.mean_service_s + if c > 0.0 { c / theta } else { 0.0 });
        out.served += weight;
    }

    /// Records `weight` requests that all wait `wait` seconds behind a backlog.
    fn backlog(&mut self, weight: f64, wait: f64, out: &mut Outcome, mut period: Option<&mut Histogram<u64>>) {
        out.waited += weight;
        if wait > self.timeout_s {
            out.timed_out += weight;
            return;
        }
        let per_point = weight / POINTS as f64;
        for &s in &self.service {
            let latency = s + wait;
            if latency > self.timeout_s {
                out.timed_out += per_point;
                continue;
            }
            out.served += per_point;
            out.latency_sum_s += per_point * latency;
            if latency <= self.slo_s {
                out.slo_met += per_point;
            }
            record(&mut out.latency_us, latency, per_point);
            if let Some(h) = period.as_deref_mut() {
                record(h, latency, per_point);
            }
        }
    }

    /// Records the accumulated zero-wait arrivals.
    fn drain(&mut self, hist: &mut Histogram<u64>) {
        for (j, w) in self.zero_wait.iter_mut().enumerate() {
            record(hist, self.service[j], *w);
            *w = 0.0;
        }
    }

    fn drain_period(&mut self, hist: &mut Histogram<u64>) {
        if let Some(z) = self.period_zero_wait.as_mut() {
            for (j, w) in z.iter_mut().enumerate() {
                record(hist, self.service[j], *w);
                *w = 0.0;
            }
        }
    }
}

pub fn simulate(ep: &Endpoint, streams: &Streams, mut timeline: Option<&mut Vec<TimelineRow>>) -> (Outcome, Control) {
    let end = ep.traffic.duration;
    let profile = ep.traffic.profile(streams);
    let mut control = Control::new(ep, streams, None);
    let mut outcome = Outcome::new();
    let mut latency = Quadrature::new(ep, timeline.is_some());
    let mu = 1.0 / ep.mean_service_s().max(1e-12);
    let step = ep.step;
    let period = control.period();
    let mut period_hist = timeline.as_ref().map(|_| latency_histogram());

    let mut backlog = 0.0_f64;
    let mut regime: Option<Regime> = None;
    let mut regime_weight = 0.0;
    let mut cached = (Regime { servers: 0, rate: -1.0 }, 0.0);
    let mut changes = Changes::default();
    let (mut period_arrivals, mut period_busy, mut period_rejected) = (0.0, 0.0, 0.0);
    let (mut period_per_instance, mut period_orphans) = (0.0, 0.0);
    // ∫ held / in service dt: requests in service (the offered load, up to
    // the servers) and the backlog; Erlang C's short queues are left out.
    let mut period_held = 0.0;
    let mut next_period = period;

    let mut pieces = profile.pieces().peekable();
    let mut t = SimTime::ZERO;
    let mut ticker = Ticker::default();
    while t < end {
        ticker.tick();
        if control.next_due() <= t {
            // A change of fleet shows as a new regime below, which flushes.
            // The fluid engine has no individual requests to fail.
            control.poll(t, &mut changes);
            changes.ready.clear();
            changes.lost.clear();
        }
        while pieces.peek().is_some_and(|&(_, piece_end, _)| piece_end <= t) {
            pieces.next();
        }
        let (rate, piece_end) = pieces.peek().map_or((0.0, end), |&(_, piece_end, r)| (r, piece_end));
        let n = control.fleet.in_service();
        let servers = n.saturating_mul(ep.workers);
        let capacity = servers as f64 * mu;
        // Steady stretches (no backlog, or no instance at all) change nothing
        // step to step: take every step up to the next boundary at once.
        let steps = if servers == 0 || (backlog <= 0.0 && rate < capacity) {
            // Period ends matter only to an autoscaler or a timeline.
            let periods_matter = control.has_autoscaler() || timeline.is_some();
            let period_bound = if periods_matter { next_period } else { SimTime::MAX };
            let mut boundary = piece_end.min(period_bound).min(control.next_due()).min(end);
            if t < ep.warmup {
                boundary = boundary.min(ep.warmup);
            }
            (boundary - t).as_nanos().div_ceil(step.as_nanos()).max(1)
        } else {
            1
        };
        let stretch_end = (t + step.times(steps)).min(end);
        let h = (stretch_end - t).as_secs_f64();
        let arrivals = rate * h;
        let counted = if t >= ep.warmup { arrivals } else { 0.0 };
        outcome.requests += counted;
        period_arrivals += arrivals;

        if n == 0 {
            period_orphans += arrivals;
        } else {
            period_per_instance += arrivals / n as f64;
            period_held += ((rate / mu).min(servers as f64) + backlog) / n as f64 * h;
        }
        let limit = f64::from(ep.queue_limit) * f64::from(n);
        if servers == 0 {
            outcome.rejected += counted;
            period_rejected += arrivals;
            backlog = 0.0;
        } else if backlog <= 0.0 && rate < capacity {
            let now = Regime { servers, rate };
            if regime != Some(now) {
                flush(&mut regime, &mut regime_weight, &cached, mu, &mut latency, &mut outcome, period_hist.as_mut());
                if cached.0 != now {
                    cached = (now, erlang_c(servers, rate / mu));
                }
                regime = Some(now);
            }
            regime_weight += counted;
            period_busy += rate / capacity * h;
        } else {
            flush(&mut regime, &mut regime_weight, &cached, mu, &mut latency, &mut outcome, period_hist.as_mut());
            // Arrivals in this step wait behind the backlog at the step's end.
            backlog = (backlog + (rate - capacity) * h).max(0.0);
            let mut admitted = counted;
            if backlog > limit {
                let rejected = (backlog - limit).min(arrivals);
                let share = if arrivals > 0.0 { rejected / arrivals } else { 0.0 };
                outcome.rejected += counted * share;
                admitted = counted * (1.0 - share);
                period_rejected += rejected;
                backlog = limit;
            }
            latency.backlog(admitted, backlog / capacity, &mut outcome, period_hist.as_mut());
            // Requests that would wait past the timeout leave the queue.
            backlog = backlog.min(capacity * latency.timeout_s);
            period_busy += h;
        }

        t += step.times(steps);
        while t >= next_period && next_period <= end {
            let share = period_busy / period.as_secs_f64();
            let held = held_per_copy(period_held, period_orphans > 0.0, period);
            let metric = control.period_end(next_period, period_per_instance, period_orphans, share, held);
            if let Some(rows) = timeline.as_deref_mut() {
                flush(&mut regime, &mut regime_weight, &cached, mu, &mut latency, &mut outcome, period_hist.as_mut());
                let hist = period_hist.as_mut().expect("kept with the timeline");
                latency.drain_period(hist);
                rows.push(TimelineRow {
                    instances_in_service: control.fleet.in_service(),
                    instances_pending: control.fleet.pending(),
                    queue: backlog,
                    rejected: period_rejected,
                    metric,
                    ..TimelineRow::new(next_period, period, period_arrivals, hist)
                });
            }
            period_arrivals = 0.0;
            period_per_instance = 0.0;
            period_orphans = 0.0;
            period_held = 0.0;
            period_busy = 0.0;
            period_rejected = 0.0;
            next_period += period;
        }
    }
    flush(&mut regime, &mut regime_weight, &cached, mu, &mut latency, &mut outcome, period_hist.as_mut());
    latency.drain(&mut outcome.latency_us);
    // The backlog left at the end is served after the window (its latency is
    // already counted at arrival).
    (outcome, control)
}

/// Records the requests accumulated in the current steady regime.
fn flush(
    regime: &mut Option<Regime>,
    weight: &mut f64,
    cached: &(Regime, f64),
    mu: f64,
    latency: &mut Quadrature,
    outcome: &mut Outcome,
    period: Option<&mut Histogram<u64>>,
) {
    if let Some(r) = regime.take()
        && *weight > 0.0
    {
        debug_assert!(cached.0 == r);
        let theta = (r.servers as f64 * mu - r.rate) / latency.wait_scale;
        latency.steady(*weight, cached.1, theta, outcome, period);
    }
    *weight = 0.0;
}
