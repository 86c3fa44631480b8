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
use crate::scenarios::training::llm::{self, Layout, LlmTraining, Recovery, Storage};
use crate::scenarios::training::policy::{POLICY_NAMES, Policy};
use crate::scenarios::training::{Checkpointing, IntervalRule, TrainingJob, optimal_interval_s};
use crate::spot::Market;
use crate::spot::{Interruptions, SpotTerms};

pub(super) const SCENARIO: Scenario =
    Scenario { table: "training", uses: &["spot", "zones"], read: |root| Ok(Box::new(read_training(root)?)) };

fn read_training(root: &Section) -> Result<TrainingJob> {
    let t = root.section("training")?.expect("caller checked");
    let llm_section = t.section("llm")?;
    // `instances` first: a missing `instance` must not take it for a typo.
    let mut instances = t.integer("instances", 1, 100_000)?.unwrap_or(1) as u32;
    let (instance, on_demand_price) = super::instance_price(&t)?;
    let work = match &llm_section {
        Some(_) => SimTime::ZERO,
        None => t
            .positive_duration("work")?
            .ok_or_else(|| t.missing("work", "the compute time the job needs, such as \"100h\""))?,
    };
    let profile = if llm_section.is_some() { None } else { read_profile(&t)? };
    let figures = match &profile {
        Some(p) => Some(training_figures(&t, p, instance.as_deref())?),
        None => None,
    };
    // `work` is in hours on the profile's reference type; the compute time
    // on `instances` nodes of this type follows from speed and scaling.
    let reference_work = work;
    let mut work = match figures {
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

    // A recovery that replaces nodes runs on on-demand unless told otherwise.
    let default_market = match llm_section.as_ref().map(|l| l.choice("recovery", &llm::RECOVERY_NAMES)).transpose()? {
        Some(Some("on-demand-restart" | "auto-resume")) => Market::OnDemand,
        _ => Market::Spot,
    };
    let MarketTerms { market, spot, zones } = read_market(root, &t, default_market, on_demand_price)?;
    let mut llm = match &llm_section {
        Some(l) => {
            let read = read_llm(&t, l, instance.as_deref(), market)?;
            (instances, work) = (read.instances, read.work);
            Some(read.llm)
        }
        None => None,
    };

    let checkpoint = match t.section("checkpoint")? {
        Some(c) => {
            let mut write = checkpoint_time(&c, "write", auto_secs, &mut gives)?;
            let mut restore = checkpoint_time(&c, "restore", auto_secs, &mut gives)?;
            let on_notice = c.boolean("on_notice")?.unwrap_or(false);
            let (mut rule, fixed) = read_interval(&c)?;
            if let Some(l) = &llm {
                // What [training.llm] derived, unless given here.
                if !c.has("write") {
                    write = Dist::Constant(l.stall());
                }
                if !c.has("restore") {
                    restore = Dist::Constant(l.node_restore());
                }
                if !c.has("interval") {
                    rule = IntervalRule::Daly;
                }
                if (l.async_checkpoint || l.memory_tier.is_some()) && on_notice {
                    let entry = c.entry("on_notice").expect("read");
                    return Err(c.error(
                        entry,
                        "an emergency checkpoint on notice is not modelled with `async_checkpoint` or `memory_tier`",
                    ));
                }
            }
            let mtbf_s = group_mtbf_s(spot.as_ref(), llm.as_ref(), instances);
            let interval = match rule {
                IntervalRule::Fixed => fixed.unwrap_or(work),
                _ => {
                    let write_s = write.mean_secs();
                    let derived = llm.is_some() && c.entry("interval").is_none();
                    if write_s <= 0.0 && derived {
                        // A checkpoint that takes no time: the final save alone.
                        work
                    } else if write_s <= 0.0 {
                        let entry = c.entry("interval").expect("read");
                        return Err(
                            c.error(entry, "\"young\" and \"daly\" need a checkpoint `write` time greater than zero")
                        );
                    } else {
                        match mtbf_s {
                            Some(m) => {
                                SimTime::from_secs_f64(optimal_interval_s(rule, write_s, m)).max(SimTime::from_secs(1))
                            }
                            None => work,
                        }
                    }
                }
            };
            c.finish()?;
            Checkpointing { interval, rule, write, restore, on_notice }
        }
        None if llm.is_some() => {
            let l = llm.as_ref().expect("matched");
            let write = l.stall();
            let interval = match group_mtbf_s(spot.as_ref(), Some(l), instances) {
                Some(m) if write > SimTime::ZERO => {
                    SimTime::from_secs_f64(optimal_interval_s(IntervalRule::Daly, write.as_secs_f64(), m))
                        .max(SimTime::from_secs(1))
                }
                _ => work,
            };
            let rule = if interval == work { IntervalRule::Fixed } else { IntervalRule::Daly };
            Checkpointing {
                interval,
                rule,
                write: Dist::Constant(write),
                restore: Dist::Constant(l.node_restore()),
                on_notice: false,
            }
        }
        None => Checkpointing {
            interval: work,
            rule: IntervalRule::Fixed,
            write: Dist::Constant(SimTime::ZERO),
            restore: Dist::Constant(SimTime::ZERO),
            on_notice: false,
        },
    };
    // Asynchronous: the stall is the snapshot, and the previous write when
    // it outlasts a segment; the write itself overlaps compute.
    let mut checkpoint = checkpoint;
    if let Some(l) = llm.as_mut()
        && let Some(snapshot) = l.snapshot
    {
        let write = checkpoint.write.as_constant().filter(|&w| w != snapshot).unwrap_or(l.write);
        l.write = write;
        // Daly's interval for the snapshot alone would stall on the write:
        // no more often than one write takes.
        if checkpoint.rule != IntervalRule::Fixed {
            checkpoint.interval = checkpoint.interval.max(write);
        }
        let stall =
            llm::async_stall_secs(snapshot.as_secs_f64(), write.as_secs_f64(), checkpoint.interval.as_secs_f64());
        checkpoint.write = Dist::Constant(llm::millis(stall));
        l.background = Some(write);
    }
    // Tiered: persistent checkpoints at Daly's interval for their write and
    // the rate of whole-job losses (reclaims; failures on on-demand).
    if let Some(l) = llm.as_mut()
        && let Some(tier) = l.memory_tier.as_mut()
        && tier.persistent_every == 0
    {
        let lost_mtbf = match &spot {
            Some(s) => s.interruptions.group_mtbf_s(instances),
            None => l.job_mtbf_h * 3600.0,
        };
        let tau = optimal_interval_s(IntervalRule::Daly, l.write.as_secs_f64().max(1e-3), lost_mtbf);
        tier.persistent_every = (tau / checkpoint.interval.as_secs_f64()).round().clamp(1.0, 1e6) as u32;
    }
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
        llm,
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

/// The mean time between the group's interruptions, seconds: spot reclaims
/// and, with `[training.llm]`, hardware failures, whose rates add.
fn group_mtbf_s(spot: Option<&SpotTerms>, llm: Option<&LlmTraining>, instances: u32) -> Option<f64> {
    let spot_mtbf = spot.map(|s| s.interruptions.group_mtbf_s(instances));
    match (spot_mtbf, llm.map(|l| l.failure_rate_per_s())) {
        (m, None) => m,
        (m, Some(rate)) => Some(1.0 / (m.map_or(0.0, |m| 1.0 / m) + rate)),
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

/// `[training.llm]` read, with the job's node count and compute time.
struct LlmRead {
    llm: LlmTraining,
    instances: u32,
    work: SimTime,
}

/// Reads `[training.llm]` (SPEC 2.13): the model, the tokens and the cluster
/// into the training model's inputs; `docs/training-model.md`, "LLM training
/// at scale". Write and restore times are for the whole checkpoint; with
/// `async_checkpoint` the write overlaps compute and the stall is the snapshot.
fn read_llm(t: &Section, l: &Section, instance: Option<&str>, market: Market) -> Result<LlmRead> {
    for key in ["work", "instances", "profile"] {
        if let Some(entry) = t.entry(key) {
            return Err(t
                .error(entry, format!("`{key}` follows from [training.llm]; it cannot be given with it"))
                .with_hint(Some(format!("drop `training.{key}` (see `spotsim check` for the derived figures)"))));
        }
    }
    let profile = read_profile(l)?.ok_or_else(|| {
        l.missing("profile", "a model profile with a [model] table, such as \"llama-3-8b\" (see `spotsim profiles`)")
    })?;
    let Some(model) = profile.model else {
        let entry = l.entry("profile").expect("read");
        return Err(l.error(entry, format!("profile \"{}\" ({}) has no [model] table", profile.name, profile.file)));
    };
    let kind = instance.and_then(|name| catalog().find(name)).filter(|i| i.gpu_fp16_tflops.is_some());
    let Some(kind) = kind else {
        return Err(match t.entry("instance") {
            Some(entry) => t.error(
                entry,
                "[training.llm] needs a GPU type with its FLOP/s in the catalog (ml.p4d.24xlarge, ml.p5.48xlarge, ...)",
            ),
            None => t.missing("instance", "a GPU instance type from `spotsim catalog`"),
        });
    };
    let tokens = l.number("tokens", 1.0, 1e18)?.ok_or_else(|| l.missing("tokens", "the token budget, such as 1e12"))?;
    let sequence = l.integer("sequence_length", 1, 10_000_000)?.unwrap_or(8192) as u32;
    let given_gpus = l.integer("gpus", 1, 10_000_000)?.map(|g| g as u32);
    let layout = match l.section("layout")? {
        Some(s) => {
            let degree = |key: &'static str| -> Result<u32> { Ok(s.integer(key, 1, 1_000_000)?.unwrap_or(1) as u32) };
            let layout = Layout { data: degree("data")?, tensor: degree("tensor")?, pipeline: degree("pipeline")? };
            s.finish()?;
            if let Some(g) = given_gpus
                && layout.gpus() != u64::from(g)
            {
                let entry = l.entry("layout").expect("read");
                return Err(l
                    .error(
                        entry,
                        format!(
                            "data × tensor × pipeline = {} × {} × {} = {} GPUs, but `gpus` = {g}",
                            layout.data,
                            layout.tensor,
                            layout.pipeline,
                            layout.gpus()
                        ),
                    )
                    .with_hint(Some("make the product of the degrees equal `gpus`, or drop one of them".into())));
            }
            Some(layout)
        }
        None => None,
    };
    let gpus = match (given_gpus, layout) {
        (Some(g), _) => g,
        (None, Some(layout)) if layout.gpus() <= 10_000_000 => layout.gpus() as u32,
        (None, Some(layout)) => {
            let entry = l.entry("layout").expect("read");
            return Err(l.error(entry, format!("{} GPUs: expected at most 10,000,000", layout.gpus())));
        }
        (None, None) => return Err(l.missing("gpus", "the number of GPUs, such as 64 (or a `layout`)")),
    };
    let key_of_gpus = if layout.is_some() { "layout" } else { "gpus" };
    if gpus % kind.gpus != 0 {
        let entry = l.entry(key_of_gpus).expect("read");
        return Err(l
            .error(entry, format!("{gpus} GPUs is not a whole number of {} nodes ({} GPUs each)", kind.name, kind.gpus))
            .with_hint(Some(format!("use a multiple of {}", kind.gpus))));
    }
    let per_gpu_gib = kind.memory_per_accelerator_gib();
    let need_gib = |layout: Layout| llm::state_bytes_per_gpu(model.parameters, layout) / GIB;
    // Without a layout: data parallel, then tensor parallel within a node,
    // then pipeline stages, the first that holds the state.
    let layout = layout.unwrap_or_else(|| {
        let mut candidates = vec![];
        for tensor in [1, 2, 4, 8].into_iter().filter(|&d| d <= kind.gpus && gpus % d == 0) {
            let mut pipeline = 1;
            while gpus % (tensor * pipeline) == 0 {
                candidates.push(Layout { data: gpus / (tensor * pipeline), tensor, pipeline });
                pipeline *= 2;
            }
        }
        candidates.sort_by_key(|c| (c.tensor * c.pipeline, c.pipeline));
        candidates
            .iter()
            .copied()
            .find(|&c| need_gib(c) <= per_gpu_gib)
            .unwrap_or_else(|| *candidates.last().expect("tensor 1, pipeline 1 divides"))
    });
    let need = need_gib(layout);
    if need > per_gpu_gib {
        let entry = l.entry(key_of_gpus).expect("read");
        return Err(l
            .error(
                entry,
                format!(
                    "the model and its optimiser state do not fit: {:.3e} parameters over tensor {} × pipeline {} (data {}) need {need:.1} GiB per GPU (bf16 weights and gradients, and fp32 Adam state sharded over the data ranks; activations on top), and a GPU of {} has {per_gpu_gib:.1} GiB",
                    model.parameters, layout.tensor, layout.pipeline, layout.data, kind.name
                ),
            )
            .with_hint(Some(
                "raise `layout.tensor` or `layout.pipeline`, use more GPUs, or a type with more memory per GPU".into(),
            )));
    }
    let peak = kind.gpu_fp16_tflops.expect("filtered");
    let (mfu, mfu_source) = match l.number("mfu", 1e-4, 1.0)? {
        Some(m) => (m, "given".to_string()),
        None => match llm::default_mfu(&kind.gpu, model.parameters, gpus) {
            Some(row) => (row.mfu, row.source.to_string()),
            None => {
                return Err(l
                    .missing("mfu", &format!("the model FLOPs utilisation (0 to 1): no published figure for {} in the table of docs/training-model.md", kind.gpu)));
            }
        },
    };
    let flops = llm::flops_per_token(model.parameters, model.layers, model.hidden, sequence) * tokens;
    let compute = llm::compute_secs(flops, gpus, peak, mfu);
    if compute > llm::MAX_COMPUTE_SECS {
        let entry = l.entry("tokens").expect("read");
        return Err(l
            .error(
                entry,
                format!(
                    "{tokens:e} tokens take {:.0} years of compute on {gpus} GPUs at MFU {mfu}: beyond what spotsim simulates (30 years)",
                    compute / (365.25 * 86400.0)
                ),
            )
            .with_hint(Some("fewer tokens, or more GPUs".into())));
    }
    let work = llm::millis(compute).max(SimTime::from_millis(1));

    let bytes = l.number("bytes_per_parameter_state", 0.1, 64.0)?.unwrap_or(llm::ADAM_STATE_BYTES);
    let size_gb = model.parameters * bytes / 1e9;
    let storage = match l.choice("storage", &llm::STORAGE_NAMES)? {
        Some(name) => Storage::from_name(name).expect("a listed name"),
        None => Storage::S3,
    };
    let nodes = gpus / kind.gpus;
    let fsx_per_tib = match l.number("fsx_throughput_per_tib", 1.0, 1e5)? {
        Some(x) if !llm::FSX_THROUGHPUT_CHOICES.contains(&x) => {
            let entry = l.entry("fsx_throughput_per_tib").expect("read");
            return Err(l.error(
                entry,
                format!("expected 125, 250, 500 or 1000 (MB/s per TiB, FSx for Lustre PERSISTENT_2), found {x}"),
            ));
        }
        Some(x) => x,
        None => llm::FSX_DEFAULT_THROUGHPUT,
    };
    let fsx_gb_per_s = llm::fsx_capacity_tib(size_gb, 2.0) * fsx_per_tib / 1e3;
    let bandwidth =
        |read: bool| llm::storage_gb_per_s(storage, nodes, kind.network_gbps, profile::S3_MAX_GBPS, fsx_gb_per_s, read);
    let (write_bw, read_bw) = match (l.number("storage_gb_per_s", 1e-3, 1e6)?, bandwidth(false), bandwidth(true)) {
        (Some(x), _, _) => (x, x),
        (None, Some(w), Some(r)) => (w, r),
        _ => {
            return Err(l.missing(
                "storage_gb_per_s",
                "the write bandwidth of the instances' NVMe drives in GB/s for the whole job (no sourced figure in the catalog)",
            ));
        }
    };
    let async_checkpoint = l.boolean("async_checkpoint")?.unwrap_or(false);
    let reinit = l.duration("reinit")?.unwrap_or(SimTime::from_mins(DEFAULT_REINIT_MINS));
    if size_gb / write_bw.min(read_bw) > llm::MAX_COMPUTE_SECS {
        let key = if l.has("storage_gb_per_s") { "storage_gb_per_s" } else { "bytes_per_parameter_state" };
        let message = format!("a {size_gb:.3e} GB checkpoint at {write_bw} GB/s takes more than 30 years to write");
        return Err(match l.entry(key) {
            Some(entry) => l.error(entry, message),
            None => l.missing("storage_gb_per_s", &message),
        });
    }
    let write = llm::millis(size_gb / write_bw);
    let restore = llm::millis(size_gb / read_bw) + reinit;
    let snapshot = async_checkpoint.then(|| llm::millis(size_gb / f64::from(gpus) / llm::SNAPSHOT_GB_PER_S));
    let causes = read_causes(l)?;
    if let (Some(_), Some(entry)) = (&causes, l.entry("gpu_mtbf")) {
        return Err(l.error(entry, "give `gpu_mtbf` or `failure_causes`, not both"));
    }
    let cause_mtbf_h = causes.map_or_else(llm::llama3_gpu_mtbf_h, llm::llama3_cause_mtbf_h);
    let gpu_mtbf =
        l.positive_duration("gpu_mtbf")?.unwrap_or(SimTime::from_secs((cause_mtbf_h * 3600.0).round() as u64));
    let recovery = match l.choice("recovery", &llm::RECOVERY_NAMES)? {
        Some(name) => Recovery::from_name(name).expect("a listed name"),
        None if market == Market::Spot => Recovery::SpotRestart,
        None => Recovery::OnDemandRestart,
    };
    if recovery == Recovery::SpotRestart && market != Market::Spot {
        let entry = l.entry("recovery").expect("the default follows the market");
        return Err(l
            .error(entry, "\"spot-restart\" waits for spot capacity, and `training.market` is \"on-demand\"")
            .with_hint(Some("use \"on-demand-restart\" or \"auto-resume\", or `market = \"spot\"`".into())));
    }
    // Used by auto-resume only, so that a sweep over `recovery` can share it.
    let spares = l.integer("spares", 0, 100_000)?.unwrap_or(0) as u32;
    // Read with or without the tier, so that a sweep over `memory_tier` can share it.
    let every = l.integer("persistent_every", 1, 1_000_000)?.unwrap_or(0) as u32;
    let memory_tier = match l.boolean("memory_tier")? {
        Some(true) => {
            let entry = l.entry("memory_tier").expect("read");
            if storage.volatile() {
                return Err(l
                    .error(entry, "a memory tier sits in front of persistent storage, and `storage` is not persistent")
                    .with_hint(Some("use `storage = \"s3\"` or `\"fsx-lustre\"`".into())));
            }
            if async_checkpoint {
                return Err(l.error(entry, "tiered checkpoints are modelled synchronous: drop `async_checkpoint`"));
            }
            let peer = llm::storage_gb_per_s(Storage::PeerMemory, nodes, kind.network_gbps, 0.0, 0.0, false)
                .expect("peer memory has a bandwidth");
            let write = llm::millis(size_gb / peer);
            Some(llm::MemoryTier { persistent_every: every, write, restore: write + reinit })
        }
        _ => None,
    };
    l.finish()?;
    let llm = LlmTraining {
        profile: profile.name.clone(),
        parameters: model.parameters,
        tokens,
        sequence_length: sequence,
        gpus,
        layout,
        peak_tflops_per_gpu: peak,
        mfu,
        mfu_source,
        flops,
        compute_time_h: work.as_hours_f64(),
        bytes_per_parameter_state: bytes,
        checkpoint_size_gb: size_gb,
        memory_per_gpu_needed_gib: (need * 100.0).round() / 100.0,
        memory_per_gpu_gib: per_gpu_gib,
        storage,
        storage_write_gb_per_s: write_bw,
        storage_read_gb_per_s: read_bw,
        async_checkpoint,
        write,
        snapshot,
        reinit,
        restore,
        gpu_mtbf,
        job_mtbf_h: gpu_mtbf.as_hours_f64() / f64::from(gpus),
        recovery,
        spares,
        memory_tier,
        background: None,
    };
    Ok(LlmRead { llm, instances: nodes, work })
}

/// `failure_causes = ["faulty-gpu", "gpu-hbm3"]`: Llama 3's causes to count;
/// the failures they caused, each cause once.
fn read_causes(l: &Section) -> Result<Option<u32>> {
    let Some(entry) = l.entry("failure_causes") else {
        return Ok(None);
    };
    let names: Vec<&str> = llm::LLAMA3_CAUSES.iter().map(|c| c.0).collect();
    let expected = "an array of Llama 3's failure causes (Table 5), such as [\"faulty-gpu\", \"gpu-hbm3\"]";
    let Value::Array(items) = &entry.node.value else {
        return Err(l.error(entry, format!("expected {expected}, found {}", entry.node.display())));
    };
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        let name = match &item.value {
            Value::Str(s) => s.as_str(),
            _ => return Err(l.error(entry, format!("expected {expected}, found {}", item.display()))),
        };
        if !names.contains(&name) {
            return Err(l
                .error(entry, format!("no failure cause \"{name}\"; Llama 3's are {}", names.join(", ")))
                .with_hint(did_you_mean(name, names.iter().copied())));
        }
        if seen.contains(&name) {
            return Err(l.error(entry, format!("\"{name}\" is listed twice")));
        }
        seen.push(name);
    }
    let count: u32 = llm::LLAMA3_CAUSES.iter().filter(|c| seen.contains(&c.0)).map(|c| c.1).sum();
    if count == 0 {
        return Err(l.error(entry, format!("expected {expected}, found an empty array")));
    }
    Ok(Some(count))
}

/// Process launch, NCCL initialisation and the data loader's state on every
/// restore: an assumption (no published figure found), `reinit` to change it.
const DEFAULT_REINIT_MINS: u64 = 5;

const GIB: f64 = 1073741824.0;
