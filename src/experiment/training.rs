//! Reads `[training]` and `[spot]` into a `TrainingJob`.

use super::reader::{Result, Section};
use super::tree::Value;
use crate::dist::Dist;
use crate::experiment::error::did_you_mean;
use crate::spot::{ADVISOR_BANDS, AdvisorDraw, Interruptions};
use crate::time::SimTime;
use crate::training::{Checkpointing, IntervalRule, Market, SpotTerms, TrainingJob};

/// Default spot discount off the on-demand price when neither `discount` nor
/// `price_per_hour` is given.
pub const DEFAULT_DISCOUNT: f64 = 0.70;
/// AWS's spot interruption notice.
pub const DEFAULT_NOTICE: SimTime = SimTime::from_mins(2);

pub fn read_training(root: &Section) -> Result<TrainingJob> {
    let t = root.section("training")?.expect("caller checked");
    // `instances` first: a missing `instance` must not take it for a typo.
    let instances = t.integer("instances", 1, 100_000)?.unwrap_or(1) as u32;
    let (instance, on_demand_price) = super::instance_price(&t)?;
    let work = t
        .positive_duration("work")?
        .ok_or_else(|| t.missing("work", "the compute time the job needs, such as \"100h\""))?;
    let market = match t.choice("market", &["spot", "on-demand"])? {
        Some("on-demand") => Market::OnDemand,
        _ => Market::Spot,
    };
    let startup = t.dist("startup")?.unwrap_or(Dist::Constant(SimTime::ZERO));
    let max_runtime = t.positive_duration("max_runtime")?;
    let max_wait = t.positive_duration("max_wait")?;

    let spot = match root.section("spot")? {
        Some(s) => Some(read_spot(&s, on_demand_price)?),
        None if market == Market::Spot => {
            return Err(
                root.missing("spot", "a [spot] table with `interruptions`, since `training.market` is \"spot\"")
            );
        }
        None => None,
    };
    let spot = if market == Market::Spot { spot } else { None };
    let zones = super::read_zones_for(root, spot.as_ref())?;

    let checkpoint = match t.section("checkpoint")? {
        Some(c) => {
            let write = c.dist("write")?.unwrap_or(Dist::Constant(SimTime::ZERO));
            let restore = c.dist("restore")?.unwrap_or(Dist::Constant(SimTime::ZERO));
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
    })
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

pub(super) fn read_spot(s: &Section, on_demand_price: f64) -> Result<SpotTerms> {
    let interruptions = match s.section("interruptions")? {
        Some(i) => read_interruptions(&i)?,
        None => {
            return Err(
                s.missing("interruptions", "an interruption model, such as { model = \"poisson\", mtbf = \"10h\" }")
            );
        }
    };
    let notice = s.duration("notice")?.unwrap_or(DEFAULT_NOTICE);
    let capacity_wait = s.dist("capacity_wait")?.unwrap_or(Dist::Constant(SimTime::ZERO));
    let discount = s.number("discount", 0.0, 1.0)?;
    let price = s.number("price_per_hour", 0.0, 1.0e6)?;
    let price_per_hour = match (discount, price) {
        (Some(_), Some(_)) => {
            let entry = s.entry("price_per_hour").expect("read");
            return Err(s.error(entry, "give either `discount` or `price_per_hour`, not both"));
        }
        (_, Some(p)) => p,
        (d, None) => (1.0 - d.unwrap_or(DEFAULT_DISCOUNT)) * on_demand_price,
    };
    let fallback_after_wait = match s.section("fallback")? {
        Some(f) => {
            let after =
                f.duration("after_wait")?.ok_or_else(|| f.missing("after_wait", "a duration, such as \"1h\""))?;
            f.finish()?;
            Some(after)
        }
        None => None,
    };
    s.finish()?;
    Ok(SpotTerms { interruptions, notice, capacity_wait, price_per_hour, fallback_after_wait })
}

fn read_interruptions(i: &Section) -> Result<Interruptions> {
    let models = ["poisson", "weibull", "advisor", "trace"];
    let model = i
        .choice("model", &models)?
        .ok_or_else(|| i.missing("model", "one of \"poisson\", \"weibull\", \"advisor\", \"trace\""))?;
    let need = |key: &'static str, what: &str| i.positive_duration(key)?.ok_or_else(|| i.missing(key, what));
    let result = match model {
        "poisson" => {
            Interruptions::Poisson { mtbf: need("mtbf", "the mean time between interruptions, such as \"10h\"")? }
        }
        "weibull" => Interruptions::Weibull {
            shape: i.number("shape", 0.05, 100.0)?.ok_or_else(|| i.missing("shape", "a number > 0"))?,
            scale: need("scale", "a duration, such as \"12h\"")?,
        },
        "advisor" => {
            let labels: Vec<&'static str> = ADVISOR_BANDS.iter().map(|b| b.0).collect();
            let band = i
                .choice("band", &labels)?
                .ok_or_else(|| i.missing("band", "a Spot Instance Advisor band, such as \"10-15%\""))?;
            let &(band, low, high) = ADVISOR_BANDS.iter().find(|b| b.0 == band).expect("a listed band");
            let draw = match i.choice("draw", &["midpoint", "uniform"])? {
                Some("uniform") => AdvisorDraw::Uniform,
                _ => AdvisorDraw::Midpoint,
            };
            Interruptions::Advisor { band, low, high, draw }
        }
        _ => {
            // `offset`: where in the trace every replication starts; by
            // default a uniformly random point per replication.
            let offset = match i.entry("offset").map(|e| &e.node.value) {
                Some(Value::Str(random)) if random == "random" => None,
                _ => i.duration("offset")?,
            };
            let traces = super::spot_trace::read_trace_interruptions(i)?;
            Interruptions::Trace { files: traces.iter().map(|t| t.file.clone()).collect(), traces, offset }
        }
    };
    i.finish()?;
    Ok(result)
}
