//! Instances of an endpoint: launch, startup, service, draining, billing.
//! Shared by the request-level and fluid engines.

use super::components::PoolLink;
use crate::base::time::SimTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    InService,
    /// Scaled in: takes no new requests, ends when its last one finishes.
    Draining,
    Terminated,
}

#[derive(Clone, Debug)]
pub struct Instance {
    pub state: State,
    pub launched: SimTime,
    /// Billing starts here: at launch, or when spot capacity is granted.
    pub billed_from: SimTime,
    pub ended: SimTime,
    /// Requests in service on this instance.
    pub busy: u32,
    pub zone: u32,
    pub spot: bool,
}

impl Instance {
    pub fn alive(&self) -> bool {
        self.state != State::Terminated
    }
}

/// Where and how an instance is launched.
#[derive(Clone, Copy, Debug, Default)]
pub struct Placement {
    pub zone: u32,
    pub spot: bool,
    /// When billing starts (not before the launch).
    pub billed_from: SimTime,
}

/// The fleet, with the time integrals its metrics need.
#[derive(Clone, Debug, Default)]
pub struct Fleet {
    pub instances: Vec<Instance>,
    in_service: u32,
    pending: u32,
    last_change: SimTime,
    /// ∫ in-service count dt, in instance-nanoseconds.
    in_service_area: u128,
    /// Time with at least one instance in service.
    up_time: SimTime,
    max_in_service: u32,
    /// The integrals stop here (the end of the window); `None`: no end.
    horizon: Option<SimTime>,
    /// The instances are an inference component's copies on this pool,
    /// which frees a copy's room when it ends.
    pub pool: Option<PoolLink>,
}

impl Fleet {
    /// A fleet of `n` instances in service from time zero.
    pub fn new(n: u32) -> Self {
        let mut fleet = Fleet::default();
        for _ in 0..n {
            let id = fleet.launch(SimTime::ZERO, Placement::default());
            fleet.ready(id, SimTime::ZERO);
        }
        fleet
    }

    pub fn in_service(&self) -> u32 {
        self.in_service
    }
    pub fn pending(&self) -> u32 {
        self.pending
    }
    /// What the autoscaler counts as current capacity: in service and pending.
    pub fn capacity(&self) -> u32 {
        self.in_service + self.pending
    }
    pub fn max_in_service(&self) -> u32 {
        self.max_in_service
    }

    /// Ends the time integrals at `end`: changes after it still happen
    /// (instances finish starting, requests drain) but count for nothing.
    pub fn set_horizon(&mut self, end: SimTime) {
        self.horizon = Some(end);
    }

    /// Brings the time integrals up to `now`; call before every change.
    fn advance(&mut self, now: SimTime) {
        let now = self.horizon.map_or(now, |h| now.min(h));
        let dt = now - self.last_change;
        self.in_service_area += self.in_service as u128 * dt.as_nanos() as u128;
        if self.in_service > 0 {
            self.up_time += dt;
        }
        self.last_change = self.last_change.max(now);
    }

    /// Launches an instance (pending until `ready`); returns its id.
    pub fn launch(&mut self, now: SimTime, at: Placement) -> usize {
        self.advance(now);
        self.pending += 1;
        self.instances.push(Instance {
            state: State::Pending,
            launched: now,
            billed_from: at.billed_from.max(now),
            ended: SimTime::MAX,
            busy: 0,
            zone: at.zone,
            spot: at.spot,
        });
        self.instances.len() - 1
    }

    /// Instances not terminated in `zone`.
    pub fn alive_in(&self, zone: u32) -> u32 {
        self.instances.iter().filter(|i| i.alive() && i.zone == zone).count() as u32
    }

    /// On-demand instances not terminated.
    pub fn alive_on_demand(&self) -> u32 {
        self.instances.iter().filter(|i| i.alive() && !i.spot).count() as u32
    }

    /// A pending instance comes into service. Returns false if it was
    /// cancelled meanwhile.
    pub fn ready(&mut self, id: usize, now: SimTime) -> bool {
        if self.instances[id].state != State::Pending {
            return false;
        }
        self.advance(now);
        self.instances[id].state = State::InService;
        self.pending -= 1;
        self.in_service += 1;
        if self.horizon.is_none_or(|h| now <= h) {
            self.max_in_service = self.max_in_service.max(self.in_service);
        }
        true
    }

    /// Removes `n` instances: pending ones first (newest first), then the
    /// least busy in service, which drain. Returns the ids that stopped
    /// taking requests (in service before).
    pub fn scale_in(&mut self, n: u32, now: SimTime) -> Vec<usize> {
        self.advance(now);
        let mut left = n;
        for id in (0..self.instances.len()).rev() {
            if left == 0 {
                break;
            }
            if self.instances[id].state == State::Pending {
                self.pending -= 1;
                self.end(id, now);
                left -= 1;
            }
        }
        let mut candidates: Vec<usize> =
            (0..self.instances.len()).filter(|&i| self.instances[i].state == State::InService).collect();
        // Least busy first; ties by id, so the choice is deterministic.
        candidates.sort_by_key(|&i| (self.instances[i].busy, i));
        let drained: Vec<usize> = candidates.into_iter().take(left as usize).collect();
        for &id in &drained {
            self.in_service -= 1;
            if self.instances[id].busy == 0 {
                self.end(id, now);
            } else {
                self.instances[id].state = State::Draining;
            }
        }
        drained
    }

    /// Takes one in-service instance out of service; it ends when idle.
    pub fn drain(&mut self, id: usize, now: SimTime) {
        if self.instances[id].state != State::InService {
            return;
        }
        self.advance(now);
        self.in_service -= 1;
        if self.instances[id].busy == 0 {
            self.end(id, now);
        } else {
            self.instances[id].state = State::Draining;
        }
    }

    /// An instance is lost at once (zone outage, spot reclaim): its requests
    /// are the engine's to fail.
    pub fn lose(&mut self, id: usize, now: SimTime) {
        self.advance(now);
        match self.instances[id].state {
            State::Pending => self.pending -= 1,
            State::InService => self.in_service -= 1,
            State::Draining => {}
            State::Terminated => return,
        }
        self.end(id, now);
    }

    fn end(&mut self, id: usize, now: SimTime) {
        let inst = &mut self.instances[id];
        inst.state = State::Terminated;
        inst.ended = now;
        if let Some(link) = &self.pool {
            link.pool.borrow_mut().release(link.component, id, now);
        }
    }

    /// A request starts on `id`.
    pub fn occupy(&mut self, id: usize) {
        self.instances[id].busy += 1;
    }

    /// A request on `id` finished; a draining instance with nothing left ends.
    pub fn release(&mut self, id: usize, now: SimTime) {
        let inst = &mut self.instances[id];
        inst.busy -= 1;
        if inst.state == State::Draining && inst.busy == 0 {
            self.end(id, now);
        }
    }

    pub fn accepts(&self, id: usize) -> bool {
        self.instances[id].state == State::InService
    }

    /// Billed instance-hours from launch to termination, counting instances
    /// still running as ending at `end`.
    pub fn instance_hours(&self, end: SimTime) -> f64 {
        self.instances.iter().map(|i| (i.ended.min(end) - i.billed_from.min(end)).as_hours_f64()).sum()
    }

    /// Time-average in-service count and availability (share of time with at
    /// least one in service) over [0, end].
    pub fn averages(&mut self, end: SimTime) -> (f64, f64) {
        self.advance(end);
        if end.is_zero() {
            return (self.in_service as f64, if self.in_service > 0 { 1.0 } else { 0.0 });
        }
        let t = end.as_nanos() as f64;
        (self.in_service_area as f64 / t, self.up_time.as_nanos() as f64 / t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(x: u64) -> SimTime {
        SimTime::from_mins(x)
    }

    #[test]
    fn billing_runs_from_launch_to_termination() {
        let mut f = Fleet::new(2);
        let a = f.launch(m(10), Placement::default());
        assert_eq!(f.capacity(), 3);
        assert!(f.ready(a, m(15)));
        f.occupy(a);
        let drained = f.scale_in(1, m(30));
        // The least busy instance drains: one of the idle initial ones, ending at once.
        assert_eq!(drained, vec![0]);
        assert_eq!(f.instances[0].state, State::Terminated);
        assert_eq!(f.in_service(), 2);
        let hours = f.instance_hours(m(60));
        assert!((hours - (0.5 + 1.0 + 50.0 / 60.0)).abs() < 1e-12, "{hours}");
        let (mean, avail) = f.averages(m(60));
        // 2 in service for 15 min, 3 for 15 min, 2 for 30 min.
        assert!((mean - (2.0 * 15.0 + 3.0 * 15.0 + 2.0 * 30.0) / 60.0).abs() < 1e-12);
        assert_eq!(avail, 1.0);
        assert_eq!(f.max_in_service(), 3);
    }

    #[test]
    fn draining_waits_for_the_last_request_and_pending_goes_first() {
        let mut f = Fleet::new(1);
        f.occupy(0);
        let p = f.launch(m(1), Placement::default());
        let drained = f.scale_in(2, m(2));
        assert_eq!(f.instances[p].state, State::Terminated, "pending cancelled first");
        assert_eq!(drained, vec![0]);
        assert_eq!(f.instances[0].state, State::Draining);
        assert!(!f.ready(p, m(3)));
        f.release(0, m(4));
        assert_eq!(f.instances[0].state, State::Terminated);
        assert_eq!(f.instances[0].ended, m(4));
        let (_, avail) = f.averages(m(8));
        assert!((avail - 2.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn an_empty_fleet_has_no_availability() {
        let mut f = Fleet::new(0);
        assert_eq!(f.averages(m(5)), (0.0, 0.0));
        assert_eq!(f.instance_hours(m(5)), 0.0);
    }
}
