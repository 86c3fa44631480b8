//! Experiment files: schema, defaults and units, `--set` overrides, sweeps.

mod autoscaling;
pub mod error;
mod inference;
mod reader;
mod spot_trace;
mod traffic;
mod training;
pub mod tree;
mod zones;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use error::{InputError, Origin};
use reader::Section;
pub use training::{DEFAULT_DISCOUNT, DEFAULT_NOTICE, optimal_interval_s};
use tree::{Node, Table, Value, parse_document, parse_override};

use crate::catalog::catalog;
use crate::engine::{Model, Streams};
use crate::inference::endpoint::{Endpoint, TimelineRow};
use crate::spot::Interruptions;
use crate::training::{SpotTerms, TrainingJob};
use crate::zones::Zones;

pub const DEFAULT_SEED: u64 = 1;
pub const DEFAULT_REPLICATIONS: u64 = 1000;

/// One resolved design: everything a model needs, every default filled in.
/// Boxed, so that a sweep's points stay small whatever the model.
#[derive(Clone, Debug)]
pub enum Design {
    Training(Box<TrainingJob>),
    Inference(Box<Endpoint>),
}

/// Serialises with the experiment file's tables: `training`, `spot`.
impl Serialize for Design {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        match self {
            Design::Training(job) => {
                map.serialize_entry("training", job)?;
                if let Some(spot) = &job.spot {
                    map.serialize_entry("spot", spot)?;
                }
                if let Some(zones) = &job.zones {
                    map.serialize_entry("zones", zones)?;
                }
            }
            Design::Inference(endpoint) => {
                map.serialize_entry("inference", endpoint)?;
                if let Some(spot) = &endpoint.spot {
                    map.serialize_entry("spot", spot)?;
                }
                if let Some(zones) = &endpoint.zones {
                    map.serialize_entry("zones", zones)?;
                }
                map.serialize_entry("traffic", &endpoint.traffic)?;
            }
        }
        map.end()
    }
}

impl Design {
    pub fn model(&self) -> &dyn Model {
        match self {
            Design::Training(job) => job.as_ref(),
            Design::Inference(endpoint) => endpoint.as_ref(),
        }
    }

    /// Replication 0's minute-by-minute timeline, for designs that have one.
    pub fn timeline(&self, seed: u64) -> Option<Vec<TimelineRow>> {
        match self {
            Design::Training(_) => None,
            Design::Inference(endpoint) => Some(endpoint.timeline(Streams::new(seed, 0))),
        }
    }
}

/// One point of the sweep grid.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub index: usize,
    /// The swept values of this point, as written, in the order of `Experiment::swept`.
    pub values: Vec<String>,
    pub design: Design,
}

#[derive(Clone, Debug, Serialize)]
pub struct Experiment {
    pub name: String,
    #[serde(skip)]
    pub file: PathBuf,
    pub seed: u64,
    pub replications: u64,
    /// Swept keys, by dotted path, in file order.
    pub swept: Vec<String>,
    pub points: Vec<Point>,
}

impl Experiment {
    pub fn metrics(&self) -> &'static [&'static str] {
        self.points[0].design.model().metrics()
    }
}

struct Axis {
    path: String,
    origin: Origin,
    values: Vec<Node>,
}

/// Loads, overrides, expands and resolves an experiment file. Nothing runs
/// and nothing is written: every point is checked before any work starts.
pub fn load(path: &Path, sets: &[String]) -> Result<Experiment, InputError> {
    let display = path.display().to_string();
    let text = reader::read_text(path).map_err(|e| {
        let message = match e.line {
            Some(_) => e.message,
            None => format!("cannot read the experiment file: {}", e.message),
        };
        InputError::new(&Origin { file: display.clone(), line: e.line }, None, message)
    })?;
    let mut doc = parse_document(&text, &display)?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();

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
            let new = axis(path.to_string(), origin, node)?;
            match axes.iter_mut().find(|a| a.path == new.path) {
                Some(old) => *old = new,
                None => axes.push(new),
            }
            continue;
        }
        // A --set wins over a sweep of the same key.
        axes.retain(|a| a.path != key);
        doc.set_path(key, node, &origin)?;
    }

    let origin = Origin::file(&display, 1);
    let root = Section::root(&doc, origin.clone(), &base_dir);
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
    root.allow(&["training", "inference", "spot", "zones", "traffic", "sweep"]);
    root.finish()?;
    for axis in &axes {
        if matches!(axis.path.as_str(), "name" | "seed" | "replications") {
            return Err(InputError::new(
                &axis.origin,
                Some(&axis.path),
                "cannot be swept: it belongs to the whole experiment",
            )
            .with_hint(Some("sweep model keys such as `training.checkpoint.interval`".into())));
        }
    }

    let mut points = Vec::new();
    for (index, choice) in grid(&axes).into_iter().enumerate() {
        let mut tree = doc.clone();
        let mut values = Vec::with_capacity(axes.len());
        for (axis, &k) in axes.iter().zip(&choice) {
            let node = axis.values[k].clone();
            values.push(node.display());
            tree.set_path(&axis.path, node, &axis.origin)?;
        }
        let design = resolve(&tree, &origin, &base_dir)?;
        points.push(Point { index, values, design });
    }
    Ok(Experiment {
        name,
        file: path.to_path_buf(),
        seed,
        replications,
        swept: axes.into_iter().map(|a| a.path).collect(),
        points,
    })
}

/// Longest `name`, in bytes: it becomes a folder name, and staging folders
/// add up to 20 bytes to it within the usual 255-byte limit.
pub const MAX_NAME_BYTES: usize = 200;

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

/// `[zones]`, checked against the spot terms: a real trace needs one file per
/// zone.
fn read_zones_for(root: &Section, spot: Option<&SpotTerms>) -> Result<Option<Zones>, InputError> {
    let zones = match root.section("zones")? {
        Some(z) => Some(zones::read_zones(&z)?),
        None => None,
    };
    if let Some(SpotTerms { interruptions: Interruptions::Trace { files, .. }, .. }) = spot {
        let count = zones.as_ref().map_or(1, |z| z.count) as usize;
        if files.len() != count {
            let spot = root.section("spot")?.expect("spot terms come from [spot]");
            let interruptions = spot.section("interruptions")?.expect("read before");
            return Err(InputError::new(
                interruptions.origin(),
                Some("spot.interruptions"),
                format!("expected one trace file per zone: {count} zone(s), {} file(s)", files.len()),
            )
            .with_hint(Some(
                "give `files = [...]` with one file per zone, in zone order, and `[zones] count`".into(),
            )));
        }
    }
    Ok(zones)
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
                    .with_hint(error::did_you_mean(name, catalog().names())));
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
    table.entries.into_iter().map(|e| axis(e.key, e.key_origin, e.node)).collect()
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
    Ok(Axis { path, origin, values })
}

/// The Cartesian product of the axes; the first axis varies slowest.
fn grid(axes: &[Axis]) -> Vec<Vec<usize>> {
    let mut points = vec![Vec::new()];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|p| (0..axis.values.len()).map(move |k| [p.clone(), vec![k]].concat()))
            .collect();
    }
    points
}

fn resolve(tree: &Table, origin: &Origin, base_dir: &Path) -> Result<Design, InputError> {
    let root = Section::root(tree, origin.clone(), base_dir);
    root.allow(&["name", "seed", "replications"]);
    let design = match (root.has("training"), root.has("inference")) {
        (true, true) => {
            let entry = root.entry("inference").expect("checked");
            return Err(InputError::new(
                &entry.key_origin,
                Some("inference"),
                "an experiment has exactly one scenario: [training] or [inference], not both",
            ));
        }
        (true, false) => {
            if root.has("traffic") {
                let entry = root.entry("traffic").expect("checked");
                return Err(InputError::new(
                    &entry.key_origin,
                    Some("traffic"),
                    "[traffic] drives [inference] experiments; a [training] job does not use it",
                ));
            }
            Design::Training(Box::new(training::read_training(&root)?))
        }
        (false, true) => Design::Inference(Box::new(inference::read_inference(&root)?)),
        (false, false) => return Err(root.missing("training", "a scenario table: [training] or [inference]")),
    };
    root.finish()?;
    Ok(design)
}

/// Helpers for the readers' tests.
#[cfg(test)]
pub(crate) mod test_files {
    /// A temporary folder holding `files` (name, text), folders created.
    pub fn with_files(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }
}
