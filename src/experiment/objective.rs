//! The `[objective]` table (SPEC 2.7): the metric `recommend` minimises and
//! the constraints a design must meet.
//!
//! ```toml
//! [objective]
//! minimize = "cost_usd"
//! constraints = ["latency_p99_ms.p95 <= 200", "slo_attainment.mean >= 0.999 +- 0.0005"]
//! confidence = 0.95     # in (0, 1)
//! indifference = 0.01   # relative to the best objective mean
//! tolerance = 0.01      # relative to each threshold; default: indifference
//! ```
//!
//! A constraint is `metric.statistic OP value [+- tolerance]`: statistic `mean`
//! or a whole percentile `p01` … `p99`; OP `<=` or `>=` (`<` and `>` mean the
//! same: the data cannot tell them apart); the optional `+- t` is an absolute
//! tolerance that replaces the relative one for that constraint.

use std::fmt;
use std::path::Path;

use serde::{Serialize, Serializer};

use crate::input::error::{InputError, Origin, did_you_mean};
use crate::input::section::Section;
use crate::input::tree::{Node, Value, parse_document};

pub const DEFAULT_CONFIDENCE: f64 = 0.95;
pub const DEFAULT_INDIFFERENCE: f64 = 0.01;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Objective {
    /// The metric whose mean is minimised.
    pub minimize: Metric,
    pub constraints: Vec<Constraint>,
    /// 1 − α: the probability the whole procedure answers correctly (see
    /// `recommend` for how α is split), and the level of reported intervals.
    pub confidence: f64,
    /// Objective means closer than this share of the best one are ties; it
    /// becomes the absolute indifference δ of the selection after the first
    /// stage (`Recommendation::delta`).
    pub indifference: f64,
    /// Default tolerance of constraints, relative to each threshold.
    pub tolerance: f64,
}

/// A metric by name and by its column in a replication's row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metric {
    pub name: String,
    pub column: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    Mean,
    /// A whole percentile, 1 to 99.
    Percentile(u8),
}

impl Statistic {
    /// The quantile's probability, or None for the mean.
    pub fn probability(self) -> Option<f64> {
        match self {
            Statistic::Mean => None,
            Statistic::Percentile(p) => Some(f64::from(p) / 100.0),
        }
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::Mean => f.write_str("mean"),
            Statistic::Percentile(p) => write!(f, "p{p:02}"),
        }
    }
}

impl Serialize for Statistic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    AtMost,
    AtLeast,
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bound::AtMost => "<=",
            Bound::AtLeast => ">=",
        })
    }
}

impl Serialize for Bound {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Constraint {
    /// As written in the file.
    pub text: String,
    pub metric: Metric,
    pub statistic: Statistic,
    pub bound: Bound,
    pub threshold: f64,
    /// Absolute tolerance ε around the threshold: a design whose statistic is
    /// within ε of the threshold may be judged either way.
    pub tolerance: f64,
    /// Not written in the file: the default `served_frac` constraint.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub implied: bool,
}

/// The share of counted arrivals a design must serve unless the objective
/// constrains `served_frac` itself (SPEC 3).
pub const DEFAULT_SERVED_FRAC: f64 = 0.99;

impl Constraint {
    /// Whether the metric was written as a served-only percentile and is
    /// judged on its twin over all counted arrivals.
    pub fn over_arrivals(&self) -> bool {
        self.metric.name.ends_with("_all_ms") && !self.text.contains("_all_ms")
    }
}

impl Constraint {
    /// How far `estimate` is on the wrong side of the threshold, relative to
    /// the threshold (absolute when it is 0): negative when it holds.
    pub fn shortfall(&self, estimate: f64) -> f64 {
        let scale = if self.threshold == 0.0 { 1.0 } else { self.threshold.abs() };
        match self.bound {
            Bound::AtMost => (estimate - self.threshold) / scale,
            Bound::AtLeast => (self.threshold - estimate) / scale,
        }
    }
}

/// Reads the `[objective]` table of a whole experiment file's text; `metrics`
/// are the scenario's metric names in column order.
pub fn parse_objective(text: &str, file: &str, metrics: &[&str]) -> Result<Objective, InputError> {
    let doc = parse_document(text, file)?;
    let root = Section::root(&doc, Origin::file(file, 1), Path::new(""));
    let section = root
        .section("objective")?
        .ok_or_else(|| root.missing("objective", "an [objective] table with `minimize = \"metric\"`"))?;
    read_objective(&section, metrics)
}

/// Reads an `[objective]` table; `metrics` are the scenario's metric names in
/// column order.
pub(crate) fn read_objective(s: &Section, metrics: &[&str]) -> Result<Objective, InputError> {
    let name =
        s.string("minimize")?.ok_or_else(|| s.missing("minimize", "the metric to minimise, such as \"cost_usd\""))?;
    let minimize = match metrics.iter().position(|m| *m == name) {
        Some(column) => Metric { name, column },
        None => {
            let entry = s.entry("minimize").expect("read");
            return Err(s.error(entry, format!("unknown metric \"{name}\"")).with_hint(metric_hint(&name, metrics)));
        }
    };
    let confidence = open_unit(s, "confidence", "a confidence such as 0.95")?.unwrap_or(DEFAULT_CONFIDENCE);
    let indifference =
        open_unit(s, "indifference", "a share of the best objective such as 0.01")?.unwrap_or(DEFAULT_INDIFFERENCE);
    let tolerance = s.number("tolerance", 0.0, 1.0)?.unwrap_or(indifference);

    let mut constraints = Vec::new();
    if let Some(entry) = s.entry("constraints") {
        let key = s.key_path("constraints");
        let Value::Array(items) = &entry.node.value else {
            return Err(s.error(
                entry,
                format!(
                    "expected a list of strings such as [\"latency_p99_ms.p95 <= 200\"], found {}",
                    entry.node.value.kind()
                ),
            ));
        };
        for (i, node) in items.iter().enumerate() {
            let key = format!("{key}[{i}]");
            let at = |message: String| InputError::new(&node.origin, Some(&key), message);
            let Value::Str(text) = &node.value else {
                return Err(at(format!(
                    "expected a string such as \"latency_p99_ms.p95 <= 200\", found {}",
                    node.value.kind()
                )));
            };
            constraints.push(parse_constraint(text, metrics, tolerance, node, &key)?);
        }
    }
    let at = s.entry("constraints").or_else(|| s.entry("minimize")).expect("read");
    honest(&mut constraints, metrics, tolerance, &at.node, &s.key_path("constraints"));
    s.finish()?;
    Ok(Objective { minimize, constraints, confidence, indifference, tolerance })
}

/// A number strictly between 0 and 1.
fn open_unit(s: &Section, key: &'static str, expected: &str) -> Result<Option<f64>, InputError> {
    let Some(x) = s.number(key, 0.0, 1.0)? else {
        return Ok(None);
    };
    if x == 0.0 || x == 1.0 {
        let entry = s.entry(key).expect("read");
        return Err(s.error(entry, format!("expected {expected}, above 0 and below 1, found {x}")));
    }
    Ok(Some(x))
}

fn metric_hint(name: &str, metrics: &[&str]) -> Option<String> {
    did_you_mean(name, metrics.iter().copied())
        .or_else(|| Some(format!("metrics of this scenario: {}", metrics.join(", "))))
}

fn statistic_names() -> Vec<String> {
    std::iter::once("mean".to_string()).chain((1..=99).map(|p| format!("p{p:02}"))).collect()
}

fn parse_statistic(text: &str) -> Result<Statistic, Option<String>> {
    if text == "mean" {
        return Ok(Statistic::Mean);
    }
    if let Some(digits) = text.strip_prefix('p')
        && digits.len() == 2
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        let p: u8 = digits.parse().expect("two digits");
        if p >= 1 {
            return Ok(Statistic::Percentile(p));
        }
    }
    // Common spellings that the edit distance alone would not map well.
    let lower = text.to_ascii_lowercase();
    let alias = match lower.as_str() {
        "median" => Some("p50"),
        "avg" | "average" | "mu" | "expected" => Some("mean"),
        _ => None,
    };
    if let Some(a) = alias {
        return Err(Some(format!("did you mean `{a}`?")));
    }
    if lower.starts_with('p') && lower.contains('.') {
        return Err(Some("percentiles are whole and have two digits: `p01` … `p99`".into()));
    }
    let names = statistic_names();
    Err(did_you_mean(text, names.iter().map(String::as_str)))
}

/// `metric.statistic OP value [+- tolerance]`.
fn parse_constraint(
    text: &str,
    metrics: &[&str],
    relative_tolerance: f64,
    node: &Node,
    key: &str,
) -> Result<Constraint, InputError> {
    let at = |message: String| InputError::new(&node.origin, Some(key), message);
    let form = "`metric.statistic <= value`, such as \"latency_p99_ms.p95 <= 200\"";
    let Some(op_at) = text.find(['<', '>']) else {
        let hint = text.contains('=').then(|| "compare with `<=` or `>=`".to_string());
        return Err(at(format!("expected {form}, found \"{text}\"")).with_hint(hint));
    };
    let bound = if text[op_at..].starts_with('<') { Bound::AtMost } else { Bound::AtLeast };
    let rest = &text[op_at + 1..];
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    let lhs = text[..op_at].trim();

    // The longest metric the text starts with, else the last dot: a
    // component's metrics have a dot of their own.
    let known = metrics
        .iter()
        .filter(|m| lhs.len() > m.len() && lhs.starts_with(**m) && lhs.as_bytes()[m.len()] == b'.')
        .max_by_key(|m| m.len());
    let split = match known {
        Some(m) => Some((&lhs[..m.len()], &lhs[m.len() + 1..])),
        None => lhs.rsplit_once('.'),
    };
    let Some((metric, statistic)) = split else {
        let hint = metrics.contains(&lhs).then(|| format!("did you mean `{lhs}.mean`?"));
        return Err(at(format!(
            "expected `metric.statistic` before `{bound}`, such as `cost_usd.mean`, found \"{lhs}\""
        ))
        .with_hint(hint));
    };
    let (metric, statistic) = (metric.trim(), statistic.trim());
    let Some(column) = metrics.iter().position(|m| *m == metric) else {
        return Err(at(format!("unknown metric \"{metric}\" in \"{text}\"")).with_hint(metric_hint(metric, metrics)));
    };
    let statistic = parse_statistic(statistic).map_err(|hint| {
        at(format!("unknown statistic \"{statistic}\" in \"{text}\": expected `mean` or a percentile `p01` … `p99`"))
            .with_hint(hint)
    })?;

    let (value, explicit) = match ["+-", "±", "+/-"].iter().find_map(|sep| rest.split_once(sep)) {
        Some((v, t)) => (v.trim(), Some(t.trim())),
        None => (rest.trim(), None),
    };
    let threshold = parse_number(value).map_err(|hint| {
        at(format!("expected a number after `{bound}` in \"{text}\", found \"{value}\"")).with_hint(hint)
    })?;
    let tolerance = match explicit {
        Some(t) => match parse_number(t) {
            Ok(t) if t >= 0.0 => t,
            Ok(t) => return Err(at(format!("expected a tolerance >= 0 after `+-` in \"{text}\", found {t}"))),
            Err(hint) => {
                return Err(at(format!("expected a number after `+-` in \"{text}\", found \"{t}\"")).with_hint(hint));
            }
        },
        None if threshold == 0.0 => relative_tolerance,
        None => relative_tolerance * threshold.abs(),
    };
    if statistic == Statistic::Mean && tolerance == 0.0 {
        return Err(at(format!("the mean constraint \"{text}\" needs a tolerance above 0"))
            .with_hint(Some("give one after the value, such as \"… +- 0.001\", or set `tolerance`".into())));
    }
    Ok(Constraint {
        text: text.to_string(),
        metric: Metric { name: metric.to_string(), column },
        statistic,
        bound,
        threshold,
        tolerance,
        implied: false,
    })
}

/// SPEC 3's rule for constraints: a latency percentile is judged over all
/// counted arrivals (its `_all_ms` twin, a request not served counting as
/// missing the bound), and designs that report `served_frac` must serve
/// `DEFAULT_SERVED_FRAC` of their arrivals unless a constraint says otherwise.
fn honest(constraints: &mut Vec<Constraint>, metrics: &[&str], relative_tolerance: f64, node: &Node, key: &str) {
    for c in constraints.iter_mut() {
        let twin = c.metric.name.strip_suffix("_ms").map(|base| format!("{base}_all_ms"));
        if let Some(column) = twin.as_deref().and_then(|t| metrics.iter().position(|m| *m == t)) {
            c.metric = Metric { name: metrics[column].to_string(), column };
        }
    }
    if metrics.contains(&"served_frac") && !constraints.iter().any(|c| c.metric.name == "served_frac") {
        let text = format!("served_frac.mean >= {DEFAULT_SERVED_FRAC}");
        let mut c = parse_constraint(&text, metrics, relative_tolerance, node, key).expect("a valid constraint");
        c.implied = true;
        constraints.push(c);
    }
}

/// A finite number; on failure, a hint when it looks like a number with a unit.
fn parse_number(text: &str) -> Result<f64, Option<String>> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(None),
        Err(_) => {
            let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%');
            let unit = digits.len() < text.len() && digits.parse::<f64>().is_ok();
            Err(unit.then(|| format!("the unit is in the metric's name: write the bare number `{digits}`")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: [&str; 4] = ["cost_usd", "latency_p99_ms", "slo_attainment", "wall_time_h"];

    fn parse(body: &str) -> Result<Objective, InputError> {
        parse_objective(&format!("name = \"x\"\n\n[objective]\n{body}"), "e.toml", &METRICS)
    }

    fn error(body: &str) -> InputError {
        parse(body).expect_err("should be refused")
    }

    #[test]
    fn reads_the_spec_example_with_defaults() {
        let o = parse(
            "minimize = \"cost_usd\"\nconstraints = [\n  \"latency_p99_ms.p95 <= 200\",\n  \"slo_attainment.mean >= 0.999 +- 0.0005\",\n]\n",
        )
        .unwrap();
        assert_eq!(o.minimize, Metric { name: "cost_usd".into(), column: 0 });
        assert_eq!((o.confidence, o.indifference, o.tolerance), (0.95, 0.01, 0.01));
        let [latency, slo] = &o.constraints[..] else { panic!("{o:?}") };
        assert_eq!(
            (latency.metric.column, latency.statistic, latency.bound),
            (1, Statistic::Percentile(95), Bound::AtMost)
        );
        assert_eq!((latency.threshold, latency.tolerance), (200.0, 2.0));
        assert_eq!(
            (slo.statistic, slo.bound, slo.threshold, slo.tolerance),
            (Statistic::Mean, Bound::AtLeast, 0.999, 0.0005)
        );
        assert_eq!(latency.statistic.to_string(), "p95");
    }

    #[test]
    fn strict_comparisons_and_any_two_digit_percentile() {
        let o =
            parse("minimize = \"cost_usd\"\nconstraints = [\"wall_time_h.p07<12\", \"cost_usd.p99 > 1\"]\n").unwrap();
        assert_eq!(o.constraints[0].statistic, Statistic::Percentile(7));
        assert_eq!(o.constraints[0].bound, Bound::AtMost);
        assert_eq!(o.constraints[1].bound, Bound::AtLeast);
    }

    #[test]
    fn unknown_metric_names_line_key_and_nearest() {
        let e = error(
            "minimize = \"cost_usd\"\nconstraints = [\n  \"cost_usd.mean <= 5\",\n  \"latency_p99.p95 <= 200\",\n]\n",
        );
        assert_eq!(e.origin, Origin::file("e.toml", 7));
        assert_eq!(e.key.as_deref(), Some("objective.constraints[1]"));
        assert!(e.message.contains("unknown metric \"latency_p99\""), "{e}");
        assert_eq!(e.hint.as_deref(), Some("did you mean `latency_p99_ms`?"));

        let e = error("minimize = \"costusd\"\n");
        assert_eq!((e.origin.line, e.key.as_deref()), (Some(4), Some("objective.minimize")));
        assert_eq!(e.hint.as_deref(), Some("did you mean `cost_usd`?"));
        let e = error("minimize = \"banana\"\n");
        assert!(e.hint.unwrap().starts_with("metrics of this scenario: cost_usd, "));
    }

    #[test]
    fn unknown_statistic_gets_a_hint() {
        let cases = [
            ("men", "did you mean `mean`?"),
            ("p9", "did you mean `p09`?"),
            ("median", "did you mean `p50`?"),
            ("p99.9", "percentiles are whole and have two digits: `p01` … `p99`"),
            ("p995", "did you mean `p95`?"),
            ("p00", "did you mean `p01`?"),
        ];
        for (stat, hint) in cases {
            let e = error(&format!("minimize = \"cost_usd\"\nconstraints = [\"latency_p99_ms.{stat} <= 200\"]\n"));
            assert_eq!((e.origin.line, e.key.as_deref()), (Some(5), Some("objective.constraints[0]")), "{e}");
            assert!(e.message.contains(&format!("unknown statistic \"{stat}\"")), "{e}");
            assert_eq!(e.hint.as_deref(), Some(hint), "{stat}");
        }
    }

    #[test]
    fn unparsable_constraints_say_what_was_expected() {
        let e = error("minimize = \"cost_usd\"\nconstraints = [\"latency_p99_ms.p95 == 200\"]\n");
        assert!(e.message.starts_with("expected `metric.statistic <= value`"), "{e}");
        assert_eq!(e.hint.as_deref(), Some("compare with `<=` or `>=`"));
        let e = error("minimize = \"cost_usd\"\nconstraints = [\"latency_p99_ms.p95 <= 200ms\"]\n");
        assert!(e.message.contains("expected a number after `<=`"), "{e}");
        assert_eq!(e.hint.as_deref(), Some("the unit is in the metric's name: write the bare number `200`"));
        let e = error("minimize = \"cost_usd\"\nconstraints = [\"cost_usd <= 3\"]\n");
        assert_eq!(e.hint.as_deref(), Some("did you mean `cost_usd.mean`?"));
        let e = error("minimize = \"cost_usd\"\nconstraints = [\"cost_usd.mean <= 3 +- x\"]\n");
        assert!(e.message.contains("after `+-`"), "{e}");
        let e = error("minimize = \"cost_usd\"\nconstraints = \"cost_usd.mean <= 3\"\n");
        assert!(e.message.starts_with("expected a list of strings"), "{e}");
        let e = error("minimize = \"cost_usd\"\nconstraints = [3]\n");
        assert_eq!(e.key.as_deref(), Some("objective.constraints[0]"));
        let e = error("minimize = \"cost_usd\"\nconstraints = [\"cost_usd.mean <= 0\"]\ntolerance = 0\n");
        assert!(e.message.contains("needs a tolerance above 0"), "{e}");
    }

    #[test]
    fn confidence_must_lie_strictly_between_0_and_1() {
        for bad in ["1", "0", "1.5", "-0.1", "\"high\""] {
            let e = error(&format!("minimize = \"cost_usd\"\nconfidence = {bad}\n"));
            assert_eq!((e.origin.line, e.key.as_deref()), (Some(5), Some("objective.confidence")), "{bad}: {e}");
        }
        assert_eq!(parse("minimize = \"cost_usd\"\nconfidence = 0.99\n").unwrap().confidence, 0.99);
    }

    #[test]
    fn unknown_keys_and_a_missing_minimize_are_refused() {
        let e = error("minimize = \"cost_usd\"\nconfidense = 0.9\n");
        assert_eq!(e.hint.as_deref(), Some("did you mean `confidence`?"));
        let e = error("constraints = []\n");
        assert_eq!(e.key.as_deref(), Some("objective.minimize"));
    }
}
