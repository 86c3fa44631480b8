//! Reads a scenario's `profile` key and checks its instance type against
//! the profile's figures (docs/profiles.md). The profile files themselves
//! are the catalog's (`catalog::profile`).

use std::sync::Arc;

use crate::base::time::SimTime;
use crate::catalog::catalog;
use crate::catalog::profile::{
    InferenceFigures, Profile, ProfileUse, TrainingFigures, TrainingType, built_in, built_in_names, compute_time,
    memory_check, parse, round2,
};
use crate::input::error::{InputError, Origin, did_you_mean};
use crate::input::section::{Result, Section};

/// The `profile` key of a scenario table: a built-in name, or a path
/// (relative to the experiment file) to a profile file.
pub(super) fn read_profile(s: &Section) -> Result<Option<Arc<Profile>>> {
    let Some(text) = s.string("profile")? else {
        return Ok(None);
    };
    if let Some(p) = built_in().iter().find(|p| p.name == text) {
        return Ok(Some(p.clone()));
    }
    let entry = s.entry("profile").expect("read");
    let names = built_in_names;
    if !text.ends_with(".toml") && !text.contains(['/', '\\']) {
        let list: Vec<&str> = names().collect();
        return Err(s
            .error(
                entry,
                format!(
                    "no built-in profile \"{text}\"; the built-in ones are {} (see `spotsim profiles`), or give the path of a profile file (.toml)",
                    list.join(", ")
                ),
            )
            .with_hint(did_you_mean(&text, names())));
    }
    let path = s.base_dir().join(&text);
    let body = std::fs::read_to_string(&path).map_err(|e| {
        let list: Vec<&str> = names().collect();
        s.error(
            entry,
            format!("cannot read the profile file {text}: {e}; the built-in profiles are {}", list.join(", ")),
        )
    })?;
    parse(&body, &path.display().to_string()).map(|p| Some(Arc::new(p)))
}

/// Names the types a profile lists when `instance` is not one of them.
fn unlisted<'a>(
    s: &Section,
    profile: &Profile,
    instance: Option<&str>,
    mut listed: impl Iterator<Item = &'a str> + Clone,
    what: &str,
) -> InputError {
    let names: Vec<&str> = listed.clone().collect();
    match (instance, s.entry("instance")) {
        (Some(name), Some(entry)) => s
            .error(
                entry,
                format!(
                    "\"{name}\" is not in profile \"{}\" ({}) for {what}; it lists {}",
                    profile.name,
                    profile.file,
                    names.join(", ")
                ),
            )
            .with_hint(did_you_mean(name, listed.by_ref())),
        _ => s.missing(
            "instance",
            &format!("an instance type that profile \"{}\" lists: {}", profile.name, names.join(", ")),
        ),
    }
}

fn instance_origin(s: &Section) -> Origin {
    s.entry("instance").map_or_else(|| s.origin().clone(), |e| e.node.origin.clone())
}

/// `[inference]` with a profile: the figures of its instance type.
pub(super) fn inference_figures<'p>(
    s: &Section,
    profile: &'p Profile,
    instance: Option<&str>,
) -> Result<&'p InferenceFigures> {
    instance.and_then(|name| profile.inference.iter().find(|f| f.instance == name)).ok_or_else(|| {
        let listed = profile.inference.iter().map(|f| f.instance.as_str());
        unlisted(s, profile, instance, listed, "inference")
    })
}

/// How `[inference]` used `figures`: which keys it gave, and the fit.
pub(super) fn inference_use(
    s: &Section,
    profile: &Profile,
    figures: &InferenceFigures,
    overridden: Vec<&'static str>,
) -> ProfileUse {
    let instance = catalog().find(&figures.instance).expect("profile types are in the catalog");
    let (memory, need, have) = memory_check(instance, figures.memory_gb, false);
    ProfileUse {
        profile: profile.name.clone(),
        file: profile.file.clone(),
        instance: figures.instance.clone(),
        gives: ["workers", "service_time"].into_iter().filter(|k| !overridden.contains(k)).collect(),
        overridden,
        reference_work: None,
        compute_time_h: None,
        speed: None,
        scaling: None,
        checkpoint_size_gb: None,
        memory,
        memory_needed_gib: round2(need),
        memory_available_gib: round2(have),
        fits: need <= have,
        source: figures.source.clone(),
        origin: instance_origin(s),
        key: s.key_path("instance"),
    }
}

/// `[training]` with a profile: the shared figures and those of its type.
pub(super) fn training_figures<'p>(
    s: &Section,
    profile: &'p Profile,
    instance: Option<&str>,
) -> Result<(&'p TrainingFigures, &'p TrainingType)> {
    let Some(figures) = &profile.training else {
        let entry = s.entry("profile").expect("read");
        let listed: Vec<&str> = profile.inference.iter().map(|f| f.instance.as_str()).collect();
        return Err(s.error(
            entry,
            format!(
                "profile \"{}\" ({}) has no [training] figures, only inference ones (for {})",
                profile.name,
                profile.file,
                listed.join(", ")
            ),
        ));
    };
    instance
        .and_then(|name| figures.types.iter().find(|t| t.instance == name))
        .map(|t| (figures, t))
        .ok_or_else(|| unlisted(s, profile, instance, figures.types.iter().map(|t| t.instance.as_str()), "training"))
}

/// How `[training]` used the profile at `nodes` nodes.
pub(super) fn training_use(
    s: &Section,
    profile: &Profile,
    (figures, kind): (&TrainingFigures, &TrainingType),
    nodes: u32,
    reference_work: SimTime,
    gives: Vec<&'static str>,
) -> ProfileUse {
    let instance = catalog().find(&kind.instance).expect("profile types are in the catalog");
    let (memory, need, have) = memory_check(instance, figures.memory_gb, true);
    ProfileUse {
        profile: profile.name.clone(),
        file: profile.file.clone(),
        instance: kind.instance.clone(),
        gives,
        overridden: Vec::new(),
        reference_work: Some(reference_work),
        compute_time_h: Some((compute_time(kind, nodes, reference_work).as_secs_f64() / 3600.0 * 1e4).round() / 1e4),
        speed: Some(kind.speed),
        scaling: Some(kind.scaling_note(nodes)),
        checkpoint_size_gb: figures.checkpoint_size_gb,
        memory,
        memory_needed_gib: round2(need),
        memory_available_gib: round2(have),
        fits: need <= have,
        source: kind.source.clone(),
        origin: instance_origin(s),
        key: s.key_path("instance"),
    }
}
