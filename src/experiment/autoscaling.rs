//! Reads `[inference.autoscaling]` into an `AutoscalingPolicy`.
//!
//! The defaults are AWS's for SageMaker endpoint variants; `docs/autoscaling.md`
//! gives each with its source.

use crate::input::error::did_you_mean;
use crate::input::section::{Result, Section};
use crate::scenarios::inference::autoscaler::{
    ASYNC_WAKE_DATAPOINTS, AutoscalingPolicy, DEFAULT_COOLDOWN, DEFAULT_METRIC_DELAY, DEFAULT_PERIOD,
    DEFAULT_SCALE_IN_DATAPOINTS, DEFAULT_SCALE_IN_RATIO, DEFAULT_SCALE_OUT_DATAPOINTS, HIGH_RES_METRIC_DELAY,
    HIGH_RES_PERIOD, HIGH_RES_SCALE_IN_DATAPOINTS, ScalingMetric, ScheduledAction, WAKE_DATAPOINTS, WAKE_PERIOD,
    WakeRule,
};

/// Instances an endpoint may ask for; far above any account quota.
const MAX_INSTANCES: i64 = 100_000;
/// Datapoints an alarm may wait for: one day of one-minute periods.
const MAX_DATAPOINTS: i64 = 1440;

/// What each metric's target is, for messages.
const METRIC_UNITS: [&str; 4] = [
    "requests per instance per minute, such as 700",
    "the busy-worker share, greater than 0 and at most 1, such as 0.7",
    "requests held per instance (waiting and in service), such as 5",
    "queued and running requests per instance, such as 5",
];

/// `[inference.autoscaling]`; `asynchronous` for `mode = "async"`, whose
/// wake rule is on by default.
pub(crate) fn read_autoscaling(section: &Section, asynchronous: bool) -> Result<AutoscalingPolicy> {
    read_policy(section, asynchronous, None)
}

/// An inference component's `[autoscaling]`: it scales copies between
/// `min_copies` and `max_copies` (`limits`, read by the caller), on one of
/// the per-copy metrics of SageMaker's inference components.
pub(crate) fn read_copy_autoscaling(section: &Section, limits: (u32, u32)) -> Result<AutoscalingPolicy> {
    for (key, instead) in [("min", "min_copies"), ("max", "max_copies")] {
        if let Some(entry) = section.entry(key) {
            return Err(section
                .error(entry, "a component's copies are limited by the component's own keys")
                .with_hint(Some(format!("write `{instead}` in the [[inference.components]] entry"))));
        }
    }
    read_policy(section, false, Some(limits))
}

fn read_policy(section: &Section, asynchronous: bool, copy_limits: Option<(u32, u32)>) -> Result<AutoscalingPolicy> {
    let s = section;
    s.choice("policy", &["target-tracking"])?;
    let metric = if copy_limits.is_some() { read_copy_metric(s)? } else { read_metric(s)? };
    let unit = METRIC_UNITS[metric as usize];
    let target = s
        .number("target", f64::MIN, f64::MAX)?
        .ok_or_else(|| s.missing("target", &format!("the metric's target value: {unit}")))?;
    if target <= 0.0 || target > metric.max_target() {
        let range = if metric.max_target() == 1.0 { "in (0, 1]" } else { "greater than 0" };
        return Err(s.error(
            s.entry("target").expect("read"),
            format!("expected a `{}` target {range} ({unit}), found {target}", metric.name()),
        ));
    }
    let high_res = metric.high_resolution();
    let (min, max) = match copy_limits {
        Some(limits) => limits,
        None => (
            s.integer("min", 0, MAX_INSTANCES)?.unwrap_or(1) as u32,
            s.integer("max", 1, MAX_INSTANCES)?.ok_or_else(|| s.missing("max", "the most instances to run"))? as u32,
        ),
    };
    if max < min {
        return Err(s.error(s.entry("max").expect("read"), format!("expected `max` >= `min` ({min}), found {max}")));
    }
    let scale_out_cooldown = s.duration("scale_out_cooldown")?.unwrap_or(DEFAULT_COOLDOWN);
    let scale_in_cooldown = s.duration("scale_in_cooldown")?.unwrap_or(DEFAULT_COOLDOWN);
    let disable_scale_in = s.boolean("disable_scale_in")?.unwrap_or(false);
    let scale_out_datapoints =
        s.integer("scale_out_datapoints", 1, MAX_DATAPOINTS)?.map_or(DEFAULT_SCALE_OUT_DATAPOINTS, |n| n as u32);
    let scale_in_default = if high_res { HIGH_RES_SCALE_IN_DATAPOINTS } else { DEFAULT_SCALE_IN_DATAPOINTS };
    let scale_in_datapoints =
        s.integer("scale_in_datapoints", 1, MAX_DATAPOINTS)?.map_or(scale_in_default, |n| n as u32);
    let scale_in_ratio = s.number("scale_in_ratio", 0.0, 1.0)?.unwrap_or(DEFAULT_SCALE_IN_RATIO);
    if scale_in_ratio <= 0.0 {
        return Err(s.error(
            s.entry("scale_in_ratio").expect("read"),
            "expected a share of the target greater than 0 and at most 1, such as 0.9",
        ));
    }
    let period = s.positive_duration("period")?.unwrap_or(if high_res { HIGH_RES_PERIOD } else { DEFAULT_PERIOD });
    let metric_delay =
        s.duration("metric_delay")?.unwrap_or(if high_res { HIGH_RES_METRIC_DELAY } else { DEFAULT_METRIC_DELAY });
    let scheduled = read_scheduled(s, min, max)?;
    let wake = match s.section("wake")? {
        Some(w) => Some(read_wake(&w, asynchronous)?),
        None if asynchronous => Some(WakeRule { period: WAKE_PERIOD, datapoints: ASYNC_WAKE_DATAPOINTS }),
        None => None,
    };
    s.finish()?;
    Ok(AutoscalingPolicy {
        metric,
        target,
        min,
        max,
        scale_out_cooldown,
        scale_in_cooldown,
        disable_scale_in,
        scale_out_datapoints,
        scale_in_datapoints,
        scale_in_ratio,
        period,
        metric_delay,
        scheduled,
        wake,
    })
}

/// SageMaker's names of the metrics, as aliases of spotsim's: the
/// PredefinedMetricType values of its target tracking (variant and
/// inference component), and the asynchronous endpoint's backlog metric
/// (docs/autoscaling.md).
pub const SAGEMAKER_NAMES: [(&str, &str); 4] = [
    ("SageMakerVariantInvocationsPerInstance", "invocations-per-instance"),
    ("SageMakerVariantConcurrentRequestsPerModelHighResolution", "concurrent-requests-per-copy"),
    ("SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution", "concurrent-requests-per-copy"),
    ("ApproximateBacklogSizePerInstance", "backlog-per-instance"),
];

/// `metric`: one of `ScalingMetric::NAMES` or SageMaker's name for it; the
/// old busy-share name is refused with both of the metrics it could have
/// meant.
fn read_metric(s: &Section) -> Result<ScalingMetric> {
    let names = ScalingMetric::NAMES;
    let list = names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
    let Some(text) = s.string("metric")? else {
        return Err(s.missing("metric", &format!("one of {list}")));
    };
    let entry = s.entry("metric").expect("read");
    if text == "concurrency-per-instance" {
        return Err(s
            .error(entry, "\"concurrency-per-instance\" is no longer a metric: it was the busy-worker share")
            .with_hint(Some(
                "use \"utilization\" for the busy-worker share (target in (0, 1]) or \"concurrent-requests-per-copy\" \
                 for the requests each instance holds, as SageMaker's ConcurrentRequestsPerCopy (a count, such as 5)"
                    .into(),
            )));
    }
    // SageMaker's own names (its PredefinedMetricType values) mean the same.
    let text = SAGEMAKER_NAMES.iter().find(|(aws, _)| *aws == text).map_or(text.as_str(), |(_, ours)| ours);
    ScalingMetric::from_name(text).ok_or_else(|| {
        s.error(entry, format!("expected one of {list}, found \"{text}\""))
            .with_hint(did_you_mean(text, names.iter().copied().chain(SAGEMAKER_NAMES.iter().map(|(aws, _)| *aws))))
    })
}

/// The metrics an inference component's copies scale on: its own names
/// and SageMaker's PredefinedMetricType values for them. Invocations per
/// copy are counted as invocations per instance are, a copy standing for
/// an instance.
const COPY_METRICS: [(&str, ScalingMetric); 4] = [
    ("concurrent-requests-per-copy", ScalingMetric::ConcurrentRequestsPerCopy),
    ("invocations-per-copy", ScalingMetric::InvocationsPerInstance),
    ("SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution", ScalingMetric::ConcurrentRequestsPerCopy),
    ("SageMakerInferenceComponentInvocationsPerCopy", ScalingMetric::InvocationsPerInstance),
];

fn read_copy_metric(s: &Section) -> Result<ScalingMetric> {
    let names = COPY_METRICS.iter().map(|(n, _)| *n);
    let Some(text) = s.string("metric")? else {
        return Err(s.missing("metric", "\"concurrent-requests-per-copy\" or \"invocations-per-copy\""));
    };
    COPY_METRICS.iter().find(|(name, _)| *name == text).map(|&(_, m)| m).ok_or_else(|| {
        s.error(
            s.entry("metric").expect("read"),
            format!(
                "expected \"concurrent-requests-per-copy\" or \"invocations-per-copy\" (a component's copies \
                 scale on these), found \"{text}\""
            ),
        )
        .with_hint(did_you_mean(&text, names))
    })
}

/// `wake = { period = "1m", datapoints = 1 }`: the step-scaling alarm that
/// brings an endpoint back from zero.
fn read_wake(w: &Section, asynchronous: bool) -> Result<WakeRule> {
    let period = w.positive_duration("period")?.unwrap_or(WAKE_PERIOD);
    let default = if asynchronous { ASYNC_WAKE_DATAPOINTS } else { WAKE_DATAPOINTS };
    let datapoints = w.integer("datapoints", 1, MAX_DATAPOINTS)?.map_or(default, |n| n as u32);
    w.finish()?;
    Ok(WakeRule { period, datapoints })
}

/// `scheduled = [ { at = "8h", min = 4, max = 20 }, ... ]`. The limits are
/// replayed in time order so that an action leaving min above max is caught
/// here, with its line, rather than in the middle of a run.
fn read_scheduled(s: &Section, min: u32, max: u32) -> Result<Vec<ScheduledAction>> {
    let Some(items) = s.tables("scheduled")? else {
        return Ok(Vec::new());
    };
    let mut actions = Vec::with_capacity(items.len());
    for item in &items {
        let at = item.duration("at")?.ok_or_else(|| item.missing("at", "when the action runs, such as \"8h\""))?;
        let new_min = item.integer("min", 0, MAX_INSTANCES)?.map(|n| n as u32);
        let new_max = item.integer("max", 0, MAX_INSTANCES)?.map(|n| n as u32);
        item.finish()?;
        match (new_min, new_max) {
            (None, None) => return Err(item.missing("min", "a new `min`, a new `max`, or both")),
            (Some(lo), Some(hi)) if hi < lo => {
                return Err(
                    item.error(item.entry("max").expect("read"), format!("expected `max` >= `min` ({lo}), found {hi}"))
                );
            }
            _ => {}
        }
        actions.push(ScheduledAction { at, min: new_min, max: new_max });
    }
    let mut order: Vec<usize> = (0..actions.len()).collect();
    order.sort_by_key(|&i| actions[i].at); // stable: ties run in file order
    let (mut lo, mut hi) = (min, max);
    for i in order {
        let a = actions[i];
        lo = a.min.unwrap_or(lo);
        hi = a.max.unwrap_or(hi);
        if lo > hi {
            let item = &items[i];
            let (key, message) = match a.min {
                Some(m) if a.max.is_none() => {
                    ("min", format!("at {} this leaves `min` ({m}) above `max` ({hi}); give a `max` too", a.at))
                }
                _ => ("max", format!("at {} this leaves `max` ({hi}) below `min` ({lo}); give a `min` too", a.at)),
            };
            return Err(item.error(item.entry(key).expect("read"), message));
        }
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::base::time::SimTime;
    use crate::input::error::{InputError, Origin};
    use crate::input::tree::parse_document;

    fn read(body: &str) -> std::result::Result<AutoscalingPolicy, InputError> {
        let text = format!("[inference.autoscaling]\n{body}");
        let doc = parse_document(&text, "e.toml")?;
        let root = Section::root(&doc, Origin::file("e.toml", 1), Path::new("."));
        let inference = root.section("inference")?.expect("present");
        let section = inference.section("autoscaling")?.expect("present");
        read_autoscaling(&section, false)
    }

    fn err(body: &str) -> InputError {
        read(body).expect_err("should fail")
    }

    #[test]
    fn defaults_are_filled_in() {
        // SageMaker's names are aliases.
        for (aws, ours) in &SAGEMAKER_NAMES[..3] {
            let p = read(&format!("metric = \"{aws}\"\ntarget = 0.5\nmax = 20\n")).unwrap();
            assert_eq!(p.metric.name(), *ours);
        }
        let p = read("metric = \"invocations-per-instance\"\ntarget = 700\nmax = 20\n").unwrap();
        assert_eq!(p, AutoscalingPolicy::new(ScalingMetric::InvocationsPerInstance, 700.0, 1, 20));
        assert_eq!(p.scale_out_cooldown, SimTime::from_secs(300));
        assert_eq!(p.scale_in_cooldown, SimTime::from_secs(300));
        assert_eq!((p.scale_out_datapoints, p.scale_in_datapoints), (3, 15));
        assert_eq!(p.scale_in_ratio, 0.9);
        assert_eq!(p.period, SimTime::from_mins(1));
        assert_eq!(p.metric_delay, SimTime::from_mins(1));
        assert!(!p.disable_scale_in && p.scheduled.is_empty());
    }

    #[test]
    fn every_key_is_read() {
        let p = read(
            "policy = \"target-tracking\"\nmetric = \"utilization\"\ntarget = 0.7\nmin = 0\nmax = 8\n\
             scale_out_cooldown = \"2m\"\nscale_in_cooldown = \"10m\"\ndisable_scale_in = true\n\
             scale_out_datapoints = 1\nscale_in_datapoints = 5\nscale_in_ratio = 0.8\nperiod = \"10s\"\n\
             metric_delay = \"0s\"\nscheduled = [ { at = \"8h\", min = 4, max = 20 }, { at = \"20h\", max = 2, min = 0 } ]\n",
        )
        .unwrap();
        assert_eq!(p.metric, ScalingMetric::Utilization);
        assert_eq!((p.target, p.min, p.max), (0.7, 0, 8));
        assert_eq!((p.scale_out_cooldown, p.scale_in_cooldown), (SimTime::from_mins(2), SimTime::from_mins(10)));
        assert!(p.disable_scale_in);
        assert_eq!((p.scale_out_datapoints, p.scale_in_datapoints, p.scale_in_ratio), (1, 5, 0.8));
        assert_eq!((p.period, p.metric_delay), (SimTime::from_secs(10), SimTime::ZERO));
        assert_eq!(
            p.scheduled,
            [
                ScheduledAction { at: SimTime::from_hours(8), min: Some(4), max: Some(20) },
                ScheduledAction { at: SimTime::from_hours(20), min: Some(0), max: Some(2) },
            ]
        );
    }

    #[test]
    fn array_of_tables_syntax_works_too() {
        let p = read(
            "metric = \"invocations-per-instance\"\ntarget = 700\nmax = 20\n\
             [[inference.autoscaling.scheduled]]\nat = \"1h\"\nmin = 3\n",
        )
        .unwrap();
        assert_eq!(p.scheduled, [ScheduledAction { at: SimTime::from_hours(1), min: Some(3), max: None }]);
    }

    #[test]
    fn required_keys_are_named() {
        let e = err("target = 700\nmax = 20\n");
        assert_eq!(e.key.as_deref(), Some("inference.autoscaling.metric"));
        assert!(e.message.contains("missing"), "{e}");
        let e = err("metric = \"invocations-per-instance\"\nmax = 20\n");
        assert_eq!(e.key.as_deref(), Some("inference.autoscaling.target"));
        let e = err("metric = \"invocations-per-instance\"\ntarget = 700\n");
        assert_eq!(e.key.as_deref(), Some("inference.autoscaling.max"));
    }

    #[test]
    fn bad_values_point_at_their_line() {
        let e = err("metric = \"invocations-per-instance\"\ntarget = 0\nmax = 20\n");
        assert_eq!(e.origin, Origin::file("e.toml", 3));
        assert!(e.message.contains("greater than 0 (requests per instance per minute"), "{e}");

        let e = err("metric = \"invocations-per-instance\"\ntarget = 700\nmin = 5\nmax = 2\n");
        assert_eq!((e.origin.line, e.key.as_deref()), (Some(5), Some("inference.autoscaling.max")));
        assert!(e.message.contains("`max` >= `min` (5)"), "{e}");

        let e = err("metric = \"invocations-per-instance\"\ntarget = 700\nmax = 20\nscale_in_ratio = 1.5\n");
        assert_eq!(e.key.as_deref(), Some("inference.autoscaling.scale_in_ratio"));
        let e = err("metric = \"invocations-per-instance\"\ntarget = 700\nmax = 20\nscale_in_ratio = 0\n");
        assert!(e.message.contains("greater than 0"), "{e}");

        let e = err("metric = \"invocations-per-instance\"\ntarget = 700\nmax = 20\nscale_out_datapoints = 0\n");
        assert!(e.message.contains("from 1 to 1440"), "{e}");

        let e = err("metric = \"invocations-per-instance\"\ntarget = 700\nmax = 20\nscale_in_cooldown = 300\n");
        assert!(e.message.contains("bare number is not a duration"), "{e}");

        let e = err("metric = \"invocations-per-instance\"\ntarget = 700\nmax = 20\nperiod = \"0s\"\n");
        assert!(e.message.contains("greater than zero"), "{e}");
    }

    #[test]
    fn near_misses_get_a_hint() {
        let e = err("metric = \"invocation-per-instance\"\ntarget = 700\nmax = 20\n");
        assert_eq!(e.hint.as_deref(), Some("did you mean `invocations-per-instance`?"));
        let e = err("policy = \"target-traking\"\nmetric = \"invocations-per-instance\"\ntarget = 700\nmax = 20\n");
        assert_eq!(e.hint.as_deref(), Some("did you mean `target-tracking`?"));
        let e = err("metric = \"invocations-per-instance\"\ntarget = 700\nmax = 20\nscale_in_cooldwn = \"5m\"\n");
        assert_eq!((e.origin.line, e.hint.as_deref()), (Some(5), Some("did you mean `scale_in_cooldown`?")));
    }

    #[test]
    fn scheduled_actions_are_checked() {
        let head = "metric = \"invocations-per-instance\"\ntarget = 700\nmin = 2\nmax = 10\n";
        let e = err(&format!("{head}scheduled = [ {{ min = 3 }} ]\n"));
        assert_eq!(e.key.as_deref(), Some("inference.autoscaling.scheduled[0].at"));
        let e = err(&format!("{head}scheduled = [ {{ at = \"1h\" }} ]\n"));
        assert!(e.message.contains("a new `min`, a new `max`, or both"), "{e}");
        let e = err(&format!("{head}scheduled = [ {{ at = \"1h\", min = 4, max = 3 }} ]\n"));
        assert_eq!(e.key.as_deref(), Some("inference.autoscaling.scheduled[0].max"));
        let e = err(&format!("{head}scheduled = [ {{ at = \"1h\", mn = 4 }} ]\n"));
        assert_eq!(e.key.as_deref(), Some("inference.autoscaling.scheduled[0].mn"));
        assert_eq!(e.hint.as_deref(), Some("did you mean `min`?"));
        let e = err(&format!("{head}scheduled = [ 4 ]\n"));
        assert_eq!(e.key.as_deref(), Some("inference.autoscaling.scheduled[0]"));
        let e = err(&format!("{head}scheduled = {{ at = \"1h\", min = 4 }}\n"));
        assert!(e.message.contains("an array of tables"), "{e}");
    }

    #[test]
    fn one_sided_actions_must_not_cross_the_other_limit() {
        let head = "metric = \"invocations-per-instance\"\ntarget = 700\nmin = 2\nmax = 10\n";
        // In time order: max = 4 at 1h, then min = 6 at 2h crosses it.
        let e = err(&format!(
            "{head}scheduled = [\n  {{ at = \"2h\", min = 6 }},\n  {{ at = \"1h\", min = 1, max = 4 }},\n]\n"
        ));
        assert_eq!((e.origin.line, e.key.as_deref()), (Some(7), Some("inference.autoscaling.scheduled[0].min")));
        assert!(e.message.contains("above `max` (4)"), "{e}");
        let e = err(&format!("{head}scheduled = [ {{ at = \"3h\", max = 1 }} ]\n"));
        assert!(e.message.contains("below `min` (2)"), "{e}");
        // Raising max first, then min, is fine.
        let p =
            read(&format!("{head}scheduled = [ {{ at = \"1h\", max = 30 }}, {{ at = \"1h\", min = 20 }} ]\n")).unwrap();
        assert_eq!(p.scheduled.len(), 2);
    }
}
