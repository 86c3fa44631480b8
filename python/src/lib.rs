//! `spotsim._native`: the spotsim library in the Python process. The Python
//! side (`spotsim/__init__.py`) turns what these functions return into
//! DataFrames; the tables come as raw column bytes, never as CSV text.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use spotsim::commands;
use spotsim::commands::prepared::{self, Command, Prepared, Request};
use spotsim::engine::Runner;
use spotsim::experiment::{self, Experiment};
use spotsim::output::{self, Column, OutputDir, PointRows, RunInfo, Table};

pyo3::create_exception!(
    spotsim,
    InputError,
    PyValueError,
    "Bad input: the experiment (file, line, key, hint) or an output folder spotsim will not touch."
);

/// An input error as `spotsim.InputError`, its parts as attributes.
fn input_error(py: Python<'_>, e: &experiment::InputError) -> PyErr {
    let err = InputError::new_err(e.to_string());
    let value = err.value(py);
    // Setting attributes on a fresh exception does not fail.
    let _ = value.setattr("file", &e.origin.file);
    let _ = value.setattr("line", e.origin.line);
    let _ = value.setattr("key", e.key.as_deref());
    let _ = value.setattr("hint", e.hint.as_deref());
    let _ = value.setattr("message", &e.message);
    err
}

/// Errors of the library: input errors and refused folders are the user's
/// (`spotsim.InputError`), anything else a `RuntimeError`.
fn other_error(py: Python<'_>, e: anyhow::Error) -> PyErr {
    if let Some(input) = e.downcast_ref::<experiment::InputError>() {
        return input_error(py, input);
    }
    if let Some(refused) = e.downcast_ref::<output::Refused>() {
        let input = experiment::InputError::new(
            &experiment::Origin { file: refused.path.clone(), line: None },
            None,
            &refused.message,
        )
        .with_hint(Some(refused.hint.clone()));
        return input_error(py, &input);
    }
    PyRuntimeError::new_err(format!("{e:#}"))
}

/// Where an experiment comes from, as Python passes it: a file or text
/// (with the folder for the paths inside it), and the `--set` overrides.
#[derive(FromPyObject)]
struct Source(Option<PathBuf>, Option<String>, PathBuf, Vec<String>);

/// How a simulating call runs: seed (None: the file's), threads (0: one
/// per core) and the output folder, if any.
#[derive(FromPyObject)]
struct Flags(Option<u64>, usize, Option<PathBuf>);

/// The request these arguments make, prepared for `command` as every door
/// prepares it (`commands::prepared`).
fn prepare(
    py: Python<'_>,
    Source(path, toml, base_dir, set): Source,
    flags: &Flags,
    replications: Option<u64>,
    allow_long: bool,
    command: Command,
) -> PyResult<Prepared> {
    let source = match (path, toml) {
        (Some(path), None) => prepared::Source::File(path),
        (None, Some(text)) => prepared::Source::Text { text, base_dir },
        _ => return Err(PyValueError::new_err("give an experiment file or its text (toml=), not both")),
    };
    if replications == Some(0) {
        return Err(PyValueError::new_err("replications must be at least 1"));
    }
    let request =
        Request { source, set, points: Vec::new(), seed: flags.0, threads: flags.1, replications, allow_long };
    let prepared = request.prepare(command).map_err(|e| input_error(py, &e))?;
    // The experiment's warnings, as Python says them: `warnings.warn`, a
    // UserWarning each, which the caller may filter or turn into errors.
    let category = py.get_type::<pyo3::exceptions::PyUserWarning>();
    for w in &prepared.experiment.warnings {
        let text = std::ffi::CString::new(w.to_string().replace('\0', " ")).expect("no NUL left");
        PyErr::warn(py, category.as_any(), &text, 1)?;
    }
    Ok(prepared)
}

/// Runs `work` on its own thread while this one, the interpreter's, waits
/// without the GIL, reports (`done`, `total`, `name`) to `progress` and
/// polls for signals (only the main thread runs Python's handlers). On
/// KeyboardInterrupt (or an exception from `progress`) it sets `cancel`,
/// which stops the runner between blocks, and waits for the worker to end.
fn wait_for<T: Send>(
    py: Python<'_>,
    cancel: &AtomicBool,
    done: &AtomicU64,
    (total, name): (Option<u64>, &str),
    progress: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    std::thread::scope(|scope| {
        let worker = scope.spawn(work);
        loop {
            py.detach(|| {
                let until = Instant::now() + Duration::from_millis(100);
                while !worker.is_finished() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            let finished = worker.is_finished();
            let reported = progress.map_or(Ok(()), |p| p.call1((done.load(Ordering::Relaxed), total, name)).map(drop));
            if let Err(e) = reported.and_then(|()| py.check_signals()) {
                cancel.store(true, Ordering::Relaxed);
                let _ = py.detach(|| worker.join());
                return Err(e);
            }
            if finished {
                return worker.join().map_err(|panic| {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    PyRuntimeError::new_err(format!("spotsim failed: {why}"))
                });
            }
        }
    })
}

/// A table as (names, columns); a column is (kind, data[, labels]) with
/// data the native-endian bytes of u64 (`index`), f64 (`number`) or u32
/// label indices (`text`).
fn table_to_py<'py>(py: Python<'py>, table: &Table) -> PyResult<Bound<'py, PyAny>> {
    let columns = PyList::empty(py);
    for column in &table.columns {
        let item = match column {
            Column::Index(v) => {
                ("index", PyBytes::new(py, &v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>()), None)
            }
            Column::Number(v) => {
                ("number", PyBytes::new(py, &v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>()), None)
            }
            Column::Text { labels, rows } => (
                "text",
                PyBytes::new(py, &rows.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>()),
                Some(labels.clone()),
            ),
        };
        columns.append(item)?;
    }
    Ok((table.names.clone(), columns).into_pyobject(py)?.into_any())
}

/// A finished run: what `spotsim.Result` wraps.
#[pyclass(frozen)]
struct RunResult {
    experiment: Experiment,
    results: Vec<PointRows>,
    info: RunInfo,
    tables: Vec<(&'static str, Table)>,
    threads: usize,
}

#[pymethods]
impl RunResult {
    /// The tables of `summary.csv`, `replications.csv` and, if the scenario
    /// has one, `timeline.csv`, by file name.
    fn tables<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (name, table) in &self.tables {
            out.set_item(*name, table_to_py(py, table)?)?;
        }
        Ok(out)
    }

    /// `manifest.json`, as text.
    fn manifest(&self) -> String {
        let bytes = output::manifest_json(&self.experiment.subject(), &self.info);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Writes the files `spotsim run -o DIR` writes, with its folder safety.
    fn write(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        let written = py.detach(|| -> anyhow::Result<()> {
            let dir = OutputDir::claim_embedded(&dir)?;
            let runner = Runner::new(self.threads)?;
            dir.write(&commands::run::result_files(&self.experiment, &runner, &self.results, &self.info))
        });
        written.map_err(|e| other_error(py, e))
    }
}

/// What every simulating call sets up before it works: the output folder,
/// claimed before any work as `run -o` claims it; a runner that stops when
/// `cancel` is set; the clock; the count of work done, for progress.
struct Job {
    dir: Option<OutputDir>,
    cancel: Arc<AtomicBool>,
    runner: Runner,
    started: SystemTime,
    clock: Instant,
    done: AtomicU64,
}

impl Job {
    fn start(py: Python<'_>, Flags(_, threads, output): Flags) -> PyResult<Job> {
        let dir = output.map(|dir| OutputDir::claim_embedded(&dir)).transpose().map_err(|e| other_error(py, e))?;
        let cancel = Arc::new(AtomicBool::new(false));
        let runner = Runner::new(threads).map_err(|e| other_error(py, e))?.with_cancel(cancel.clone());
        Ok(Job { dir, cancel, runner, started: SystemTime::now(), clock: Instant::now(), done: AtomicU64::new(0) })
    }

    fn count(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// `work` run by [`wait_for`], reporting `total` and `name` as progress.
    fn wait<T: Send>(
        &self,
        py: Python<'_>,
        total: Option<u64>,
        name: &str,
        progress: Option<&Bound<'_, PyAny>>,
        work: impl FnOnce() -> T + Send,
    ) -> PyResult<T> {
        wait_for(py, &self.cancel, &self.done, (total, name), progress, work)
    }

    fn info(&self) -> RunInfo {
        RunInfo::now(self.runner.threads(), self.started, self.clock.elapsed().as_secs_f64())
    }
}

/// `spotsim run`: every point simulated, the tables of its CSVs kept;
/// with a folder in `flags`, the files written into it too.
#[pyfunction]
fn run(
    py: Python<'_>,
    source: Source,
    flags: Flags,
    progress: Option<Bound<'_, PyAny>>,
    replications: Option<u64>,
    allow_long: bool,
) -> PyResult<RunResult> {
    let prepared = prepare(py, source, &flags, replications, allow_long, Command::Run(None))?;
    let threads = flags.1;
    let job = Job::start(py, flags)?;
    let e = &prepared.experiment;
    let total = Some(e.replications * e.points.len() as u64);
    let (results, tables) = job.wait(py, total, &e.name, progress.as_ref(), || {
        let results = prepared.simulate(&job.runner, &|n| job.count(n));
        let cancelled = job.runner.cancelled();
        let tables = if cancelled { Vec::new() } else { commands::run::result_tables(e, &job.runner, &results) };
        (results, tables)
    })?;
    let result = RunResult { experiment: prepared.experiment, results, info: job.info(), tables, threads };
    if let Some(dir) = &job.dir {
        let files = commands::run::result_files(&result.experiment, &job.runner, &result.results, &result.info);
        py.detach(|| dir.write(&files)).map_err(|err| other_error(py, err))?;
    }
    Ok(result)
}

/// The resolved experiment as JSON: name, seed, replications, swept keys
/// and every point's design.
#[pyfunction]
fn check(py: Python<'_>, source: Source) -> PyResult<String> {
    let e = prepare(py, source, &Flags(None, 0, None), None, false, Command::Check)?.experiment;
    serde_json::to_string(&e).map_err(|err| PyRuntimeError::new_err(err.to_string()))
}

/// What `spotsim recommend -o` writes, by file name (CSV and JSON bytes).
#[pyfunction]
fn recommend<'py>(
    py: Python<'py>,
    source: Source,
    flags: Flags,
    progress: Option<Bound<'py, PyAny>>,
    budget: Option<u64>,
) -> PyResult<Bound<'py, PyDict>> {
    let e = prepare(py, source, &flags, None, false, Command::Recommend)?.experiment;
    let job = Job::start(py, flags)?;
    let settings = commands::recommend::Settings { budget, ..Default::default() };
    let search = job
        .wait(py, budget, &e.name, progress.as_ref(), || {
            commands::recommend::report::search(&e, &job.runner, &settings, &|n| job.count(n), &|_| {})
        })?
        .map_err(|err| input_error(py, &err))?;
    files_out(py, &job, search.files(&e, &job.runner, &job.info()))
}

/// What `spotsim loadtest -o` writes, by file name.
#[pyfunction]
fn loadtest<'py>(
    py: Python<'py>,
    source: Source,
    flags: Flags,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let e = prepare(py, source, &flags, None, false, Command::Loadtest)?.experiment;
    let job = Job::start(py, flags)?;
    let settings = commands::loadtest::Settings::default();
    let spec = commands::loadtest::check(&e).map_err(|err| input_error(py, &err))?;
    let units = Some(commands::loadtest::work_units(&e, spec));
    let results = job
        .wait(py, units, &e.name, progress.as_ref(), || {
            commands::loadtest::loadtest(&e, &job.runner, &settings, &|n| job.count(n))
        })?
        .map_err(|err| input_error(py, &err))?;
    files_out(py, &job, commands::loadtest::files(&e, &results, &settings, &job.info()))
}

/// Writes `files` into the job's folder if it has one; returns them by name.
fn files_out<'py>(py: Python<'py>, job: &Job, files: Vec<(&'static str, Vec<u8>)>) -> PyResult<Bound<'py, PyDict>> {
    if let Some(dir) = &job.dir {
        py.detach(|| dir.write(&files)).map_err(|err| other_error(py, err))?;
    }
    let out = PyDict::new(py);
    for (name, bytes) in &files {
        out.set_item(*name, PyBytes::new(py, bytes))?;
    }
    Ok(out)
}

/// The built-in catalog: one dict per instance type.
#[pyfunction]
fn catalog(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let out = PyList::empty(py);
    for i in &spotsim::catalog::catalog().instances {
        let row = PyDict::new(py);
        row.set_item("instance", &i.name)?;
        row.set_item("vcpus", i.vcpus)?;
        row.set_item("memory_gib", i.memory_gib)?;
        row.set_item("gpus", i.gpus)?;
        row.set_item("gpu", &i.gpu)?;
        row.set_item("accelerator_memory_gib", i.accelerator_memory_gib)?;
        row.set_item("network_gbps", i.network_gbps)?;
        row.set_item("price_per_hour", i.price_per_hour)?;
        row.set_item("note", &i.note)?;
        out.append(row)?;
    }
    Ok(out)
}

/// The built-in model profiles: one dict per (profile, use, instance type).
#[pyfunction]
fn profiles(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let out = PyList::empty(py);
    for p in spotsim::catalog::profile::built_in() {
        let row = |kind: &str, instance: &str| -> PyResult<Bound<'_, PyDict>> {
            let row = PyDict::new(py);
            row.set_item("profile", &p.name)?;
            row.set_item("use", kind)?;
            row.set_item("instance", instance)?;
            Ok(row)
        };
        for f in &p.inference {
            let r = row("inference", &f.instance)?;
            r.set_item("workers", f.workers)?;
            r.set_item("p50_ms", f.p50.as_secs_f64() * 1e3)?;
            r.set_item("p99_ms", f.p99.as_secs_f64() * 1e3)?;
            r.set_item("memory_gb", f.memory_gb)?;
            r.set_item("source", f.source.as_deref().unwrap_or(&p.source))?;
            out.append(r)?;
        }
        if let Some(t) = &p.training {
            for k in &t.types {
                let r = row("training", &k.instance)?;
                r.set_item("speed", k.speed)?;
                r.set_item("memory_gb", t.memory_gb)?;
                r.set_item("checkpoint_size_gb", t.checkpoint_size_gb)?;
                r.set_item(
                    "scaling",
                    k.scaling.iter().map(|(n, e)| format!("{n} = {e}")).collect::<Vec<_>>().join(", "),
                )?;
                r.set_item("source", k.source.as_deref().unwrap_or(&p.source))?;
                out.append(r)?;
            }
        }
    }
    Ok(out)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<RunResult>()?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(recommend, m)?)?;
    m.add_function(wrap_pyfunction!(loadtest, m)?)?;
    m.add_function(wrap_pyfunction!(catalog, m)?)?;
    m.add_function(wrap_pyfunction!(profiles, m)?)?;
    Ok(())
}
