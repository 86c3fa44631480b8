//! Reads an `[inference]` table with `[[inference.components]]` into a
//! `ComponentsEndpoint` (SPEC 2.12, docs/inference-components.md).

use super::autoscaling::read_copy_autoscaling;
use super::inference::DEFAULT_TIMEOUT;
use super::traffic::{Load, read_traffic};
use super::{llm, profile};
use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::catalog::catalog;
use crate::input::error::did_you_mean;
use crate::input::section::{Result, Section};
use crate::scenarios::inference::components::{Component, ComponentsEndpoint, PlacementStrategy, PoolTerms, Resources};
use crate::scenarios::inference::design::{Endpoint, Fidelity, Mode};
use crate::spot::Market;

/// A new copy on an instance with room, when the file gives no
/// `copy_startup`: the model's load, the engine's start and the health
/// check, without provisioning, the image pull or the download. AWS's
/// container-caching post (2026-06-16) leaves 258 − 77 = 181 s for
/// provisioning and those stages on ml.g6.2xlarge with an 8B model, without
/// splitting provisioning out: from half of that to all of it
/// (docs/inference-components.md, "Copy start-up").
pub const DEFAULT_COPY_STARTUP: Dist = Dist::Uniform { min: 90.0, max: 180.0 };

/// Keys of a single-model endpoint that belong to each component instead.
const PER_COMPONENT: [&str; 9] =
    ["profile", "autoscaling", "llm", "slo", "timeout", "warmup", "queue_limit", "initial_instances", "engine"];

pub(super) fn read_components_endpoint(root: &Section) -> Result<ComponentsEndpoint> {
    let s = root.section("inference")?.expect("caller checked");
    for table in ["spot", "zones", "traffic"] {
        if let Some(entry) = root.entry(table) {
            let why = if table == "traffic" {
                "an endpoint with components takes each component's `traffic`".to_string()
            } else {
                format!(
                    "[{table}] is not modelled for inference components yet: their instances are on-demand, in one zone"
                )
            };
            return Err(root.error(entry, why).with_hint(Some(format!("remove [{table}]"))));
        }
    }
    for key in PER_COMPONENT {
        if let Some(entry) = s.entry(key) {
            return Err(s
                .error(entry, format!("with [[inference.components]], `{key}` belongs to each component"))
                .with_hint(Some(format!("move `{key}` into the [[inference.components]] entries"))));
        }
    }
    let Some(name) = s.string("instance")? else {
        return Err(s.missing("instance", "a GPU instance type from `spotsim catalog`: the components share its GPUs"));
    };
    let Some(kind) = catalog().find(&name).filter(|k| k.gpus > 0) else {
        let entry = s.entry("instance").expect("read");
        return Err(s
            .error(entry, format!("\"{name}\" is not a GPU instance type of the catalog (see `spotsim catalog`)"))
            .with_hint(did_you_mean(&name, catalog().names())));
    };
    let price_per_hour = s.number("price_per_hour", 0.0, 1.0e6)?.unwrap_or(kind.price_per_hour);
    let size = Resources { gpus: kind.gpus, cpus: f64::from(kind.vcpus), memory_gib: kind.memory_gib };
    let min_instances = s.integer("min_instances", 0, 100_000)?.unwrap_or(1) as u32;
    let max_instances = s
        .integer("max_instances", 1, 100_000)?
        .ok_or_else(|| s.missing("max_instances", "the most instances managed instance scaling may run"))?
        as u32;
    if max_instances < min_instances {
        let entry = s.entry("max_instances").expect("read");
        return Err(s.error(
            entry,
            format!("expected `max_instances` >= `min_instances` ({min_instances}), found {max_instances}"),
        ));
    }
    let startup = s.dist("startup")?.unwrap_or(Dist::Uniform { min: 240.0, max: 480.0 });
    let copy_startup = s.dist("copy_startup")?.unwrap_or(DEFAULT_COPY_STARTUP);
    let shared = s.boolean("shared")?.unwrap_or(true);
    let sections = s.tables("components")?.expect("caller checked");
    if sections.is_empty() {
        let entry = s.entry("components").expect("read");
        return Err(s.error(entry, "expected at least one component"));
    }
    let mut components: Vec<Component> = Vec::with_capacity(sections.len());
    for c in &sections {
        let component = read_component(c, &name, price_per_hour, size)?;
        if components.iter().any(|o| o.name == component.name) {
            let entry = c.entry("name").expect("read");
            return Err(c.error(entry, format!("a second component named \"{}\": names must differ", component.name)));
        }
        if let Some(first) = components.first()
            && first.endpoint.traffic.duration != component.endpoint.traffic.duration
        {
            let t = c.section("traffic")?.expect("read");
            let entry = t.entry("duration").unwrap_or_else(|| c.entry("traffic").expect("read"));
            return Err(t.error(entry, "every component's traffic must last as long as the first one's"));
        }
        if component.max_copies > max_instances * (size.gpus / component.copy.gpus) {
            c.warn(
                c.entry("max_copies").unwrap_or_else(|| c.entry("name").expect("read")),
                format!(
                    "`max_copies` ({}) is more than `max_instances` ({max_instances}) instances of {name} can hold",
                    component.max_copies
                ),
            );
        }
        components.push(component);
    }
    s.finish()?;
    let mut endpoint = ComponentsEndpoint {
        instance: name,
        price_per_hour,
        pool: PoolTerms { size, min_instances, max_instances, startup, copy_startup },
        shared,
        components,
        names: (&[], &[]),
    };
    endpoint.name_columns();
    Ok(endpoint)
}

fn read_component(c: &Section, instance: &str, instance_price: f64, size: Resources) -> Result<Component> {
    let name = c.string("name")?.ok_or_else(|| c.missing("name", "the component's name, such as \"llama-3-8b\""))?;
    if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
        let entry = c.entry("name").expect("read");
        return Err(c.error(
            entry,
            format!("expected letters, digits, '-' or '_' (it names output columns), found \"{name}\""),
        ));
    }
    let profile = profile::read_profile(c)?
        .ok_or_else(|| c.missing("profile", "the component's model profile (an LLM profile, `spotsim profiles`)"))?;
    if profile.model.is_none() {
        let entry = c.entry("profile").expect("read");
        return Err(c.error(
            entry,
            format!("profile \"{}\" has no [model] table: components run on the LLM engine", profile.name),
        ));
    }
    let within = |key: &'static str, value: f64, have: f64, unit: &str| -> Result<()> {
        if value > have {
            let entry = c.entry(key).expect("read");
            return Err(c.error(entry, format!("a copy cannot reserve more than one {instance} has: {have} {unit}")));
        }
        Ok(())
    };
    let gpus = c.integer("gpus", 1, 1024)?.unwrap_or(1) as u32;
    if c.has("gpus") {
        within("gpus", f64::from(gpus), f64::from(size.gpus), "GPUs")?;
    }
    let cpus = c.number("cpus", 0.0, 1.0e5)?.unwrap_or(0.0);
    within("cpus", cpus, size.cpus, "vCPUs")?;
    let memory_gib = c.gigabytes("memory")?.unwrap_or(0.0);
    within("memory", memory_gib, size.memory_gib, "GiB of host memory")?;
    let min_copies = c.integer("min_copies", 0, 100_000)?.unwrap_or(1) as u32;
    let max_copies = c.integer("max_copies", 1, 100_000)?.map(|n| n as u32);
    let autoscaling = match c.section("autoscaling")? {
        Some(a) => {
            let max = max_copies.ok_or_else(|| c.missing("max_copies", "the most copies the autoscaler may run"))?;
            if max < min_copies {
                let entry = c.entry("max_copies").expect("read");
                return Err(
                    c.error(entry, format!("expected `max_copies` >= `min_copies` ({min_copies}), found {max}"))
                );
            }
            let policy = read_copy_autoscaling(&a, (min_copies, max))?;
            if min_copies == 0 && policy.wake.is_none() {
                let entry = c.entry("min_copies").expect("a zero min was read");
                return Err(c
                    .error(entry, "`min_copies = 0` without a way to wake: at zero copies no metric reaches target tracking")
                    .with_hint(Some("add `wake = {}` to the component's [autoscaling] (SageMaker's step-scaling rule on NoCapacityInvocationFailures), or keep min_copies >= 1".into())));
            }
            Some(policy)
        }
        None if min_copies == 0 => {
            let entry = c.entry("min_copies").expect("read");
            return Err(
                c.error(entry, "a component without [autoscaling] runs `min_copies` copies: expected at least 1")
            );
        }
        None => None,
    };
    let max_copies = max_copies.unwrap_or(min_copies);
    let initial_copies = c.integer("initial_copies", 0, 100_000)?.map_or(min_copies.max(1), |n| n as u32);
    let placement = match c.choice("placement", &["binpack", "spread"])? {
        Some("spread") => PlacementStrategy::Spread,
        _ => PlacementStrategy::Binpack,
    };
    let token_slo = llm::read_token_slo(c)?;
    let slo = match token_slo {
        Some(_) => SimTime::MAX,
        None => c.positive_duration("slo")?.unwrap_or(SimTime::from_millis(200)),
    };
    let timeout = c.positive_duration("timeout")?.unwrap_or(DEFAULT_TIMEOUT);
    let warmup = c.duration("warmup")?.unwrap_or(SimTime::ZERO);
    let queue_limit = c.integer("queue_limit", 0, 100_000_000)?.map_or(200, |n| n as u32);
    let t = c
        .section("traffic")?
        .ok_or_else(|| c.missing("traffic", "the component's own traffic, as a [traffic] table"))?;
    let traffic = read_traffic(&t, Load::Traffic)?;
    let llm = llm::read_llm(c, Some(instance), Some(&profile), token_slo, &traffic, &t, Some(gpus))?;
    c.finish()?;
    let endpoint = Endpoint {
        mode: Mode::Endpoint,
        serverless: None,
        instance: Some(instance.to_string()),
        // What one copy's GPUs cost: its share of the instance.
        price_per_hour: instance_price * f64::from(gpus) / f64::from(size.gpus),
        workers: 1,
        service_time: Dist::Constant(SimTime::ZERO),
        service_per_unit: None,
        queue_limit,
        timeout,
        slo,
        initial_instances: initial_copies,
        // Unused: the pool times a copy's start-up.
        startup: Dist::Constant(SimTime::ZERO),
        fidelity: Fidelity::Request,
        step: SimTime::from_secs(1),
        warmup,
        autoscaling,
        market: Market::OnDemand,
        on_demand_base: 0,
        spot: None,
        zones: None,
        traffic,
        from_profile: None,
        users: None,
        wide_metrics: false,
        llm: Some(llm),
    };
    Ok(Component { name, copy: Resources { gpus, cpus, memory_gib }, min_copies, max_copies, placement, endpoint })
}
