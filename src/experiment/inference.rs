//! Reads `[inference]` (with `[traffic]`) into an `Endpoint`.

use super::Scenario;
use super::autoscaling::read_autoscaling;
use super::llm;
use super::profile;
use super::traffic::{Load, read_traffic};
use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::catalog::catalog;
use crate::experiment::spot::{MarketTerms, read_market};
use crate::input::error::did_you_mean;
use crate::input::section::{Result, Section, parse_gb};
use crate::scenarios::inference::autoscaler::{AutoscalingPolicy, ScalingMetric};
use crate::scenarios::inference::design::Serverless;
use crate::scenarios::inference::design::{Endpoint, Fidelity, Mode};
use crate::spot::Market;

/// SageMaker's real-time invocation timeout.
pub const DEFAULT_TIMEOUT: SimTime = SimTime::from_secs(60);

pub(super) const SCENARIO: Scenario = Scenario {
    table: "inference",
    uses: &["spot", "zones", "traffic"],
    read: |root| {
        let s = root.section("inference")?.expect("the scenario's table");
        if s.has("components") {
            return Ok(Box::new(super::components::read_components_endpoint(root)?));
        }
        Ok(Box::new(read_inference(root)?))
    },
};

fn read_inference(root: &Section) -> Result<Endpoint> {
    let s = root.section("inference")?.expect("caller checked");
    let mode = match s.choice("mode", &["endpoint", "serverless", "async"])? {
        Some("serverless") => Mode::Serverless,
        Some("async") => Mode::Async,
        _ => Mode::Endpoint,
    };
    if mode == Mode::Async
        && let Some(entry) = s.entry("serverless")
    {
        return Err(s
            .error(entry, "an asynchronous endpoint runs on instances: [inference.serverless] does not apply")
            .with_hint(Some("remove [inference.serverless], or use mode = \"serverless\"".into())));
    }
    // Keys of the other mode are read and checked too, so that one file can
    // sweep `inference.mode`; they are simply not used.
    let serverless = match s.section("serverless")? {
        Some(sl) => Some(read_serverless(&sl)?),
        None if mode == Mode::Serverless => {
            return Err(
                s.missing("serverless", "an [inference.serverless] table, since `inference.mode` is \"serverless\"")
            );
        }
        None => None,
    };
    let priced = s.has("instance") || s.has("price_per_hour");
    let (instance, price_per_hour) =
        if mode == Mode::Serverless && !priced { (None, 0.0) } else { super::instance_price(&s)? };
    let llm_engine = s.choice("engine", &["request", "llm"])? == Some("llm");
    let workers = s.integer("workers", 1, 100_000)?.map(|w| w as u32);
    let service_time = s.dist("service_time")?;
    let model_profile = profile::read_profile(&s)?;
    if llm_engine {
        for key in ["workers", "service_time", "service_per_unit"] {
            if s.has(key) {
                return Err(llm::not_for_engine(
                    &s,
                    key,
                    "does not apply to engine = \"llm\": its replicas batch sequences token by token \
                     (see [inference.llm] and the step times)",
                ));
            }
        }
        if mode == Mode::Serverless || s.choice("fidelity", &["request", "fluid"])? == Some("fluid") {
            let key = if mode == Mode::Serverless { "mode" } else { "fidelity" };
            return Err(llm::not_for_engine(&s, key, "engine = \"llm\" runs endpoints request by request"));
        }
    }
    let token_slo = if llm_engine { llm::read_token_slo(&s)? } else { None };
    // With a profile, the instance type gives what the file leaves out.
    let (workers, service_time, from_profile) = match model_profile.clone().filter(|_| !llm_engine) {
        _ if llm_engine => (1, Dist::Constant(SimTime::ZERO), None),
        Some(p) => {
            let figures = profile::inference_figures(&s, &p, instance.as_deref())?;
            let overridden: Vec<&'static str> =
                [("workers", workers.is_some()), ("service_time", service_time.is_some())]
                    .into_iter()
                    .filter_map(|(k, set)| set.then_some(k))
                    .collect();
            let used = profile::inference_use(&s, &p, figures, overridden);
            (workers.unwrap_or(figures.workers), service_time.unwrap_or_else(|| figures.service_time()), Some(used))
        }
        None => (
            workers.unwrap_or(1),
            service_time.ok_or_else(|| s.missing("service_time", "a distribution of service times, or a `profile`"))?,
            None,
        ),
    };
    let service_per_unit = s.duration("service_per_unit")?.map(|t| t.as_secs_f64());
    // An asynchronous queue counts every waiting request and has no timeout.
    let asynchronous = mode == Mode::Async;
    let queue_default = if asynchronous { MAX_QUEUE } else { 200 };
    let queue_limit = s.integer("queue_limit", 0, MAX_QUEUE as i64)?.map_or(queue_default, |n| n as u32);
    let timeout = match s.positive_duration("timeout")? {
        Some(_) if asynchronous => {
            let entry = s.entry("timeout").expect("read");
            return Err(s.error(entry, "asynchronous requests wait in their queue without a timeout"));
        }
        Some(t) => t,
        None if asynchronous => SimTime::MAX,
        None => DEFAULT_TIMEOUT,
    };
    let slo = match token_slo {
        // Requests are judged by the table; the end-to-end figure is unused.
        Some(_) => SimTime::MAX,
        None => s.positive_duration("slo")?.unwrap_or(SimTime::from_millis(200)),
    };
    let startup = s.dist("startup")?.unwrap_or(Dist::Uniform { min: 240.0, max: 480.0 });
    let fidelity = match s.choice("fidelity", &["request", "fluid"])? {
        Some("fluid") => Fidelity::Fluid,
        _ => Fidelity::Request,
    };
    let step = s.positive_duration("step")?.unwrap_or(SimTime::from_secs(1));
    let warmup = s.duration("warmup")?.unwrap_or(SimTime::ZERO);
    let autoscaling = match s.section("autoscaling")? {
        Some(a) => Some(read_autoscaling(&a, asynchronous)?),
        None => None,
    };
    if let Some((a, policy)) = s.section("autoscaling")?.zip(autoscaling.as_ref()) {
        check_zero(&a, policy, mode, fidelity)?;
    }
    let initial_default = autoscaling.as_ref().map_or(1, |a| a.min.max(1));
    let initial_instances = s.integer("initial_instances", 0, 100_000)?.map_or(initial_default, |n| n as u32);
    let on_demand_base = s.integer("on_demand_base", 0, 100_000)?.unwrap_or(0) as u32;
    let MarketTerms { market, spot, zones } = read_market(root, &s, Market::OnDemand, price_per_hour)?;
    // A load test makes its own load: [traffic] gives what it still needs.
    let load = match root.section("loadtest")? {
        Some(l) if l.has("users") => Load::ClosedLoop,
        Some(_) => Load::OpenLoop,
        None => Load::Traffic,
    };
    static EMPTY: crate::input::tree::Table = crate::input::tree::Table { entries: Vec::new() };
    let traffic_section = match root.section("traffic")? {
        Some(t) => t,
        // An open-loop load test of a request-level design needs nothing of it.
        None if load == Load::OpenLoop => Section::root(&EMPTY, root.origin().clone(), root.base_dir()),
        None => return Err(root.missing("traffic", "a [traffic] table: the requests the endpoint serves")),
    };
    let traffic = read_traffic(&traffic_section, load)?;
    let llm = if llm_engine {
        Some(llm::read_llm(
            &s,
            instance.as_deref(),
            model_profile.as_deref(),
            token_slo,
            &traffic,
            &traffic_section,
            None,
        )?)
    } else {
        if traffic.tokens.is_some() {
            let key = if traffic_section.has("tokens") { "tokens" } else { "input_tokens_column" };
            return Err(llm::not_for_engine(
                &traffic_section,
                key,
                "token counts drive the LLM engine only: add `engine = \"llm\"` to [inference]",
            ));
        }
        None
    };
    if mode == Mode::Async && fidelity == Fidelity::Fluid {
        let entry = s.entry("fidelity").expect("read");
        return Err(s.error(entry, "an asynchronous endpoint needs fidelity = \"request\": its queue is per request"));
    }
    if service_per_unit.is_some() && fidelity == Fidelity::Fluid {
        let entry = s.entry("service_per_unit").expect("read");
        return Err(s.error(entry, "per-request service times from a trace need fidelity = \"request\""));
    }
    // `tensor_parallel` here too: the hint, not a guess at a near key.
    s.finish_with(&llm::LLM_HINTS[1..])?;
    Ok(Endpoint {
        mode,
        serverless,
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
        from_profile,
        users: None,
        wide_metrics: false,
        llm,
    })
}

/// The longest queue: an asynchronous endpoint's default.
const MAX_QUEUE: u32 = 100_000_000;

/// Scaling to zero: a real-time endpoint at zero wakes only through a wake
/// rule (SageMaker's step-scaling policy on NoCapacityInvocationFailures);
/// `backlog-per-instance` is an asynchronous endpoint's metric; both need the
/// request engine, which has requests to fail or queue.
fn check_zero(a: &Section, policy: &AutoscalingPolicy, mode: Mode, fidelity: Fidelity) -> Result<()> {
    if policy.metric == ScalingMetric::BacklogPerInstance && mode != Mode::Async {
        return Err(a
            .error(
                a.entry("metric").expect("read"),
                "\"backlog-per-instance\" is the backlog of an asynchronous endpoint",
            )
            .with_hint(Some("use mode = \"async\", or another metric".into())));
    }
    let zero_min = policy.min == 0 || policy.scheduled.iter().any(|s| s.min == Some(0));
    if mode == Mode::Endpoint && zero_min && policy.wake.is_none() {
        let entry = a.entry("min").or_else(|| a.entry("scheduled")).expect("a zero min was read");
        return Err(a
            .error(entry, "`min = 0` without a way to wake: at zero instances no metric reaches target tracking")
            .with_hint(Some(
                "add `wake = {}`: SageMaker's step-scaling rule on NoCapacityInvocationFailures \
                 (one instance after a 1-minute datapoint with a failed request); or keep min >= 1"
                    .into(),
            )));
    }
    if fidelity == Fidelity::Fluid && (mode == Mode::Async || policy.wake.is_some()) {
        return Err(a
            .error(
                a.entry("wake").or_else(|| a.entry("min")).expect("read"),
                "scaling to zero needs fidelity = \"request\"",
            )
            .with_hint(Some("the fluid engine has no requests to fail or queue at zero instances".into())));
    }
    Ok(())
}

/// A container keeps warm this long after its last request unless the file
/// says otherwise (AWS publishes no figure; see docs/serverless.md).
pub const DEFAULT_IDLE_TIMEOUT: SimTime = SimTime::from_mins(10);

/// `[inference.serverless]`.
fn read_serverless(s: &Section) -> Result<Serverless> {
    let sizes = &catalog().serverless.memory_sizes_gb;
    let valid: Vec<String> = sizes.iter().map(|g| format!("{g}GB")).collect();
    let memory_gb = match s.string("memory")? {
        None => return Err(s.missing("memory", &format!("a memory size: one of {}", valid.join(", ")))),
        Some(text) => match parse_gb(&text).filter(|g| sizes.iter().any(|&v| v as f64 == *g)) {
            Some(g) => g,
            None => {
                let entry = s.entry("memory").expect("read");
                return Err(s
                    .error(entry, format!("expected a memory size: one of {}, found \"{text}\"", valid.join(", ")))
                    .with_hint(did_you_mean(&text, valid.iter().map(String::as_str))));
            }
        },
    };
    let service_memory_gb = match s.string("service_memory")? {
        None => None,
        Some(text) => match parse_gb(&text) {
            Some(g) if g > 0.0 => Some(g),
            _ => {
                let entry = s.entry("service_memory").expect("read");
                return Err(s.error(entry, format!("expected a memory size such as \"4GB\", found \"{text}\"")));
            }
        },
    };
    let max_concurrency =
        s.integer("max_concurrency", 0, 100_000)?
            .ok_or_else(|| s.missing("max_concurrency", "the most requests served at once"))? as u32;
    let provisioned_concurrency = s.integer("provisioned_concurrency", 0, 100_000)?.unwrap_or(0) as u32;
    if provisioned_concurrency > max_concurrency {
        let entry = s.entry("provisioned_concurrency").expect("read");
        return Err(s.error(
            entry,
            format!("expected at most `max_concurrency` ({max_concurrency}), found {provisioned_concurrency}"),
        ));
    }
    let cold_start =
        s.dist("cold_start")?.ok_or_else(|| s.missing("cold_start", "a distribution of cold-start times"))?;
    let idle_timeout = s.duration("idle_timeout")?.unwrap_or(DEFAULT_IDLE_TIMEOUT);
    s.finish()?;
    let p = &catalog().serverless;
    Ok(Serverless {
        memory_gb,
        max_concurrency,
        provisioned_concurrency,
        cold_start,
        idle_timeout,
        service_memory_gb,
        prices: p.prices,
    })
}
