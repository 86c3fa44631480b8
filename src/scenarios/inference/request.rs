//! The request-level engine: every arrival and every departure is an event.
//!
//! Requests wait in one FIFO queue in front of the fleet (a load balancer's
//! view: any free worker of any in-service instance takes the head of the
//! queue), so a fixed fleet of n instances × w workers is an M/G/(n·w) queue.

use std::collections::VecDeque;

use super::control::{Changes, Control};
use super::design::{
    Admission, ArrivalFeed, Endpoint, FirstIndex, Outcome, PeriodCounts, TimelineRow, latency_histogram, micros,
};
use crate::base::time::SimTime;
use crate::engine::progress::Ticker;
use crate::engine::{EventQueue, Streams};

#[derive(Clone, Copy, Debug)]
enum Event {
    /// The next arrival (its size is kept beside the queue).
    Arrival,
    /// The request running in worker slot `slot` is done.
    Departure {
        slot: u32,
    },
    PeriodEnd,
    Control,
}

#[derive(Clone, Copy, Debug)]
struct Waiting {
    arrival: SimTime,
    service: SimTime,
    counted: bool,
}

/// One worker of one instance, and the request it is running.
#[derive(Clone, Copy, Debug)]
struct Slot {
    instance: u32,
    /// Arrival of the running request; `SimTime::MAX` when idle.
    arrival: SimTime,
    /// Service start of the running request.
    started: SimTime,
    counted: bool,
}

const IDLE: SimTime = SimTime::MAX;

/// Internal accounting that Little's law ties together: ∫ N(t) dt over the
/// run must equal the sum of the sojourn times of all requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct LittleSeconds {
    pub in_system_area_s: f64,
    pub sojourn_sum_s: f64,
}

struct Sim<'a> {
    ep: &'a Endpoint,
    queue: EventQueue<Event>,
    control: Control,
    outcome: Outcome,
    acct: LittleSeconds,
    waiting: VecDeque<Waiting>,
    slots: Vec<Slot>,
    /// The first slot of each instance (its `workers` slots are contiguous),
    /// once it has come into service.
    first_slot: FirstIndex,
    /// Free slots; entries of instances that stopped taking requests are
    /// dropped when met.
    free: Vec<u32>,
    busy: u32,
    last_event: SimTime,
    control_wakeup: SimTime,
    changes: Changes,
    // The current period.
    period: PeriodCounts,
    period_busy_area: f64,
    period_latency: Option<hdrhistogram::Histogram<u64>>,
    /// Scale-to-zero and asynchronous metrics are kept (queue waits, backlog).
    zero_metrics: bool,
}

pub fn simulate(ep: &Endpoint, streams: &Streams, timeline: Option<&mut Vec<TimelineRow>>) -> (Outcome, Control) {
    let (outcome, control, _) = simulate_with_accounting(ep, streams, timeline);
    (outcome, control)
}

pub fn simulate_with_accounting(
    ep: &Endpoint,
    streams: &Streams,
    mut timeline: Option<&mut Vec<TimelineRow>>,
) -> (Outcome, Control, LittleSeconds) {
    let end = ep.traffic.duration;
    let control = Control::new(ep, streams, None);
    let period = control.period();
    let mut sim = Sim {
        ep,
        queue: EventQueue::new(),
        control,
        outcome: Outcome::new(),
        acct: LittleSeconds::default(),
        waiting: VecDeque::new(),
        slots: Vec::new(),
        first_slot: FirstIndex::default(),
        free: Vec::new(),
        busy: 0,
        last_event: SimTime::ZERO,
        control_wakeup: SimTime::MAX,
        changes: Changes::default(),
        period: PeriodCounts::default(),
        period_busy_area: 0.0,
        period_latency: timeline.as_ref().map(|_| latency_histogram()),
        zero_metrics: ep.zero_metrics(),
    };
    for id in 0..sim.control.fleet.instances.len() {
        sim.add_slots(id);
    }
    let mut feed = ArrivalFeed::start(ep, streams, &mut sim.queue, Event::Arrival);
    if period <= end {
        sim.queue.schedule(period, Event::PeriodEnd);
    }
    sim.wake_control();

    let mut ticker = Ticker::default();
    while let Some((now, event)) = sim.queue.pop() {
        let dt = (now - sim.last_event).as_secs_f64();
        let in_system = (sim.waiting.len() as u32 + sim.busy) as f64;
        sim.acct.in_system_area_s += in_system * dt;
        sim.period_busy_area += sim.busy as f64 * dt;
        sim.period.hold(sim.control.fleet.in_service(), in_system, dt, 1.0);
        sim.last_event = now;
        match event {
            Event::Arrival => {
                ticker.tick();
                let service = feed.arrive(&mut sim.queue, Event::Arrival);
                sim.arrive(now, service);
            }
            Event::Departure { slot } => {
                if sim.depart(slot, now) {
                    feed.finished(&mut sim.queue, Event::Arrival, now);
                }
                sim.start_waiting(now);
            }
            Event::PeriodEnd => {
                sim.purge(now);
                let capacity = sim.control.fleet.in_service() as f64 * ep.workers as f64 * period.as_secs_f64();
                let busy_share = if capacity > 0.0 { sim.period_busy_area / capacity } else { 0.0 };
                let metric = sim.control.close_period(now, &sim.period, busy_share, period);
                if let Some(rows) = timeline.as_deref_mut() {
                    rows.push(sim.timeline_row(now, period, metric));
                }
                sim.period = PeriodCounts::default();
                sim.period_busy_area = 0.0;
                if now + period <= end {
                    sim.queue.schedule(now + period, Event::PeriodEnd);
                }
            }
            Event::Control => {
                sim.control_wakeup = SimTime::MAX;
                sim.control.poll(now, &mut sim.changes);
                while let Some(id) = sim.changes.lost.pop() {
                    sim.fail_running(id, now);
                }
                for id in std::mem::take(&mut sim.changes.ready) {
                    sim.add_slots(id);
                }
                sim.start_waiting(now);
            }
        }
        sim.wake_control();
    }
    // Nothing will ever serve what is still waiting: it times out.
    let last = sim.last_event;
    for w in std::mem::take(&mut sim.waiting) {
        let deadline = w.arrival + ep.timeout;
        sim.acct.in_system_area_s += (deadline.max(last) - last).as_secs_f64();
        sim.acct.sojourn_sum_s += (deadline.max(last) - w.arrival).as_secs_f64();
        if w.counted {
            sim.outcome.timed_out += 1.0;
        }
    }
    (sim.outcome, sim.control, sim.acct)
}

impl Sim<'_> {
    /// Gives an instance that came into service its worker slots.
    fn add_slots(&mut self, id: usize) {
        if !self.control.fleet.accepts(id) {
            return;
        }
        let first = self.slots.len() as u32;
        self.first_slot.set(id, first);
        let idle = Slot { instance: id as u32, arrival: IDLE, started: IDLE, counted: false };
        self.slots.extend(std::iter::repeat_n(idle, self.ep.workers as usize));
        self.free.extend((first..first + self.ep.workers).rev());
    }

    fn take_slot(&mut self) -> Option<u32> {
        while let Some(slot) = self.free.pop() {
            if self.control.fleet.accepts(self.slots[slot as usize].instance as usize) {
                return Some(slot);
            }
        }
        None
    }

    /// Keeps one control event scheduled at the control plane's next due time.
    fn wake_control(&mut self) {
        self.control.keep_scheduled(&mut self.queue, &mut self.control_wakeup, Event::Control);
    }

    fn arrive(&mut self, now: SimTime, service: SimTime) {
        self.purge(now);
        let counted = self.outcome.arrival(now, self.ep.warmup);
        let in_service = self.control.arrival(now, &mut self.period);
        let request = Waiting { arrival: now, service, counted };
        if let Some(slot) = self.take_slot() {
            self.start(slot, now, request);
        } else {
            match self.ep.admit(self.waiting.len(), in_service) {
                Admission::Wait => self.waiting.push_back(request),
                refused => {
                    if self.outcome.refuse(refused, counted) {
                        self.period.rejected += 1.0;
                    }
                }
            }
        }
        if self.zero_metrics {
            let held = (self.waiting.len() as u32 + self.busy) as f64;
            self.outcome.backlog_max = self.outcome.backlog_max.max(held);
        }
    }

    /// Drops waiting requests whose timeout has passed (they are at the front).
    fn purge(&mut self, now: SimTime) {
        while let Some(w) = self.waiting.front() {
            if w.arrival + self.ep.timeout > now {
                break;
            }
            self.acct.sojourn_sum_s += (now - w.arrival).as_secs_f64();
            if w.counted {
                self.outcome.timed_out += 1.0;
            }
            self.waiting.pop_front();
        }
    }

    fn start_waiting(&mut self, now: SimTime) {
        self.purge(now);
        while !self.waiting.is_empty() {
            let Some(slot) = self.take_slot() else { break };
            let request = self.waiting.pop_front().expect("not empty");
            self.start(slot, now, request);
        }
    }

    fn start(&mut self, slot: u32, now: SimTime, request: Waiting) {
        if self.zero_metrics && request.counted {
            self.outcome.queue_wait_us.saturating_record(micros(now - request.arrival));
        }
        let s = &mut self.slots[slot as usize];
        s.arrival = request.arrival;
        s.started = now;
        s.counted = request.counted;
        self.control.fleet.occupy(s.instance as usize);
        self.busy += 1;
        self.queue.schedule(now + request.service, Event::Departure { slot });
    }

    /// The request in `slot` is done; its latency counts now. Returns
    /// whether one was running there.
    fn depart(&mut self, slot: u32, now: SimTime) -> bool {
        let s = self.slots[slot as usize];
        if s.arrival == IDLE {
            return false; // its instance was lost, and the request with it
        }
        self.slots[slot as usize].arrival = IDLE;
        self.busy -= 1;
        let instance = s.instance as usize;
        self.control.fleet.release(instance, now);
        if self.control.fleet.accepts(instance) {
            self.free.push(slot);
        }
        let latency = now - s.arrival;
        self.acct.sojourn_sum_s += latency.as_secs_f64();
        if let Some(h) = self.period_latency.as_mut() {
            h.saturating_record(micros(latency));
        }
        if s.counted {
            self.outcome.finish(s.arrival, latency, s.started > s.arrival, self.ep);
        }
        true
    }

    /// An instance was lost at once (zone outage, spot reclaim): the requests
    /// it was running fail, as timed out.
    fn fail_running(&mut self, id: usize, now: SimTime) {
        if let Some(first) = self.first_slot.get(id) {
            for slot in first..first + self.ep.workers {
                let s = self.slots[slot as usize];
                if s.arrival == IDLE {
                    continue;
                }
                self.slots[slot as usize].arrival = IDLE;
                self.busy -= 1;
                self.acct.sojourn_sum_s += (now - s.arrival).as_secs_f64();
                if s.counted {
                    if s.started > s.arrival {
                        self.outcome.waited += 1.0;
                    }
                    self.outcome.timed_out += 1.0;
                }
            }
        }
    }

    fn timeline_row(&mut self, end: SimTime, period: SimTime, metric: f64) -> TimelineRow {
        let latency = self.period_latency.as_mut().expect("kept with the timeline");
        TimelineRow {
            instances_in_service: self.control.fleet.in_service(),
            instances_pending: self.control.fleet.pending(),
            queue: self.waiting.len() as f64,
            rejected: self.period.rejected,
            metric,
            ..TimelineRow::new(end, period, self.period.invocations, latency)
        }
    }
}
