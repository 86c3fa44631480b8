//! SageMaker inference components (SPEC 2.12): several models share an
//! endpoint's instances, each as copies that reserve GPUs, CPU and memory on
//! one instance. A component's copies are its `Endpoint`'s "instances" to the
//! LLM engine and the control plane (so its autoscaler scales copies); the
//! `Pool` places them on instances and runs managed instance scaling.
//! `docs/inference-components.md` has the rules and their sources.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;

use super::design::Endpoint;
use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::engine::{Purpose, SimRng, Streams};

/// What one copy reserves, or what one instance offers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Resources {
    pub gpus: u32,
    pub cpus: f64,
    pub memory_gib: f64,
}

impl Resources {
    fn holds(&self, need: &Resources) -> bool {
        self.gpus >= need.gpus && self.cpus >= need.cpus && self.memory_gib >= need.memory_gib
    }

    fn take(&mut self, need: &Resources) {
        self.gpus -= need.gpus;
        self.cpus -= need.cpus;
        self.memory_gib -= need.memory_gib;
    }

    fn give(&mut self, need: &Resources) {
        self.gpus += need.gpus;
        self.cpus += need.cpus;
        self.memory_gib += need.memory_gib;
    }
}

/// SageMaker's `InferenceComponentSchedulingConfig.PlacementStrategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementStrategy {
    /// Packs copies onto fewer instances: the fullest instance with room.
    Binpack,
    /// Spreads copies evenly: the instance with the fewest of this
    /// component's copies.
    Spread,
}

/// One `[[inference.components]]` entry.
#[derive(Clone, Debug, Serialize)]
pub struct Component {
    pub name: String,
    /// What one copy reserves on its instance.
    pub copy: Resources,
    pub min_copies: u32,
    pub max_copies: u32,
    pub placement: PlacementStrategy,
    /// The component as an endpoint whose instances are its copies: the LLM
    /// engine's design, its autoscaler on copies, its own traffic. Its
    /// `price_per_hour` is the instance price's GPU share of one copy.
    #[serde(flatten)]
    pub endpoint: Endpoint,
}

/// The endpoint's instances: their size, managed instance scaling's limits
/// and the two start-ups.
#[derive(Clone, Debug, Serialize)]
pub struct PoolTerms {
    /// What one instance offers the copies.
    pub size: Resources,
    /// Managed instance scaling's `MinInstanceCount` and `MaxInstanceCount`.
    pub min_instances: u32,
    pub max_instances: u32,
    /// A new instance: launch to in service, its first copy loaded.
    pub startup: Dist,
    /// A new copy on an instance that has room (no provisioning, no image pull).
    pub copy_startup: Dist,
}

/// An endpoint with inference components.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentsEndpoint {
    pub instance: String,
    /// On-demand USD per instance-hour.
    pub price_per_hour: f64,
    #[serde(flatten)]
    pub pool: PoolTerms,
    /// `false`: every component on an endpoint of its own (the comparison
    /// design), each with `min_instances = 0` and the same maximum.
    pub shared: bool,
    pub components: Vec<Component>,
    /// The metric and timeline column names (`name_columns`).
    #[serde(skip)]
    pub names: (&'static [&'static str], &'static [&'static str]),
}

/// One instance of the pool.
#[derive(Clone, Debug)]
struct Host {
    free: Resources,
    /// Copies placed here, per component.
    copies: Vec<u32>,
    launched: SimTime,
    ready: SimTime,
    ended: SimTime,
}

impl Host {
    fn placed(&self) -> u32 {
        self.copies.iter().sum()
    }
}

const NO_HOST: u32 = u32::MAX;
const NEVER_FITS: Resources = Resources { gpus: u32::MAX, cpus: f64::INFINITY, memory_gib: f64::INFINITY };

/// An endpoint's instances and the copies on them: placement, managed
/// instance scaling (an instance is added when a copy does not fit and
/// released when it holds none, SageMaker's `IDLE_RELEASE`) and what each
/// instance-hour was reserved for.
#[derive(Debug)]
pub struct Pool {
    size: Resources,
    min_instances: u32,
    max_instances: u32,
    startup: Dist,
    copy_startup: Dist,
    startup_rng: SimRng,
    copy_rng: SimRng,
    hosts: Vec<Host>,
    /// Per component: what a copy needs, how it is placed, and each copy's host.
    demand: Vec<(Resources, PlacementStrategy)>,
    copies: Vec<Vec<u32>>,
    alive: u32,
}

/// A fleet's link to the pool its copies live on.
#[derive(Clone, Debug)]
pub struct PoolLink {
    pub pool: Rc<RefCell<Pool>>,
    pub component: usize,
}

impl Pool {
    /// A pool of `terms` for copies that need `demand` (per component
    /// index; `None`: the component lives elsewhere), with `min_instances`
    /// in service from time zero; `stream` tells pools of one replication apart.
    pub fn new(
        terms: &PoolTerms,
        demand: &[Option<(Resources, PlacementStrategy)>],
        streams: &Streams,
        stream: u64,
    ) -> Self {
        let mut pool = Pool {
            size: terms.size,
            min_instances: terms.min_instances,
            max_instances: terms.max_instances,
            startup: terms.startup.clone(),
            copy_startup: terms.copy_startup.clone(),
            startup_rng: streams.rng_indexed(Purpose::Startup, 2 * stream + 1),
            copy_rng: streams.rng_indexed(Purpose::Startup, 2 * stream + 2),
            hosts: Vec::new(),
            // A component placed elsewhere never fits here.
            demand: demand.iter().map(|d| d.unwrap_or((NEVER_FITS, PlacementStrategy::Binpack))).collect(),
            copies: vec![Vec::new(); demand.len()],
            alive: 0,
        };
        for _ in 0..terms.min_instances {
            pool.add_host(SimTime::ZERO, SimTime::ZERO);
        }
        pool
    }

    fn add_host(&mut self, now: SimTime, ready: SimTime) -> usize {
        self.alive += 1;
        self.hosts.push(Host {
            free: self.size,
            copies: vec![0; self.demand.len()],
            launched: now,
            ready,
            ended: SimTime::MAX,
        });
        self.hosts.len() - 1
    }

    /// The live instance that takes a copy of `component` by its strategy.
    fn choose(&self, component: usize) -> Option<usize> {
        let (need, strategy) = self.demand[component];
        let fits =
            (0..self.hosts.len()).filter(|&h| self.hosts[h].ended == SimTime::MAX && self.hosts[h].free.holds(&need));
        match strategy {
            // Fewest free GPUs first (then least memory), ties by age.
            PlacementStrategy::Binpack => fits.min_by(|&a, &b| {
                let (fa, fb) = (&self.hosts[a].free, &self.hosts[b].free);
                (fa.gpus, fa.memory_gib, fa.cpus, a).partial_cmp(&(fb.gpus, fb.memory_gib, fb.cpus, b)).expect("finite")
            }),
            // Fewest of this component's copies, then the most free GPUs.
            PlacementStrategy::Spread => {
                fits.min_by_key(|&h| (self.hosts[h].copies[component], std::cmp::Reverse(self.hosts[h].free.gpus), h))
            }
        }
    }

    /// Places copy `copy` of `component` at `now`: on an instance with room
    /// (in service at `max(instance ready, now + copy_startup)`), else on a
    /// new instance (in service after the instance's `startup`). `initial`:
    /// in service at time zero. `None`: no room and `max_instances` reached.
    pub fn place(&mut self, component: usize, copy: usize, now: SimTime, initial: bool) -> Option<SimTime> {
        let (need, _) = self.demand[component];
        let (host, ready) = match self.choose(component) {
            Some(h) if initial => (h, SimTime::ZERO),
            Some(h) => (h, self.hosts[h].ready.max(now + self.copy_startup.sample(&mut self.copy_rng))),
            None if self.alive >= self.max_instances => return None,
            None => {
                let ready = if initial { SimTime::ZERO } else { now + self.startup.sample(&mut self.startup_rng) };
                (self.add_host(now, ready), ready)
            }
        };
        let h = &mut self.hosts[host];
        h.free.take(&need);
        h.copies[component] += 1;
        let placed = &mut self.copies[component];
        if placed.len() <= copy {
            placed.resize(copy + 1, NO_HOST);
        }
        placed[copy] = host as u32;
        Some(ready)
    }

    /// Copy `copy` of `component` ended at `now`: its room is free, and an
    /// instance left with no copy is released (down to `min_instances`).
    pub fn release(&mut self, component: usize, copy: usize, now: SimTime) {
        let Some(host) = self.copies[component].get(copy).copied().filter(|&h| h != NO_HOST) else { return };
        self.copies[component][copy] = NO_HOST;
        let (need, _) = self.demand[component];
        let h = &mut self.hosts[host as usize];
        h.free.give(&need);
        h.copies[component] -= 1;
        if h.placed() == 0 && self.alive > self.min_instances {
            h.ended = now;
            self.alive -= 1;
        }
    }

    /// Instances live (in service or starting) and of those in service at `now`.
    pub fn counts(&self, now: SimTime) -> (u32, u32) {
        let live = self.hosts.iter().filter(|h| h.launched <= now && h.ended > now);
        let (mut alive, mut ready) = (0, 0);
        for h in live {
            alive += 1;
            ready += u32::from(h.ready <= now);
        }
        (alive, ready)
    }

    /// Billed instance-hours over [0, end] (from launch to release).
    pub fn instance_hours(&self, end: SimTime) -> f64 {
        self.hosts.iter().map(|h| (h.ended.min(end) - h.launched.min(end)).as_hours_f64()).sum()
    }

    /// The time-average of instances in service over [0, end], and the most
    /// in service at once.
    pub fn in_service(&self, end: SimTime) -> (f64, f64) {
        if end.is_zero() {
            return (f64::NAN, f64::NAN);
        }
        let mut changes: Vec<(SimTime, i32)> = Vec::new();
        for h in &self.hosts {
            if h.ready < h.ended && h.ready <= end {
                changes.push((h.ready, 1));
                changes.push((h.ended.min(end), -1));
            }
        }
        changes.sort();
        let (mut n, mut max, mut area, mut last) = (0i32, 0i32, 0.0, SimTime::ZERO);
        for (t, d) in changes {
            area += f64::from(n) * (t - last).as_secs_f64();
            last = t;
            n += d;
            max = max.max(n);
        }
        (area / end.as_secs_f64(), f64::from(max))
    }
}

/// The endpoint's own metrics, before each component's.
pub const ENDPOINT_METRICS: [&str; 8] = [
    "cost_usd",
    "instance_hours",
    "instances_mean",
    "instances_max",
    "gpu_hours",
    "reserved_gpu_hours",
    "idle_gpu_hours",
    "idle_cost_usd",
];

/// The endpoint's timeline columns, before each component's.
const ENDPOINT_TIMELINE: [&str; 3] = ["t_s", "instances_in_service", "instances_pending"];
const COMPONENT_TIMELINE: [&str; 3] = ["copies_in_service", "copies_pending", "arrival_rate"];

/// A component's metric, named for what it counts: its "instances" are copies.
fn component_metric(name: &str) -> &str {
    match name {
        "instance_hours" => "copy_hours",
        "instances_mean" => "copies_mean",
        "instances_max" => "copies_max",
        other => other,
    }
}

/// Names made once per design and kept for the run (the engine takes
/// `'static` names; a design is read once per sweep point).
fn leak(names: Vec<String>) -> &'static [&'static str] {
    let names: Vec<&'static str> = names.into_iter().map(|n| &*Box::leak(n.into_boxed_str())).collect();
    Box::leak(names.into_boxed_slice())
}

/// What one replication of every component left.
struct Replication {
    runs: Vec<(super::design::Outcome, super::llm_engine::LlmOutcome, super::control::Control)>,
    pools: Vec<Rc<RefCell<Pool>>>,
}

impl ComponentsEndpoint {
    fn duration(&self) -> SimTime {
        self.components[0].endpoint.traffic.duration
    }

    /// One replication, all components in one time order (ties: the lower
    /// component first); with `timeline`, a row of `timeline_columns` a minute.
    fn simulate(&self, streams: &Streams, mut timeline: Option<&mut Vec<f64>>) -> Replication {
        let all: Vec<usize> = (0..self.components.len()).collect();
        let demand = |c: usize| Some((self.components[c].copy, self.components[c].placement));
        let pools: Vec<Rc<RefCell<Pool>>> = if self.shared {
            let demands: Vec<_> = all.iter().map(|&c| demand(c)).collect();
            vec![Rc::new(RefCell::new(Pool::new(&self.pool, &demands, streams, 0)))]
        } else {
            // Endpoints of their own: instances follow each one's copies.
            let terms = PoolTerms { min_instances: 0, ..self.pool.clone() };
            all.iter()
                .map(|&c| {
                    let demands: Vec<_> = all.iter().map(|&k| if k == c { demand(k) } else { None }).collect();
                    Rc::new(RefCell::new(Pool::new(&terms, &demands, streams, c as u64 + 1)))
                })
                .collect()
        };
        let pool_of = |c: usize| if self.shared { &pools[0] } else { &pools[c] };
        let member: Vec<Streams> = all.iter().map(|&c| streams.member(c as u64)).collect();
        let mut runs: Vec<super::llm_engine::Run> = all
            .iter()
            .map(|&c| {
                let link = PoolLink { pool: pool_of(c).clone(), component: c };
                super::llm_engine::Run::new(&self.components[c].endpoint, &member[c], None, Some(link))
            })
            .collect();
        let end = self.duration();
        let minute = SimTime::from_mins(1);
        let mut mark = SimTime::ZERO;
        let mut last_requests = vec![0.0; runs.len()];
        let mut record = |at: SimTime, runs: &[super::llm_engine::Run], rows: &mut Vec<f64>| {
            let (mut alive, mut ready) = (0, 0);
            for p in &pools {
                let (a, r) = p.borrow().counts(at);
                alive += a;
                ready += r;
            }
            rows.extend([at.as_secs_f64(), f64::from(ready), f64::from(alive - ready)]);
            for (run, last) in runs.iter().zip(last_requests.iter_mut()) {
                let fleet = &run.control().fleet;
                let requests = run.requests();
                rows.extend([f64::from(fleet.in_service()), f64::from(fleet.pending()), (requests - *last) / 60.0]);
                *last = requests;
            }
        };
        loop {
            let next = runs.iter().enumerate().filter_map(|(c, r)| r.next_time().map(|t| (t, c))).min();
            if let Some(rows) = timeline.as_deref_mut() {
                let until = next.map_or(end, |(t, _)| t.min(end + minute));
                while mark <= until && mark <= end {
                    record(mark, &runs, rows);
                    mark += minute;
                }
            }
            let Some((_, c)) = next else { break };
            runs[c].step();
        }
        let runs = runs.into_iter().map(|r| {
            let (o, lo, control, _) = r.finish();
            (o, lo, control)
        });
        Replication { runs: runs.collect(), pools }
    }

    /// Makes the metric and timeline names, once the components are read.
    pub fn name_columns(&mut self) {
        self.names = (self.metric_list(), self.timeline_columns());
    }

    fn metric_list(&self) -> &'static [&'static str] {
        let mut names: Vec<String> = ENDPOINT_METRICS.iter().map(|m| m.to_string()).collect();
        for c in &self.components {
            names.extend(c.endpoint.metric_names().iter().map(|m| format!("{}.{}", c.name, component_metric(m))));
        }
        leak(names)
    }

    fn timeline_columns(&self) -> &'static [&'static str] {
        let mut names: Vec<String> = ENDPOINT_TIMELINE.iter().map(|m| m.to_string()).collect();
        for c in &self.components {
            names.extend(COMPONENT_TIMELINE.iter().map(|m| format!("{}.{m}", c.name)));
        }
        leak(names)
    }
}

impl crate::engine::Model for ComponentsEndpoint {
    fn metrics(&self) -> &'static [&'static str] {
        self.names.0
    }

    fn replicate(&self, streams: Streams, out: &mut [f64]) {
        let Replication { mut runs, pools } = self.simulate(&streams, None);
        let end = self.duration();
        let hours: f64 = pools.iter().map(|p| p.borrow().instance_hours(end)).sum();
        let (mut mean, mut max) = (0.0, 0.0);
        for p in &pools {
            let (m, x) = p.borrow().in_service(end);
            mean += m;
            max += x;
        }
        let gpus = f64::from(self.pool.size.gpus);
        let (head, mut tail) = out.split_at_mut(ENDPOINT_METRICS.len());
        let mut reserved = 0.0;
        for (c, (o, lo, control)) in self.components.iter().zip(runs.iter_mut()) {
            let (mine, rest) = tail.split_at_mut(c.endpoint.metric_names().len());
            c.endpoint.llm_values(o, lo, control, mine);
            reserved += control.fleet.instance_hours(end) * f64::from(c.copy.gpus);
            tail = rest;
        }
        let idle = hours * gpus - reserved;
        head.copy_from_slice(&[
            hours * self.price_per_hour,
            hours,
            mean,
            max,
            hours * gpus,
            reserved,
            idle,
            idle * self.price_per_hour / gpus,
        ]);
    }
}

impl crate::scenarios::Design for ComponentsEndpoint {
    fn tables(&self) -> Vec<(&'static str, &dyn erased_serde::Serialize)> {
        vec![("inference", self)]
    }

    fn work(&self) -> crate::scenarios::Work {
        let mut parts = self.components.iter().map(|c| c.endpoint.work());
        let first = parts.next().expect("at least one component");
        parts.fold(first, |a, b| crate::scenarios::Work {
            events: a.events + b.events,
            seconds: a.seconds + b.seconds,
            ..a
        })
    }

    fn timeline(&self, streams: Streams) -> Option<crate::scenarios::Timeline> {
        let mut rows = Vec::new();
        self.simulate(&streams, Some(&mut rows));
        Some(crate::scenarios::Timeline { columns: self.names.1, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(x: u64) -> SimTime {
        SimTime::from_mins(x)
    }

    fn terms(gpus: u32, min_instances: u32, max_instances: u32) -> PoolTerms {
        PoolTerms {
            size: Resources { gpus, cpus: 48.0, memory_gib: 192.0 },
            min_instances,
            max_instances,
            startup: Dist::Constant(m(10)),
            copy_startup: Dist::Constant(m(1)),
        }
    }

    fn copy(gpus: u32, strategy: PlacementStrategy) -> Option<(Resources, PlacementStrategy)> {
        Some((Resources { gpus, cpus: 0.0, memory_gib: 0.0 }, strategy))
    }

    /// k copies of g GPUs on instances of G GPUs take ceil(k / floor(G / g))
    /// instances, with either strategy, every (G, g, k) up to 8 GPUs and 24 copies.
    #[test]
    fn copies_pack_into_the_closed_form_number_of_instances() {
        for strategy in [PlacementStrategy::Binpack, PlacementStrategy::Spread] {
            for big in 1..=8u32 {
                for g in 1..=big {
                    let mut pool = Pool::new(&terms(big, 0, 1000), &[copy(g, strategy)], &Streams::new(1, 0), 0);
                    for k in 1..=24u32 {
                        assert!(pool.place(0, k as usize - 1, m(k as u64), false).is_some());
                        let per_instance = big / g;
                        let want = k.div_ceil(per_instance);
                        assert_eq!(pool.alive, want, "{strategy:?}: {k} copies of {g} GPUs on {big}-GPU instances");
                    }
                }
            }
        }
    }

    #[test]
    fn a_copy_with_room_takes_the_copy_startup_and_one_without_a_new_instance() {
        let mut pool = Pool::new(&terms(4, 0, 10), &[copy(2, PlacementStrategy::Binpack)], &Streams::new(1, 0), 0);
        // The first copy needs an instance: ready after the instance's 10 minutes.
        assert_eq!(pool.place(0, 0, m(0), false), Some(m(10)));
        // The second fits beside it while it starts: ready with the instance.
        assert_eq!(pool.place(0, 1, m(2), false), Some(m(10)));
        assert_eq!(pool.counts(m(5)), (1, 0));
        // The instance is full: the third needs a new one.
        assert_eq!(pool.place(0, 2, m(20), false), Some(m(30)));
        // One copy ends on the first instance; a copy there takes 1 minute.
        pool.release(0, 0, m(40));
        assert_eq!(pool.place(0, 3, m(41), false), Some(m(42)));
        assert_eq!(pool.counts(m(41)), (2, 2));
    }

    #[test]
    fn an_instance_with_no_copy_is_released_down_to_the_minimum() {
        let mut pool = Pool::new(&terms(1, 1, 3), &[copy(1, PlacementStrategy::Binpack)], &Streams::new(1, 0), 0);
        assert_eq!(pool.place(0, 0, m(0), true), Some(SimTime::ZERO), "the minimum's instance takes it at once");
        assert_eq!(pool.place(0, 1, m(0), false), Some(m(10)));
        assert_eq!(pool.place(0, 2, m(0), false), Some(m(10)));
        assert_eq!(pool.place(0, 3, m(0), false), None, "max_instances reached, no room");
        pool.release(0, 1, m(30));
        pool.release(0, 0, m(30));
        pool.release(0, 2, m(60));
        // The first two empty at 30 minutes and go; the last one to empty is
        // the minimum's and stays.
        assert_eq!(pool.counts(m(90)), (1, 1));
        let hours = pool.instance_hours(m(120));
        assert!((hours - (0.5 + 0.5 + 2.0)).abs() < 1e-12, "{hours}");
        let (mean, max) = pool.in_service(m(120));
        assert_eq!(max, 3.0);
        // 1 until 10 min, 3 until 30, then 1.
        assert!((mean - (10.0 + 3.0 * 20.0 + 90.0) / 120.0).abs() < 1e-12, "{mean}");
    }

    #[test]
    fn binpack_fills_the_fullest_instance_and_spread_the_emptiest() {
        for (strategy, want) in [(PlacementStrategy::Binpack, 0), (PlacementStrategy::Spread, 1)] {
            let demand = [copy(2, PlacementStrategy::Binpack), copy(1, strategy)];
            let mut pool = Pool::new(&terms(4, 2, 2), &demand, &Streams::new(1, 0), 0);
            // Instance 0 holds a 2-GPU copy, instance 1 nothing.
            pool.place(0, 0, m(0), true);
            pool.place(1, 0, m(1), false);
            assert_eq!(pool.copies[1][0], want, "{strategy:?}");
        }
    }

    #[test]
    fn cpus_and_memory_limit_a_copy_as_gpus_do() {
        let need = Resources { gpus: 1, cpus: 20.0, memory_gib: 10.0 };
        let demand = [Some((need, PlacementStrategy::Binpack))];
        let mut pool = Pool::new(&terms(4, 0, 10), &demand, &Streams::new(1, 0), 0);
        for k in 0..4 {
            pool.place(0, k, m(0), false);
        }
        // 48 vCPUs hold two copies of 20, though the GPUs would take four.
        assert_eq!(pool.alive, 2);
    }
}
