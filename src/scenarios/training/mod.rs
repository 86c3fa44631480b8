//! The training-job model: a job of `work` compute hours on spot (or
//! on-demand) instances, saved by periodic checkpoints.
//!
//! A replication walks from launch to launch. Within one launch it does not
//! schedule an event per checkpoint: it knows when the launch will be
//! reclaimed, so it jumps over all the checkpoint cycles that fit before then
//! in one step. The cost of a replication grows with its interruptions, not
//! with `work / interval`. `docs/training-model.md` gives the rules.

use std::sync::LazyLock;

use serde::Serialize;

use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::catalog::profile::ProfileUse;
use crate::engine::{Model, Purpose, SimRng, Streams};
use crate::scenarios::{Design, Work};
use crate::spot::trace::{Cursor, SpotTrace};
use crate::spot::{Interruptions, Market, SpotTerms};
use crate::zones::{SpotReclaim, ZoneOutages, Zones};
use std::sync::Arc;

pub mod llm;
pub mod optimal;
pub mod policy;

use llm::{LlmTraining, Recovery};
use policy::{Planner, Policy};

/// How the checkpoint interval was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IntervalRule {
    Fixed,
    Young,
    Daly,
}

/// Young's (1974) and Daly's (2006) optimum checkpoint intervals, in seconds,
/// for a write time `c` and a mean time between interruptions `m`.
pub fn optimal_interval_s(rule: IntervalRule, c: f64, m: f64) -> f64 {
    let young = (2.0 * c * m).sqrt();
    match rule {
        IntervalRule::Young | IntervalRule::Fixed => young,
        IntervalRule::Daly if c < 2.0 * m => {
            let r = c / (2.0 * m);
            young * (1.0 + r.sqrt() / 3.0 + r / 9.0) - c
        }
        IntervalRule::Daly => m,
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Checkpointing {
    /// Compute time between checkpoints.
    pub interval: SimTime,
    /// How `interval` was chosen: "fixed", "young" or "daly".
    #[serde(rename = "interval_rule")]
    pub rule: IntervalRule,
    pub write: Dist,
    pub restore: Dist,
    pub on_notice: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainingJob {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub instances: u32,
    pub work: SimTime,
    pub market: Market,
    pub startup: Dist,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_runtime: Option<SimTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<SimTime>,
    /// Wall time from submission by which the job should finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<SimTime>,
    pub checkpoint: Checkpointing,
    /// `[training.policy]`, when given; `None` is `fallback`.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "policy_table")]
    pub policy: Option<Policy>,
    /// On-demand USD per instance-hour.
    #[serde(rename = "price_per_hour")]
    pub on_demand_price: f64,
    /// Present when the market is spot; written as the file's `[spot]` table.
    #[serde(skip)]
    pub spot: Option<SpotTerms>,
    /// Availability zones; written as the file's `[zones]` table.
    #[serde(skip)]
    pub zones: Option<Zones>,
    /// What a model profile gave (then `work` is the derived compute time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_profile: Option<ProfileUse>,
    /// `[training.llm]`: LLM training at scale (SPEC 2.13), with what it derived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmTraining>,
}

/// A replication stops, not completed, after this many interruptions: a job
/// whose restart alone outlasts its typical lifetime never finishes, and
/// must not hang the run.
pub const MAX_INTERRUPTIONS: u32 = 100_000;

/// `policy = { name = "greedy" }`, as in the experiment file.
fn policy_table<S: serde::Serializer>(policy: &Option<Policy>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry("name", policy)?;
    map.end()
}

/// The metrics of a job with a deadline or a policy: `METRICS` and two more
/// at the end, so that jobs without them keep their columns.
pub const DEADLINE_METRICS: &[&str] = &[
    "wall_time_h",
    "billed_time_h",
    "cost_usd",
    "on_demand_cost_usd",
    "savings_frac",
    "interruptions",
    "lost_work_h",
    "checkpoint_time_h",
    "waiting_time_h",
    "on_demand_time_h",
    "completed",
    "checkpoint_interval_h",
    "zone_outages",
    "capacity_lost_instance_hours",
    "deadline_met",
    "spot_time_h",
];

/// The metrics of every training job without a deadline or a policy.
pub const METRICS: &[&str] = DEADLINE_METRICS.split_at(DEADLINE_METRICS.len() - 2).0;

/// What `[training.llm]` adds at the end of a job's metrics.
const LLM_EXTRA: [&str; 3] = ["failures", "checkpoint_size_gb", "effective_training_frac"];

/// `METRICS` with `LLM_EXTRA` at the end.
pub static LLM_METRICS: LazyLock<Vec<&'static str>> = LazyLock::new(|| [METRICS, &LLM_EXTRA].concat());
/// `DEADLINE_METRICS` with `LLM_EXTRA` at the end.
pub static LLM_DEADLINE_METRICS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| [DEADLINE_METRICS, &LLM_EXTRA].concat());

impl TrainingJob {
    /// Number of checkpoint segments: `work / interval`, rounded up.
    pub fn segments(&self) -> u64 {
        self.work.as_nanos().div_ceil(self.checkpoint.interval.as_nanos())
    }

    /// The policy in force: `fallback` unless `[training.policy]` says otherwise.
    pub fn policy(&self) -> Policy {
        self.policy.unwrap_or(Policy::Fallback)
    }

    /// Time on on-demand instances from submission to the end, with mean
    /// startup and writes: the shortest a deadline can be.
    pub fn on_demand_time(&self) -> SimTime {
        let secs = self.checkpoint.write.mean_secs() * self.segments() as f64
            + self.startup.mean_secs()
            + self.work.as_secs_f64()
            + self.final_write_extra_secs();
        SimTime::from_secs_f64(secs)
    }

    /// With asynchronous checkpoints the final save waits for its write too;
    /// with a memory tier the persistent checkpoints add their writes.
    fn final_write_extra_secs(&self) -> f64 {
        let persistent = match self.tier() {
            Some((every, write)) => ((self.segments() - 1) / every + 1) as f64 * write.as_secs_f64(),
            None => 0.0,
        };
        self.background_write().map_or(0.0, |b| b.as_secs_f64()) + persistent
    }

    /// With a memory tier: every how many checkpoints one is persistent, and
    /// what its write to storage adds.
    pub fn tier(&self) -> Option<(u64, SimTime)> {
        let llm = self.llm.as_ref()?;
        llm.memory_tier.map(|t| (u64::from(t.persistent_every), llm.write))
    }

    /// The write to storage that overlaps compute, with asynchronous checkpoints.
    pub fn background_write(&self) -> Option<SimTime> {
        self.llm.as_ref().and_then(|l| l.background)
    }

    /// The same work on on-demand instances with no interruptions, using the
    /// mean startup and write times.
    pub fn on_demand_cost(&self) -> f64 {
        let secs = self.checkpoint.write.mean_secs() * self.segments() as f64
            + self.startup.mean_secs()
            + self.work.as_secs_f64()
            + self.final_write_extra_secs();
        self.instances as f64 * self.on_demand_price * secs / 3600.0
    }
}

impl Design for TrainingJob {
    fn tables(&self) -> Vec<(&'static str, &dyn erased_serde::Serialize)> {
        let mut tables: Vec<(&'static str, &dyn erased_serde::Serialize)> = vec![("training", self)];
        tables.extend(crate::spot::market_tables(self.spot.as_ref(), self.zones.as_ref()));
        tables
    }

    fn profile(&self) -> Option<&ProfileUse> {
        self.from_profile.as_ref()
    }

    /// A plan of `optimal` costs about 250 simulated replications.
    fn work(&self) -> Work {
        let one = Work::new(1.0, "replications", "replications");
        match self.policy() {
            Policy::Optimal => Work { seconds: Work::new(1.0, "optimal plans", "").seconds, ..one },
            _ => one,
        }
    }
}

impl Model for TrainingJob {
    fn metrics(&self) -> &'static [&'static str] {
        match (self.deadline.is_some() || self.policy.is_some(), self.llm.is_some()) {
            (true, false) => DEADLINE_METRICS,
            (false, false) => METRICS,
            (true, true) => LLM_DEADLINE_METRICS.as_slice(),
            (false, true) => LLM_METRICS.as_slice(),
        }
    }

    fn replicate(&self, streams: Streams, out: &mut [f64]) {
        if self.policy() == Policy::Optimal {
            return self.replicate_optimal(&streams, out);
        }
        let mut run = Run::new(self, &streams);
        run.simulate();
        run.write_metrics(out);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Startup,
    Restore,
    Compute,
    Write,
    /// Holding instances with nothing to do: after an emergency checkpoint.
    Idle,
    Done,
}

enum HoldEnd {
    Completed,
    Interrupted,
    Deadline,
    /// The policy moved the job to the other market.
    Switched,
}

/// The state of one replication.
struct Run<'a> {
    job: &'a TrainingJob,
    lifetime: Option<Dist>,
    interruption_rng: SimRng,
    wait_rng: SimRng,
    startup_rng: SimRng,
    restore_rng: SimRng,
    write_rng: SimRng,
    /// Set for a constant write time: then checkpoint cycles can be skipped in bulk.
    constant_write: Option<SimTime>,
    /// Zone outages, when the job has zones.
    outages: Option<ZoneOutages>,
    zone_count: u32,
    /// The zone the job runs in.
    zone: u32,
    /// Real availability traces, one per zone, and this replication's offset.
    traces: Vec<Arc<SpotTrace>>,
    trace_offset: SimTime,
    /// Where this replication's trace queries last landed, per zone.
    cursors: Vec<Cursor>,
    /// When a zone outage took the job, until its next launch is running.
    lost_to_outage: Option<SimTime>,
    capacity_lost: SimTime,
    spot_cost: f64,
    policy: Policy,
    /// The policy's estimates, for the policies that watch the deadline.
    planner: Option<Planner>,
    /// Set once the safety net has moved the job to on-demand.
    od_for_good: bool,
    /// With a lifetime model under a deadline policy: spot is unavailable
    /// until then (a capacity wait after each loss of spot, and at submission).
    spot_back: Option<SimTime>,

    now: SimTime,
    on_spot: bool,
    relaunch: bool,
    phase: Phase,
    phase_len: SimTime,
    phase_left: SimTime,
    /// Work saved by the last completed checkpoint.
    saved: SimTime,
    /// Compute done in the current segment that the running write will save.
    pending: SimTime,
    emergency: bool,

    billed_spot: SimTime,
    billed_on_demand: SimTime,
    waiting: SimTime,
    checkpointing: SimTime,
    lost: SimTime,
    interruptions: u32,

    /// Hardware failures of the whole group, per second (0 without `[training.llm]`).
    failure_rate: f64,
    failure_rng: SimRng,
    failures: u32,
    /// The next launch replaces a failed node, without a capacity wait.
    replacing: bool,
    /// The next launch takes a warm spare: no startup.
    warm: bool,
    /// When each spare of the pool is ready again.
    spare_ready: Vec<SimTime>,
    /// An asynchronous write in flight: when it completes, and the work it saves.
    inflight: Option<(SimTime, SimTime)>,
    background: Option<SimTime>,
    /// Tiered: work saved by the last persistent checkpoint, whether the write
    /// under way is one, and whether the next restore is from storage.
    saved_durable: SimTime,
    persistent_write: bool,
    restore_durable: bool,
}

impl<'a> Run<'a> {
    fn new(job: &'a TrainingJob, streams: &Streams) -> Self {
        let policy = job.policy();
        let on_spot = job.market == Market::Spot && policy != Policy::OnDemand;
        // Zone-wide reclaims take the whole group at once: one zone's hazard.
        let zone_reclaim = job.zones.as_ref().is_some_and(|z| z.spot_reclaim == SpotReclaim::Zone);
        let group = if zone_reclaim { 1 } else { job.instances };
        let lifetime = job.spot.as_ref().and_then(|s| s.interruptions.group_lifetime(group, streams));
        let traces = match job.spot.as_ref().map(|s| &s.interruptions) {
            Some(Interruptions::Trace { traces, .. }) => traces.clone(),
            _ => Vec::new(),
        };
        let trace_offset = match (job.spot.as_ref().map(|s| &s.interruptions), traces.first()) {
            (Some(Interruptions::Trace { offset, .. }), Some(t)) => {
                crate::spot::trace_offset(*offset, t.length(), streams)
            }
            _ => SimTime::ZERO,
        };
        Run {
            job,
            lifetime,
            interruption_rng: streams.rng(Purpose::Interruptions),
            wait_rng: streams.rng(Purpose::CapacityWait),
            startup_rng: streams.rng(Purpose::Startup),
            restore_rng: streams.rng(Purpose::Restore),
            write_rng: streams.rng(Purpose::CheckpointWrite),
            // Tiered writes differ by checkpoint: one by one.
            constant_write: job.checkpoint.write.as_constant().filter(|_| job.tier().is_none()),
            outages: job.zones.as_ref().map(|z| ZoneOutages::new(z, streams)),
            zone_count: job.zones.as_ref().map_or(1, |z| z.count),
            zone: 0,
            cursors: vec![Cursor::default(); traces.len()],
            traces,
            trace_offset,
            lost_to_outage: None,
            capacity_lost: SimTime::ZERO,
            spot_cost: 0.0,
            policy,
            planner: job.deadline.filter(|_| policy.has_safety_net()).map(|d| Planner::new(job, d)),
            od_for_good: false,
            spot_back: None,
            now: SimTime::ZERO,
            on_spot,
            relaunch: false,
            phase: Phase::Startup,
            phase_len: SimTime::ZERO,
            phase_left: SimTime::ZERO,
            saved: SimTime::ZERO,
            pending: SimTime::ZERO,
            emergency: false,
            billed_spot: SimTime::ZERO,
            billed_on_demand: SimTime::ZERO,
            waiting: SimTime::ZERO,
            checkpointing: SimTime::ZERO,
            lost: SimTime::ZERO,
            interruptions: 0,
            failure_rate: job.llm.as_ref().map_or(0.0, |l| l.failure_rate_per_s()),
            failure_rng: streams.rng(Purpose::HardwareFailures),
            failures: 0,
            replacing: false,
            warm: false,
            spare_ready: vec![SimTime::ZERO; job.llm.as_ref().map_or(0, |l| l.pool()) as usize],
            inflight: None,
            background: job.background_write(),
            saved_durable: SimTime::ZERO,
            persistent_write: false,
            restore_durable: false,
        }
    }

    fn billed(&self) -> SimTime {
        self.billed_spot + self.billed_on_demand
    }

    fn simulate(&mut self) {
        let wall_deadline = self.job.max_wait.unwrap_or(SimTime::MAX);
        if self.policy != Policy::Fallback && self.lifetime.is_some() {
            self.spot_back = Some(self.draw_wait());
        }
        loop {
            if !self.acquire(wall_deadline) {
                return;
            }
            let leave_at = self.leave_at();
            let was_on_spot = self.on_spot;
            match self.hold(wall_deadline, leave_at) {
                HoldEnd::Completed | HoldEnd::Deadline => return,
                HoldEnd::Interrupted if self.interruptions >= MAX_INTERRUPTIONS => return,
                HoldEnd::Interrupted => {
                    self.relaunch = true;
                    self.after_loss(was_on_spot && !self.replacing);
                }
                HoldEnd::Switched => {
                    // Only the safety net leaves spot, and it is for good.
                    self.relaunch = true;
                    self.on_spot = !self.on_spot;
                    self.od_for_good |= !self.on_spot;
                }
            }
        }
    }

    fn draw_wait(&mut self) -> SimTime {
        let spot = self.job.spot.as_ref().expect("a spot policy has spot terms");
        self.now + spot.capacity_wait.sample(&mut self.wait_rng)
    }

    /// After an interruption: where the policy relaunches.
    fn after_loss(&mut self, spot_lost: bool) {
        if spot_lost && self.spot_back.is_some() {
            self.spot_back = Some(self.draw_wait());
        }
        let Some(p) = self.planner else {
            return;
        };
        if self.od_for_good || self.now >= p.give_up_spot_at(self.saved, true) {
            self.od_for_good = true;
            self.on_spot = false;
        } else {
            // Uniform progress takes on-demand while behind the line.
            self.on_spot = self.policy != Policy::UniformProgress || !p.behind(self.saved, self.now);
        }
    }

    /// When a waiting job stops waiting for spot and launches on-demand, and
    /// whether for good.
    fn give_up_at(&self, start: SimTime) -> (SimTime, bool) {
        let limit = self.job.spot.as_ref().and_then(|s| s.fallback_after_wait);
        let cut = limit.map_or(SimTime::MAX, |l| start + l);
        let Some(p) = self.planner else {
            return (cut, true);
        };
        let net = p.give_up_spot_at(self.saved, self.relaunch);
        match self.policy {
            Policy::UniformProgress if p.behind_at(self.saved) < net => (p.behind_at(self.saved), false),
            _ => (net.min(cut), true),
        }
    }

    /// When the policy ends the coming hold by choice: the safety net on
    /// spot; on on-demand, uniform progress's return to spot once ahead of
    /// its line and spot is available.
    fn leave_at(&mut self) -> SimTime {
        let Some(p) = self.planner else {
            return SimTime::MAX;
        };
        let (now, saved, relaunch) = (self.now, self.saved, self.relaunch);
        if self.on_spot {
            return p.leave_spot_at(now, saved, relaunch);
        }
        if self.policy != Policy::UniformProgress || self.od_for_good || !p.may_return_to_spot(now, saved, relaunch) {
            return SimTime::MAX;
        }
        let ahead = p.ahead_on_demand_at(now, saved, relaunch);
        let z = self.zone as usize;
        match (self.spot_back, self.traces.get(z)) {
            _ if ahead == SimTime::MAX => SimTime::MAX,
            (Some(back), _) => ahead.max(back),
            (None, Some(trace)) => trace.next_available_from(&mut self.cursors[z], self.trace_offset, ahead),
            (None, None) => ahead,
        }
    }

    /// Waits for a zone the job can run in and, on spot, for capacity there.
    /// Returns false when the job must stop (wall-time limit, or never).
    fn acquire(&mut self, wall_deadline: SimTime) -> bool {
        if std::mem::take(&mut self.replacing) {
            return true;
        }
        let start = self.now;
        let mut capacity_wait = None;
        loop {
            let (zone, usable) = self.first_usable(self.now);
            if usable == SimTime::MAX {
                return self.wait_until(wall_deadline, wall_deadline);
            }
            let mut ready = usable;
            if self.on_spot {
                let spot = self.job.spot.as_ref().expect("a spot market has spot terms");
                ready = match self.spot_back {
                    Some(back) => usable.max(back),
                    // One capacity wait per launch, after the zone is usable.
                    None => {
                        usable + *capacity_wait.get_or_insert_with(|| spot.capacity_wait.sample(&mut self.wait_rng))
                    }
                };
                let (give_up, for_good) = self.give_up_at(start);
                if ready > give_up {
                    // Give up on spot: the wait is cut, on-demand from here.
                    if !self.wait_until(give_up.max(self.now), wall_deadline) {
                        return false;
                    }
                    self.on_spot = false;
                    self.od_for_good |= for_good;
                    continue;
                }
            }
            if !self.wait_until(ready, wall_deadline) {
                return false;
            }
            // Usable at `usable` by construction; only a wait can have changed it.
            if ready == usable || self.usable(zone, self.now) {
                self.zone = zone;
                return true;
            }
        }
    }

    /// Waits (unbilled) until `t`, or stops at the deadline.
    fn wait_until(&mut self, t: SimTime, wall_deadline: SimTime) -> bool {
        let until = t.min(wall_deadline);
        self.waiting += until - self.now;
        self.now = self.now.max(until);
        t <= wall_deadline && t != SimTime::MAX
    }

    /// Whether the job can launch in `zone` at `t`: the zone is up and, on
    /// spot with traces, its trace shows capacity.
    fn usable(&mut self, zone: u32, t: SimTime) -> bool {
        let up = self.outages.as_mut().is_none_or(|o| o.is_up(zone, t));
        let available =
            !self.on_spot || self.traces.get(zone as usize).is_none_or(|tr| tr.available(self.trace_offset, t));
        up && available
    }

    /// The zone usable soonest at or after `t`, and when: the current zone
    /// wins ties, then the lowest index.
    fn first_usable(&mut self, t: SimTime) -> (u32, SimTime) {
        let mut best = (self.zone, self.usable_from(self.zone, t));
        let current = self.zone;
        for z in (0..self.zone_count).filter(|&z| z != current) {
            let at = self.usable_from(z, t);
            if at < best.1 {
                best = (z, at);
            }
        }
        best
    }

    fn usable_from(&mut self, zone: u32, mut t: SimTime) -> SimTime {
        let z = zone as usize;
        let trace = if self.on_spot { self.traces.get(z) } else { None };
        match (&mut self.outages, trace) {
            (None, None) => return t,
            (None, Some(trace)) => return trace.next_available_from(&mut self.cursors[z], self.trace_offset, t),
            (Some(o), None) => return o.next_up(zone, t),
            (Some(_), Some(_)) => {}
        }
        // Alternate between the outage history and the trace until both agree.
        for _ in 0..10_000 {
            if t == SimTime::MAX {
                break;
            }
            let up = self.outages.as_mut().map_or(t, |o| o.next_up(zone, t));
            let available = match (self.on_spot, self.traces.get(z)) {
                (true, Some(trace)) => trace.next_available_from(&mut self.cursors[z], self.trace_offset, up),
                _ => up,
            };
            if available == up {
                return up;
            }
            t = available;
        }
        SimTime::MAX
    }

    /// One launch: from capacity granted until the job is done, reclaimed, or
    /// out of time.
    fn hold(&mut self, wall_deadline: SimTime, leave_at: SimTime) -> HoldEnd {
        let launch = self.now;
        let startup =
            if std::mem::take(&mut self.warm) { SimTime::ZERO } else { self.job.startup.sample(&mut self.startup_rng) };
        self.enter(Phase::Startup, startup);
        self.emergency = false;

        if let Some(lost_at) = self.lost_to_outage.take() {
            self.capacity_lost += launch + startup - lost_at;
        }
        let z = self.zone as usize;
        let reclaim_at = match (self.on_spot, self.traces.get(z), &self.lifetime) {
            (true, Some(trace), _) => trace.next_unavailable_from(&mut self.cursors[z], self.trace_offset, launch),
            (true, None, Some(life)) => launch + life.sample(&mut self.interruption_rng),
            _ => SimTime::MAX,
        };
        let zone_down = match self.outages.as_mut() {
            Some(o) => o.next_down(self.zone, launch),
            None => SimTime::MAX,
        };
        let fail_at = if self.failure_rate > 0.0 {
            launch + Dist::Exponential { mean: 1.0 / self.failure_rate }.sample(&mut self.failure_rng)
        } else {
            SimTime::MAX
        };
        let lost_at = reclaim_at.min(zone_down);
        let interrupt_at = lost_at.min(fail_at);
        let runtime_deadline = match self.job.max_runtime {
            Some(limit) => launch + (limit - self.billed()),
            None => SimTime::MAX,
        };
        let deadline = wall_deadline.min(runtime_deadline);

        // A hardware failure gives no notice.
        if self.job.checkpoint.on_notice && lost_at != SimTime::MAX && lost_at <= fail_at {
            let notice = self.job.spot.as_ref().map_or(SimTime::ZERO, |s| s.notice);
            let notice_at = (interrupt_at - notice).max(launch);
            if notice_at < deadline.min(leave_at) {
                self.advance(notice_at);
                if self.phase == Phase::Compute {
                    let write = self.job.checkpoint.write.sample(&mut self.write_rng);
                    if write <= interrupt_at - notice_at {
                        self.pending = self.phase_len - self.phase_left;
                        self.emergency = true;
                        self.enter(Phase::Write, write);
                    }
                }
            }
        }
        let end = interrupt_at.min(deadline);
        self.advance(end.min(leave_at));
        let switching = leave_at < end && self.now == leave_at && self.phase != Phase::Done;
        if switching {
            self.wrap_up(end);
        }

        let held = self.now - launch;
        if self.on_spot {
            self.billed_spot += held;
            let n = self.job.instances as f64;
            let price = self.job.spot.as_ref().map_or(0.0, |s| s.price_per_hour);
            let z = self.zone as usize;
            self.spot_cost += n * self
                .traces
                .get(z)
                .and_then(|t| t.cost_from(&mut self.cursors[z], self.trace_offset, launch, self.now))
                .unwrap_or(price * held.as_hours_f64());
        } else {
            self.billed_on_demand += held;
        }
        if self.phase == Phase::Done {
            return HoldEnd::Completed;
        }
        // Cut off: a write in progress does not count, and the compute it
        // would have saved is lost like any unsaved compute.
        match self.phase {
            Phase::Compute => self.lost += self.phase_len - self.phase_left,
            Phase::Write => {
                self.checkpointing += self.phase_len - self.phase_left;
                self.lost += self.pending;
            }
            _ => {}
        }
        if switching && self.now < end {
            HoldEnd::Switched
        } else if deadline <= interrupt_at {
            HoldEnd::Deadline
        } else {
            self.interruptions += 1;
            if fail_at < lost_at {
                self.after_failure();
            } else {
                if zone_down <= reclaim_at {
                    self.lost_to_outage = Some(self.now);
                }
                // The whole group is gone: so are checkpoints on its drives or in its memory.
                if self.job.llm.as_ref().is_some_and(|l| l.storage.volatile()) {
                    self.lose_inflight();
                    self.lost += self.saved;
                    self.saved = SimTime::ZERO;
                }
                if self.job.tier().is_some() {
                    self.lost += self.saved - self.saved_durable;
                    self.saved = self.saved_durable;
                    self.restore_durable = true;
                }
            }
            self.lose_inflight();
            HoldEnd::Interrupted
        }
    }

    /// A write still in flight at a crash does not count: the job goes back
    /// to the checkpoint before it.
    fn lose_inflight(&mut self) {
        if let Some((done_at, amount)) = self.inflight.take()
            && done_at > self.now
        {
            self.saved -= amount;
            self.lost += amount;
        }
    }

    /// A node failed: how the job comes back (`recovery`).
    fn after_failure(&mut self) {
        self.failures += 1;
        self.restore_durable = false;
        let llm = self.job.llm.as_ref().expect("failures come from [training.llm]");
        match llm.recovery {
            Recovery::SpotRestart => {}
            Recovery::OnDemandRestart => self.replacing = true,
            Recovery::AutoResume => {
                self.replacing = true;
                let now = self.now;
                if let Some(slot) = self.spare_ready.iter_mut().find(|t| **t <= now) {
                    // The pool is refilled by a fresh launch of a node.
                    *slot = now + SimTime::from_secs_f64(self.job.startup.mean_secs());
                    self.warm = true;
                }
            }
        }
    }

    /// A switch by choice: a write in progress finishes; compute since the
    /// last checkpoint is saved by a write when it is longer than a mean
    /// write, and dropped otherwise. Both stop at `limit` (a reclaim).
    fn wrap_up(&mut self, limit: SimTime) {
        match self.phase {
            Phase::Write => self.advance((self.now + self.phase_left).min(limit)),
            Phase::Compute => {
                let done = self.phase_len - self.phase_left;
                if done.as_secs_f64() > self.job.checkpoint.write.mean_secs() {
                    let write = self.job.checkpoint.write.sample(&mut self.write_rng);
                    self.pending = done;
                    self.emergency = true;
                    self.enter(Phase::Write, write);
                    self.advance((self.now + write).min(limit));
                }
            }
            _ => {}
        }
    }

    fn enter(&mut self, phase: Phase, len: SimTime) {
        self.phase = phase;
        self.phase_len = len;
        self.phase_left = len;
    }

    fn start_segment(&mut self) {
        let seg = self.job.checkpoint.interval.min(self.job.work - self.saved);
        self.enter(Phase::Compute, seg);
    }

    /// Moves the job forward to `until`, or to completion if that comes first.
    fn advance(&mut self, until: SimTime) {
        while self.phase != Phase::Done {
            if self.phase == Phase::Compute && self.phase_left == self.job.checkpoint.interval {
                self.skip_whole_cycles(until);
                if self.phase == Phase::Done {
                    return;
                }
            }
            if self.now + self.phase_left > until {
                self.phase_left -= until - self.now;
                self.now = until;
                return;
            }
            self.now += self.phase_left;
            match self.phase {
                Phase::Startup if self.relaunch => {
                    let restore = match self.job.llm.as_ref().filter(|_| self.restore_durable) {
                        Some(llm) => llm.restore,
                        None => self.job.checkpoint.restore.sample(&mut self.restore_rng),
                    };
                    self.enter(Phase::Restore, restore);
                }
                Phase::Startup | Phase::Restore => self.start_segment(),
                Phase::Compute => {
                    self.pending = self.phase_len;
                    let mut write = self.job.checkpoint.write.sample(&mut self.write_rng);
                    let position = self.saved + self.pending;
                    if let Some(b) = self.background
                        && position >= self.job.work
                    {
                        write += b;
                    }
                    if let Some((every, persistent)) = self.job.tier() {
                        let index = position.div_floor(self.job.checkpoint.interval);
                        self.persistent_write = position >= self.job.work || index.is_multiple_of(every);
                        if self.persistent_write {
                            write += persistent;
                        }
                    }
                    self.enter(Phase::Write, write);
                }
                Phase::Write => {
                    self.checkpointing += self.phase_len;
                    self.saved += self.pending;
                    if let Some(b) = self.background {
                        self.inflight = Some((self.now + b, self.pending));
                    }
                    if std::mem::take(&mut self.persistent_write) {
                        self.saved_durable = self.saved;
                    }
                    self.pending = SimTime::ZERO;
                    if self.saved >= self.job.work {
                        self.phase = Phase::Done;
                    } else if self.emergency {
                        self.enter(Phase::Idle, SimTime::MAX);
                    } else {
                        self.start_segment();
                    }
                }
                Phase::Idle | Phase::Done => unreachable!("idle never ends, done never advances"),
            }
        }
    }

    /// At the start of a full segment with a constant write time, completes in
    /// one step every compute+write cycle that fits before `until`.
    fn skip_whole_cycles(&mut self, until: SimTime) {
        let Some(write) = self.constant_write else {
            return;
        };
        let interval = self.job.checkpoint.interval;
        let cycle = interval + write;
        let left = self.job.work - self.saved;
        let mut full_segments = left.div_floor(interval);
        // An asynchronous job's final save is longer: never skipped.
        if self.background.is_some() && interval.times(full_segments) == left {
            full_segments -= 1;
        }
        let k = full_segments.min((until - self.now).div_floor(cycle));
        if k == 0 {
            return;
        }
        self.now += cycle.times(k);
        self.saved += interval.times(k);
        self.checkpointing += write.times(k);
        if let Some(b) = self.background {
            self.inflight = Some((self.now + b, interval));
        }
        if self.saved >= self.job.work {
            self.phase = Phase::Done;
        } else {
            self.start_segment();
        }
    }

    fn write_metrics(&mut self, out: &mut [f64]) {
        let job = self.job;
        let n = job.instances as f64;
        let mut capacity_lost = self.capacity_lost;
        if let Some(lost_at) = self.lost_to_outage {
            capacity_lost += self.now - lost_at;
        }
        let now = self.now;
        let completed = self.phase == Phase::Done;
        let mut cost = self.spot_cost + n * job.on_demand_price * self.billed_on_demand.as_hours_f64();
        if let Some(llm) = &job.llm {
            // Spares are held (and billed at on-demand) whenever the job is.
            cost += f64::from(llm.pool()) * job.on_demand_price * self.billed().as_hours_f64();
        }
        Outcome {
            wall: now,
            billed_spot: self.billed_spot,
            billed_on_demand: self.billed_on_demand,
            cost,
            interruptions: self.interruptions,
            lost: self.lost,
            checkpointing: self.checkpointing,
            waiting: self.waiting,
            completed,
            zone_outages: self.outages.as_mut().map_or(0, |o| o.outages_before(now)),
            capacity_lost_h: n * capacity_lost.as_hours_f64(),
            failures: self.failures,
            saved: self.saved,
        }
        .write(job, out);
    }
}

/// What one replication comes to, before it becomes a row of metrics.
struct Outcome {
    wall: SimTime,
    billed_spot: SimTime,
    billed_on_demand: SimTime,
    cost: f64,
    interruptions: u32,
    lost: SimTime,
    checkpointing: SimTime,
    waiting: SimTime,
    completed: bool,
    zone_outages: u64,
    capacity_lost_h: f64,
    failures: u32,
    /// Work saved by the last completed checkpoint: all of it when completed.
    saved: SimTime,
}

impl Outcome {
    /// The row, in the order of `job.metrics()`.
    fn write(&self, job: &TrainingJob, out: &mut [f64]) {
        let on_demand_cost = job.on_demand_cost();
        let savings = if on_demand_cost > 0.0 { 1.0 - self.cost / on_demand_cost } else { 0.0 };
        let met = self.completed && job.deadline.is_none_or(|d| self.wall <= d);
        let values = [
            self.wall.as_hours_f64(),
            (self.billed_spot + self.billed_on_demand).as_hours_f64(),
            self.cost,
            on_demand_cost,
            savings,
            self.interruptions as f64,
            self.lost.as_hours_f64(),
            self.checkpointing.as_hours_f64(),
            self.waiting.as_hours_f64(),
            self.billed_on_demand.as_hours_f64(),
            if self.completed { 1.0 } else { 0.0 },
            job.checkpoint.interval.as_hours_f64(),
            self.zone_outages as f64,
            self.capacity_lost_h,
            if met { 1.0 } else { 0.0 },
            self.billed_spot.as_hours_f64(),
        ];
        let base = if job.deadline.is_some() || job.policy.is_some() { values.len() } else { values.len() - 2 };
        out[..base].copy_from_slice(&values[..base]);
        if let Some(llm) = &job.llm {
            let wall = self.wall.as_secs_f64();
            let effective = if wall > 0.0 { self.saved.as_secs_f64() / wall } else { 0.0 };
            out[base..].copy_from_slice(&[self.failures as f64, llm.checkpoint_size_gb, effective]);
        }
    }
}

impl TrainingJob {
    /// The `optimal` policy: the cheapest schedule on this replication's
    /// trace and offset, computed, not simulated.
    fn replicate_optimal(&self, streams: &Streams, out: &mut [f64]) {
        let spot = self.spot.as_ref().expect("optimal is read only on spot");
        let Interruptions::Trace { traces, offset, .. } = &spot.interruptions else {
            unreachable!("optimal is read only with a trace");
        };
        let trace = &traces[0];
        let deadline = self.deadline.expect("optimal is read only with a deadline");
        let planner = Planner::new(self, deadline);
        let schedule = optimal::cheapest(&optimal::Problem {
            trace,
            offset: crate::spot::trace_offset(*offset, trace.length(), streams),
            deadline,
            need: SimTime::from_nanos(planner.need(SimTime::ZERO)),
            first_launch: SimTime::from_nanos(planner.launch(false)),
            relaunch: SimTime::from_nanos(planner.launch(true)),
            // A trace's own constant price is what the simulated policies pay.
            spot_price: trace.constant_price().unwrap_or(spot.price_per_hour),
            on_demand_price: self.on_demand_price,
        });
        let writes = SimTime::from_secs_f64(self.checkpoint.write.mean_secs() * self.segments() as f64);
        let billed = schedule.spot + schedule.on_demand;
        Outcome {
            wall: schedule.finish,
            billed_spot: schedule.spot,
            billed_on_demand: schedule.on_demand,
            cost: self.instances as f64 * schedule.cost,
            interruptions: 0,
            lost: SimTime::ZERO,
            checkpointing: writes,
            waiting: schedule.finish.saturating_sub(billed),
            completed: true,
            zone_outages: 0,
            capacity_lost_h: 0.0,
            failures: 0,
            saved: self.work,
        }
        .write(self, out);
    }
}
