//! `spotsim recommend` on an experiment: the search over its `[sweep]` grid,
//! its result files (`recommendations.csv`, `rounds.csv`, the survivors'
//! `summary.csv`, `manifest.json`) and the ranking table for the terminal;
//! and the compact table `spotsim run` prints after a sweep.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Mutex;

use serde::Serialize;

use super::{
    ModelSampler, Objective, Outcome, RecommendError, Recommendation, Round, Sampler, Settings, Statistic, Status,
    Verdict, recommend,
};
use crate::base::stats::quantiles;
use crate::engine::{Model, Runner};
use crate::experiment::{Experiment, InputError};
use crate::output::{self, PointRows, RunInfo, cell};

/// Refuses what `recommend` cannot search: no `[objective]`, no `[sweep]`.
pub fn check(experiment: &Experiment) -> Result<&Objective, InputError> {
    let Some(objective) = &experiment.objective else {
        return Err(InputError::new(
            &experiment.origin_of("objective"),
            Some("objective"),
            "`recommend` needs an [objective] table: the metric to minimise and the constraints",
        )
        .with_hint(Some("add [objective] with minimize = \"cost_usd\" (see docs/recommend.md)".into())));
    };
    if experiment.swept.is_empty() {
        return Err(InputError::new(
            &experiment.origin_of("objective"),
            Some("sweep"),
            "`recommend` searches the [sweep] grid, and this experiment has no [sweep]",
        )
        .with_hint(Some("add a [sweep] of the designs to compare, or use `spotsim run` for one design".into())));
    }
    Ok(objective)
}

/// Keeps every row it hands out, so the survivors' `summary.csv` comes from
/// the very replications the search judged; tells `progress` how many
/// replications each batch of points finished.
struct Recorder<'a> {
    inner: ModelSampler<'a>,
    rows: Mutex<Vec<PointRows>>,
    batch: usize,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Sampler for Recorder<'_> {
    fn width(&self) -> usize {
        self.inner.width()
    }

    fn sample(&self, point: usize, reps: Range<u64>) -> Vec<f64> {
        self.sample_points(&[point], reps).pop().expect("one point")
    }

    fn sample_points(&self, points: &[usize], reps: Range<u64>) -> Vec<Vec<f64>> {
        let mut tables = Vec::with_capacity(points.len());
        for chunk in points.chunks(self.batch) {
            tables.extend(self.inner.sample_points(chunk, reps.clone()));
            (self.progress)(chunk.len() as u64 * (reps.end - reps.start));
        }
        let mut rows = self.rows.lock().expect("not poisoned");
        for (&p, table) in points.iter().zip(&tables) {
            rows[p].extend_from_slice(table);
        }
        tables
    }
}

/// What `recommend` found, with every replication it ran.
pub struct Search {
    pub recommendation: Recommendation,
    pub settings: Settings,
    /// Each point's replications, row-major, in index order.
    pub rows: Vec<PointRows>,
}

/// Runs the search over the experiment's points on `runner`'s threads.
/// `replications` hears of finished replications, `round` of each round.
pub fn search(
    experiment: &Experiment,
    runner: &Runner,
    settings: &Settings,
    replications: &(dyn Fn(u64) + Sync),
    round: &(dyn Fn(&Round) + Sync),
) -> Result<Search, InputError> {
    let objective = check(experiment)?;
    let models: Vec<&dyn Model> = experiment.points.iter().map(|p| p.design.model()).collect();
    let recorder = Recorder {
        inner: ModelSampler::new(models, experiment.seed),
        rows: Mutex::new(vec![Vec::new(); experiment.points.len()]),
        batch: 2 * runner.threads(),
        progress: replications,
    };
    let fits: Vec<bool> = experiment.points.iter().map(|p| p.fits).collect();
    let recommendation = runner
        .install(|| recommend(&recorder, objective, settings, &fits, round))
        .map_err(|e| input_error(experiment, e))?;
    let rows = recorder.rows.into_inner().expect("not poisoned");
    Ok(Search { recommendation, settings: settings.clone(), rows })
}

fn input_error(experiment: &Experiment, e: RecommendError) -> InputError {
    let (key, hint) = match &e {
        RecommendError::NotANumber { .. } => (
            "objective",
            "a latency is NaN when a replication served no request: constrain `served` or `slo_attainment` instead",
        ),
        RecommendError::BudgetTooSmall { .. } => ("budget", "raise --budget, or sweep fewer points"),
        RecommendError::Settings(_) => ("settings", "see docs/recommend.md for the procedure's settings"),
    };
    InputError::new(&experiment.origin_of("objective"), Some(key), e.to_string()).with_hint(Some(hint.into()))
}

impl Search {
    /// Replications that running every point that fits to the largest count
    /// any point got would have taken: the work a fixed-size sweep needs for
    /// the same precision at the chosen point.
    pub fn exhaustive(&self) -> u64 {
        let points = &self.recommendation.points;
        let most = points.iter().map(|p| p.replications).max().unwrap_or(0);
        most * points.iter().filter(|p| p.status != Status::DoesNotFit).count() as u64
    }

    /// Points still in contention when the search stopped.
    pub fn survivors(&self) -> Vec<usize> {
        let points = &self.recommendation.points;
        (0..points.len())
            .filter(|&p| matches!(points[p].status, Status::Best | Status::Tie | Status::Feasible | Status::Undecided))
            .collect()
    }

    /// The result files: `recommendations.csv`, `rounds.csv`, `summary.csv`
    /// of the survivors, `manifest.json`.
    pub fn files(&self, experiment: &Experiment, runner: &Runner, info: &RunInfo) -> Vec<(&'static str, Vec<u8>)> {
        let objective = experiment.objective.as_ref().expect("checked");
        let width = experiment.metrics().len();
        let survivors = self.survivors();
        let summaries: Vec<_> = survivors.iter().map(|&p| runner.summarise(&self.rows[p], width)).collect();
        #[derive(Serialize)]
        struct Procedure<'a> {
            command: &'static str,
            settings: &'a Settings,
            outcome: &'a Outcome,
            delta: f64,
            errors: &'a super::ErrorSplit,
            spent: u64,
            exhaustive: u64,
            rounds: &'a [Round],
        }
        let rec = &self.recommendation;
        let procedure = Procedure {
            command: "recommend",
            settings: &self.settings,
            outcome: &rec.outcome,
            delta: rec.delta,
            errors: &rec.errors,
            spent: rec.spent,
            exhaustive: self.exhaustive(),
            rounds: &rec.rounds,
        };
        vec![
            ("recommendations.csv", recommendations_csv(experiment, objective, rec)),
            ("rounds.csv", rounds_csv(&rec.rounds)),
            ("summary.csv", output::summary_table(&experiment.layout(), survivors.iter().copied().zip(&summaries))),
            ("manifest.json", output::manifest_json_with(&experiment.subject(), info, Some(&procedure))),
        ]
    }

    /// The ranking table, the choice and how sure it is, for the terminal.
    pub fn render(&self, experiment: &Experiment) -> String {
        let objective = experiment.objective.as_ref().expect("checked");
        let rec = &self.recommendation;
        let confidence = percent(objective.confidence);
        let label = |p: usize| point_label(experiment, p);
        let mut out = format!(
            "{}: {} replications over {} points in {} rounds ({:.0}% of the {} that running every point to {} would take)\n\n",
            experiment.name,
            rec.spent,
            rec.points.len(),
            rec.rounds.len(),
            100.0 * rec.spent as f64 / self.exhaustive().max(1) as f64,
            self.exhaustive(),
            self.exhaustive() / rec.points.len().max(1) as u64,
        );
        out += &judged_line(objective);
        let order = rec.ranking();
        let shown = match rec.outcome {
            Outcome::NothingFeasible { .. } => 5,
            _ => 15,
        };
        out += &ranking_table(experiment, objective, rec, &order[..order.len().min(shown)]);
        if order.len() > shown {
            let _ = writeln!(out, "  … {} more in recommendations.csv", order.len() - shown);
        }
        out.push('\n');
        let m = &objective.minimize.name;
        match &rec.outcome {
            Outcome::Selected { best, ties } => {
                let o = &rec.points[*best].objective;
                let _ = writeln!(
                    out,
                    "Choice: point {best} ({}): {m} mean {} [{}, {}].",
                    label(*best),
                    short(o.value),
                    short(o.low),
                    short(o.high)
                );
                let _ = write!(
                    out,
                    "With probability at least {confidence} it is the design of lowest mean {m} among those meeting the constraints, \
                     if the best is at least δ = {} ahead of the next (assumptions in docs/recommend.md).",
                    short(rec.delta)
                );
                if !ties.is_empty() {
                    let list: Vec<String> = ties.iter().map(|t| t.to_string()).collect();
                    let _ = write!(out, " Within δ of it, as good by this test: point(s) {}.", list.join(", "));
                }
                out.push('\n');
            }
            Outcome::NothingFeasible { closest } => {
                let _ = writeln!(
                    out,
                    "Nothing is feasible: every design was judged to violate a constraint at {confidence} confidence."
                );
                let near: Vec<String> = closest.iter().take(3).map(|&p| format!("point {p} ({})", label(p))).collect();
                let _ = writeln!(out, "Closest (smallest shortfall): {}.", near.join("; "));
            }
            Outcome::NothingFits => out += "No design fits: nothing was simulated.\n",
            Outcome::BudgetSpent { leader } | Outcome::CapReached { leader } => {
                let why = if matches!(rec.outcome, Outcome::BudgetSpent { .. }) {
                    "the budget was spent"
                } else {
                    "the cap per point was reached"
                };
                let _ = writeln!(out, "No choice with {confidence} confidence: {why} before the search ended.");
                match leader {
                    Some(p) => {
                        let _ = writeln!(
                            out,
                            "Leader so far, without the guarantee: point {p} ({}), judged feasible, lowest {m} among the contenders.",
                            label(*p)
                        );
                    }
                    None => out += "No contender was judged feasible yet: raise --budget.\n",
                }
            }
        }
        // How far each LLM design's latencies can be trusted (SPEC 2.10).
        let mut notes: Vec<(String, Vec<String>)> = Vec::new();
        for p in 0..experiment.points.len() {
            if let Some(n) = experiment.step_times_note(p) {
                match notes.iter_mut().find(|(m, _)| *m == n) {
                    Some((_, points)) => points.push(p.to_string()),
                    None => notes.push((n, vec![p.to_string()])),
                }
            }
        }
        for (n, points) in notes {
            let _ = writeln!(out, "Point(s) {}: {n}.", points.join(", "));
        }
        out
    }
}

/// "95%" or "99.5%".
fn percent(x: f64) -> String {
    format!("{}%", cell((x * 1000.0).round() / 10.0))
}

/// A number for the terminal: four significant digits.
fn short(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "-".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{x:.digits$}")
}

/// `key = value, …` of a point's swept values, whole tables by their first entry.
pub fn point_label(experiment: &Experiment, p: usize) -> String {
    let values = &experiment.points[p].values;
    let label = experiment.swept.iter().zip(values).map(|(k, v)| format!("{k} = {}", compact(v)));
    label.collect::<Vec<_>>().join(", ")
}

/// A swept value for a table: an inline table by its first entry.
fn compact(value: &str) -> String {
    match value.strip_prefix("{ ").and_then(|rest| rest.split_once(", ")) {
        Some((first, _)) => format!("{{ {first}, … }}"),
        None => value.to_string(),
    }
}

/// Left-aligned columns, two spaces apart.
fn align(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..width)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
        out += "  ";
        out += line.join("  ").trim_end();
        out.push('\n');
    }
    out
}

/// The swept values of a point, whole tables shortened.
fn swept_cells(experiment: &Experiment, p: usize) -> Vec<String> {
    experiment.points[p].values.iter().map(|v| compact(v)).collect()
}

/// How the constraints are judged, where SPEC 3's rule changes what the
/// file says: latency percentiles over all counted arrivals, and the
/// default `served_frac` constraint. Empty when neither applies.
pub fn judged_line(objective: &Objective) -> String {
    let mut parts: Vec<String> = objective
        .constraints
        .iter()
        .filter(|c| c.over_arrivals())
        .map(|c| format!("\"{}\" over all counted arrivals ({})", c.text, c.metric.name))
        .collect();
    if let Some(c) = objective.constraints.iter().find(|c| c.implied) {
        parts.push(format!("\"{}\" by default (the objective does not constrain served_frac)", c.text));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("Judged: {}; a request not served counts as missing a latency bound.\n\n", parts.join("; "))
}

/// The last part of each swept key, for headers.
fn swept_headers(experiment: &Experiment) -> Vec<String> {
    experiment.swept.iter().map(|k| k.rsplit('.').next().unwrap_or(k).to_string()).collect()
}

fn ranking_table(experiment: &Experiment, objective: &Objective, rec: &Recommendation, order: &[usize]) -> String {
    let mut header: Vec<String> = vec!["rank".into(), "status".into(), "point".into()];
    header.extend(swept_headers(experiment));
    header.push(format!("{} mean [CI]", objective.minimize.name));
    header.extend(objective.constraints.iter().map(|c| c.text.clone()));
    header.extend(["reps".into(), "dropped".into()]);
    let mut rows = vec![header];
    for &p in order {
        let r = &rec.points[p];
        let mut row = vec![r.rank.to_string(), r.status.as_str().to_string(), p.to_string()];
        row.extend(swept_cells(experiment, p));
        row.push(format!("{} [{}, {}]", short(r.objective.value), short(r.objective.low), short(r.objective.high)));
        for c in &r.constraints {
            let mark = match c.holds {
                Verdict::Yes => "yes",
                Verdict::No => "NO",
                Verdict::Undecided => "?",
            };
            row.push(format!("{} {mark}", short(c.estimate.value)));
        }
        row.push(r.replications.to_string());
        row.push(r.dropped_round.map_or(String::new(), |d| format!("round {d}")));
        rows.push(row);
    }
    align(&rows)
}

/// `recommendations.csv`: one row per point in rank order.
pub fn recommendations_csv(experiment: &Experiment, objective: &Objective, rec: &Recommendation) -> Vec<u8> {
    let m = &objective.minimize.name;
    let mut columns: Vec<String> = ["rank", "status", "replications", "dropped_round", "dropped_by"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("{m}.mean"), format!("{m}.mean_low"), format!("{m}.mean_high")])
        .collect();
    for (i, c) in objective.constraints.iter().enumerate() {
        let base = format!("{}.{}", c.metric.name, c.statistic);
        let taken =
            objective.constraints[..i].iter().any(|d| d.metric.name == c.metric.name && d.statistic == c.statistic);
        let base = if taken { format!("{base}#{}", i + 1) } else { base };
        columns.extend([base.clone(), format!("{base}_low"), format!("{base}_high"), format!("{base}_holds")]);
    }
    columns.push("shortfall".into());
    let opt = |x: Option<usize>| x.map_or(String::new(), |v| v.to_string());
    let rows: Vec<(usize, Vec<String>)> = rec
        .ranking()
        .into_iter()
        .map(|p| {
            let r = &rec.points[p];
            let mut cells = vec![
                r.rank.to_string(),
                r.status.as_str().to_string(),
                r.replications.to_string(),
                opt(r.dropped_round),
                opt(r.dropped_by),
                cell(r.objective.value),
                cell(r.objective.low),
                cell(r.objective.high),
            ];
            for c in &r.constraints {
                let holds = match c.holds {
                    Verdict::Yes => "yes",
                    Verdict::No => "no",
                    Verdict::Undecided => "undecided",
                };
                cells.extend([cell(c.estimate.value), cell(c.estimate.low), cell(c.estimate.high), holds.into()]);
            }
            cells.push(r.shortfall.map_or(String::new(), cell));
            (p, cells)
        })
        .collect();
    output::point_table_csv(&experiment.layout(), &columns, &rows)
}

/// `rounds.csv`: one row per round of the search.
pub fn rounds_csv(rounds: &[Round]) -> Vec<u8> {
    let rows: Vec<Vec<String>> = rounds
        .iter()
        .map(|r| {
            [r.round as u64, r.replications, r.sampled as u64, r.survivors as u64, r.spent]
                .iter()
                .map(|x| x.to_string())
                .collect()
        })
        .collect();
    output::plain_csv(&["round", "replications", "sampled", "survivors", "spent"], &rows)
}

/// A line for the progress display after a round.
/// The replications the search will have spent when the round after `r`
/// ends, if every survivor is sampled to the schedule's next size: the
/// progress bar's length, grown round by round.
pub fn next_round_total(r: &Round, settings: &Settings) -> u64 {
    let schedule = settings.schedule();
    let next = schedule.get(r.round).copied().unwrap_or(r.replications);
    let total = r.spent + r.survivors as u64 * next.saturating_sub(r.replications);
    settings.budget.map_or(total, |b| total.min(b))
}

pub fn round_line(r: &Round, points: usize) -> String {
    format!("round {}: {} of {} points left, {} replications so far", r.round, r.survivors, points, r.spent)
}

/// Metrics `run` shows after a sweep when there is no objective: the first
/// few of these the scenario has.
const MAIN_METRICS: &[&str] =
    &["cost_usd", "wall_time_h", "completed", "latency_p99_ms", "slo_attainment", "availability"];

/// A metric and statistic the `run` table shows.
struct Column {
    metric: usize,
    statistic: Statistic,
    title: String,
}

/// After a sweep: a compact table of the main metrics per point for the
/// terminal. With an `[objective]`, it marks the points whose point
/// estimates meet the constraints and the one of lowest objective among
/// them. None without a sweep.
pub fn sweep_table(experiment: &Experiment, results: &[PointRows]) -> Option<String> {
    if experiment.swept.is_empty() {
        return None;
    }
    let metrics = experiment.metrics();
    let width = metrics.len();
    let columns: Vec<Column> = match &experiment.objective {
        Some(o) => std::iter::once(Column {
            metric: o.minimize.column,
            statistic: Statistic::Mean,
            title: format!("{}.mean", o.minimize.name),
        })
        .chain(o.constraints.iter().map(|c| Column {
            metric: c.metric.column,
            statistic: c.statistic,
            title: format!("{}.{}", c.metric.name, c.statistic),
        }))
        .collect(),
        None => MAIN_METRICS
            .iter()
            .filter_map(|m| metrics.iter().position(|x| x == m))
            .map(|metric| Column { metric, statistic: Statistic::Mean, title: format!("{}.mean", metrics[metric]) })
            .collect(),
    };
    let estimate = |rows: &PointRows, c: &Column| {
        let mut column: Vec<f64> = rows.chunks_exact(width).map(|r| r[c.metric]).filter(|x| !x.is_nan()).collect();
        if column.is_empty() {
            return f64::NAN;
        }
        match c.statistic.probability() {
            None => column.iter().sum::<f64>() / column.len() as f64,
            Some(q) => quantiles(&mut column, &[q])[0],
        }
    };
    let values: Vec<Vec<f64>> =
        results.iter().map(|rows| columns.iter().map(|c| estimate(rows, c)).collect()).collect();
    let meets: Option<Vec<bool>> = experiment.objective.as_ref().map(|o| {
        values.iter().map(|v| o.constraints.iter().zip(&v[1..]).all(|(c, &x)| c.shortfall(x) <= 0.0)).collect()
    });
    let cheapest = meets.as_ref().and_then(|m| {
        (0..values.len())
            .filter(|&p| m[p] && values[p][0].is_finite())
            .min_by(|&a, &b| values[a][0].total_cmp(&values[b][0]))
    });

    let mut header = vec!["point".to_string()];
    header.extend(swept_headers(experiment));
    header.extend(columns.iter().map(|c| c.title.clone()));
    if meets.is_some() {
        header.push("meets".into());
    }
    let mut rows = vec![header];
    const SHOWN: usize = 40;
    for (p, v) in values.iter().enumerate().take(SHOWN) {
        let mut row = vec![p.to_string()];
        row.extend(swept_cells(experiment, p));
        row.extend(v.iter().map(|&x| short(x)));
        if let Some(m) = &meets {
            row.push(match (m[p], cheapest == Some(p)) {
                (true, true) => "yes <- cheapest".into(),
                (true, false) => "yes".into(),
                (false, _) => "no".into(),
            });
        }
        rows.push(row);
    }
    let mut out = align(&rows);
    if values.len() > SHOWN {
        let _ = writeln!(out, "  … {} more points in summary.csv", values.len() - SHOWN);
    }
    if let Some(o) = &experiment.objective {
        let n = experiment.replications;
        match cheapest {
            Some(p) => {
                let _ = writeln!(
                    out,
                    "Cheapest meeting the constraints: point {p} ({}), by the estimates of {n} replications per point only: \
                     no confidence is claimed. `spotsim recommend` chooses with {} confidence.",
                    point_label(experiment, p),
                    percent(o.confidence)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "No point meets the constraints by the estimates of {n} replications per point (no confidence claimed)."
                );
            }
        }
    }
    Some(out)
}
