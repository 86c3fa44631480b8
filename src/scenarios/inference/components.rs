//! SageMaker inference components (SPEC 2.12): several models share an
//! endpoint's instances, each as copies that reserve GPUs, CPU and memory on
//! one instance. A component's copies are its `Endpoint`'s "instances" to the
//! LLM engine and the control plane (so its autoscaler scales copies); the
//! `placement::Pool` places them on instances and runs managed instance
//! scaling.
//! `docs/inference-components.md` has the rules and their sources.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;

use super::design::Endpoint;
use super::placement::{PlacementStrategy, Pool, PoolLink, PoolTerms, Resources};
use crate::base::time::SimTime;
use crate::engine::Streams;

/// One `[[inference.components]]` entry.
#[derive(Clone, Debug)]
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
    pub endpoint: Endpoint,
}

/// As the file's keys: what the component's endpoint means for it.
impl Serialize for Component {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Keys<'a> {
            name: &'a str,
            gpus: u32,
            cpus: f64,
            memory_gib: f64,
            min_copies: u32,
            max_copies: u32,
            initial_copies: u32,
            placement: PlacementStrategy,
            queue_limit: u32,
            timeout: SimTime,
            #[serde(skip_serializing_if = "is_never")]
            slo: SimTime,
            warmup: SimTime,
            #[serde(skip_serializing_if = "Option::is_none")]
            autoscaling: Option<&'a super::autoscaler::AutoscalingPolicy>,
            llm: Option<&'a super::llm::Llm>,
            traffic: &'a super::traffic::Traffic,
        }
        let ep = &self.endpoint;
        Keys {
            name: &self.name,
            gpus: self.copy.gpus,
            cpus: self.copy.cpus,
            memory_gib: self.copy.memory_gib,
            min_copies: self.min_copies,
            max_copies: self.max_copies,
            initial_copies: ep.initial_instances,
            placement: self.placement,
            queue_limit: ep.queue_limit,
            timeout: ep.timeout,
            slo: ep.slo,
            warmup: ep.warmup,
            autoscaling: ep.autoscaling.as_ref(),
            llm: ep.llm.as_ref(),
            traffic: &ep.traffic,
        }
        .serialize(s)
    }
}

fn is_never(t: &SimTime) -> bool {
    *t == SimTime::MAX
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

    /// Every component reports scale to zero's metrics too: another point
    /// of the sweep scales one to zero, and every point has the same columns.
    pub fn widen_metrics(&mut self) {
        for c in &mut self.components {
            c.endpoint.wide_metrics = true;
        }
        self.name_columns();
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
