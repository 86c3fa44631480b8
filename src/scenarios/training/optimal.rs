//! The `optimal` policy: the cheapest schedule that meets the deadline with
//! full knowledge of one trace, by dynamic programming over the trace's
//! availability changes before the deadline.
//!
//! The job is a fluid: it needs `work` plus its checkpoint writes of time on
//! instances; progress is never lost (the planner knows every reclaim and
//! saves just before it, for free); every launch pays the mean startup (and
//! the mean restore after the first) without progress. Spot runs only while
//! the trace is available, and a spot launch runs to the end of its stretch
//! or to the job's end. State at each change: progress, on a grid of
//! `GRID` steps rounded in the job's favour, and whether on-demand is
//! running. An on-demand or spot launch may start anywhere within a stretch
//! (an on-demand block ends at a change or at the job's end). The result is
//! a lower bound on every policy that meets the deadline on the same trace
//! and offset (see `docs/deadline-policies.md`).

use crate::base::time::SimTime;
use crate::spot::trace::{Cursor, SpotTrace};

/// Progress steps; progress is rounded up to them, so the bound is optimistic
/// by at most one step (work/4000) per launch.
const GRID: usize = 4000;

/// What the cheapest schedule comes to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// USD per instance.
    pub cost: f64,
    pub spot: SimTime,
    pub on_demand: SimTime,
    pub finish: SimTime,
    pub met: bool,
}

#[derive(Clone, Copy)]
struct Val {
    cost: f64,
    spot: u64,
    od: u64,
}

const NONE: Val = Val { cost: f64::INFINITY, spot: 0, od: 0 };

impl Val {
    fn plus(self, price_per_ns: f64, ns: u64, spot: bool) -> Val {
        let cost = self.cost + price_per_ns * ns as f64;
        if spot { Val { cost, spot: self.spot + ns, ..self } } else { Val { cost, od: self.od + ns, ..self } }
    }
}

fn better(a: &mut Val, b: Val) {
    if b.cost < a.cost {
        *a = b;
    }
}

/// Inputs of the plan, in ns and USD per instance-hour.
pub struct Problem<'a> {
    pub trace: &'a SpotTrace,
    pub offset: SimTime,
    pub deadline: SimTime,
    /// Work plus its writes.
    pub need: SimTime,
    pub first_launch: SimTime,
    pub relaunch: SimTime,
    pub spot_price: f64,
    pub on_demand_price: f64,
}

pub fn cheapest(p: &Problem) -> Schedule {
    let per_ns = |usd_h: f64| usd_h / 3.6e12;
    let (ps, po) = (per_ns(p.spot_price), per_ns(p.on_demand_price));
    let need = p.need.as_nanos().max(1);
    let q = need.div_ceil(GRID as u64).max(1);
    let n = need.div_ceil(q) as usize;
    // Progress units gained in `ns`, in the job's favour; work left at `u`.
    let units = |ns: u64| (ns.div_ceil(q) as usize).min(n);
    let left = |u: usize| need.saturating_sub(u as u64 * q);
    let (o1, o) = (p.first_launch.as_nanos(), p.relaunch.as_nanos());
    // Never launched: waiting costs nothing and the first launch has no restore.
    let fresh = [Val { cost: 0.0, spot: 0, od: 0 }];

    let mut idle = vec![NONE; n + 1];
    let mut od = vec![NONE; n + 1];
    let mut new_idle = vec![NONE; n + 1];
    let mut new_od = vec![NONE; n + 1];
    // The live part of the grid: no progress beyond the time elapsed, and
    // none so little that the rest no longer fits before the deadline.
    let (mut lo, mut hi) = (0usize, 0usize);
    let mut best: Option<(Val, u64)> = None;
    let mut done = |v: Val, at: u64| {
        if best.is_none_or(|(b, _)| v.cost < b.cost) {
            best = Some((v, at));
        }
    };

    let mut cursor = Cursor::default();
    let deadline = p.deadline.as_nanos();
    let mut t = 0u64;
    while t < deadline {
        let now = SimTime::from_nanos(t);
        let available = p.trace.available_from(&mut cursor, p.offset, now);
        let next = if available {
            p.trace.next_unavailable_from(&mut cursor, p.offset, now)
        } else {
            p.trace.next_available_from(&mut cursor, p.offset, now)
        };
        let end = next.as_nanos().min(deadline);
        let len = end - t;
        let new_lo = lo.max(need.saturating_sub(deadline - end).div_ceil(q) as usize);
        let new_hi = (hi + units(len)).min(n);
        // Stopping on-demand at a change is free; waiting keeps its state.
        for u in lo..=hi {
            let v = od[u];
            better(&mut idle[u], v);
        }
        for u in new_lo..=new_hi {
            new_idle[u] = if u <= hi { idle[u] } else { NONE };
            new_od[u] = NONE;
        }
        // On-demand running on through the stretch, or finishing in it.
        for (u, &v) in od.iter().enumerate().take(hi.min(n - 1) + 1).skip(lo) {
            if v.cost.is_finite() {
                let rest = left(u);
                if rest <= len {
                    done(v.plus(po, rest, false), t + rest);
                } else {
                    let to = (u + units(len)).min(n);
                    if to >= new_lo {
                        better(&mut new_od[to], v.plus(po, len, false));
                    }
                }
            }
        }
        // Launches from waiting: on-demand always, spot when available.
        for (price, spot) in [(po, false), (ps, true)] {
            if spot && !available {
                continue;
            }
            let target = if spot { &mut new_idle } else { &mut new_od };
            for (from, overhead, src) in [(&idle[..], o, (lo, hi)), (&fresh[..], o1, (0, 0))] {
                if overhead > len {
                    continue;
                }
                let span = units(len - overhead);
                let launch = Launch { price, overhead, len, q, spot };
                window_launch(from, src, target, (new_lo, new_hi), span, &launch);
                for (u, &v) in from.iter().enumerate().take(src.1.min(n - 1) + 1).skip(src.0) {
                    if v.cost.is_finite() && overhead + left(u) <= len {
                        done(v.plus(price, overhead + left(u), spot), t + overhead + left(u));
                    }
                }
            }
        }
        // Reaching the top of the grid (by rounding) counts as done at the change.
        if new_hi == n {
            for v in [new_idle[n], new_od[n]] {
                if v.cost.is_finite() {
                    done(v, end);
                }
            }
            new_idle[n] = NONE;
            new_od[n] = NONE;
        }
        std::mem::swap(&mut idle, &mut new_idle);
        std::mem::swap(&mut od, &mut new_od);
        if new_lo > new_hi {
            // Nothing launched so far can still finish in time.
            idle[new_lo] = NONE;
            od[new_lo] = NONE;
        }
        (lo, hi) = (new_lo, new_hi.max(new_lo));
        t = end;
    }
    match best {
        Some((v, at)) => Schedule {
            cost: v.cost,
            spot: SimTime::from_nanos(v.spot),
            on_demand: SimTime::from_nanos(v.od),
            finish: SimTime::from_nanos(at),
            met: true,
        },
        // Nothing meets the deadline: on-demand from the start, late.
        None => Schedule {
            cost: po * (o1 + need) as f64,
            spot: SimTime::ZERO,
            on_demand: SimTime::from_nanos(o1 + need),
            finish: SimTime::from_nanos(o1 + need),
            met: false,
        },
    }
}

/// One kind of launch within a stretch of `len`.
struct Launch {
    price: f64,
    overhead: u64,
    len: u64,
    q: u64,
    spot: bool,
}

/// Launches from waiting states `from[src]` that end the stretch running:
/// from `u` to any `u + k`, `k <= span`, at `price × (overhead + k q)` (at
/// most the stretch), into `to[dst]`. A sliding-window minimum of
/// `cost(u) - price q u` keeps it linear in the grid.
fn window_launch(from: &[Val], src: (usize, usize), to: &mut [Val], dst: (usize, usize), span: usize, l: &Launch) {
    let step = l.price * l.q as f64;
    let key = |u: usize| from[u].cost - step * u as f64;
    let mut window = std::collections::VecDeque::new();
    let mut next = src.0.max(dst.0.saturating_sub(span));
    for (target, slot) in to.iter_mut().enumerate().take(dst.1 + 1).skip(dst.0) {
        while next <= target.min(src.1) {
            if from[next].cost.is_finite() {
                while window.back().is_some_and(|&b| key(b) >= key(next)) {
                    window.pop_back();
                }
                window.push_back(next);
            }
            next += 1;
        }
        while window.front().is_some_and(|&f| f + span < target) {
            window.pop_front();
        }
        if let Some(&u) = window.front() {
            let time = (l.overhead + (target - u) as u64 * l.q).min(l.len);
            better(slot, from[u].plus(l.price, time, l.spot));
        }
    }
}
