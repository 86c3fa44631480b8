//! Deadline-aware spot policies (SPEC 2.6): which market a training job runs
//! on, decided at the model's events (spot lost, spot available again,
//! progress crossing the uniform-progress line, the safety net), never per
//! tick. The rules are in `docs/deadline-policies.md`.
//!
//! The policy plans with mean startup, restore and write times; the model
//! then runs the plan with the drawn ones.

use serde::Serialize;

use super::TrainingJob;
use crate::base::time::SimTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Spot, with `spot.fallback` (if any): deadline-blind, the default.
    Fallback,
    /// Spot whenever available, wait otherwise; the safety net.
    Greedy,
    /// Can't Be Late's Uniform Progress; the safety net.
    UniformProgress,
    /// On-demand from the start.
    OnDemand,
    /// Spot only, whatever the deadline.
    SpotOnly,
    /// The cheapest schedule that meets the deadline, knowing the trace.
    Optimal,
}

pub const POLICY_NAMES: [&str; 6] = ["fallback", "greedy", "uniform-progress", "on-demand", "spot-only", "optimal"];

impl Policy {
    pub fn from_name(name: &str) -> Option<Policy> {
        let all = [
            Policy::Fallback,
            Policy::Greedy,
            Policy::UniformProgress,
            Policy::OnDemand,
            Policy::SpotOnly,
            Policy::Optimal,
        ];
        POLICY_NAMES.iter().position(|&n| n == name).map(|i| all[i])
    }

    pub fn name(self) -> &'static str {
        POLICY_NAMES[self as usize]
    }

    /// Whether the policy keeps a deadline, when there is one, with the
    /// safety net: every policy but `spot-only`, `on-demand` (which needs
    /// none) and `optimal` (which plans).
    pub fn has_safety_net(self) -> bool {
        matches!(self, Policy::Fallback | Policy::Greedy | Policy::UniformProgress)
    }

    /// Whether the policy needs a deadline to decide anything.
    pub fn needs_deadline(self) -> bool {
        matches!(self, Policy::Greedy | Policy::UniformProgress | Policy::Optimal)
    }
}

/// The policy's view of a job: deadline, work and mean overheads, in ns.
#[derive(Clone, Copy, Debug)]
pub struct Planner {
    deadline: u64,
    work: u64,
    interval: u64,
    startup: u64,
    restore: u64,
    write: u64,
}

impl Planner {
    pub fn new(job: &TrainingJob, deadline: SimTime) -> Planner {
        let ns = |secs: f64| SimTime::from_secs_f64(secs).as_nanos();
        Planner {
            deadline: deadline.as_nanos(),
            work: job.work.as_nanos(),
            interval: job.checkpoint.interval.as_nanos(),
            startup: ns(job.startup.mean_secs()),
            restore: ns(job.checkpoint.restore.mean_secs()),
            write: ns(job.checkpoint.write.mean_secs()),
        }
    }

    /// Time on instances to finish from `saved`: the work left and its writes.
    pub fn need(&self, saved: SimTime) -> u64 {
        let left = self.work.saturating_sub(saved.as_nanos());
        left + self.write * left.div_ceil(self.interval)
    }

    /// Mean startup, plus restore on a relaunch.
    pub fn launch(&self, relaunch: bool) -> u64 {
        self.startup + if relaunch { self.restore } else { 0 }
    }

    /// The latest time at which a reclaim still leaves time to finish on
    /// on-demand by the deadline (relaunch, then the work left).
    pub fn reclaim_safe_until(&self, saved: SimTime) -> SimTime {
        SimTime::from_nanos(self.deadline.saturating_sub(self.launch(true) + self.need(saved)))
    }

    /// The latest time a waiting job still takes spot: a spot launch after it
    /// could not get past its own startup before `reclaim_safe_until`. After
    /// it the job moves to on-demand for good (the safety net).
    pub fn give_up_spot_at(&self, saved: SimTime, relaunch: bool) -> SimTime {
        self.reclaim_safe_until(saved).saturating_sub(SimTime::from_nanos(self.launch(relaunch)))
    }

    /// When a spot launch at `launch` with `saved` must leave spot: if its
    /// first checkpoint cannot complete by `reclaim_safe_until`, one mean
    /// write before that, so that a save on the way out ends in time. After
    /// the first checkpoint every full cycle keeps the same margin, so one
    /// check per launch is enough.
    pub fn leave_spot_at(&self, launch: SimTime, saved: SimTime, relaunch: bool) -> SimTime {
        let safe = self.reclaim_safe_until(saved);
        let first = self.interval.min(self.work.saturating_sub(saved.as_nanos())) + self.write;
        let first_saved = launch.as_nanos().saturating_add(self.launch(relaunch) + first);
        if first_saved > safe.as_nanos() {
            safe.saturating_sub(SimTime::from_nanos(self.write)).max(launch)
        } else {
            SimTime::MAX
        }
    }

    /// The uniform-progress line: the work that should be done by `t`.
    fn line(&self, t: f64) -> f64 {
        t * self.work as f64 / self.deadline as f64
    }

    /// Whether `saved` is behind the line at `t`.
    pub fn behind(&self, saved: SimTime, t: SimTime) -> bool {
        (saved.as_nanos() as f64) < self.line(t.as_nanos() as f64)
    }

    /// When a waiting job with `saved` falls behind the line.
    pub fn behind_at(&self, saved: SimTime) -> SimTime {
        let t = saved.as_nanos() as f64 * self.deadline as f64 / self.work as f64;
        SimTime::from_nanos(t.ceil() as u64)
    }

    /// An on-demand launch at `launch` with `saved`: when its progress is first
    /// ahead of the line two relaunches later (Can't Be Late's hysteresis),
    /// or `MAX` if never before the job is done. Progress counts compute
    /// only, cycles of `interval` compute and a mean write.
    pub fn ahead_on_demand_at(&self, launch: SimTime, saved: SimTime, relaunch: bool) -> SimTime {
        let (tau, c) = (self.interval as f64, self.write as f64);
        let r = self.work as f64 / self.deadline as f64;
        let c0 = launch.as_nanos() as f64 + self.launch(relaunch) as f64;
        let margin = 2.0 * self.launch(true) as f64;
        // gap = line(t + margin) - progress, at the start of cycle k.
        let gap0 = self.line(c0 + margin) - saved.as_nanos() as f64;
        if gap0 < 0.0 {
            return launch;
        }
        let per_cycle = r * (tau + c) - tau;
        let within = (1.0 - r) * tau;
        let k = if gap0 < within {
            0.0
        } else if per_cycle >= 0.0 {
            return SimTime::MAX;
        } else {
            ((gap0 - within) / -per_cycle).floor() + 1.0
        };
        let left = self.work.saturating_sub(saved.as_nanos()) as f64;
        if k * tau >= left {
            return SimTime::MAX;
        }
        let gap = gap0 + k * per_cycle;
        SimTime::from_nanos((c0 + k * (tau + c) + gap.max(0.0) / (1.0 - r)).ceil() as u64)
    }

    /// Whether an on-demand launch at `launch` keeps the margin to return to
    /// spot: the give-up time is still ahead once compute starts (on
    /// on-demand that margin then stays the same at every checkpoint).
    pub fn may_return_to_spot(&self, launch: SimTime, saved: SimTime, relaunch: bool) -> bool {
        let start = launch.as_nanos().saturating_add(self.launch(relaunch));
        self.give_up_spot_at(saved, true).as_nanos() > start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planner(work_h: u64, deadline_h: u64, interval_m: u64, startup_m: u64, restore_m: u64, write_m: u64) -> Planner {
        let m = |x: u64| SimTime::from_mins(x).as_nanos();
        Planner {
            deadline: SimTime::from_hours(deadline_h).as_nanos(),
            work: SimTime::from_hours(work_h).as_nanos(),
            interval: m(interval_m),
            startup: m(startup_m),
            restore: m(restore_m),
            write: m(write_m),
        }
    }

    #[test]
    fn safety_times_by_hand() {
        // 10 h of work in 1 h segments with 6 m writes, deadline 20 h,
        // startup 5 m, restore 10 m: on-demand needs 10 h + 60 m of writes.
        let p = planner(10, 20, 60, 5, 10, 6);
        assert_eq!(p.need(SimTime::ZERO), SimTime::from_mins(660).as_nanos());
        // A reclaim is survivable until 20 h - 15 m - 11 h = 8 h 45 m.
        assert_eq!(p.reclaim_safe_until(SimTime::ZERO), SimTime::from_mins(525));
        // A waiting relaunch gives spot up 15 m earlier, a first launch 5 m earlier.
        assert_eq!(p.give_up_spot_at(SimTime::ZERO, true), SimTime::from_mins(510));
        assert_eq!(p.give_up_spot_at(SimTime::ZERO, false), SimTime::from_mins(520));
        // A launch at 7 h 30 m reaches its first checkpoint at 8 h 51 m: too
        // late; it leaves one write before 8 h 45 m.
        assert_eq!(p.leave_spot_at(SimTime::from_mins(450), SimTime::ZERO, true), SimTime::from_mins(519));
        assert_eq!(p.leave_spot_at(SimTime::from_mins(400), SimTime::ZERO, true), SimTime::MAX);
        // Line: half the work by 10 h.
        assert!(p.behind(SimTime::from_hours(4), SimTime::from_hours(9)));
        assert!(!p.behind(SimTime::from_hours(5), SimTime::from_hours(10)));
        assert_eq!(p.behind_at(SimTime::from_hours(3)), SimTime::from_hours(6));
    }

    #[test]
    fn ahead_on_demand_by_hand() {
        // No writes or overheads, W/D = 1/2: from 0 saved at t = 4 h the line is
        // 2 h ahead; progress gains 1/2 h per hour, so it is ahead from 8 h.
        let p = planner(10, 20, 60, 0, 0, 0);
        assert_eq!(p.ahead_on_demand_at(SimTime::from_hours(4), SimTime::ZERO, true), SimTime::from_hours(8));
        // Already ahead: at once.
        assert_eq!(p.ahead_on_demand_at(SimTime::from_hours(4), SimTime::from_hours(3), true), SimTime::from_hours(4));
        // With writes of 1 h per 1 h segment progress grows at the line's own
        // rate: never ahead.
        let p = planner(10, 20, 60, 0, 0, 60);
        assert_eq!(p.ahead_on_demand_at(SimTime::from_hours(4), SimTime::ZERO, true), SimTime::MAX);
    }
}
