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

/// An endpoint with inference components.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentsEndpoint {
    pub instance: String,
    /// On-demand USD per instance-hour.
    pub price_per_hour: f64,
    /// What one instance offers the copies.
    pub size: Resources,
    /// Managed instance scaling's `MinInstanceCount` and `MaxInstanceCount`.
    pub min_instances: u32,
    pub max_instances: u32,
    /// A new instance: launch to in service, its first copy loaded.
    pub startup: Dist,
    /// A new copy on an instance that has room (no provisioning, no image pull).
    pub copy_startup: Dist,
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
    /// A pool for `components` (their indices in `ep.components`), with
    /// `min_instances` in service from time zero; `stream` tells pools of
    /// one replication apart.
    pub fn new(
        ep: &ComponentsEndpoint,
        components: &[usize],
        min_instances: u32,
        streams: &Streams,
        stream: u64,
    ) -> Self {
        let mut demand = vec![(ep.size, PlacementStrategy::Binpack); ep.components.len()];
        for &c in components {
            demand[c] = (ep.components[c].copy, ep.components[c].placement);
        }
        let mut pool = Pool {
            size: ep.size,
            min_instances,
            max_instances: ep.max_instances,
            startup: ep.startup.clone(),
            copy_startup: ep.copy_startup.clone(),
            startup_rng: streams.rng_indexed(Purpose::Startup, 2 * stream + 1),
            copy_rng: streams.rng_indexed(Purpose::Startup, 2 * stream + 2),
            hosts: Vec::new(),
            demand,
            copies: vec![Vec::new(); ep.components.len()],
            alive: 0,
        };
        for _ in 0..min_instances {
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
        let pools: Vec<Rc<RefCell<Pool>>> = if self.shared {
            vec![Rc::new(RefCell::new(Pool::new(self, &all, self.min_instances, streams, 0)))]
        } else {
            all.iter().map(|&c| Rc::new(RefCell::new(Pool::new(self, &[c], 0, streams, c as u64 + 1)))).collect()
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
        let gpus = f64::from(self.size.gpus);
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
