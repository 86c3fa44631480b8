//! Reads `[inference]` (with `[traffic]`) into an `Endpoint`.

use super::autoscaling::read_autoscaling;
use super::reader::{Result, Section};
use super::traffic::read_traffic;
use crate::dist::Dist;
use crate::inference::endpoint::{Endpoint, Fidelity};
use crate::time::SimTime;
use crate::training::Market;

/// SageMaker's real-time invocation timeout.
pub const DEFAULT_TIMEOUT: SimTime = SimTime::from_secs(60);

pub fn read_inference(root: &Section) -> Result<Endpoint> {
    let s = root.section("inference")?.expect("caller checked");
    match s.choice("mode", &["endpoint", "serverless"])? {
        Some("serverless") => {
            let entry = s.entry("mode").expect("read");
            return Err(s.error(entry, "mode \"serverless\" is not yet supported in this version; use \"endpoint\""));
        }
        _ => s.allow(&["serverless"]),
    }
    let (instance, price_per_hour) = super::instance_price(&s)?;
    let workers = s.integer("workers", 1, 100_000)?.unwrap_or(1) as u32;
    let service_time =
        s.dist("service_time")?.ok_or_else(|| s.missing("service_time", "a distribution of service times"))?;
    let service_per_unit = s.duration("service_per_unit")?.map(|t| t.as_secs_f64());
    let queue_limit = s.integer("queue_limit", 0, 100_000_000)?.unwrap_or(200) as u32;
    let timeout = s.positive_duration("timeout")?.unwrap_or(DEFAULT_TIMEOUT);
    let slo = s.positive_duration("slo")?.unwrap_or(SimTime::from_millis(200));
    let startup = s.dist("startup")?.unwrap_or(Dist::Uniform { min: 240.0, max: 480.0 });
    let fidelity = match s.choice("fidelity", &["request", "fluid"])? {
        Some("fluid") => Fidelity::Fluid,
        _ => Fidelity::Request,
    };
    let step = s.positive_duration("step")?.unwrap_or(SimTime::from_secs(1));
    let warmup = s.duration("warmup")?.unwrap_or(SimTime::ZERO);
    let autoscaling = match s.section("autoscaling")? {
        Some(a) => Some(read_autoscaling(&a)?),
        None => None,
    };
    let initial_default = autoscaling.as_ref().map_or(1, |a| a.min.max(1));
    let initial_instances = s.integer("initial_instances", 0, 100_000)?.map_or(initial_default, |n| n as u32);
    let market = match s.choice("market", &["on-demand", "spot"])? {
        Some("spot") => Market::Spot,
        _ => Market::OnDemand,
    };
    let on_demand_base = s.integer("on_demand_base", 0, 100_000)?.unwrap_or(0) as u32;
    let spot = match root.section("spot")? {
        Some(sp) => Some(super::training::read_spot(&sp, price_per_hour)?),
        None if market == Market::Spot => {
            return Err(
                root.missing("spot", "a [spot] table with `interruptions`, since `inference.market` is \"spot\"")
            );
        }
        None => None,
    };
    let spot = if market == Market::Spot { spot } else { None };
    let zones = super::read_zones_for(root, spot.as_ref())?;
    let traffic = match root.section("traffic")? {
        Some(t) => read_traffic(&t)?,
        None => return Err(root.missing("traffic", "a [traffic] table: the requests the endpoint serves")),
    };
    if service_per_unit.is_some() && fidelity == Fidelity::Fluid {
        let entry = s.entry("service_per_unit").expect("read");
        return Err(s.error(entry, "per-request service times from a trace need fidelity = \"request\""));
    }
    s.finish()?;
    Ok(Endpoint {
        instance,
        price_per_hour,
        workers,
        service_time,
        service_per_unit,
        queue_limit,
        timeout,
        slo,
        initial_instances,
        startup,
        fidelity,
        step,
        warmup,
        autoscaling,
        market,
        on_demand_base,
        spot,
        zones,
        traffic,
    })
}
