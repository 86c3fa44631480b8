//! Experiment files: schema, defaults and units, `--set` overrides, sweeps.

mod autoscaling;
mod components;
mod inference;
mod llm;
pub mod loadtest;
pub mod objective;
mod profile;
pub mod spot;
mod spot_trace;
mod traffic;
mod training;
pub mod zones;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::input::section::Section;
use crate::input::tree::{Node, Table, Value, parse_document, parse_override};
pub use crate::input::{InputError, Origin, Warning};

use crate::catalog::catalog;
use crate::experiment::loadtest::{LoadtestSpec, read_loadtest};
use crate::output::{Layout, Subject};
pub use crate::scenarios::Design;
use objective::{Objective, read_objective};

/// A scenario as experiment files know it: its table, the other top-level
/// tables it may read, and its reader. Adding a scenario adds a line to
/// `SCENARIOS`.
pub(crate) struct Scenario {
    pub table: &'static str,
    pub uses: &'static [&'static str],
    pub read: fn(&Section) -> Result<Box<dyn Design>, InputError>,
}

const SCENARIOS: &[Scenario] = &[training::SCENARIO, inference::SCENARIO];

/// Top-level tables about the whole experiment rather than its design: read
/// once by `load`, never swept.
const WHOLE_EXPERIMENT: &[&str] = &["objective", "loadtest"];

pub const DEFAULT_SEED: u64 = 1;
pub const DEFAULT_REPLICATIONS: u64 = 1000;

/// One point of the sweep grid.
#[derive(Debug, Serialize)]
pub struct Point {
    pub index: usize,
    /// The swept values of this point, as written, in the order of `Experiment::swept`.
    pub values: Vec<String>,
    pub design: Box<dyn Design>,
    /// Whether the model fits its instance (always, without a profile).
    #[serde(skip)]
    pub fits: bool,
}

/// What loading does with a point whose model does not fit its instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// An input error naming the point (`run`, `check`).
    Refuse,
    /// Keep the point with `fits = false` (for `recommend`).
    Mark,
}

#[derive(Debug, Serialize)]
pub struct Experiment {
    pub name: String,
    #[serde(skip)]
    pub file: PathBuf,
    pub seed: u64,
    pub replications: u64,
    /// Swept keys, by dotted path, in file order.
    pub swept: Vec<String>,
    pub points: Vec<Point>,
    /// `[objective]`: what `recommend` minimises and the constraints (SPEC 2.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    /// `[loadtest]`: the latency threshold `loadtest` searches against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loadtest: Option<LoadtestSpec>,
    /// Where each top-level table of the file starts, for messages about a
    /// whole table.
    #[serde(skip)]
    pub tables: Vec<(String, Origin)>,
    /// Valid designs that are almost surely mistakes, in file order of
    /// their first point; each door prints them (stderr, `warnings.warn`).
    #[serde(skip)]
    pub warnings: Vec<Warning>,
}

impl Experiment {
    /// What `recommend` and `loadtest` say about point `p`'s step times
    /// (SPEC 2.10): for an LLM design, whether they are calibrated (with the
    /// held-out error), measured, given or the roofline; `None` otherwise.
    pub fn step_times_note(&self, p: usize) -> Option<String> {
        let ep = self.points.get(p)?.design.downcast::<crate::scenarios::inference::design::Endpoint>()?;
        ep.llm.as_ref().map(|l| format!("step times: {}", l.step_origin.describe()))
    }

    /// The line of a top-level table (or key), else the file's first line.
    pub fn origin_of(&self, table: &str) -> Origin {
        self.tables
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| Origin::file(&self.file.display().to_string(), 1))
    }

    pub fn metrics(&self) -> &'static [&'static str] {
        self.points[0].design.metrics()
    }

    /// The CSVs' columns and row prefixes.
    pub fn layout(&self) -> Layout {
        Layout {
            swept: self.swept.clone(),
            points: self.points.iter().map(|p| p.values.clone()).collect(),
            metrics: self.metrics().iter().map(|m| m.to_string()).collect(),
            numbers: self.points.iter().map(|p| p.index).collect(),
        }
    }

    /// Keeps only the points with these indices (`run --point`), in index
    /// order. Each keeps its own index, and replication r of a point draws
    /// from streams of (seed, r) alone, so its rows are those of a full run.
    pub fn keep_points(&mut self, wanted: &[u64]) -> Result<(), InputError> {
        let n = self.points.len() as u64;
        if let Some(&bad) = wanted.iter().find(|&&k| k >= n) {
            let which = if n == 1 { "one point, point 0".to_string() } else { format!("{n} points, 0 to {}", n - 1) };
            return Err(InputError::new(
                &Origin { file: "--point".into(), line: None },
                None,
                format!("{}: there is no point {bad}; the sweep has {which}", self.file.display()),
            )
            .with_hint(Some("`spotsim check` lists the points with their indices".into())));
        }
        self.points.retain(|p| wanted.contains(&(p.index as u64)));
        Ok(())
    }

    /// What the result files record of this experiment.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            file: self.file.display().to_string(),
            seed: self.seed,
            replications: self.replications,
            layout: self.layout(),
            resolved: self,
        }
    }
}

impl Experiment {
    /// The resolved experiment, as `spotsim check` prints it: a header, then
    /// one line per point naming its swept values, or (`verbose`) every
    /// point's design with every default filled in, in the experiment
    /// file's syntax; `notes` are comment lines for its header.
    pub fn describe(&self, notes: &[String], verbose: bool) -> String {
        let e = self;
        let mut out = format!(
            "# {} ({}): seed {}, {} replications per point, {} point(s)\n",
            e.name,
            e.file.display(),
            e.seed,
            e.replications,
            e.points.len()
        );
        if !e.swept.is_empty() {
            out += &format!("# swept: {}\n", e.swept.join(", "));
        }
        for note in notes {
            out += &format!("# {note}\n");
        }
        if !verbose {
            out += "# one line a point; `--verbose` prints each point's resolved design\n";
        }
        for p in &e.points {
            let label: Vec<String> = e.swept.iter().zip(&p.values).map(|(k, v)| format!("{k} = {v}")).collect();
            let label =
                if label.is_empty() { "(the design as written, no sweep)".to_string() } else { label.join(", ") };
            if !verbose {
                let fits = if p.fits { "" } else { " (the model does not fit its instance)" };
                out += &format!("[point {}] {label}{fits}\n", p.index);
                continue;
            }
            out += &format!("\n[point {}] {label}\n", p.index);
            out += &toml::to_string_pretty(&p.design).unwrap_or_else(|err| format!("(cannot render: {err})\n"));
        }
        out
    }
}

struct Axis {
    path: String,
    origin: Origin,
    values: Vec<Node>,
    /// Axes of one `together` list share a group and move as one.
    group: Option<usize>,
}

/// The `[sweep]` key whose list of tables sweeps keys that go together.
const TOGETHER: &str = "together";

/// Loads, overrides, expands and resolves an experiment file. Nothing runs
/// and nothing is written: every point is checked before any work starts,
/// and a point whose model does not fit its instance is refused.
pub fn load(path: &Path, sets: &[String]) -> Result<Experiment, InputError> {
    load_with(path, sets, Fit::Refuse)
}

/// `load`, with a choice of what a point that does not fit comes to.
pub fn load_with(path: &Path, sets: &[String], fit: Fit) -> Result<Experiment, InputError> {
    let display = path.display().to_string();
    let text = crate::input::section::read_text(path).map_err(|e| {
        let message = match e.line {
            Some(_) => e.message,
            None => {
                let why = e.message.strip_prefix("cannot read the file: ").unwrap_or(&e.message);
                format!("cannot read the experiment file: {why}")
            }
        };
        InputError::new(&Origin { file: display.clone(), line: e.line }, None, message)
    })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_text(&text, path, &base_dir, sets, fit)
}

/// `load_with` for an experiment given as text (an embedding's string):
/// `path` names it in messages and gives the default `name`; data files are
/// found relative to `base_dir`.
pub fn load_text(
    text: &str,
    path: &Path,
    base_dir: &Path,
    sets: &[String],
    fit: Fit,
) -> Result<Experiment, InputError> {
    let display = path.display().to_string();
    let mut doc = parse_document(text, &display)?;

    let mut axes = take_sweep(&mut doc)?;
    for set in sets {
        let origin = Origin::command_line();
        let Some((key, value)) = set.split_once('=') else {
            return Err(InputError::new(
                &origin,
                None,
                format!("expected PATH=VALUE, such as training.checkpoint.interval=45m, found \"{set}\""),
            ));
        };
        let key = key.trim();
        let node = parse_override(key, value.trim())?;
        if let Some(swept) = key.strip_prefix("sweep").filter(|rest| rest.is_empty() || rest.starts_with('.')) {
            // `sweep.PATH=[...]` (PATH quoted or not) adds or replaces one axis.
            let path = swept.trim_start_matches('.').trim().trim_matches('"');
            if path.is_empty() {
                return Err(InputError::new(&origin, Some(key), "expected one swept key: sweep.PATH=[VALUE, ...]")
                    .with_hint(Some("such as --set 'sweep.training.checkpoint.interval=[\"15m\", \"1h\"]'".into())));
            }
            add_axes(&mut axes, path.to_string(), origin, node, true)?;
            continue;
        }
        // A --set wins over a sweep of the same key.
        axes.retain(|a| a.path != key);
        doc.set_path(key, node, &origin)?;
    }

    let origin = Origin::file(&display, 1);
    let root = Section::root(&doc, origin.clone(), base_dir);
    let name = match root.string("name")? {
        Some(name) => {
            check_name(&name).map_err(|m| root.error(root.entry("name").expect("read"), m))?;
            name
        }
        None => {
            // A hidden file (`.exp.toml`) names a visible folder (`exp`).
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let stem = stem.trim_start_matches('.');
            let stem = if stem.is_empty() { "experiment" } else { stem };
            check_name(stem).map_err(|m| {
                InputError::new(&origin, Some("name"), format!("the file name gives no usable default: {m}"))
                    .with_hint(Some("give `name = \"...\"` at the top of the file".into()))
            })?;
            stem.to_string()
        }
    };
    let seed = root.integer("seed", 0, i64::MAX)?.unwrap_or(DEFAULT_SEED as i64) as u64;
    let replications = root.integer("replications", 1, 1_000_000_000)?.unwrap_or(DEFAULT_REPLICATIONS as i64) as u64;
    for scenario in SCENARIOS {
        root.allow(&[scenario.table]);
        root.allow(scenario.uses);
    }
    root.allow(&["sweep"]);
    root.allow(WHOLE_EXPERIMENT);
    root.finish()?;
    for axis in &axes {
        let head = axis.path.split('.').next().unwrap_or_default();
        if matches!(axis.path.as_str(), "name" | "seed" | "replications") || WHOLE_EXPERIMENT.contains(&head) {
            return Err(InputError::new(
                &axis.origin,
                Some(&axis.path),
                "cannot be swept: it belongs to the whole experiment",
            )
            .with_hint(Some("sweep model keys such as `training.checkpoint.interval`".into())));
        }
    }

    let mut points = Vec::new();
    let mut warned: Vec<(Warning, Vec<usize>)> = Vec::new();
    let mut arrivals = true;
    for (index, choice) in grid(&axes).into_iter().enumerate() {
        let mut tree = doc.clone();
        let mut values = Vec::with_capacity(axes.len());
        for (axis, &k) in axes.iter().zip(&choice) {
            let node = axis.values[k].clone();
            values.push(node.display());
            tree.set_path(&axis.path, node, &axis.origin)?;
        }
        let (design, warnings) = resolve(&tree, &origin, base_dir)?;
        arrivals &= match tree.get("traffic").map(|t| &t.node.value) {
            Some(Value::Table(t)) => t.get("trace").is_some() || t.get("synthetic").is_some(),
            _ => false,
        };
        for w in warnings {
            match warned.iter_mut().find(|(seen, _)| *seen == w) {
                Some((_, at)) => at.push(index),
                None => warned.push((w, vec![index])),
            }
        }
        let fits = design.profile().is_none_or(|p| p.fits);
        if !fits && fit == Fit::Refuse {
            let label: Vec<String> = axes.iter().zip(&values).map(|(a, v)| format!("{} = {v}", a.path)).collect();
            let name = if label.is_empty() {
                format!("point {index}")
            } else {
                format!("point {index} ({})", label.join(", "))
            };
            return Err(design.profile().expect("a profile").does_not_fit(&name));
        }
        points.push(Point { index, values, design, fits });
    }
    // A sweep into scale to zero or asynchronous inference: every endpoint
    // reports the wider list, so that all rows have the same columns.
    if points.iter().any(|p| p.design.metrics() != points[0].design.metrics()) {
        for p in &mut points {
            if let Some(ep) = p.design.downcast_mut::<crate::scenarios::inference::design::Endpoint>() {
                ep.wide_metrics = true;
            }
        }
    }
    // Other differences (a sweep over `inference.engine`) cannot share columns.
    if let Some(p) = points.iter().find(|p| p.design.metrics() != points[0].design.metrics()) {
        let axis = axes.iter().find(|a| a.path.ends_with(".engine")).unwrap_or(&axes[0]);
        return Err(InputError::new(
            &axis.origin,
            Some(&axis.path),
            format!(
                "point {} reports other metrics than point 0 (the LLM engine adds its token metrics): \
                 the points of one sweep must share their columns",
                p.index
            ),
        )
        .with_hint(Some("sweep each engine in an experiment of its own".into())));
    }
    // Metric names are the scenario's, so these come after the points.
    let metrics = points[0].design.metrics();
    let objective = root.section("objective")?.map(|s| read_objective(&s, metrics)).transpose()?;
    let loadtest = root.section("loadtest")?.map(|s| read_loadtest(&s)).transpose()?;
    let loadtest = loadtest.map(|l| LoadtestSpec { arrivals: l.arrivals && arrivals, ..l });
    let warnings = name_points(warned, points.len());
    Ok(Experiment {
        name,
        file: path.to_path_buf(),
        seed,
        replications,
        swept: axes.into_iter().map(|a| a.path).collect(),
        points,
        objective,
        loadtest,
        tables: doc.entries.iter().map(|e| (e.key.clone(), e.key_origin.clone())).collect(),
        warnings,
    })
}

/// Each warning once: one every point has stands alone, one only some have
/// names them.
fn name_points(warned: Vec<(Warning, Vec<usize>)>, points: usize) -> Vec<Warning> {
    warned
        .into_iter()
        .map(|(mut w, at)| {
            if at.len() < points {
                let which: Vec<String> = at.iter().map(|k| k.to_string()).collect();
                let s = if at.len() == 1 { "" } else { "s" };
                w.message += &format!(" (at point{s} {} of the sweep)", which.join(", "));
            }
            w
        })
        .collect()
}

pub use crate::output::folder::MAX_NAME_BYTES;

/// Why `name` cannot name an output folder, if it cannot.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') || name.contains(char::is_control) {
        return Err(
            "expected a name usable as a folder name (no slashes or control characters, not starting with a dot)"
                .into(),
        );
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "expected a name of at most {MAX_NAME_BYTES} bytes, found {}: it becomes a folder name",
            name.len()
        ));
    }
    Ok(())
}

/// `instance` (looked up in the catalog) and `price_per_hour` (on-demand USD
/// per instance-hour, which wins over the catalog's).
fn instance_price(s: &Section) -> Result<(Option<String>, f64), InputError> {
    let price = s.number("price_per_hour", 0.0, 1.0e6)?;
    let instance = s.string("instance")?;
    let price = match (&instance, price) {
        (_, Some(p)) => p,
        (Some(name), None) => match catalog().find(name) {
            Some(i) => i.price_per_hour,
            None => {
                let entry = s.entry("instance").expect("read");
                return Err(s
                    .error(
                        entry,
                        format!(
                            "\"{name}\" is not in the catalog (see `spotsim catalog`); give `price_per_hour` for other types"
                        ),
                    )
                    .with_hint(crate::input::error::did_you_mean(name, catalog().names())));
            }
        },
        (None, None) => {
            return Err(s.missing("instance", "an instance type from `spotsim catalog`, or `price_per_hour`"));
        }
    };
    Ok((instance, price))
}

/// Removes `[sweep]` from the document and returns its axes.
fn take_sweep(doc: &mut Table) -> Result<Vec<Axis>, InputError> {
    let Some(entry) = doc.remove("sweep") else {
        return Ok(Vec::new());
    };
    let Value::Table(table) = entry.node.value else {
        return Err(InputError::new(&entry.key_origin, Some("sweep"), "expected a table of key paths and value lists"));
    };
    let mut axes = Vec::new();
    for e in table.entries {
        add_axes(&mut axes, e.key, e.key_origin, e.node, false)?;
    }
    Ok(axes)
}

/// Adds the axis of `path`, or for `together` one axis per key of its
/// tables, in one new group. `replace` (`--set`): an axis of the same key
/// is replaced; in the file, a key swept twice is refused.
fn add_axes(axes: &mut Vec<Axis>, path: String, origin: Origin, node: Node, replace: bool) -> Result<(), InputError> {
    let new = if path == TOGETHER {
        let group = axes.iter().filter_map(|a| a.group).max().map_or(0, |g| g + 1);
        together(origin, node, group)?
    } else {
        vec![axis(path, origin, node)?]
    };
    for a in new {
        match axes.iter_mut().find(|old| old.path == a.path) {
            Some(old) if replace => *old = a,
            Some(_) => {
                return Err(InputError::new(
                    &a.origin,
                    Some(&format!("sweep.\"{}\"", a.path)),
                    "is swept twice: give each key once, alone or in `together`",
                ));
            }
            None => axes.push(a),
        }
    }
    Ok(())
}

/// `together = [ { "inference.instance" = "ml.g5.xlarge", "inference.llm.replicas" = 1 }, ... ]`:
/// one axis per key of the first table, the k-th values from the k-th
/// table; every table names the same keys.
fn together(origin: Origin, node: Node, group: usize) -> Result<Vec<Axis>, InputError> {
    let key = format!("sweep.{TOGETHER}");
    let expected = "a non-empty list of tables of the same swept keys, such as \
        [ { \"inference.instance\" = \"ml.g5.xlarge\", \"inference.llm.replicas\" = 1 }, ... ]";
    let tables: Vec<(&Origin, &Table)> = match &node.value {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|n| match &n.value {
                Value::Table(t) if !t.entries.is_empty() => Ok((&n.origin, t)),
                _ => Err(InputError::new(&n.origin, Some(&key), format!("expected {expected}, found {}", n.display()))),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(InputError::new(&origin, Some(&key), format!("expected {expected}"))),
    };
    let keys: Vec<&str> = tables[0].1.entries.iter().map(|e| e.key.as_str()).collect();
    for (at, t) in &tables[1..] {
        let same = t.entries.len() == keys.len() && t.entries.iter().all(|e| keys.contains(&e.key.as_str()));
        if !same {
            let theirs: Vec<&str> = t.entries.iter().map(|e| e.key.as_str()).collect();
            return Err(InputError::new(
                at,
                Some(&key),
                format!(
                    "every table names the same keys: the first has {}, this one {}",
                    keys.join(", "),
                    theirs.join(", ")
                ),
            ));
        }
    }
    Ok(keys
        .iter()
        .map(|&k| Axis {
            path: k.to_string(),
            origin: origin.clone(),
            values: tables.iter().map(|(_, t)| t.get(k).expect("checked").node.clone()).collect(),
            group: Some(group),
        })
        .collect())
}

/// One swept key and its values, from `[sweep]` or `--set sweep.PATH=[...]`.
fn axis(path: String, origin: Origin, node: Node) -> Result<Axis, InputError> {
    let key = format!("sweep.\"{path}\"");
    let values = match node.value {
        Value::Array(values) if !values.is_empty() => values,
        Value::Array(_) => {
            return Err(InputError::new(&origin, Some(&key), "expected a non-empty list of values"));
        }
        other => {
            return Err(InputError::new(
                &origin,
                Some(&key),
                format!("expected a list of values, found {}", other.kind()),
            )
            .with_hint(Some(format!("write \"{path}\" = [ ... ]"))));
        }
    };
    Ok(Axis { path, origin, values, group: None })
}

/// The Cartesian product of the axes, the axes of one group as one
/// dimension (at its first axis's place); the first varies slowest. Each
/// point gives every axis its value's index.
fn grid(axes: &[Axis]) -> Vec<Vec<usize>> {
    // The dimension of each axis.
    let mut dims: Vec<(usize, Option<usize>)> = Vec::new();
    let mut dim_of = Vec::with_capacity(axes.len());
    for a in axes {
        let d = match a.group.and_then(|g| dims.iter().position(|&(_, dg)| dg == Some(g))) {
            Some(d) => d,
            None => {
                dims.push((a.values.len(), a.group));
                dims.len() - 1
            }
        };
        dim_of.push(d);
    }
    let mut points = vec![Vec::new()];
    for &(len, _) in &dims {
        points = points.into_iter().flat_map(|p| (0..len).map(move |k| [p.clone(), vec![k]].concat())).collect();
    }
    points.into_iter().map(|p| dim_of.iter().map(|&d| p[d]).collect()).collect()
}

/// One point's design, and the warnings its reading gave.
fn resolve(tree: &Table, origin: &Origin, base_dir: &Path) -> Result<(Box<dyn Design>, Vec<Warning>), InputError> {
    let root = Section::root(tree, origin.clone(), base_dir);
    root.allow(&["name", "seed", "replications"]);
    root.allow(WHOLE_EXPERIMENT);
    let mut present = SCENARIOS.iter().filter(|s| root.has(s.table));
    let Some(scenario) = present.next() else {
        let tables: Vec<String> = SCENARIOS.iter().map(|s| format!("[{}]", s.table)).collect();
        return Err(root.missing(SCENARIOS[0].table, &format!("a scenario table: {}", tables.join(" or "))));
    };
    if let Some(other) = present.next() {
        let entry = root.entry(other.table).expect("present");
        return Err(InputError::new(
            &entry.key_origin,
            Some(other.table),
            format!("an experiment has exactly one scenario: [{}] or [{}], not both", scenario.table, other.table),
        ));
    }
    // A table that only another scenario reads is a mistake, not a no-op.
    for other in SCENARIOS {
        for &table in other.uses.iter().filter(|t| !scenario.uses.contains(t)) {
            if let Some(entry) = root.entry(table) {
                return Err(InputError::new(
                    &entry.key_origin,
                    Some(table),
                    format!(
                        "[{table}] drives [{}] experiments; a [{}] experiment does not use it",
                        other.table, scenario.table
                    ),
                ));
            }
        }
    }
    let design = (scenario.read)(&root)?;
    root.finish()?;
    Ok((design, root.take_warnings()))
}
