//! The LLM engine's event loop: arrivals routed to replicas, replica wakes
//! (the end of an iteration where something happens, or of a run of
//! decode-only iterations), metric periods and the control plane, which it
//! drives as the request engine does.
//!
//! Events per replication follow arrivals and finishes, never tokens: a
//! replica asks to be woken only when a prefill ends, a sequence finishes,
//! the KV cache would overflow, or an arrival needs the next boundary.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use hdrhistogram::Histogram;

use super::llm::prefix_cache::{Content, OWN_CONTENT, PrefixCache};
use super::llm::replica::{Leave, Limits, Replica, Seq, Seqs, State, Totals, ps_to_time, time_to_ps};
use super::llm::{Llm, Routing};
use super::traffic::prefix::Request;
use crate::base::time::SimTime;
use crate::engine::progress::Ticker;
use crate::engine::{EventQueue, Purpose, Streams};
use crate::scenarios::inference::components::PoolLink;
use crate::scenarios::inference::control::{Changes, Control};
use crate::scenarios::inference::design::{
    Admission, ArrivalFeed, Endpoint, FirstIndex, LLM_TAIL, Mode, Outcome, PeriodCounts, TimelineRow,
    latency_histogram, micros, quantile_over_arrivals,
};

/// An asynchronous request waiting for a replica.
#[derive(Clone, Debug)]
struct Held {
    arrival: SimTime,
    input: u32,
    output: u32,
    counted: bool,
    /// Its session, and with prefix caching its content's block hashes.
    session: Option<u64>,
    hashes: Option<Arc<[u64]>>,
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Arrival,
    Wake {
        replica: u32,
        generation: u32,
    },
    PeriodEnd,
    Control,
    /// The end of the traffic window: the KV metric is taken here.
    End,
}

/// Little's law on the engine's own counters, in integer nanoseconds:
/// ∫ N(t) dt over the run equals the sum of the sojourn times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LittleNanos {
    pub in_system_area_ns: u128,
    pub sojourn_sum_ns: u128,
}

/// One period's LLM columns (the tail of `design::LLM_TIMELINE_COLUMNS`,
/// then of `design::PREFIX_TIMELINE_EXTRA`).
pub type ExtraRow = [f64; 5];

struct Sim<'a> {
    ep: &'a Endpoint,
    llm: &'a Llm,
    limits: Limits,
    queue: EventQueue<Event>,
    control: Control,
    changes: Changes,
    control_wakeup: SimTime,
    outcome: Outcome,
    lo: LlmOutcome,
    acct: LittleNanos,
    seqs: Seqs,
    replicas: Vec<Replica>,
    /// The first replica of each instance in service (`u32::MAX`: none yet).
    first_replica: FirstIndex,
    /// Replicas of instances taking requests, in the order they came.
    active: Vec<u32>,
    leaving: Vec<Leave>,
    /// Requests in arrival order (slot, serial), for their timeouts.
    deadlines: VecDeque<(u32, u64)>,
    /// Asynchronous requests that came with no replica taking requests:
    /// they wait, in order, for the first one (SPEC 2.9).
    held: VecDeque<Held>,
    /// Scale-to-zero and asynchronous metrics are kept (queue waits, backlog).
    zero_metrics: bool,
    serial: u64,
    totals: Totals,
    outstanding: u64,
    busy: u64,
    alive: u64,
    last_event: SimTime,
    // Integrals in nanoseconds.
    busy_area: u128,
    alive_area: u128,
    // The current period.
    period: PeriodCounts,
    period_busy_area: u128,
    /// Requests that left since the last event: a closed loop's users send
    /// their next ones.
    left: u32,
    period_mark: (u128, u64, u128),
    period_latency: Option<Histogram<u64>>,
    period_ttft: Option<Histogram<u64>>,
    /// `session-affinity`: the replica each live session's first request went to.
    affinity: HashMap<u64, u32>,
    /// Requests with content so far: their own content's ids.
    contents: u64,
    /// Prompt and hit tokens at the last period's end.
    period_hits: (u64, u64),
    /// Cache occupancy sampled at period ends: sum and count.
    occupancy: (f64, f64),
}

/// One replication of an LLM endpoint: the request counters, the LLM
/// counters, the control plane (for the capacity metrics) and Little's
/// law's two sides. With `timeline`, one row per period and its LLM columns.
pub fn simulate(
    ep: &Endpoint,
    streams: &Streams,
    timeline: Option<(&mut Vec<TimelineRow>, &mut Vec<ExtraRow>)>,
) -> (Outcome, LlmOutcome, Control, LittleNanos) {
    let mut run = Run::new(ep, streams, timeline, None);
    while run.step() {}
    run.finish()
}

/// One replication in progress, an event at a time, so that several (the
/// components of one endpoint) can run in one time order.
pub struct Run<'a, 't> {
    sim: Sim<'a>,
    feed: ArrivalFeed<'a>,
    token_rng: crate::engine::SimRng,
    ticker: Ticker,
    timeline: Option<(&'t mut Vec<TimelineRow>, &'t mut Vec<ExtraRow>)>,
    end: SimTime,
    period: SimTime,
}

impl<'a, 't> Run<'a, 't> {
    /// The replication at time zero; `pool`: its copies live on a shared
    /// pool of instances (inference components).
    pub fn new(
        ep: &'a Endpoint,
        streams: &Streams,
        timeline: Option<(&'t mut Vec<TimelineRow>, &'t mut Vec<ExtraRow>)>,
        pool: Option<PoolLink>,
    ) -> Self {
        let llm = ep.llm.as_ref().expect("an LLM design");
        let end = ep.traffic.duration;
        let control = Control::new(ep, streams, pool);
        let period = control.period();
        let mut sim = Sim {
            ep,
            llm,
            limits: Limits {
                scheduler: llm.scheduler,
                chunk: llm.chunk as u64,
                max_seqs: llm.max_seqs as u64,
                max_batched_tokens: llm.max_batched_tokens as u64,
                kv_tokens: llm.kv_tokens,
                step: llm.step,
                timeout: ep.timeout,
                single_steps: llm.single_steps,
            },
            queue: EventQueue::new(),
            control,
            changes: Changes::default(),
            control_wakeup: SimTime::MAX,
            outcome: Outcome::new(),
            lo: LlmOutcome::new(),
            acct: LittleNanos::default(),
            seqs: Seqs::default(),
            replicas: Vec::new(),
            first_replica: FirstIndex::default(),
            active: Vec::new(),
            leaving: Vec::new(),
            deadlines: VecDeque::new(),
            held: VecDeque::new(),
            zero_metrics: ep.zero_metrics(),
            serial: 0,
            totals: Totals::default(),
            outstanding: 0,
            busy: 0,
            alive: 0,
            last_event: SimTime::ZERO,
            busy_area: 0,
            alive_area: 0,
            period: PeriodCounts::default(),
            period_busy_area: 0,
            left: 0,
            period_mark: (0, 0, 0),
            period_latency: timeline.as_ref().map(|_| latency_histogram()),
            period_ttft: timeline.as_ref().map(|_| latency_histogram()),
            affinity: HashMap::new(),
            contents: 0,
            period_hits: (0, 0),
            occupancy: (0.0, 0.0),
        };
        for id in 0..sim.control.fleet.instances.len() {
            sim.add_replicas(id, SimTime::ZERO);
        }
        let token_rng = streams.rng(Purpose::TokenCounts);
        let feed = ArrivalFeed::start(ep, streams, &mut sim.queue, Event::Arrival);
        if period <= end {
            sim.queue.schedule(period, Event::PeriodEnd);
        }
        sim.queue.schedule(end, Event::End);
        sim.wake_control();

        Run { sim, feed, token_rng, ticker: Ticker::default(), timeline, end, period }
    }

    /// When the next event is due (`None`: the replication is over).
    pub fn next_time(&self) -> Option<SimTime> {
        self.sim.queue.peek_time()
    }

    /// The control plane: its copies, for a components endpoint's timeline.
    pub fn control(&self) -> &Control {
        &self.sim.control
    }

    /// Requests counted so far.
    pub fn requests(&self) -> f64 {
        self.sim.outcome.requests
    }

    /// Handles the next event; false when there was none.
    pub fn step(&mut self) -> bool {
        let Run { sim, feed, token_rng, ticker, timeline, end, period } = self;
        let (ep, end, period) = (sim.ep, *end, *period);
        let Some((now, event)) = sim.queue.pop() else { return false };
        let dt = (now - sim.last_event).as_nanos() as u128;
        sim.acct.in_system_area_ns += sim.outstanding as u128 * dt;
        sim.busy_area += sim.busy as u128 * dt;
        sim.period_busy_area += sim.busy as u128 * dt;
        sim.period.hold(sim.control.fleet.in_service(), sim.outstanding as f64, dt as f64, 1e9);
        if now <= end {
            sim.alive_area += sim.alive as u128 * dt;
        }
        sim.last_event = now;
        match event {
            Event::Arrival => {
                ticker.tick();
                let row = feed.arrive_row(&mut sim.queue, Event::Arrival);
                let tokens = ep.traffic.tokens.as_ref().expect("an LLM design has token counts");
                let request = tokens.request(row, token_rng);
                sim.expire(now);
                sim.arrive(now, request);
            }
            Event::Wake { replica, generation } => {
                let r = &mut sim.replicas[replica as usize];
                if r.generation != generation || !r.alive {
                    return true;
                }
                let at = r.scheduled.take().expect("a scheduled wake");
                sim.on_replica(replica, |r, l, seqs, totals, out| r.wake(at, l, seqs, totals, out));
            }
            Event::PeriodEnd => {
                sim.expire(now);
                let capacity =
                    sim.control.fleet.in_service() as u128 * sim.llm.replicas as u128 * period.as_nanos() as u128;
                let busy_share = if capacity > 0 { sim.period_busy_area as f64 / capacity as f64 } else { 0.0 };
                let metric = sim.control.close_period(now, &sim.period, busy_share, period);
                let occupancy = sim.cache_occupancy();
                if !occupancy.is_nan() {
                    sim.occupancy.0 += occupancy;
                    sim.occupancy.1 += 1.0;
                }
                if let Some((rows, extra)) = timeline.as_mut() {
                    let (row, more) = sim.timeline_row(now, period, metric, occupancy);
                    rows.push(row);
                    extra.push(more);
                }
                sim.period = PeriodCounts::default();
                sim.period_busy_area = 0;
                if now + period <= end {
                    sim.queue.schedule(now + period, Event::PeriodEnd);
                }
            }
            Event::End => {
                let (area, _) = sim.cut_all(now);
                let capacity = sim.alive_area * 1000 * sim.llm.kv_tokens as u128;
                sim.lo.kv_utilization = if capacity > 0 { area as f64 / capacity as f64 } else { f64::NAN };
            }
            Event::Control => {
                sim.control_wakeup = SimTime::MAX;
                sim.control.poll(now, &mut sim.changes);
                while let Some(id) = sim.changes.lost.pop() {
                    sim.lose_instance(id, now);
                }
                for id in std::mem::take(&mut sim.changes.ready) {
                    sim.add_replicas(id, now);
                }
                // Scaling in ends idle instances at once.
                for id in 0..sim.first_replica.instances() {
                    if sim.first_replica.get(id).is_some() && !sim.control.fleet.instances[id].alive() {
                        sim.retire(id);
                    }
                }
            }
        }
        for _ in 0..std::mem::take(&mut sim.left) {
            feed.finished(&mut sim.queue, Event::Arrival, now);
        }
        sim.wake_control();
        true
    }

    /// The replication's counters, once `step` has run out of events.
    pub fn finish(self) -> (Outcome, LlmOutcome, Control, LittleNanos) {
        let mut sim = self.sim;
        // Held requests no replica ever came for: they end with the run.
        let last = sim.last_event;
        for h in std::mem::take(&mut sim.held) {
            sim.acct.sojourn_sum_ns += (last - h.arrival).as_nanos() as u128;
            if h.counted {
                sim.outcome.timed_out += 1.0;
            }
        }
        sim.lo.preemptions = sim.totals.preemptions as f64;
        sim.lo.prompt_tokens = sim.totals.prompt_tokens as f64;
        sim.lo.hit_tokens = sim.totals.hit_tokens as f64;
        sim.lo.prefill_tokens = sim.totals.prefill_tokens as f64;
        sim.lo.cache_occupancy = if sim.occupancy.1 > 0.0 { sim.occupancy.0 / sim.occupancy.1 } else { f64::NAN };
        (sim.outcome, sim.lo, sim.control, sim.acct)
    }
}

impl Sim<'_> {
    fn wake_control(&mut self) {
        self.control.keep_scheduled(&mut self.queue, &mut self.control_wakeup, Event::Control);
    }

    /// An instance came into service: its replicas take requests.
    fn add_replicas(&mut self, id: usize, now: SimTime) {
        if !self.control.fleet.accepts(id) {
            return;
        }
        let first = self.replicas.len() as u32;
        self.first_replica.set(id, first);
        for k in 0..self.llm.replicas {
            let cache = self.llm.prefix_caching.then(|| PrefixCache::new(self.llm.block_size, self.llm.kv_tokens));
            self.replicas.push(Replica::new(id as u32, cache));
            self.active.push(first + k);
        }
        self.alive += self.llm.replicas as u64;
        // Requests held for want of a replica go to the new ones.
        while let Some(h) = self.held.pop_front() {
            let target = self.route(&h).expect("a replica takes requests");
            self.place(now, h, target);
        }
    }

    /// Runs `op` on replica `r`, then records who left, the busy count
    /// and the wake it now needs.
    fn on_replica(&mut self, r: u32, op: impl FnOnce(&mut Replica, &Limits, &mut Seqs, &mut Totals, &mut Vec<Leave>)) {
        let replica = &mut self.replicas[r as usize];
        let was_busy = replica.busy();
        op(replica, &self.limits, &mut self.seqs, &mut self.totals, &mut self.leaving);
        let replica = &mut self.replicas[r as usize];
        match (was_busy, replica.busy()) {
            (false, true) => self.busy += 1,
            (true, false) => self.busy -= 1,
            _ => {}
        }
        let wake = replica.wake_at(&self.limits);
        if wake != replica.scheduled {
            replica.scheduled = wake;
            replica.generation += 1;
            if let Some(at) = wake {
                let generation = replica.generation;
                self.queue.schedule(ps_to_time(at), Event::Wake { replica: r, generation });
            }
        }
        let now = self.queue.now();
        for leave in std::mem::take(&mut self.leaving) {
            match leave {
                Leave::Finished(id) => self.finished(id, now),
                Leave::Expired(id) => self.gone(id, now, true),
            }
        }
    }

    fn arrive(&mut self, now: SimTime, request: Request) {
        let Request { input, output, prompt } = request;
        let counted = self.outcome.arrival(now, self.ep.warmup);
        if counted && output >= 2 {
            self.lo.tpot_arrivals += 1.0;
        }
        let in_service = self.control.arrival(now, &mut self.period);
        // Hashed once per request, per block (docs/prefix-caching.md).
        let hashes = prompt.as_ref().filter(|_| self.llm.prefix_caching).map(|p| {
            self.contents += 1;
            let own = OWN_CONTENT | (self.contents << 1);
            let content = Content { segments: p.segments.clone(), input, own, answer: p.answer.unwrap_or(own | 1) };
            content.hashes(input as u64 + output as u64 - 1, self.llm.block_size)
        });
        let h = Held { arrival: now, input, output, counted, session: prompt.and_then(|p| p.session), hashes };
        let fleet = &self.control.fleet;
        let replicas = &self.replicas;
        self.active.retain(|&r| replicas[r as usize].alive && fleet.accepts(replicas[r as usize].instance as usize));
        let waiting: u64 = self.active.iter().map(|&r| self.replicas[r as usize].waiting.len() as u64).sum();
        let queued = waiting as usize + self.held.len();
        let best = self.route(&h);
        let admission = if !self.llm.can_run(input, output) {
            Admission::Reject
        } else if best.is_some_and(|r| !self.replicas[r as usize].busy()) {
            Admission::Wait
        } else {
            match self.ep.admit(queued, in_service) {
                // Only an asynchronous endpoint holds requests for a replica to come.
                Admission::Wait if best.is_none() && self.ep.mode != Mode::Async => Admission::Reject,
                admission => admission,
            }
        };
        match admission {
            Admission::Wait if self.active.is_empty() => {
                self.outstanding += 1;
                self.held.push_back(h);
            }
            Admission::Wait => {
                self.outstanding += 1;
                self.place(now, h, best.expect("a replica takes requests"));
            }
            refused => {
                if self.outcome.refuse(refused, counted) {
                    self.period.rejected += 1.0;
                }
            }
        }
        if self.zero_metrics {
            self.outcome.backlog_max = self.outcome.backlog_max.max(self.outstanding as f64);
        }
    }

    /// The replica among those taking requests that `h` goes to, by the
    /// design's `routing` (docs/prefix-caching.md); `None`: there is none.
    fn route(&mut self, h: &Held) -> Option<u32> {
        let replicas = &self.replicas;
        // SageMaker's least outstanding requests, the first such in order.
        let least = self.active.iter().copied().min_by_key(|&r| replicas[r as usize].outstanding)?;
        match (self.llm.routing, h.session) {
            (Routing::SessionAffinity, Some(s)) => {
                let active = &self.active;
                let sticky = self.affinity.get(&s).copied().filter(|r| active.contains(r));
                Some(*self.affinity.entry(s).and_modify(|r| *r = sticky.unwrap_or(least)).or_insert(least))
            }
            (Routing::PrefixAware, _) if h.hashes.is_some() => Some(self.prefix_route(h, least)),
            _ => Some(least),
        }
    }

    /// SGLang's cache-aware policy (sgl-router `policies/cache_aware.rs`):
    /// when the load is out of balance, both `max − min > 64` and
    /// `max > 1.5 · min` outstanding requests, the least loaded; else the
    /// longest cached prefix if it covers more than 0.3 of the prompt; else
    /// the replica with the least cached (the most room).
    fn prefix_route(&mut self, h: &Held, least: u32) -> u32 {
        const BALANCE_ABS: u32 = 64;
        const BALANCE_REL: f64 = 1.5;
        const CACHE_THRESHOLD: f64 = 0.3;
        let loads = self.active.iter().map(|&r| self.replicas[r as usize].outstanding);
        let (min, max) = loads.fold((u32::MAX, 0), |(lo, hi), l| (lo.min(l), hi.max(l)));
        if max - min > BALANCE_ABS && max as f64 > BALANCE_REL * min as f64 {
            return least;
        }
        let hashes = h.hashes.as_ref().expect("hashed");
        let (mut best, mut matched) = (least, 0u64);
        let mut roomiest = (u64::MAX, least);
        for &r in &self.active {
            let Some(cache) = self.replicas[r as usize].cache.as_ref() else { continue };
            let hit = cache.find(hashes, h.input as u64).blocks * cache.block as u64;
            if hit > matched {
                (best, matched) = (r, hit);
            }
            roomiest = roomiest.min((cache.cached_blocks(), r));
        }
        if matched as f64 > CACHE_THRESHOLD * h.input as f64 { best } else { roomiest.1 }
    }

    /// An admitted request joins replica `target`.
    fn place(&mut self, now: SimTime, h: Held, target: u32) {
        self.serial += 1;
        let id = self.seqs.insert(Seq::new(self.serial, h.arrival, h.input, h.output, h.counted, target));
        if let (Some(hashes), Some(cache)) = (h.hashes, self.replicas[target as usize].cache.as_mut()) {
            cache.attach(id, hashes);
        }
        self.deadlines.push_back((id, self.serial));
        self.control.fleet.occupy(self.replicas[target as usize].instance as usize);
        let at = time_to_ps(now);
        self.on_replica(target, |r, l, seqs, totals, out| r.arrive(id, at, l, seqs, totals, out));
    }

    /// Requests still waiting for their first prefill past their timeout
    /// leave their queue (at arrivals and period ends; replicas also drop
    /// them when they schedule).
    fn expire(&mut self, now: SimTime) {
        while let Some(&(id, serial)) = self.deadlines.front() {
            let s = self.seqs.slab[id as usize];
            if s.serial != serial || s.state == State::Free {
                self.deadlines.pop_front();
                continue;
            }
            if s.arrival + self.ep.timeout > now {
                break;
            }
            self.deadlines.pop_front();
            if s.state == State::Waiting {
                let r = s.replica;
                self.on_replica(r, |r, _, _, _, out| {
                    r.expire_one(id, out);
                });
            }
        }
    }

    /// A request's last token came out.
    fn finished(&mut self, id: u32, now: SimTime) {
        let s = self.seqs.slab[id as usize];
        let latency = now - s.arrival;
        if let Some(h) = self.period_latency.as_mut() {
            h.saturating_record(micros(latency));
        }
        let ttft = s.first_token - s.arrival;
        let tpot =
            (s.output >= 2).then(|| SimTime::from_nanos((now - s.first_token).as_nanos() / (s.output as u64 - 1)));
        if latency <= self.ep.timeout
            && let Some(h) = self.period_ttft.as_mut()
        {
            h.saturating_record(micros(ttft));
        }
        if s.counted {
            let slo_met = match self.llm.slo {
                Some(slo) => ttft <= slo.ttft && tpot.is_none_or(|t| t <= slo.tpot),
                None => latency <= self.ep.slo,
            };
            let served = self.outcome.finish_with(s.arrival, latency, s.started > s.arrival, self.ep, slo_met);
            if served && self.zero_metrics {
                self.outcome.queue_wait_us.saturating_record(micros(s.started - s.arrival));
            }
            if served {
                self.lo.ttft_us.saturating_record(micros(ttft));
                self.lo.ttft_sum_s += ttft.as_secs_f64();
                if let Some(t) = tpot {
                    self.lo.tpot_ns.saturating_record(t.as_nanos().max(1));
                    self.lo.tpot_sum_s += t.as_secs_f64();
                }
                self.lo.output_tokens += s.output as f64;
                self.lo.input_tokens += s.input as f64;
            }
        }
        self.gone(id, now, false);
    }

    /// A request leaves its replica: sojourn, the fleet's count, its slot.
    fn gone(&mut self, id: u32, now: SimTime, timed_out: bool) {
        let s = self.seqs.slab[id as usize];
        self.acct.sojourn_sum_ns += (now - s.arrival).as_nanos() as u128;
        if timed_out && s.counted {
            self.outcome.timed_out += 1.0;
        }
        self.outstanding -= 1;
        self.left += 1;
        let instance = self.replicas[s.replica as usize].instance as usize;
        self.control.fleet.release(instance, now);
        if !self.control.fleet.instances[instance].alive() {
            self.retire(instance);
        }
        self.seqs.remove(id);
    }

    /// A drained instance ended: its (idle) replicas go.
    fn retire(&mut self, instance: usize) {
        let first = self.first_replica.get(instance).expect("a drained instance had come into service");
        for r in first..first + self.llm.replicas {
            let replica = &mut self.replicas[r as usize];
            if replica.alive {
                replica.alive = false;
                replica.cache = None;
                self.alive -= 1;
            }
        }
    }

    /// An instance was lost at once (zone outage, spot reclaim): every
    /// request on its replicas fails, counted as timed out, as the request
    /// engine counts the requests it was running.
    fn lose_instance(&mut self, id: usize, now: SimTime) {
        let Some(first) = self.first_replica.get(id) else { return };
        let mut lost = Vec::new();
        for r in first..first + self.llm.replicas {
            let replica = &mut self.replicas[r as usize];
            if !replica.alive {
                continue;
            }
            if replica.busy() {
                self.busy -= 1;
            }
            self.alive -= 1;
            replica.fail_all(&mut lost);
            replica.generation += 1;
            replica.scheduled = None;
        }
        for seq in lost {
            let s = self.seqs.slab[seq as usize];
            self.acct.sojourn_sum_ns += (now - s.arrival).as_nanos() as u128;
            if s.counted {
                if s.started > s.arrival {
                    self.outcome.waited += 1.0;
                }
                self.outcome.timed_out += 1.0;
            }
            self.outstanding -= 1;
            self.left += 1;
            self.seqs.remove(seq);
        }
    }

    /// Brings every live replica's totals to `now`: the KV area (completed
    /// iterations and the ones in flight so far) and the tokens made.
    fn cut_all(&mut self, now: SimTime) -> (u128, u64) {
        let at = time_to_ps(now);
        let mut in_flight = 0u128;
        for r in 0..self.replicas.len() as u32 {
            if !self.replicas[r as usize].alive {
                continue;
            }
            let mut partial = 0;
            self.on_replica(r, |r, l, _, totals, _| partial = r.cut(at, l, totals));
            in_flight += partial;
        }
        (self.totals.kv_area + in_flight, self.totals.tokens)
    }

    /// The live replicas' cached blocks over their KV blocks (`NaN`: no
    /// cache, or no replica).
    fn cache_occupancy(&self) -> f64 {
        let (mut cached, mut capacity) = (0u64, 0u64);
        for r in self.replicas.iter().filter(|r| r.alive) {
            if let Some(c) = &r.cache {
                cached += c.cached_blocks();
                capacity += self.llm.kv_tokens / self.llm.block_size as u64;
            }
        }
        if capacity > 0 { cached as f64 / capacity as f64 } else { f64::NAN }
    }

    fn timeline_row(&mut self, end: SimTime, period: SimTime, metric: f64, occupancy: f64) -> (TimelineRow, ExtraRow) {
        let (area, tokens) = self.cut_all(end);
        let (area0, tokens0, alive0) = self.period_mark;
        self.period_mark = (area, tokens, self.alive_area);
        let capacity = (self.alive_area - alive0) * 1000 * self.llm.kv_tokens as u128;
        let kv = if capacity > 0 { area.saturating_sub(area0) as f64 / capacity as f64 } else { f64::NAN };
        let ttft = self.period_ttft.as_mut().expect("kept with the timeline");
        let ttft_p99 = if ttft.is_empty() { f64::NAN } else { ttft.value_at_quantile(0.99) as f64 / 1000.0 };
        ttft.reset();
        let waiting: usize = self.active.iter().map(|&r| self.replicas[r as usize].waiting.len()).sum();
        let latency = self.period_latency.as_mut().expect("kept with the timeline");
        let row = TimelineRow {
            instances_in_service: self.control.fleet.in_service(),
            instances_pending: self.control.fleet.pending(),
            queue: waiting as f64,
            rejected: self.period.rejected,
            metric,
            ..TimelineRow::new(end, period, self.period.invocations, latency)
        };
        let (prompt0, hit0) = self.period_hits;
        self.period_hits = (self.totals.prompt_tokens, self.totals.hit_tokens);
        let prompt = self.totals.prompt_tokens - prompt0;
        let hit_frac = if prompt > 0 { (self.totals.hit_tokens - hit0) as f64 / prompt as f64 } else { f64::NAN };
        (row, [(tokens - tokens0) as f64 / period.as_secs_f64(), kv, ttft_p99, hit_frac, occupancy])
    }
}

/// What the LLM engine adds to `Outcome` over a replication's counted requests.
pub struct LlmOutcome {
    /// Of served requests, microseconds.
    pub ttft_us: Histogram<u64>,
    /// Of served requests with at least two output tokens, nanoseconds
    /// (TPOTs are milliseconds: the histogram keeps them to 3 digits).
    pub tpot_ns: Histogram<u64>,
    /// Sums, for exact means in tests.
    pub ttft_sum_s: f64,
    pub tpot_sum_s: f64,
    /// Prompt and output tokens of served requests.
    pub input_tokens: f64,
    pub output_tokens: f64,
    /// Counted arrivals with at least two output tokens: those a TPOT
    /// percentile over all arrivals ranks.
    pub tpot_arrivals: f64,
    pub preemptions: f64,
    /// Time-average KV use over the capacity of the live replicas, [0, end].
    pub kv_utilization: f64,
    /// Counted requests' prompt tokens at their first admission, those found
    /// in the prefix cache, and the prompt tokens prefilled.
    pub prompt_tokens: f64,
    pub hit_tokens: f64,
    pub prefill_tokens: f64,
    /// Mean over period ends of the cached blocks over the KV blocks.
    pub cache_occupancy: f64,
}

impl LlmOutcome {
    pub fn new() -> Self {
        LlmOutcome {
            ttft_us: latency_histogram(),
            tpot_ns: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds"),
            ttft_sum_s: 0.0,
            tpot_sum_s: 0.0,
            input_tokens: 0.0,
            output_tokens: 0.0,
            tpot_arrivals: 0.0,
            preemptions: 0.0,
            kv_utilization: f64::NAN,
            prompt_tokens: 0.0,
            hit_tokens: 0.0,
            prefill_tokens: 0.0,
            cache_occupancy: f64::NAN,
        }
    }

    /// Adds another run's counters (a load test pools its runs).
    pub fn add(&mut self, other: &LlmOutcome) {
        self.ttft_us.add(&other.ttft_us).expect("same bounds");
        self.tpot_ns.add(&other.tpot_ns).expect("same bounds");
        self.ttft_sum_s += other.ttft_sum_s;
        self.tpot_sum_s += other.tpot_sum_s;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.tpot_arrivals += other.tpot_arrivals;
        self.preemptions += other.preemptions;
        self.prompt_tokens += other.prompt_tokens;
        self.hit_tokens += other.hit_tokens;
        self.prefill_tokens += other.prefill_tokens;
    }

    /// The metrics of `design::PREFIX_EXTRA`.
    pub fn prefix_values(&self) -> [f64; 3] {
        let hit = if self.prompt_tokens > 0.0 { self.hit_tokens / self.prompt_tokens } else { f64::NAN };
        [hit, self.prefill_tokens, self.cache_occupancy]
    }

    /// The TTFT (`token` false) or TPOT q-quantile over the counted
    /// arrivals of `o`, ms (SPEC 3's rule for latency constraints).
    pub fn over_arrivals(&self, o: &Outcome, tpot: bool, q: f64) -> f64 {
        if tpot {
            quantile_over_arrivals(&self.tpot_ns, self.tpot_ns.len() as f64, self.tpot_arrivals, q, 1e6)
        } else {
            quantile_over_arrivals(&self.ttft_us, self.ttft_us.len() as f64, o.requests, q, 1e3)
        }
    }

    /// The metrics of `design::LLM_METRICS`' last `LLM_TAIL`; `o` is the
    /// same run's outcome, `window_s` the measured window, `cost_usd` and
    /// `gpu_hours` the fleet's.
    pub fn values(&self, o: &Outcome, window_s: f64, cost_usd: f64, gpu_hours: f64) -> [f64; LLM_TAIL] {
        let q = |h: &Histogram<u64>, q: f64, per_ms: f64| {
            if h.is_empty() { f64::NAN } else { h.value_at_quantile(q) as f64 / per_ms }
        };
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let per_s = |x: f64| ratio(x, window_s);
        let ttft = |p: f64| q(&self.ttft_us, p, 1e3);
        let tpot = |p: f64| q(&self.tpot_ns, p, 1e6);
        let all = |tpot: bool, p: f64| self.over_arrivals(o, tpot, p);
        [
            ratio(self.ttft_sum_s * 1e3, self.ttft_us.len() as f64),
            ttft(0.50),
            ttft(0.90),
            ttft(0.95),
            ttft(0.99),
            ratio(self.tpot_sum_s * 1e3, self.tpot_ns.len() as f64),
            tpot(0.50),
            tpot(0.90),
            tpot(0.95),
            tpot(0.99),
            self.output_tokens,
            per_s(self.output_tokens),
            self.preemptions,
            self.kv_utilization,
            ratio(cost_usd * 1e6, self.output_tokens),
            ratio(cost_usd * 1e6, self.input_tokens + self.output_tokens),
            gpu_hours,
            per_s(o.slo_met),
            all(false, 0.50),
            all(false, 0.90),
            all(false, 0.95),
            all(false, 0.99),
            all(true, 0.50),
            all(true, 0.90),
            all(true, 0.95),
            all(true, 0.99),
        ]
    }
}

impl Default for LlmOutcome {
    fn default() -> Self {
        Self::new()
    }
}
