//! Typed, checked reading of one table of the tree.
//!
//! Every getter records the key it was asked for, so `finish` can name the
//! keys nobody asked for and suggest the nearest one that exists.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use super::error::{InputError, Origin, Warning, did_you_mean, number};
use super::tree::{Entry, Table, Value};
use crate::base::dist::Dist;
use crate::base::time::{SimTime, parse_duration};
use crate::base::trace_file::TraceError;

pub type Result<T> = std::result::Result<T, InputError>;

pub struct Section<'a> {
    path: String,
    table: &'a Table,
    origin: Origin,
    base_dir: &'a Path,
    known: RefCell<Vec<&'a str>>,
    /// Shared by a root and every table under it.
    warnings: Rc<RefCell<Vec<Warning>>>,
}

impl<'a> Section<'a> {
    pub fn root(table: &'a Table, origin: Origin, base_dir: &'a Path) -> Self {
        Section {
            path: String::new(),
            table,
            origin,
            base_dir,
            known: RefCell::new(Vec::new()),
            warnings: Rc::default(),
        }
    }

    /// Records a warning about the value of `entry`: valid input that is
    /// almost surely a mistake. `message` names the key itself.
    pub fn warn(&self, entry: &Entry, message: impl Into<String>) {
        let key = Some(self.key_path(&entry.key));
        self.warnings.borrow_mut().push(Warning { origin: entry.node.origin.clone(), key, message: message.into() });
    }

    /// The warnings recorded under this section's root so far, in order.
    pub fn take_warnings(&self) -> Vec<Warning> {
        std::mem::take(&mut *self.warnings.borrow_mut())
    }

    /// Where this table stands (its header or key).
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    pub fn key_path(&self, key: &str) -> String {
        // A key with a dot (an instance type) is quoted, as the file writes it.
        let key = if key.contains('.') { format!("\"{key}\"") } else { key.to_string() };
        if self.path.is_empty() { key } else { format!("{}.{key}", self.path) }
    }

    /// Looks a key up and records it as valid here.
    pub fn entry(&self, key: &'static str) -> Option<&'a Entry> {
        self.known.borrow_mut().push(key);
        self.table.get(key)
    }

    pub fn has(&self, key: &'static str) -> bool {
        self.entry(key).is_some()
    }

    /// Declares keys valid here that this design does not read.
    pub fn allow(&self, keys: &[&'static str]) {
        self.known.borrow_mut().extend_from_slice(keys);
    }

    /// Fails on the first key (in file order) that no getter asked for.
    pub fn finish(&self) -> Result<()> {
        self.finish_with(&[])
    }

    /// `finish`, with a hint of our own for unknown keys users are known to
    /// write (another tool's name for a key), as (key, hint).
    pub fn finish_with(&self, hints: &[(&str, &str)]) -> Result<()> {
        let known = self.known.borrow();
        let Some(entry) = self.table.entries.iter().find(|e| !known.contains(&e.key.as_str())) else {
            return Ok(());
        };
        let mut valid: Vec<&str> = known.clone();
        valid.sort_unstable();
        valid.dedup();
        let hint = hints
            .iter()
            .find(|(k, _)| *k == entry.key)
            .map(|(_, h)| h.to_string())
            .or_else(|| did_you_mean(&entry.key, valid.iter().copied()))
            .or_else(|| Some(format!("valid keys here: {}", valid.join(", "))));
        Err(self.unknown(entry).with_hint(hint))
    }

    fn unknown(&self, entry: &Entry) -> InputError {
        let place = if self.path.is_empty() { "at the top level".to_string() } else { format!("in `{}`", self.path) };
        InputError::new(&entry.key_origin, Some(&self.key_path(&entry.key)), format!("unknown key {place}"))
    }

    /// An error about the value of `entry`.
    pub fn error(&self, entry: &Entry, message: impl Into<String>) -> InputError {
        InputError::new(&entry.node.origin, Some(&self.key_path(&entry.key)), message)
    }

    /// An error about a key that should be there and is not. A key of this
    /// table that nobody has asked for and is one typo away is the likelier
    /// mistake, so that one is named, at its line.
    pub fn missing(&self, key: &str, expected: &str) -> InputError {
        let known = self.known.borrow();
        let typo = self.table.entries.iter().find(|e| !known.contains(&e.key.as_str()) && is_typo_of(&e.key, key));
        match typo {
            Some(entry) => self
                .unknown(entry)
                .with_hint(Some(format!("did you mean `{key}`? (`{}` is required: {expected})", self.key_path(key)))),
            None => InputError::new(
                &self.origin,
                Some(&self.key_path(key)),
                format!("this key is missing: expected {expected}"),
            ),
        }
    }

    fn wrong_type(&self, entry: &Entry, expected: &str) -> InputError {
        self.error(entry, format!("expected {expected}, found {} ({})", entry.node.value.kind(), entry.node.display()))
    }

    pub fn section(&self, key: &'static str) -> Result<Option<Section<'a>>> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        self.child(entry).map(Some)
    }

    /// Entries keyed by a name rather than a fixed key (instance types, node
    /// counts): those `pick` selects, in file order, recorded as valid here.
    pub fn named_entries(&self, pick: impl Fn(&Entry) -> bool) -> Vec<&'a Entry> {
        let entries: Vec<&'a Entry> = self.table.entries.iter().filter(|e| pick(e)).collect();
        self.known.borrow_mut().extend(entries.iter().map(|e| e.key.as_str()));
        entries
    }

    /// The table that `entry` (of this section) holds.
    pub fn child(&self, entry: &'a Entry) -> Result<Section<'a>> {
        match &entry.node.value {
            Value::Table(table) => Ok(Section {
                path: self.key_path(&entry.key),
                table,
                origin: entry.key_origin.clone(),
                base_dir: self.base_dir,
                known: RefCell::new(Vec::new()),
                warnings: self.warnings.clone(),
            }),
            _ => Err(self.wrong_type(entry, "a table")),
        }
    }

    /// The folder relative paths in this file are resolved against.
    pub fn base_dir(&self) -> &'a Path {
        self.base_dir
    }

    /// An array of tables (`[ { ... }, { ... } ]`): one section per element,
    /// named `key[i]` in messages.
    pub fn tables(&self, key: &'static str) -> Result<Option<Vec<Section<'a>>>> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        let Value::Array(items) = &entry.node.value else {
            return Err(self.wrong_type(entry, "an array of tables, such as [ { ... }, { ... } ]"));
        };
        let mut sections = Vec::with_capacity(items.len());
        for (i, node) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.key_path(key));
            match &node.value {
                Value::Table(table) => sections.push(Section {
                    path,
                    table,
                    origin: node.origin.clone(),
                    base_dir: self.base_dir,
                    known: RefCell::new(Vec::new()),
                    warnings: self.warnings.clone(),
                }),
                other => {
                    return Err(InputError::new(
                        &node.origin,
                        Some(&path),
                        format!("expected a table, found {} ({})", other.kind(), node.display()),
                    ));
                }
            }
        }
        Ok(Some(sections))
    }

    pub fn string(&self, key: &'static str) -> Result<Option<String>> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        match &entry.node.value {
            Value::Str(s) => Ok(Some(s.clone())),
            _ => Err(self.wrong_type(entry, "a string")),
        }
    }

    /// One of `options`, with the nearest one suggested on a miss.
    pub fn choice(&self, key: &'static str, options: &[&'static str]) -> Result<Option<&'static str>> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        let entry = self.table.get(key).expect("just read");
        options.iter().copied().find(|o| *o == text).map(Some).ok_or_else(|| {
            let list = options.iter().map(|o| format!("\"{o}\"")).collect::<Vec<_>>().join(", ");
            self.error(entry, format!("expected one of {list}, found \"{text}\""))
                .with_hint(did_you_mean(&text, options.iter().copied()))
        })
    }

    pub fn boolean(&self, key: &'static str) -> Result<Option<bool>> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        match entry.node.value {
            Value::Bool(b) => Ok(Some(b)),
            _ => Err(self.wrong_type(entry, "true or false")),
        }
    }

    /// A memory or data size such as "1.5GB" (or "512MB"), in GB.
    pub fn gigabytes(&self, key: &'static str) -> Result<Option<f64>> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        match parse_gb(&text) {
            Some(g) if g > 0.0 => Ok(Some(g)),
            _ => Err(self.error(
                self.table.get(key).expect("just read"),
                format!("expected a size such as \"4GB\", found \"{text}\""),
            )),
        }
    }

    /// A number within `[min, max]`.
    pub fn number(&self, key: &'static str, min: f64, max: f64) -> Result<Option<f64>> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        let x = match entry.node.value {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            _ => return Err(self.wrong_type(entry, "a number")),
        };
        if !(min..=max).contains(&x) {
            let range = if max < f64::MAX {
                format!("from {} to {}", number(min), number(max))
            } else {
                format!(">= {}", number(min))
            };
            return Err(self.error(entry, format!("expected a number {range}, found {}", number(x))));
        }
        Ok(Some(x))
    }

    /// A whole number within `[min, max]`.
    pub fn integer(&self, key: &'static str, min: i64, max: i64) -> Result<Option<i64>> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        match entry.node.value {
            Value::Int(i) if (min..=max).contains(&i) => Ok(Some(i)),
            Value::Int(i) => {
                let range = if max < i64::MAX { format!("from {min} to {max}") } else { format!(">= {min}") };
                Err(self.error(entry, format!("expected a whole number {range}, found {i}")))
            }
            _ => Err(self.wrong_type(entry, "a whole number")),
        }
    }

    pub fn duration(&self, key: &'static str) -> Result<Option<SimTime>> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        self.duration_of(entry).map(Some)
    }

    fn duration_of(&self, entry: &Entry) -> Result<SimTime> {
        match &entry.node.value {
            Value::Str(s) => parse_duration(s).map_err(|m| self.error(entry, m)),
            Value::Int(_) | Value::Float(_) => Err(self.error(
                entry,
                format!(
                    "a bare number is not a duration: write it with a unit, such as \"{}s\" or \"{}m\"",
                    entry.node.display(),
                    entry.node.display()
                ),
            )),
            _ => Err(self.wrong_type(entry, "a duration with a unit, such as \"30s\"")),
        }
    }

    /// A duration that must be positive.
    pub fn positive_duration(&self, key: &'static str) -> Result<Option<SimTime>> {
        let d = self.duration(key)?;
        if d == Some(SimTime::ZERO) {
            return Err(self.error(self.table.get(key).expect("just read"), "expected a duration greater than zero"));
        }
        Ok(d)
    }

    /// A distribution of durations: a plain duration (a constant) or a table
    /// `{ dist = "...", ... }`.
    pub fn dist(&self, key: &'static str) -> Result<Option<Dist>> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        if let Value::Str(_) | Value::Int(_) | Value::Float(_) = entry.node.value {
            return self.duration_of(entry).map(|t| Some(Dist::Constant(t)));
        }
        let Some(spec) = self.section(key)? else { unreachable!() };
        let kinds = ["constant", "exponential", "uniform", "lognormal", "weibull", "empirical"];
        let kind = spec
            .choice("dist", &kinds)?
            .ok_or_else(|| spec.missing("dist", &format!("one of {}", kinds.join(", "))))?;
        let need_duration =
            |k: &'static str| spec.duration(k)?.ok_or_else(|| spec.missing(k, "a duration with a unit"));
        let secs = |t: SimTime| t.as_secs_f64();
        let dist = match kind {
            "constant" => Dist::Constant(need_duration("value")?),
            "exponential" => Dist::Exponential { mean: secs(need_duration("mean")?) },
            "uniform" => {
                let (min, max) = (need_duration("min")?, need_duration("max")?);
                if min > max {
                    return Err(spec.error(
                        spec.table.get("max").expect("read"),
                        format!("expected `max` >= `min` ({min}), found {max}"),
                    ));
                }
                Dist::Uniform { min: secs(min), max: secs(max) }
            }
            "lognormal" => Dist::LogNormal {
                median: secs(need_duration("median")?),
                sigma: spec
                    .number("sigma", 0.0, 10.0)?
                    .ok_or_else(|| spec.missing("sigma", "a number (the log-scale standard deviation)"))?,
            },
            "weibull" => Dist::Weibull {
                shape: spec.number("shape", 0.05, 100.0)?.ok_or_else(|| spec.missing("shape", "a number > 0"))?,
                scale: secs(need_duration("scale")?),
            },
            "empirical" => {
                let file =
                    spec.string("file")?.ok_or_else(|| spec.missing("file", "a CSV file of durations in seconds"))?;
                let entry = spec.table.get("file").expect("read");
                let samples =
                    read_samples(&self.base_dir.join(&file)).map_err(|m| spec.error(entry, format!("{file}: {m}")))?;
                Dist::Empirical { file, samples }
            }
            _ => unreachable!("choice returns one of the options"),
        };
        spec.finish()?;
        Ok(Some(dist))
    }
}

/// "4GB", "4 GB" or "4096MB", in GB.
pub fn parse_gb(text: &str) -> Option<f64> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("GB") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("MB") {
        (n, 1.0 / 1024.0)
    } else {
        return None;
    };
    number.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).map(|x| x * scale)
}

/// Whether `written` looks like `key` mistyped: one edit away (a swap of two
/// neighbours counts as one), two for long keys. Stricter than `did_you_mean`,
/// because a valid key nobody has asked for yet may stand close to a missing
/// one (`max` and `min`).
fn is_typo_of(written: &str, key: &str) -> bool {
    let d = strsim::damerau_levenshtein(&written.to_ascii_lowercase(), &key.to_ascii_lowercase());
    d == 1 || (d == 2 && key.len() >= 7)
}

/// The text of a file named by the user: only a regular file (a named pipe
/// would block the reader), and UTF-8, a bad byte located by line and column.
pub fn read_text(path: &Path) -> std::result::Result<String, TraceError> {
    let meta = std::fs::metadata(path).map_err(|e| TraceError::whole(format!("cannot read the file: {e}")))?;
    if meta.is_dir() {
        return Err(TraceError::whole("is a folder, not a file"));
    }
    if !meta.is_file() {
        return Err(TraceError::whole("is not a regular file (a pipe, socket or device?): only files are read"));
    }
    let bytes = std::fs::read(path).map_err(|e| TraceError::whole(format!("cannot read the file: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let bad = e.utf8_error().valid_up_to();
        let line_start = bytes[..bad].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = 1 + bytes[..bad].iter().filter(|&&b| b == b'\n').count();
        TraceError::at(
            line,
            format!(
                "not valid UTF-8 at column {} (byte 0x{:02X}): save the file as UTF-8",
                bad - line_start + 1,
                bytes[bad]
            ),
        )
    })
}

/// Reads one duration in seconds per row (the first cell); a header row is
/// allowed.
fn read_samples(path: &Path) -> std::result::Result<Arc<[f64]>, String> {
    let text = read_text(path).map_err(|e| e.to_string())?;
    let mut samples = Vec::new();
    for (k, record) in crate::base::trace_file::csv_records(&text).enumerate() {
        let (line, record) = record.map_err(|e| e.to_string())?;
        let cell = record.get(0).unwrap_or("");
        if cell.is_empty() {
            continue;
        }
        match cell.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => samples.push(x),
            Ok(x) => {
                return Err(format!("line {line}: expected a duration in seconds >= 0, found {}", number(x)));
            }
            Err(_) if k == 0 => {} // a header
            Err(_) => {
                return Err(format!("line {line}: expected a duration in seconds, found \"{cell}\""));
            }
        }
    }
    if samples.is_empty() {
        return Err("no samples: expected one duration in seconds per row".into());
    }
    Ok(samples.into())
}
