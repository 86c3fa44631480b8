//! Reads `[training]` (with `[spot]` and `[zones]`) into a `TrainingJob`.

use super::Scenario;
use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::catalog::catalog;
use crate::catalog::profile::{self, Profile};
use crate::experiment::profile::{read_profile, training_figures, training_use};
use crate::experiment::spot::{MarketTerms, read_market};
use crate::input::error::did_you_mean;
use crate::input::section::{Result, Section};
use crate::input::tree::Value;
use crate::scenarios::training::policy::{POLICY_NAMES, Policy};
use crate::scenarios::training::{Checkpointing, IntervalRule, TrainingJob, optimal_interval_s};
use crate::spot::Market;
use crate::spot::{Interruptions, SpotTerms};

pub(super) const SCENARIO: Scenario =
    Scenario { table: "training", uses: &["spot", "zones"], read: |root| Ok(Box::new(read_training(root)?)) };

fn read_training(root: &Section) -> Result<TrainingJob> {
    let t = root.section("training")?.expect("caller checked");
    // `instances` first: a missing `instance` must not take it for a typo.
    let instances = t.integer("instances", 1, 100_000)?.unwrap_or(1) as u32;
    let (instance, on_demand_price) = super::instance_price(&t)?;
    let work = t
        .positive_duration("work")?
        .ok_or_else(|| t.missing("work", "the compute time the job needs, such as \"100h\""))?;
    let profile = read_profile(&t)?;
    let figures = match &profile {
        Some(p) => Some(training_figures(&t, p, instance.as_deref())?),
        None => None,
    };
    // `work` is in hours on the profile's reference type; the compute time
    // on `instances` nodes of this type follows from speed and scaling.
    let reference_work = work;
    let work = match figures {
        Some((_, kind)) => profile::compute_time(kind, instances, work),
        None => work,
    };
    // What `"auto"` checkpoint times are: the profile's size over the network.
    let auto_secs = match (&profile, figures) {
        (Some(p), Some((f, kind))) => Some(f.checkpoint_size_gb.map(|gb| {
            let i = catalog().find(&kind.instance).expect("profile types are in the catalog");
            profile::checkpoint_transfer_secs(i, gb)
        }))
        .map(|secs| (p.as_ref(), secs)),
        _ => None,
    };
    let mut gives = vec![];
    if figures.is_some() {
        gives.push("work");
    }
    let startup = t.dist("startup")?.unwrap_or(Dist::Constant(SimTime::ZERO));
    let max_runtime = t.positive_duration("max_runtime")?;
    let max_wait = t.positive_duration("max_wait")?;
    let deadline = t.positive_duration("deadline")?;
    let policy = match t.section("policy")? {
        Some(p) => {
            let name = p.choice("name", &POLICY_NAMES)?.ok_or_else(|| {
                p.missing("name", "a policy: \"greedy\", \"uniform-progress\", \"on-demand\", \"spot-only\", \"fallback\" or \"optimal\"")
            })?;
            p.finish()?;
            Policy::from_name(name)
        }
        None => None,
    };

    let MarketTerms { market, spot, zones } = read_market(root, &t, Market::Spot, on_demand_price)?;

    let checkpoint = match t.section("checkpoint")? {
        Some(c) => {
            let write = checkpoint_time(&c, "write", auto_secs, &mut gives)?;
            let restore = checkpoint_time(&c, "restore", auto_secs, &mut gives)?;
            let on_notice = c.boolean("on_notice")?.unwrap_or(false);
            let (rule, fixed) = read_interval(&c)?;
            let mtbf_s = spot.as_ref().map(|s| s.interruptions.group_mtbf_s(instances));
            let interval = match rule {
                IntervalRule::Fixed => fixed.unwrap_or(work),
                _ => {
                    let write_s = write.mean_secs();
                    if write_s <= 0.0 {
                        let entry = c.entry("interval").expect("read");
                        return Err(
                            c.error(entry, "\"young\" and \"daly\" need a checkpoint `write` time greater than zero")
                        );
                    }
                    match mtbf_s {
                        Some(m) => {
                            SimTime::from_secs_f64(optimal_interval_s(rule, write_s, m)).max(SimTime::from_secs(1))
                        }
                        None => work,
                    }
                }
            };
            c.finish()?;
            Checkpointing { interval, rule, write, restore, on_notice }
        }
        None => Checkpointing {
            interval: work,
            rule: IntervalRule::Fixed,
            write: Dist::Constant(SimTime::ZERO),
            restore: Dist::Constant(SimTime::ZERO),
            on_notice: false,
        },
    };
    t.finish()?;
    let from_profile = match (&profile, figures) {
        (Some(p), Some(f)) => Some(training_use(&t, p, f, instances, reference_work, gives)),
        _ => None,
    };
    let job = TrainingJob {
        instance,
        instances,
        work,
        market,
        startup,
        max_runtime,
        max_wait,
        deadline,
        checkpoint,
        policy,
        on_demand_price,
        spot,
        zones,
        from_profile,
    };
    check_policy(root, &t, &job)?;
    Ok(job)
}

/// The deadline and the policy against each other and against the market
/// (docs/deadline-policies.md, "Input checks").
fn check_policy(root: &Section, t: &Section, job: &TrainingJob) -> Result<()> {
    let policy = job.policy();
    let policy_error = |message: String, hint: &str| -> Result<()> {
        let p = t.section("policy")?.expect("a policy other than the default was read from it");
        let entry = p.entry("name").expect("read");
        Err(p.error(entry, message).with_hint(Some(hint.into())))
    };
    if let Some(d) = job.deadline {
        let entry = t.entry("deadline").expect("read");
        let shortest = job.on_demand_time();
        if d < shortest {
            return Err(t
                .error(entry, format!("a deadline of {d} is shorter than the job takes on on-demand from the start ({shortest}: startup, work and checkpoint writes)"))
                .with_hint(Some(format!("give a deadline of at least {shortest}, or less `work`"))));
        }
        if let Some(w) = job.max_wait.filter(|&w| w < d) {
            return Err(t.error(entry, format!("`max_wait` ({w}) stops the job before its deadline ({d})")).with_hint(Some(
                "drop `max_wait`, or make it at least the deadline: the deadline policies keep the job running until it is done".into(),
            )));
        }
    }
    if policy != Policy::Fallback
        && let Some(SpotTerms { fallback_after_wait: Some(_), .. }) = &job.spot
    {
        let spot = root.section("spot")?.expect("spot terms come from [spot]");
        let entry = spot.entry("fallback").expect("read");
        return Err(spot
            .error(
                entry,
                format!("`fallback` is the rule of the policy \"fallback\"; the policy here is \"{}\"", policy.name()),
            )
            .with_hint(Some("drop `spot.fallback`, or use `[training.policy] name = \"fallback\"`".into())));
    }
    if policy.needs_deadline() {
        if job.deadline.is_none() {
            return policy_error(
                format!("the policy {:?} needs a deadline", policy.name()),
                "give `training.deadline`, such as \"70h\"",
            );
        }
        if job.market != Market::Spot {
            return policy_error(
                format!(
                    "the policy {:?} chooses between spot and on-demand, but `training.market` is \"on-demand\"",
                    policy.name()
                ),
                "use `market = \"spot\"` (the default), or the policy \"on-demand\"",
            );
        }
    }
    if policy == Policy::Optimal {
        let spot = job.spot.as_ref().expect("checked: spot market");
        let Interruptions::Trace { traces, .. } = &spot.interruptions else {
            return policy_error(
                "\"optimal\" plans with full knowledge of a trace, and `spot.interruptions` is not a trace".into(),
                "use `interruptions = { model = \"trace\", ... }`, or the policy \"uniform-progress\"",
            );
        };
        let why = if traces.len() > 1 || job.zones.is_some() {
            Some("one zone")
        } else if traces[0].has_prices() && traces[0].constant_price().is_none() {
            Some("a constant spot price (`prices` that change along the trace are not planned for)")
        } else if spot.capacity_wait.mean_secs() > 0.0 {
            Some("no `capacity_wait`")
        } else {
            None
        };
        if let Some(why) = why {
            return policy_error(
                format!("\"optimal\" is computed for {why}"),
                "see docs/deadline-policies.md, \"The optimum\"",
            );
        }
    }
    Ok(())
}

/// `checkpoint.write` / `checkpoint.restore`: a distribution, or `"auto"`,
/// the time to move the profile's `checkpoint_size` over the instance's network.
fn checkpoint_time(
    c: &Section,
    key: &'static str,
    auto: Option<(&Profile, Option<f64>)>,
    gives: &mut Vec<&'static str>,
) -> Result<Dist> {
    let Some(entry) = c.entry(key) else {
        return Ok(Dist::Constant(SimTime::ZERO));
    };
    if entry.node.value != Value::Str("auto".into()) {
        return Ok(c.dist(key)?.expect("present"));
    }
    match auto {
        Some((_, Some(secs))) => {
            gives.push(if key == "write" { "checkpoint.write" } else { "checkpoint.restore" });
            Ok(Dist::Constant(SimTime::from_secs_f64(secs)))
        }
        Some((p, None)) => Err(c.error(
            entry,
            format!("\"auto\" needs the profile's `checkpoint_size`, and profile \"{}\" ({}) has none", p.name, p.file),
        )),
        None => Err(c
            .error(entry, "\"auto\" derives the time from a model profile: set `training.profile`")
            .with_hint(Some("or give a duration such as \"5m\"".into()))),
    }
}

fn read_interval(c: &Section) -> Result<(IntervalRule, Option<SimTime>)> {
    let Some(entry) = c.entry("interval") else {
        return Ok((IntervalRule::Fixed, None));
    };
    if let Value::Str(s) = &entry.node.value {
        match s.as_str() {
            "young" => return Ok((IntervalRule::Young, None)),
            "daly" => return Ok((IntervalRule::Daly, None)),
            _ if s.starts_with(|ch: char| ch.is_ascii_alphabetic()) => {
                return Err(c
                    .error(
                        entry,
                        format!("expected a duration such as \"30m\", or \"young\" or \"daly\", found \"{s}\""),
                    )
                    .with_hint(did_you_mean(s, ["young", "daly"])));
            }
            _ => {}
        }
    }
    Ok((IntervalRule::Fixed, c.positive_duration("interval")?))
}
