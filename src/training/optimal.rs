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

use crate::spot::trace::{Cursor, SpotTrace};
use crate::time::SimTime;

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
        // Stopping on-demand at a change is free.
        for u in 0..=n {
            let v = od[u];
            better(&mut idle[u], v);
        }
        let mut new_idle = idle.clone();
        let mut new_od = vec![NONE; n + 1];
        // On-demand running on through the stretch, or finishing in it.
        for u in 0..n {
            if od[u].cost.is_finite() {
                let rest = left(u);
                if rest <= len {
                    done(od[u].plus(po, rest, false), t + rest);
                } else {
                    better(&mut new_od[(u + units(len)).min(n)], od[u].plus(po, len, false));
                }
            }
        }
        // Launches from waiting: on-demand always, spot when available.
        for (price, spot) in [(po, false), (ps, true)] {
            if spot && !available {
                continue;
            }
            let target = if spot { &mut new_idle } else { &mut new_od };
            for (from, overhead) in [(&idle[..], o), (&fresh[..], o1)] {
                if overhead > len {
                    continue;
                }
                window_launch(from, target, units(len - overhead), price, overhead, len, q, spot);
                for (u, &v) in from.iter().enumerate().take(n) {
                    if v.cost.is_finite() && overhead + left(u) <= len {
                        done(v.plus(price, overhead + left(u), spot), t + overhead + left(u));
                    }
                }
            }
        }
        // Reaching the top of the grid (by rounding) counts as done at the change.
        for v in [new_idle[n], new_od[n]] {
            if v.cost.is_finite() {
                done(v, end);
            }
        }
        new_idle[n] = NONE;
        new_od[n] = NONE;
        idle = new_idle;
        od = new_od;
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

/// Launches from waiting states that end the stretch running: from `u` to
/// any `u + k`, `k <= span`, at `price × (overhead + k q)` (at most the
/// stretch). A sliding-window minimum of `cost(u) - price q u` keeps it
/// linear in the grid.
#[allow(clippy::too_many_arguments)]
fn window_launch(from: &[Val], to: &mut [Val], span: usize, price: f64, overhead: u64, len: u64, q: u64, spot: bool) {
    let step = price * q as f64;
    let key = |u: usize| from[u].cost - step * u as f64;
    let mut window = std::collections::VecDeque::new();
    for target in 0..to.len() {
        if target < from.len() && from[target].cost.is_finite() {
            while window.back().is_some_and(|&b| key(b) >= key(target)) {
                window.pop_back();
            }
            window.push_back(target);
        }
        while window.front().is_some_and(|&f| f + span < target) {
            window.pop_front();
        }
        if let Some(&u) = window.front() {
            let time = (overhead + (target - u) as u64 * q).min(len);
            better(&mut to[target], from[u].plus(price, time, spot));
        }
    }
}
