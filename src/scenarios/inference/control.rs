//! The control plane of an endpoint: the fleet, its launches and startups,
//! spot reclaims, zone outages and health-check replacements, and the
//! autoscaler fed by one datapoint per period. Both engines drive it; it never
//! sees requests. Its own events wait in an `EventQueue`, so their order is
//! deterministic.

use std::collections::VecDeque;
use std::sync::Arc;

use super::autoscaler::{Autoscaler, ScalingMetric, WakeRule};
use super::components::PoolLink;
use super::design::{CapacitySummary, Endpoint, Mode, PeriodCounts};
use super::fleet::{Fleet, Placement, State};
use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::engine::{EventQueue, Purpose, SimRng, Streams};
use crate::spot::Interruptions;
use crate::spot::trace::SpotTrace;
use crate::spot::{Market, SpotTerms};
use crate::zones::{SpotReclaim, ZoneOutages};

#[derive(Clone, Copy, Debug)]
enum Event {
    /// A pending instance comes into service.
    Ready(usize),
    /// A spot instance's lifetime ends.
    Reclaim(usize),
    /// A zone-wide spot reclaim (`spot_reclaim = "zone"`).
    ZoneReclaim(u32),
    ZoneDown(u32),
    ZoneUp(u32),
    /// Health checks have noticed lost instances: restore the desired capacity.
    Replace,
    /// A datapoint reaches the autoscaler.
    Datapoint(f64),
    /// A scheduled action is due.
    Schedule,
    /// The wake alarm's datapoint for wake period `k` is due.
    WakeCheck(u64),
}

/// The step-scaling rule that wakes an endpoint at zero (`WakeRule`).
struct Wake {
    rule: WakeRule,
    /// Asynchronous: requests wait, so the alarm's condition (a backlog
    /// and no instance) lasts until an instance serves.
    persistent: bool,
    /// Wake periods in which a request found no instance in service.
    breached: VecDeque<u64>,
    /// Asynchronous: requests are queued with no instance in service.
    stranded: bool,
    run: u32,
    checking: bool,
    wakes: u32,
}

/// What changed for the engine in one poll.
#[derive(Default)]
pub struct Changes {
    /// Instances that came into service.
    pub ready: Vec<usize>,
    /// Instances lost at once (their running requests fail).
    pub lost: Vec<usize>,
}

struct Spot {
    terms: SpotTerms,
    /// Per-instance lifetime (age from capacity granted), or the zone-wide
    /// reclaim gap; `None` for traces and for a zero rate.
    lifetime: Option<Dist>,
    per_zone: bool,
    traces: Vec<Arc<SpotTrace>>,
    offset: SimTime,
    wait_rng: SimRng,
    life_rngs: Vec<SimRng>,
}

struct Zones {
    outages: ZoneOutages,
    down: Vec<bool>,
    /// Instances each zone lost in its current outage.
    lost_in: Vec<u32>,
    /// `None`: lost instances are never replaced.
    detection: Option<SimTime>,
    rebalance: bool,
}

pub struct Control {
    pub fleet: Fleet,
    autoscaler: Option<Autoscaler>,
    metric: ScalingMetric,
    period: SimTime,
    delay: SimTime,
    startup: Dist,
    startup_rng: SimRng,
    events: EventQueue<Event>,
    /// The capacity the autoscaler (or the fixed design) asks for.
    desired: u32,
    on_demand_base: u32,
    on_demand_price: f64,
    spot: Option<Spot>,
    zones: Option<Zones>,
    count: u32,
    /// When instances were lost, oldest first, until replacements serve.
    losses: VecDeque<SimTime>,
    lost_instance_hours: f64,
    /// Instances to drain once their rebalancing replacements serve.
    to_drain: u32,
    /// The last datapoint computed, for the timeline.
    pub last_metric: f64,
    end: SimTime,
    /// Past the end of the window: the autoscaler no longer acts.
    closed: bool,
    wake: Option<Wake>,
}

impl Control {
    /// `pool`: the fleet's instances are an inference component's copies,
    /// placed on that pool's instances.
    pub fn new(endpoint: &Endpoint, streams: &Streams, pool: Option<PoolLink>) -> Self {
        let policy = endpoint.autoscaling.as_ref();
        let zones_design = endpoint.zones.as_ref();
        let count = zones_design.map_or(1, |z| z.count);
        let spot = match (&endpoint.market, &endpoint.spot) {
            (Market::Spot, Some(terms)) => Some(Spot::new(terms, zones_design, count, streams)),
            _ => None,
        };
        let zones = zones_design.map(|z| Zones {
            outages: ZoneOutages::new(z, streams),
            down: vec![false; z.count as usize],
            lost_in: vec![0; z.count as usize],
            detection: (z.detection != SimTime::MAX).then_some(z.detection),
            rebalance: z.rebalance,
        });
        let mut control = Control {
            fleet: Fleet::default(),
            autoscaler: policy.map(|p| Autoscaler::new(p.clone())),
            metric: policy.map_or(ScalingMetric::InvocationsPerInstance, |p| p.metric),
            period: policy.map_or(SimTime::from_mins(1), |p| p.period),
            delay: policy.map_or(SimTime::ZERO, |p| p.metric_delay),
            startup: endpoint.startup.clone(),
            startup_rng: streams.rng(Purpose::Startup),
            events: EventQueue::new(),
            desired: endpoint.initial_instances,
            on_demand_base: endpoint.on_demand_base,
            on_demand_price: endpoint.price_per_hour,
            spot,
            zones,
            count,
            losses: VecDeque::new(),
            lost_instance_hours: 0.0,
            to_drain: 0,
            last_metric: f64::NAN,
            end: endpoint.traffic.duration,
            closed: false,
            wake: policy.and_then(|p| p.wake).map(|rule| Wake {
                rule,
                persistent: endpoint.mode == Mode::Async,
                breached: VecDeque::new(),
                stranded: false,
                run: 0,
                checking: false,
                wakes: 0,
            }),
        };
        control.fleet.set_horizon(control.end);
        control.fleet.pool = pool;
        // The initial fleet is in service at time zero, spread over the zones.
        for _ in 0..endpoint.initial_instances {
            if let Some(id) = control.launch(SimTime::ZERO, None, true) {
                control.fleet.ready(id, SimTime::ZERO);
            }
        }
        for z in 0..count {
            control.schedule_zone(z, SimTime::ZERO);
            if let Some(spot) = control.spot.as_mut()
                && spot.per_zone
                && let Some(gap) = &spot.lifetime
            {
                let at = gap.sample(&mut spot.life_rngs[z as usize]);
                control.events.schedule(at, Event::ZoneReclaim(z));
            }
        }
        if let Some(at) = control.autoscaler.as_ref().and_then(|a| a.next_scheduled()) {
            control.events.schedule(at, Event::Schedule);
        }
        // The limits hold from the start: an initial fleet outside them is
        // brought inside at time zero.
        let initial = control.fleet.capacity();
        if let Some(d) = control.autoscaler.as_mut().and_then(|a| a.on_schedule(SimTime::ZERO, initial)) {
            control.resize(d, SimTime::ZERO);
        }
        control
    }

    /// Length of one metric period (the timeline's row too).
    pub fn period(&self) -> SimTime {
        self.period
    }

    /// Whether anything reads the periods' datapoints (an autoscaler).
    pub fn has_autoscaler(&self) -> bool {
        self.autoscaler.is_some()
    }

    pub fn scale_outs(&self) -> u32 {
        self.autoscaler.as_ref().map_or(0, |a| a.scale_outs())
    }

    pub fn scale_ins(&self) -> u32 {
        self.autoscaler.as_ref().map_or(0, |a| a.scale_ins())
    }

    /// Zone outages that started before `end`, over all zones.
    pub fn zone_outages(&mut self, end: SimTime) -> u64 {
        self.zones.as_mut().map_or(0, |z| z.outages.outages_before(end))
    }

    /// In-service instance-hours missing after losses until replacements
    /// served (losses still open count until `end`).
    pub fn capacity_lost_instance_hours(&self, end: SimTime) -> f64 {
        self.lost_instance_hours + self.losses.iter().map(|&t| (end - t.min(end)).as_hours_f64()).sum::<f64>()
    }

    /// What the fleet cost over [0, end]: on-demand at its price, spot at the
    /// spot price or integrated over a trace's prices.
    pub fn cost(&self, end: SimTime) -> f64 {
        self.fleet
            .instances
            .iter()
            .map(|i| {
                let (from, to) = (i.billed_from.min(end), i.ended.min(end));
                match (&self.spot, i.spot) {
                    (Some(spot), true) => spot
                        .traces
                        .get(i.zone as usize)
                        .and_then(|t| t.cost(spot.offset, from, to))
                        .unwrap_or_else(|| spot.terms.price_per_hour * (to - from).as_hours_f64()),
                    _ => self.on_demand_price * (to - from).as_hours_f64(),
                }
            })
            .sum()
    }

    /// The capacity metrics over [0, end].
    pub fn summary(&mut self, end: SimTime) -> CapacitySummary {
        let (instances_mean, availability) = self.fleet.averages(end);
        CapacitySummary {
            cost_usd: self.cost(end),
            instance_hours: self.fleet.instance_hours(end),
            instances_mean,
            instances_max: self.fleet.max_in_service() as f64,
            scale_outs: self.scale_outs() as f64,
            scale_ins: self.scale_ins() as f64,
            availability,
            zone_outages: self.zone_outages(end) as f64,
            capacity_lost_instance_hours: self.capacity_lost_instance_hours(end),
            scale_from_zero: self.wake.as_ref().map_or(0.0, |w| w.wakes as f64),
        }
    }

    /// A request arrived at `now`: `period` counts it, and with no instance
    /// in service it asks for capacity. Returns the instances in service.
    pub fn arrival(&mut self, now: SimTime, period: &mut PeriodCounts) -> u32 {
        let in_service = self.fleet.in_service();
        period.arrival(in_service);
        if in_service == 0 {
            self.no_capacity(now);
        }
        in_service
    }

    /// A request found no instance in service at `now` (it failed, or, on an
    /// asynchronous endpoint, was queued): the wake alarm's metric.
    pub fn no_capacity(&mut self, now: SimTime) {
        let Some(wake) = self.wake.as_mut() else { return };
        let k = now.as_nanos() / wake.rule.period.as_nanos();
        if wake.breached.back() != Some(&k) {
            wake.breached.push_back(k);
        }
        wake.stranded |= wake.persistent;
        if !wake.checking {
            self.schedule_wake_check(k);
        }
    }

    fn schedule_wake_check(&mut self, k: u64) {
        let wake = self.wake.as_mut().expect("called with a wake rule");
        wake.checking = true;
        let at = wake.rule.period.times(k + 1) + self.delay;
        self.events.schedule(at, Event::WakeCheck(k));
    }

    /// The wake alarm's datapoint for period `k`: after `datapoints` breaching
    /// periods in a row, an endpoint at zero gets one instance.
    fn wake_check(&mut self, k: u64, now: SimTime) {
        let in_service = self.fleet.in_service();
        let capacity = self.fleet.capacity();
        let wake = self.wake.as_mut().expect("wake checks come from a wake rule");
        wake.checking = false;
        while wake.breached.front().is_some_and(|&b| b < k) {
            wake.breached.pop_front();
        }
        let breach = wake.breached.front() == Some(&k) || (wake.stranded && in_service == 0);
        wake.run = if breach { wake.run + 1 } else { 0 };
        let mut woke = false;
        if wake.run >= wake.rule.datapoints && capacity == 0 {
            wake.run = 0;
            wake.wakes += 1;
            woke = true;
        }
        // A run under way, or a backlog still stranded, needs the next datapoint.
        let again = !woke && (wake.run > 0 || wake.stranded && in_service == 0);
        if woke {
            self.resize(self.desired.max(1), now);
        }
        if again {
            self.schedule_wake_check(k + 1);
        }
    }

    /// The period `counts` of length `period` ended at `now`, with
    /// `busy_share` of the in-service capacity busy: its datapoint.
    pub fn close_period(&mut self, now: SimTime, counts: &PeriodCounts, busy_share: f64, period: SimTime) -> f64 {
        let held = held_per_copy(counts.held_per_copy, counts.held_orphan, period);
        self.period_end(now, counts.per_instance, counts.orphans, busy_share, held)
    }

    /// A period ended at `now`. `per_instance` is the period's requests, each
    /// counted as 1/n for the n instances in service at its arrival;
    /// `orphans` counts requests that arrived with none in service;
    /// `busy_share` is the mean share of in-service workers busy;
    /// `held_per_copy` the time-average of the requests held (waiting and in
    /// service) per instance in service (infinite when requests were held
    /// with none in service and never with one). Returns the
    /// datapoint, which the autoscaler sees after the metric delay.
    pub fn period_end(
        &mut self,
        now: SimTime,
        per_instance: f64,
        orphans: f64,
        busy_share: f64,
        held_per_copy: f64,
    ) -> f64 {
        // Scaled to zero, no copy emits the metric: the datapoint is missing
        // and only the wake rule can act (target tracking cannot leave zero).
        let no_copy = per_instance == 0.0 && !(held_per_copy > 0.0 && held_per_copy.is_finite());
        let value = match self.metric {
            _ if self.wake.is_some() && no_copy && self.fleet.in_service() == 0 => f64::NAN,
            ScalingMetric::InvocationsPerInstance if orphans > 0.0 && per_instance == 0.0 => f64::INFINITY,
            ScalingMetric::InvocationsPerInstance => per_instance * 60.0 / self.period.as_secs_f64(),
            ScalingMetric::Utilization => busy_share,
            // Requests that found no copy (failed at zero) are not held, but
            // like invocations they ask for capacity rather than look idle.
            ScalingMetric::ConcurrentRequestsPerCopy | ScalingMetric::BacklogPerInstance
                if orphans > 0.0 && held_per_copy == 0.0 =>
            {
                f64::INFINITY
            }
            ScalingMetric::ConcurrentRequestsPerCopy | ScalingMetric::BacklogPerInstance => held_per_copy,
        };
        self.last_metric = value;
        if self.autoscaler.is_some() {
            self.events.schedule(now + self.delay, Event::Datapoint(value));
        }
        value
    }

    /// The next time something in the control plane is due (`MAX`: never).
    pub fn next_due(&self) -> SimTime {
        self.events.peek_time().unwrap_or(SimTime::MAX)
    }

    /// Keeps one `event` in an engine's `queue` at the next due time:
    /// `scheduled` is when the engine's pending one is (`MAX`: none).
    pub fn keep_scheduled<E>(&self, queue: &mut EventQueue<E>, scheduled: &mut SimTime, event: E) {
        let due = self.next_due();
        if due < *scheduled {
            *scheduled = due;
            queue.schedule(due.max(queue.now()), event);
        }
    }

    /// Does everything due at or before `now`.
    pub fn poll(&mut self, now: SimTime, changes: &mut Changes) {
        while self.events.peek_time().is_some_and(|t| t <= now) {
            let (at, event) = self.events.pop().expect("peeked");
            self.handle(at, event, changes);
        }
    }

    fn handle(&mut self, now: SimTime, event: Event, changes: &mut Changes) {
        // Past the window only startups finish: no more losses, replacements
        // or scaling, so the event stream ends.
        if now > self.end {
            self.closed = true;
            if !matches!(event, Event::Ready(_)) {
                return;
            }
        }
        match event {
            Event::Ready(id) => {
                if self.fleet.ready(id, now) {
                    changes.ready.push(id);
                    if let Some(wake) = self.wake.as_mut() {
                        wake.stranded = false;
                    }
                    if let Some(lost_at) = self.losses.pop_front() {
                        self.lost_instance_hours += (now - lost_at).as_hours_f64();
                    }
                    if self.to_drain > 0 {
                        self.to_drain -= 1;
                        self.drain_most_crowded(now);
                    }
                }
            }
            Event::Reclaim(id) => {
                if self.fleet.instances[id].alive() {
                    self.lose(id, now, changes);
                    self.schedule_replace(now);
                }
            }
            Event::ZoneReclaim(z) => {
                let spot_here: Vec<usize> = (0..self.fleet.instances.len())
                    .filter(|&i| self.fleet.instances[i].alive() && self.fleet.instances[i].spot)
                    .filter(|&i| self.fleet.instances[i].zone == z)
                    .collect();
                for &id in &spot_here {
                    self.lose(id, now, changes);
                }
                if !spot_here.is_empty() {
                    self.schedule_replace(now);
                }
                let spot = self.spot.as_mut().expect("zone reclaims come from spot terms");
                if let Some(gap) = &spot.lifetime {
                    let at = now + gap.sample(&mut spot.life_rngs[z as usize]);
                    self.events.schedule(at, Event::ZoneReclaim(z));
                }
            }
            Event::ZoneDown(z) => {
                let zones = self.zones.as_mut().expect("zone events come from zones");
                zones.down[z as usize] = true;
                let here: Vec<usize> = (0..self.fleet.instances.len())
                    .filter(|&i| self.fleet.instances[i].alive() && self.fleet.instances[i].zone == z)
                    .collect();
                for &id in &here {
                    self.lose(id, now, changes);
                }
                if !here.is_empty() {
                    self.schedule_replace(now);
                }
                let zones = self.zones.as_mut().expect("zone events come from zones");
                zones.lost_in[z as usize] += here.len() as u32;
                self.schedule_zone(z, now);
            }
            Event::ZoneUp(z) => {
                let zones = self.zones.as_mut().expect("zone events come from zones");
                zones.down[z as usize] = false;
                let rebalance = zones.rebalance;
                let replacing = zones.detection.is_some();
                let lost = std::mem::take(&mut zones.lost_in[z as usize]);
                self.schedule_zone(z, now);
                if replacing {
                    // Replacements that found no healthy zone can go now.
                    self.replace(now);
                } else {
                    // Never replaced: the zone's lost instances come back with it.
                    let missing = self.desired.saturating_sub(self.fleet.capacity());
                    for _ in 0..lost.min(missing) {
                        self.launch(now, Some(z), false);
                    }
                }
                if rebalance && !self.closed {
                    self.rebalance_into(z, now);
                }
            }
            Event::Replace => self.replace(now),
            Event::Datapoint(value) => {
                if self.closed {
                    return;
                }
                let capacity = self.fleet.capacity();
                if let Some(d) = self.autoscaler.as_mut().and_then(|a| a.on_datapoint(now, value, capacity)) {
                    self.resize(d, now);
                }
            }
            Event::WakeCheck(k) => self.wake_check(k, now),
            Event::Schedule => {
                if self.closed {
                    return;
                }
                let capacity = self.fleet.capacity();
                let scaler = self.autoscaler.as_mut().expect("schedules come from the autoscaler");
                let mut desired = None;
                while scaler.next_scheduled().is_some_and(|t| t <= now) {
                    desired = scaler.on_schedule(now, capacity).or(desired);
                }
                if let Some(at) = scaler.next_scheduled() {
                    self.events.schedule(at, Event::Schedule);
                }
                if let Some(d) = desired {
                    self.resize(d, now);
                }
            }
        }
    }

    fn lose(&mut self, id: usize, now: SimTime, changes: &mut Changes) {
        if self.fleet.instances[id].state == State::InService {
            self.losses.push_back(now);
        }
        self.fleet.lose(id, now);
        changes.lost.push(id);
    }

    fn schedule_replace(&mut self, now: SimTime) {
        match self.zones.as_ref() {
            Some(z) => {
                if let Some(d) = z.detection {
                    self.events.schedule(now + d, Event::Replace);
                }
            }
            // Without [zones], health checks replace at once.
            None => self.events.schedule(now, Event::Replace),
        }
    }

    /// Launches what the desired capacity lacks, in healthy zones.
    fn replace(&mut self, now: SimTime) {
        let capacity = self.fleet.capacity();

        for _ in capacity..self.desired {
            if self.launch(now, None, false).is_none() {
                break;
            }
        }
    }

    fn resize(&mut self, desired: u32, now: SimTime) {
        self.desired = desired;
        let capacity = self.fleet.capacity();
        if desired > capacity {
            self.replace(now);
        } else if desired < capacity {
            self.fleet.scale_in(capacity - desired, now);
        }
    }

    fn schedule_zone(&mut self, z: u32, now: SimTime) {
        let Some(zones) = self.zones.as_mut() else { return };
        if zones.down[z as usize] {
            let up = zones.outages.next_up(z, now);
            if up != SimTime::MAX {
                self.events.schedule(up, Event::ZoneUp(z));
            }
        } else {
            let down = zones.outages.next_down(z, now + SimTime::from_nanos(1));
            if down != SimTime::MAX {
                self.events.schedule(down, Event::ZoneDown(z));
            }
        }
    }

    fn healthy(&self, z: u32) -> bool {
        self.zones.as_ref().is_none_or(|zones| !zones.down[z as usize])
    }

    /// The healthy zone with the fewest live instances (ties: lowest index).
    fn place(&self) -> Option<u32> {
        (0..self.count).filter(|&z| self.healthy(z)).min_by_key(|&z| (self.fleet.alive_in(z), z))
    }

    /// Launches one instance (in `zone`, or where `place` says); spot above
    /// the on-demand base. `initial`: part of the fleet in service at time 0.
    fn launch(&mut self, now: SimTime, zone: Option<u32>, initial: bool) -> Option<usize> {
        let zone = zone.or_else(|| self.place())?;
        let spot = self.spot.is_some() && self.fleet.alive_on_demand() >= self.on_demand_base;
        let mut granted = now;
        if spot && !initial {
            let s = self.spot.as_mut().expect("checked");
            granted = now + s.terms.capacity_wait.sample(&mut s.wait_rng);
            if let Some(trace) = s.traces.get(zone as usize) {
                granted = trace.next_available(s.offset, granted);
                if granted == SimTime::MAX {
                    return None;
                }
            }
        }
        // A copy's start-up depends on whether an instance has room for it.
        let copy_ready = match self.fleet.pool.clone() {
            Some(link) => {
                Some(link.pool.borrow_mut().place(link.component, self.fleet.instances.len(), now, initial)?)
            }
            None => None,
        };
        let id = self.fleet.launch(now, Placement { zone, spot, billed_from: granted });
        if !initial {
            let ready = copy_ready.unwrap_or_else(|| granted + self.startup.sample(&mut self.startup_rng));
            self.events.schedule(ready, Event::Ready(id));
        }
        if spot {
            let s = self.spot.as_mut().expect("checked");
            let reclaim = match (s.traces.get(zone as usize), &s.lifetime, s.per_zone) {
                (Some(trace), _, _) => trace.next_unavailable(s.offset, granted),
                (None, Some(life), false) => granted + life.sample(&mut s.life_rngs[0]),
                _ => SimTime::MAX,
            };
            if reclaim != SimTime::MAX {
                self.events.schedule(reclaim, Event::Reclaim(id));
            }
        }
        Some(id)
    }

    /// Moves instances into a recovered zone until zone counts differ by at
    /// most one: a replacement there first, then a drain elsewhere.
    fn rebalance_into(&mut self, z: u32, now: SimTime) {
        let healthy = (0..self.count).filter(|&k| self.healthy(k)).count() as u32;
        let alive: u32 = (0..self.count).map(|k| self.fleet.alive_in(k)).sum();
        let fair = alive / healthy.max(1);
        for _ in self.fleet.alive_in(z)..fair {
            if self.launch(now, Some(z), false).is_some() {
                self.to_drain += 1;
            }
        }
    }

    fn drain_most_crowded(&mut self, now: SimTime) {
        let Some(z) = (0..self.count).max_by_key(|&k| (self.fleet.alive_in(k), std::cmp::Reverse(k))) else {
            return;
        };
        let victim = (0..self.fleet.instances.len())
            .filter(|&i| self.fleet.instances[i].zone == z && self.fleet.instances[i].state == State::InService)
            .min_by_key(|&i| (self.fleet.instances[i].busy, i));
        if let Some(id) = victim {
            self.fleet.drain(id, now);
        }
    }
}

/// A period's time-average of the requests held per instance in service,
/// from its integral; infinite when requests were held only with none.
pub fn held_per_copy(area: f64, orphan: bool, period: SimTime) -> f64 {
    if area == 0.0 && orphan { f64::INFINITY } else { area / period.as_secs_f64() }
}

impl Spot {
    fn new(terms: &SpotTerms, zones: Option<&crate::zones::Zones>, count: u32, streams: &Streams) -> Self {
        let per_zone = zones.is_some_and(|z| z.spot_reclaim == SpotReclaim::Zone);
        let (lifetime, traces, offset) = match &terms.interruptions {
            Interruptions::Trace { traces, offset, .. } => {
                let at =
                    traces.first().map_or(SimTime::ZERO, |t| crate::spot::trace_offset(*offset, t.length(), streams));
                (None, traces.clone(), at)
            }
            model => (model.group_lifetime(1, streams), Vec::new(), SimTime::ZERO),
        };
        Spot {
            terms: terms.clone(),
            lifetime,
            per_zone,
            traces,
            offset,
            wait_rng: streams.rng(Purpose::CapacityWait),
            life_rngs: (0..count.max(1) as u64).map(|k| streams.rng_indexed(Purpose::SpotReclaims, k)).collect(),
        }
    }
}
