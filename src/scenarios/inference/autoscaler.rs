//! Target-tracking autoscaling (AWS Application Auto Scaling rules).
//!
//! A pure policy object: the engine measures the metric over each period and
//! hands the datapoint over when it becomes visible (`period` + `metric_delay`
//! after the period starts); the autoscaler answers with a new desired
//! capacity or nothing. No event queue, no randomness, no floating-point time.
//! `docs/autoscaling.md` gives every rule with its AWS source.

use serde::Serialize;

use crate::base::time::SimTime;

/// AWS's default cooldowns for SageMaker endpoint variants (both directions).
pub const DEFAULT_COOLDOWN: SimTime = SimTime::from_secs(300);
/// Datapoints above the target, in a row, that put the high alarm in ALARM.
pub const DEFAULT_SCALE_OUT_DATAPOINTS: u32 = 3;
/// Datapoints below `scale_in_ratio × target`, in a row, for the low alarm.
pub const DEFAULT_SCALE_IN_DATAPOINTS: u32 = 15;
/// The low alarm's threshold as a share of the target.
pub const DEFAULT_SCALE_IN_RATIO: f64 = 0.9;
/// One datapoint per minute, as the standard SageMaker metrics.
pub const DEFAULT_PERIOD: SimTime = SimTime::from_mins(1);
/// A spotsim assumption (AWS documents no figure): a period's datapoint is
/// acted on one minute after the period ends.
pub const DEFAULT_METRIC_DELAY: SimTime = SimTime::from_mins(1);
/// High-resolution metrics (ConcurrentRequestsPerCopy) give a datapoint
/// every 10 s; three in a row scale out, and scale-in keeps the standard
/// 15 minutes (90 datapoints). See docs/autoscaling.md.
pub const HIGH_RES_PERIOD: SimTime = SimTime::from_secs(10);
pub const HIGH_RES_SCALE_IN_DATAPOINTS: u32 = 90;
/// A spotsim assumption, like `DEFAULT_METRIC_DELAY`: one period.
pub const HIGH_RES_METRIC_DELAY: SimTime = SimTime::from_secs(10);
/// The wake alarm's period and datapoints: real-time (NoCapacityInvocationFailures)
/// and asynchronous (HasBacklogWithoutCapacity), as in AWS's examples.
pub const WAKE_PERIOD: SimTime = SimTime::from_mins(1);
pub const WAKE_DATAPOINTS: u32 = 1;
pub const ASYNC_WAKE_DATAPOINTS: u32 = 2;

/// What the policy tracks, per instance in service. Doubling the instances
/// halves any of them for the same traffic, which target tracking needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScalingMetric {
    /// Requests that arrived in the period, per instance in service, per
    /// minute (SageMakerVariantInvocationsPerInstance). The target is in
    /// requests per instance per minute.
    InvocationsPerInstance,
    /// The busy-worker share: the time-average of requests in service over
    /// the workers of the instances in service, from 0 to 1 (like
    /// CPUUtilization). The target is a share, such as 0.7.
    Utilization,
    /// The requests an instance (a copy) holds, waiting and in service, a
    /// count (ConcurrentRequestsPerModel / ConcurrentRequestsPerCopy, a
    /// high-resolution metric). The target is a count, such as 5.
    ConcurrentRequestsPerCopy,
    /// An asynchronous endpoint's queued and running requests per instance
    /// (ApproximateBacklogSizePerInstance). The target is a count.
    BacklogPerInstance,
}

impl ScalingMetric {
    pub const NAMES: [&'static str; 4] =
        ["invocations-per-instance", "utilization", "concurrent-requests-per-copy", "backlog-per-instance"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Self> {
        let all = [
            ScalingMetric::InvocationsPerInstance,
            ScalingMetric::Utilization,
            ScalingMetric::ConcurrentRequestsPerCopy,
            ScalingMetric::BacklogPerInstance,
        ];
        all.into_iter().find(|m| m.name() == name)
    }

    /// The largest valid target (targets are always above zero).
    pub fn max_target(self) -> f64 {
        if self == ScalingMetric::Utilization { 1.0 } else { f64::MAX }
    }

    /// High-resolution metrics give a datapoint every 10 s, not every minute.
    pub fn high_resolution(self) -> bool {
        self == ScalingMetric::ConcurrentRequestsPerCopy
    }
}

/// Sets the capacity limits at `at`, as a scheduled action does.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ScheduledAction {
    pub at: SimTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

/// The step-scaling policy that wakes an endpoint from zero: an alarm on
/// NoCapacityInvocationFailures (real-time) or HasBacklogWithoutCapacity
/// (asynchronous), `datapoints` periods in a row, adds one instance when the
/// desired capacity is zero.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WakeRule {
    pub period: SimTime,
    pub datapoints: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AutoscalingPolicy {
    pub metric: ScalingMetric,
    /// In the metric's unit (see `ScalingMetric`); greater than zero.
    pub target: f64,
    pub min: u32,
    pub max: u32,
    pub scale_out_cooldown: SimTime,
    pub scale_in_cooldown: SimTime,
    pub disable_scale_in: bool,
    pub scale_out_datapoints: u32,
    pub scale_in_datapoints: u32,
    /// The low alarm fires below `scale_in_ratio × target`; in (0, 1].
    pub scale_in_ratio: f64,
    /// The span one datapoint summarises.
    pub period: SimTime,
    /// From the end of a period to the moment its datapoint is acted on.
    pub metric_delay: SimTime,
    pub scheduled: Vec<ScheduledAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wake: Option<WakeRule>,
}

impl AutoscalingPolicy {
    /// A policy with AWS's defaults for everything but the metric, the target
    /// and the limits.
    pub fn new(metric: ScalingMetric, target: f64, min: u32, max: u32) -> Self {
        AutoscalingPolicy {
            metric,
            target,
            min,
            max,
            scale_out_cooldown: DEFAULT_COOLDOWN,
            scale_in_cooldown: DEFAULT_COOLDOWN,
            disable_scale_in: false,
            scale_out_datapoints: DEFAULT_SCALE_OUT_DATAPOINTS,
            scale_in_datapoints: DEFAULT_SCALE_IN_DATAPOINTS,
            scale_in_ratio: DEFAULT_SCALE_IN_RATIO,
            period: DEFAULT_PERIOD,
            metric_delay: DEFAULT_METRIC_DELAY,
            scheduled: Vec::new(),
            wake: None,
        }
    }
}

/// The state of one target-tracking policy.
#[derive(Clone, Debug)]
pub struct Autoscaler {
    policy: AutoscalingPolicy,
    min: u32,
    max: u32,
    /// Index of the next scheduled action not yet applied (actions sorted by time).
    next_action: usize,
    /// Datapoints in a row above the target / below the low threshold. They
    /// are not reset by an action: a CloudWatch alarm stays in ALARM while its
    /// datapoints breach, and re-invokes the policy at every datapoint.
    high_run: u32,
    low_run: u32,
    /// Scale-outs are blocked (except larger ones) while `now < scale_out_until`.
    scale_out_until: SimTime,
    /// Scale-ins are blocked while `now < scale_in_until`.
    scale_in_until: SimTime,
    /// The capacity before the first scale-out of the running scale-out
    /// cooldown: a scale-out during the cooldown is sized from it, so the
    /// capacity the previous one added (not yet in service) is not added twice.
    scale_out_base: u32,
    scale_outs: u32,
    scale_ins: u32,
}

impl Autoscaler {
    /// The policy is taken as valid (the experiment reader checks it):
    /// `target > 0`, `min <= max`, `scale_in_ratio` in (0, 1], at least one
    /// datapoint per alarm. Scheduled actions run in time order; actions at
    /// the same time, in their order in the list.
    pub fn new(mut policy: AutoscalingPolicy) -> Self {
        debug_assert!(policy.target > 0.0 && policy.target.is_finite(), "target must be > 0");
        debug_assert!(policy.min <= policy.max, "min must be <= max");
        debug_assert!(policy.scale_in_ratio > 0.0 && policy.scale_in_ratio <= 1.0);
        debug_assert!(policy.scale_out_datapoints >= 1 && policy.scale_in_datapoints >= 1);
        policy.scheduled.sort_by_key(|a| a.at); // stable: ties keep list order
        Autoscaler {
            min: policy.min,
            max: policy.max,
            policy,
            next_action: 0,
            high_run: 0,
            low_run: 0,
            scale_out_until: SimTime::ZERO,
            scale_in_until: SimTime::ZERO,
            scale_out_base: 0,
            scale_outs: 0,
            scale_ins: 0,
        }
    }

    /// A datapoint (the metric over one period) is delivered at `now`;
    /// `capacity` is the current desired capacity (in service + pending, not
    /// draining). Returns the new desired capacity if the policy acts, else None.
    ///
    /// `value` is `f64::INFINITY` when requests came but no instance was in
    /// service, `0.0` when none came; NaN stands for a missing datapoint and
    /// is ignored. Datapoints must come in time order.
    pub fn on_datapoint(&mut self, now: SimTime, value: f64, capacity: u32) -> Option<u32> {
        if value.is_nan() {
            return self.comply(capacity);
        }
        let value = value.max(0.0);
        let target = self.policy.target;
        // CloudWatch's comparisons are strict: GreaterThanThreshold for the
        // high alarm, LessThanThreshold for the low one.
        if value > target {
            self.high_run = self.high_run.saturating_add(1);
            self.low_run = 0;
        } else if value < self.policy.scale_in_ratio * target {
            self.low_run = self.low_run.saturating_add(1);
            self.high_run = 0;
        } else {
            self.high_run = 0;
            self.low_run = 0;
        }

        if self.high_run >= self.policy.scale_out_datapoints {
            let cooling = now < self.scale_out_until;
            // During a scale-out cooldown only a larger scale-out goes ahead:
            // it is sized from the capacity before the cooldown began.
            let base = if cooling { self.scale_out_base } else { capacity };
            let desired = self.clamp(proportional(base, value, target));
            if desired > capacity {
                if !cooling {
                    self.scale_out_base = capacity;
                }
                self.scale_out_until = now + self.policy.scale_out_cooldown;
                // A scale-out stops a running scale-in cooldown.
                self.scale_in_until = SimTime::ZERO;
                self.scale_outs += 1;
                return Some(desired);
            }
        } else if self.low_run >= self.policy.scale_in_datapoints
            && !self.policy.disable_scale_in
            && now >= self.scale_in_until
        {
            let desired = proportional(capacity, value, target).max(self.min as u64).min(self.max as u64) as u32;
            if desired < capacity {
                self.scale_in_until = now + self.policy.scale_in_cooldown;
                self.scale_out_base = self.scale_out_base.min(desired);
                self.scale_ins += 1;
                return Some(desired);
            }
        }
        self.comply(capacity)
    }

    /// Applies scheduled actions due at or before `now`; returns a desired
    /// capacity if min/max changes force one (capacity clamped into the new
    /// [min, max]). Call it at time zero too: it brings an initial fleet
    /// outside the limits into them, as registering a scalable target does.
    pub fn on_schedule(&mut self, now: SimTime, capacity: u32) -> Option<u32> {
        while let Some(action) = self.policy.scheduled.get(self.next_action).filter(|a| a.at <= now) {
            // A one-sided action that would cross the other limit drags it
            // along (the reader rejects such schedules; this keeps min <= max).
            if let Some(min) = action.min {
                self.min = min;
                self.max = self.max.max(min);
            }
            if let Some(max) = action.max {
                self.max = max;
                self.min = self.min.min(max);
            }
            self.next_action += 1;
        }
        self.comply(capacity)
    }

    /// When the next scheduled action is due, if any is left.
    pub fn next_scheduled(&self) -> Option<SimTime> {
        self.policy.scheduled.get(self.next_action).map(|a| a.at)
    }

    /// The current (min, max).
    pub fn limits(&self) -> (u32, u32) {
        (self.min, self.max)
    }

    /// Increases of the desired capacity, by the alarms or by the limits.
    pub fn scale_outs(&self) -> u32 {
        self.scale_outs
    }

    /// Decreases of the desired capacity, by the alarms or by the limits.
    pub fn scale_ins(&self) -> u32 {
        self.scale_ins
    }

    /// Moves a capacity outside [min, max] to the nearest limit; counts it.
    fn comply(&mut self, capacity: u32) -> Option<u32> {
        if capacity < self.min {
            self.scale_outs += 1;
            Some(self.min)
        } else if capacity > self.max {
            self.scale_ins += 1;
            Some(self.max)
        } else {
            None
        }
    }

    fn clamp(&self, desired: u64) -> u32 {
        desired.clamp(self.min as u64, self.max as u64) as u32
    }
}

/// `ceil(capacity × value / target)`, the capacity that brings the metric back
/// to the target. IEEE division is correctly rounded, so a quotient that is a
/// whole number comes out exact and `ceil` does not add a spurious instance.
/// An infinite value (requests, no instance in service) carries no ratio: it
/// asks for at least one instance and otherwise for no change.
fn proportional(capacity: u32, value: f64, target: f64) -> u64 {
    if !value.is_finite() {
        return (capacity as u64).max(1);
    }
    let x = (capacity as f64 * value / target).ceil();
    if x >= u32::MAX as f64 { u32::MAX as u64 } else { x as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: SimTime = SimTime::from_mins(1);

    fn policy(target: f64, min: u32, max: u32) -> AutoscalingPolicy {
        AutoscalingPolicy::new(ScalingMetric::InvocationsPerInstance, target, min, max)
    }

    /// When the datapoint of period `k` (from `k` to `k + 1` minutes) is acted
    /// on, with the default one-minute periods and one-minute delay.
    fn seen(k: u64) -> SimTime {
        MIN.times(k + 1) + DEFAULT_METRIC_DELAY
    }

    /// Invocations per instance per minute for `rps` requests per second.
    fn per_instance(rps: f64, in_service: u32) -> f64 {
        rps * 60.0 / in_service as f64
    }

    #[test]
    fn step_from_50_to_400_rps_scales_out_at_minute_4() {
        // Target 700 invocations per instance per minute, 2 instances, and
        // traffic steps to 400 requests/s at t = 0. (At 50 requests/s, 2
        // instances already see 50 × 60 / 2 = 1500 > 700 per minute: a fleet
        // of 2 could not have been sitting still at 50 requests/s, so the
        // step is taken at the start of the run.)
        // Each minute k: 400 × 60 / 2 = 12000 per instance > 700: breaching.
        // Period k's datapoint is seen at (k + 1) + 1 minutes: periods 0, 1, 2
        // at minutes 2, 3, 4. The third breaching datapoint, at minute 4,
        // puts the high alarm in ALARM: desired = ceil(2 × 12000 / 700)
        // = ceil(34.29) = 35.
        let mut a = Autoscaler::new(policy(700.0, 1, 50));
        let v = per_instance(400.0, 2);
        assert_eq!(v, 12000.0);
        assert_eq!(a.on_datapoint(seen(0), v, 2), None);
        assert_eq!(seen(0), SimTime::from_mins(2));
        assert_eq!(a.on_datapoint(seen(1), v, 2), None);
        assert_eq!(seen(2), SimTime::from_mins(4));
        assert_eq!(a.on_datapoint(seen(2), v, 2), Some(35));
        assert_eq!(a.scale_outs(), 1);
    }

    #[test]
    fn step_on_a_settled_fleet_and_a_low_alarm_that_removes_nothing() {
        // 5 instances at 50 requests/s: 50 × 60 / 5 = 600 per instance, below
        // 0.9 × 700 = 630, so the low alarm goes to ALARM at the 15th
        // datapoint; but ceil(5 × 600 / 700) = ceil(4.29) = 5 removes nothing.
        // At minute 20 traffic steps to 400/s: 24000 / 5 = 4800 per instance.
        // Periods 20, 21, 22 are seen at minutes 22, 23, 24; at 24 the fleet
        // goes to ceil(5 × 4800 / 700) = ceil(34.29) = 35.
        let mut a = Autoscaler::new(policy(700.0, 1, 50));
        for k in 0..20 {
            assert_eq!(a.on_datapoint(seen(k), per_instance(50.0, 5), 5), None, "period {k}");
        }
        assert_eq!(a.scale_ins(), 0);
        let v = per_instance(400.0, 5);
        assert_eq!(a.on_datapoint(seen(20), v, 5), None);
        assert_eq!(a.on_datapoint(seen(21), v, 5), None);
        assert_eq!(seen(22), SimTime::from_mins(24));
        assert_eq!(a.on_datapoint(seen(22), v, 5), Some(35));
    }

    #[test]
    fn a_break_in_the_run_restarts_the_count() {
        let mut a = Autoscaler::new(policy(100.0, 1, 10));
        assert_eq!(a.on_datapoint(seen(0), 150.0, 2), None);
        assert_eq!(a.on_datapoint(seen(1), 150.0, 2), None);
        assert_eq!(a.on_datapoint(seen(2), 100.0, 2), None); // at the target: not above
        assert_eq!(a.on_datapoint(seen(3), 150.0, 2), None);
        assert_eq!(a.on_datapoint(seen(4), 150.0, 2), None);
        assert_eq!(a.on_datapoint(seen(5), 150.0, 2), Some(3));
    }

    #[test]
    fn scale_in_waits_for_the_15th_low_datapoint() {
        // Target 100; 10 instances at 40 per instance: below 90 for 15
        // datapoints, then ceil(10 × 40 / 100) = 4.
        let mut a = Autoscaler::new(policy(100.0, 1, 20));
        for k in 0..14 {
            assert_eq!(a.on_datapoint(seen(k), 40.0, 10), None, "datapoint {}", k + 1);
        }
        assert_eq!(a.on_datapoint(seen(14), 40.0, 10), Some(4));
        assert_eq!(a.scale_ins(), 1);
    }

    #[test]
    fn the_low_threshold_is_strict_and_scale_in_respects_min() {
        let mut a = Autoscaler::new(policy(100.0, 3, 20));
        // Exactly 90: not below 90 % of the target, never counts.
        for k in 0..30 {
            assert_eq!(a.on_datapoint(seen(k), 90.0, 10), None);
        }
        // Just below, 15 times: ceil(10 × 1 / 100) = 1, raised to min = 3.
        for k in 30..44 {
            assert_eq!(a.on_datapoint(seen(k), 1.0, 10), None);
        }
        assert_eq!(a.on_datapoint(seen(44), 1.0, 10), Some(3));
    }

    #[test]
    fn scale_out_cooldown_blocks_equal_scale_outs_and_expires() {
        let mut a = Autoscaler::new(policy(100.0, 1, 100));
        // 2 instances at 300: ceil(2 × 300 / 100) = 6 at the third datapoint (t = 4 min).
        assert_eq!(a.on_datapoint(seen(0), 300.0, 2), None);
        assert_eq!(a.on_datapoint(seen(1), 300.0, 2), None);
        assert_eq!(a.on_datapoint(seen(2), 300.0, 2), Some(6));
        // The new instances are still starting: the metric (per instance in
        // service) stays at 300. Sized from the capacity before the cooldown,
        // 2, the policy asks for 6 again: not larger, so nothing happens
        // until the cooldown ends at 4 + 5 = 9 minutes.
        for k in 3..7 {
            assert_eq!(a.on_datapoint(seen(k), 300.0, 6), None, "minute {}", k + 2);
        }
        // Minute 9: the cooldown is over; the alarm is still in ALARM (it
        // was never reset) and the policy sizes from the desired capacity.
        assert_eq!(seen(7), SimTime::from_mins(9));
        assert_eq!(a.on_datapoint(seen(7), 300.0, 6), Some(18));
        assert_eq!(a.scale_outs(), 2);
    }

    #[test]
    fn a_larger_scale_out_goes_ahead_during_the_cooldown() {
        let mut a = Autoscaler::new(policy(100.0, 1, 100));
        for k in 0..2 {
            a.on_datapoint(seen(k), 300.0, 2);
        }
        assert_eq!(a.on_datapoint(seen(2), 300.0, 2), Some(6)); // t = 4 min, cooldown to 9
        // Traffic grows: 500 per instance on the 2 in service. ceil(2 × 500 / 100)
        // = 10 > 6: a larger scale-out, at once.
        assert_eq!(a.on_datapoint(seen(3), 500.0, 6), Some(10));
        // It restarts the cooldown (to 5 + 5 = 10 minutes) from the same base.
        assert_eq!(a.on_datapoint(seen(7), 500.0, 10), None); // minute 9
        assert_eq!(a.on_datapoint(seen(8), 500.0, 10), Some(50)); // minute 10: over
    }

    #[test]
    fn scale_in_cooldown_blocks_scale_ins_and_expires() {
        let mut a = Autoscaler::new(policy(100.0, 1, 100));
        for k in 0..14 {
            a.on_datapoint(seen(k), 50.0, 16);
        }
        // Minute 16: ceil(16 × 50 / 100) = 8. Cooldown until minute 21.
        assert_eq!(a.on_datapoint(seen(14), 50.0, 16), Some(8));
        // Still low (the alarm stays in ALARM) but blocked at minutes 17..20.
        for k in 15..19 {
            assert_eq!(a.on_datapoint(seen(k), 40.0, 8), None, "minute {}", k + 2);
        }
        // Minute 21: ceil(8 × 40 / 100) = 4.
        assert_eq!(seen(19), SimTime::from_mins(21));
        assert_eq!(a.on_datapoint(seen(19), 40.0, 8), Some(4));
        assert_eq!(a.scale_ins(), 2);
    }

    #[test]
    fn scale_out_interrupts_a_scale_in_cooldown() {
        let mut a = Autoscaler::new(policy(100.0, 1, 100));
        for k in 0..14 {
            a.on_datapoint(seen(k), 50.0, 16);
        }
        assert_eq!(a.on_datapoint(seen(14), 50.0, 16), Some(8)); // minute 16, scale-in cooldown to 21
        // A surge during the scale-in cooldown: three high datapoints, at
        // minutes 17, 18, 19; the scale-out is not blocked.
        assert_eq!(a.on_datapoint(seen(15), 200.0, 8), None);
        assert_eq!(a.on_datapoint(seen(16), 200.0, 8), None);
        assert_eq!(a.on_datapoint(seen(17), 200.0, 8), Some(16));
        // The scale-in cooldown stopped there: a new low run of 15 may scale
        // in as soon as it completes (the scale-out cooldown does not block it).
        let mut last = None;
        for k in 18..33 {
            last = a.on_datapoint(seen(k), 10.0, 16);
        }
        assert_eq!(last, Some(2));
    }

    #[test]
    fn disable_scale_in_never_removes_capacity() {
        let mut p = policy(100.0, 1, 100);
        p.disable_scale_in = true;
        let mut a = Autoscaler::new(p);
        for k in 0..100 {
            assert_eq!(a.on_datapoint(seen(k), 0.0, 10), None);
        }
        // Scale-out still works.
        assert_eq!(a.on_datapoint(seen(100), 250.0, 10), None);
        assert_eq!(a.on_datapoint(seen(101), 250.0, 10), None);
        assert_eq!(a.on_datapoint(seen(102), 250.0, 10), Some(25));
        assert_eq!(a.scale_ins(), 0);
    }

    #[test]
    fn min_equal_to_max_pins_the_fleet() {
        let mut a = Autoscaler::new(policy(100.0, 4, 4));
        for k in 0..40 {
            let v = if k < 20 { 1000.0 } else { 0.0 };
            assert_eq!(a.on_datapoint(seen(k), v, 4), None);
        }
        assert_eq!((a.scale_outs(), a.scale_ins()), (0, 0));
    }

    #[test]
    fn scale_out_is_clamped_to_max() {
        let mut a = Autoscaler::new(policy(100.0, 1, 7));
        a.on_datapoint(seen(0), 10_000.0, 2);
        a.on_datapoint(seen(1), 10_000.0, 2);
        assert_eq!(a.on_datapoint(seen(2), 10_000.0, 2), Some(7));
        // At max, nothing more to do, even after the cooldown.
        for k in 3..20 {
            assert_eq!(a.on_datapoint(seen(k), 10_000.0, 7), None);
        }
    }

    #[test]
    fn whole_ratios_do_not_round_up() {
        // 2 × 1400 / 700 = 4 exactly: four instances, not five.
        let mut a = Autoscaler::new(policy(700.0, 1, 50));
        a.on_datapoint(seen(0), 1400.0, 2);
        a.on_datapoint(seen(1), 1400.0, 2);
        assert_eq!(a.on_datapoint(seen(2), 1400.0, 2), Some(4));
    }

    #[test]
    fn scheduled_actions_move_the_limits_and_force_capacity() {
        let mut p = policy(100.0, 2, 10);
        p.scheduled = vec![
            ScheduledAction { at: SimTime::from_hours(20), min: Some(1), max: Some(3) },
            ScheduledAction { at: SimTime::from_hours(8), min: Some(6), max: Some(20) },
        ];
        let mut a = Autoscaler::new(p);
        assert_eq!(a.next_scheduled(), Some(SimTime::from_hours(8)));
        assert_eq!(a.on_schedule(SimTime::ZERO, 2), None);
        assert_eq!(a.on_schedule(SimTime::from_hours(8), 2), Some(6));
        assert_eq!(a.limits(), (6, 20));
        assert_eq!(a.next_scheduled(), Some(SimTime::from_hours(20)));
        // The new max lets the policy go past the old one.
        a.on_datapoint(seen(600), 1000.0, 6);
        a.on_datapoint(seen(601), 1000.0, 6);
        assert_eq!(a.on_datapoint(seen(602), 1000.0, 6), Some(20));
        // Evening: max 3 forces a scale-in to 3, whatever the cooldowns.
        assert_eq!(a.on_schedule(SimTime::from_hours(20), 20), Some(3));
        assert_eq!(a.limits(), (1, 3));
        assert_eq!(a.next_scheduled(), None);
        assert_eq!(a.on_schedule(SimTime::from_hours(30), 3), None);
    }

    #[test]
    fn one_sided_actions_and_late_calls() {
        let mut p = policy(100.0, 2, 10);
        p.scheduled = vec![
            ScheduledAction { at: SimTime::from_hours(1), min: Some(4), max: None },
            ScheduledAction { at: SimTime::from_hours(2), min: None, max: Some(5) },
        ];
        let mut a = Autoscaler::new(p);
        // Both are due by now: applied in order, then the capacity complies.
        assert_eq!(a.on_schedule(SimTime::from_hours(3), 8), Some(5));
        assert_eq!(a.limits(), (4, 5));
    }

    #[test]
    fn initial_fleet_outside_the_limits_is_brought_in() {
        let mut a = Autoscaler::new(policy(100.0, 3, 10));
        assert_eq!(a.on_schedule(SimTime::ZERO, 1), Some(3));
        assert_eq!(a.on_schedule(SimTime::ZERO, 12), Some(10));
        assert_eq!(a.on_schedule(SimTime::ZERO, 5), None);
    }

    #[test]
    fn zero_instances_in_service() {
        // min = 0 lets the fleet empty out: 15 datapoints of no traffic.
        let mut a = Autoscaler::new(policy(100.0, 0, 10));
        let mut last = None;
        for k in 0..15 {
            last = a.on_datapoint(seen(k), 0.0, 2);
        }
        assert_eq!(last, Some(0));
        // Requests arrive and nobody serves them: the engine passes infinity.
        // Three such datapoints bring one instance (no ratio to size from).
        assert_eq!(a.on_datapoint(seen(15), f64::INFINITY, 0), None);
        assert_eq!(a.on_datapoint(seen(16), f64::INFINITY, 0), None);
        assert_eq!(a.on_datapoint(seen(17), f64::INFINITY, 0), Some(1));
        // While that instance starts, infinity asks for nothing more.
        for k in 18..30 {
            assert_eq!(a.on_datapoint(seen(k), f64::INFINITY, 1), None);
        }
    }

    #[test]
    fn missing_datapoints_are_ignored() {
        let mut a = Autoscaler::new(policy(100.0, 1, 10));
        a.on_datapoint(seen(0), 300.0, 2);
        a.on_datapoint(seen(1), 300.0, 2);
        assert_eq!(a.on_datapoint(seen(2), f64::NAN, 2), None);
        assert_eq!(a.on_datapoint(seen(3), 300.0, 2), Some(6));
    }
}
