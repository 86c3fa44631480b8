//! Reads `[training]` (with `[spot]` and `[zones]`) into a `TrainingJob`.

use super::Scenario;
use super::reader::{Result, Section};
use super::tree::Value;
use crate::catalog::catalog;
use crate::dist::Dist;
use crate::experiment::error::did_you_mean;
use crate::profile::{self, Profile};
use crate::spot::Market;
use crate::spot::read::{MarketTerms, read_market};
use crate::time::SimTime;
use crate::training::{Checkpointing, IntervalRule, TrainingJob};

pub(super) const SCENARIO: Scenario =
    Scenario { table: "training", uses: &["spot", "zones"], read: |root| Ok(Box::new(read_training(root)?)) };

fn read_training(root: &Section) -> Result<TrainingJob> {
    let t = root.section("training")?.expect("caller checked");
    let (instance, on_demand_price) = super::instance_price(&t)?;
    let instances = t.integer("instances", 1, 100_000)?.unwrap_or(1) as u32;
    let work = t
        .positive_duration("work")?
        .ok_or_else(|| t.missing("work", "the compute time the job needs, such as \"100h\""))?;
    let profile = profile::read_profile(&t)?;
    let figures = match &profile {
        Some(p) => Some(profile::training_figures(&t, p, instance.as_deref())?),
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
        (Some(p), Some(f)) => Some(profile::training_use(&t, p, f, instances, reference_work, gives)),
        _ => None,
    };
    Ok(TrainingJob {
        instance,
        instances,
        work,
        market,
        startup,
        max_runtime,
        max_wait,
        checkpoint,
        on_demand_price,
        spot,
        zones,
        from_profile,
    })
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
