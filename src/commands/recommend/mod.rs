//! `spotsim recommend`: the design of a sweep with the lowest mean objective
//! among those whose constraints hold, found with as few replications as the
//! stated confidence allows (SPEC 2.7; docs/recommend.md).
//!
//! # Procedure
//!
//! A fully sequential selection of the best under stochastic constraints,
//! after Andradóttir and Kim (2010), who combine the KN procedure of Kim and
//! Nelson (2001) with the feasibility checks of Batur and Kim (2010):
//!
//! 1. Every point that fits gets a first stage of n0 replications, indices
//!    0..n0 for all of them (common random numbers). From it come the
//!    variances S² that fix every triangle below, and the absolute
//!    indifference δ = `indifference` × |lowest first-stage objective mean|.
//! 2. Rounds follow a fixed schedule of replication counts (`Settings::schedule`);
//!    each round gives every surviving point the same new indices. After each:
//!    - *feasibility*: a mean constraint is a sequential test of Σ(Y − c)
//!      against the triangle ±(h_F²S²/(2ε) − εr/2) (Batur and Kim's procedure
//!      with c = 1); a quantile constraint is an exact binomial test of how
//!      many replications fall on the right side of c ± ε (`quantile_verdict`).
//!      A point with one constraint judged infeasible is dropped;
//!    - *comparison*: a point is dropped when it is worse than a point already
//!      judged feasible on every constraint: Σ(X_i − X_l) > h_S²S²_il/(2δ) −
//!      δr/2 with S²_il the first-stage variance of the paired differences
//!      (KN, minimising). Only feasible points eliminate others.
//! 3. It stops when every survivor is feasible and every pair of survivors has
//!    passed the apex of its triangle (then one point is left, or exact ties),
//!    when no point is left (nothing is feasible), or when the budget or the
//!    per-point cap is spent; then it reports what it knows.
//!
//! # Guarantee
//!
//! α = 1 − `confidence` is split equally between the feasibility checks (if
//! there are constraints) and the selection (if two or more points fit).
//! Within each part, Bonferroni: a selection error needs one of the k − 1
//! comparisons of the best point b to go wrong, so each gets α_S/(k − 1); a
//! feasibility error needs b judged infeasible on one of its s constraints, or
//! a clearly infeasible point judged feasible on one constraint it violates,
//! so each test gets α_F/(k − 1 + s). A quantile test looks at most once per
//! round of the schedule and splits its share over those looks.
//!
//! If (i) replications are independent, objective values and mean-constrained
//! metrics are normal and paired objective differences are normal (as with
//! CRN); (ii) every point meets each constraint with margin ε or violates one
//! by more than ε; (iii) b, the best point that meets its constraints, is at
//! least δ better than every other such point; and (iv) neither the budget nor
//! the cap stops the search; then P(b is reported `best`) >= `confidence`.
//! δ is set from the first stage, so (iii) is conditional on it; see
//! docs/recommend.md for what happens outside these assumptions.
//!
//! # References
//!
//! - S.-H. Kim, B. L. Nelson (2001). A fully sequential procedure for
//!   indifference-zone selection in simulation. ACM TOMACS 11(3), 251–273.
//! - D. Batur, S.-H. Kim (2010). Finding feasible systems in the presence of
//!   constraints on multiple performance measures. ACM TOMACS 20(3), 13.
//! - S. Andradóttir, S.-H. Kim (2010). Fully sequential procedures for
//!   comparing constrained systems via simulation. Naval Research Logistics
//!   57(5), 403–421.
//! - V. Fabian (1974). Note on Anderson's sequential procedures with
//!   triangular boundary. Annals of Statistics 2(1), 170–176.
//! - C. J. Clopper, E. S. Pearson (1934). The use of confidence or fiducial
//!   limits illustrated in the case of the binomial. Biometrika 26(4), 404–413.
//! - H. A. David, H. N. Nagaraja (2003). Order Statistics, 3rd ed., Wiley.

mod bounds;
pub mod report;
pub mod sagemaker;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::ops::Range;

use rayon::prelude::*;
use serde::Serialize;

use crate::engine::{Model, Streams};
pub use crate::experiment::objective::{Bound, Constraint, Metric, Objective, Statistic, parse_objective};

/// Replications on demand, with common random numbers: replication r of
/// every point uses the same random streams.
pub trait Sampler: Sync {
    /// Metrics per replication.
    fn width(&self) -> usize;

    /// Replications `reps` of `point`, row-major: `reps.len()` rows of `width()`.
    fn sample(&self, point: usize, reps: Range<u64>) -> Vec<f64>;

    /// The same replications of several points, one table per point in the
    /// order of `points`. Override to run them in parallel; the result must
    /// not depend on the thread count.
    fn sample_points(&self, points: &[usize], reps: Range<u64>) -> Vec<Vec<f64>> {
        points.iter().map(|&p| self.sample(p, reps.clone())).collect()
    }
}

/// Samples the engine's models: replication r of every point runs with
/// `Streams::new(seed, r)`. Parallel over points and replications on the
/// current rayon pool (run `recommend` inside `Runner::install`); rows are
/// collected by index, so the result does not depend on the thread count.
pub struct ModelSampler<'a> {
    models: Vec<&'a dyn Model>,
    seed: u64,
    width: usize,
}

impl<'a> ModelSampler<'a> {
    /// One model per point, all with the same metrics.
    pub fn new(models: Vec<&'a dyn Model>, seed: u64) -> Self {
        let width = models.first().map_or(0, |m| m.metrics().len());
        assert!(width > 0, "a model with metrics");
        assert!(models.iter().all(|m| m.metrics().len() == width), "all points share their metrics");
        ModelSampler { models, seed, width }
    }
}

impl Sampler for ModelSampler<'_> {
    fn width(&self) -> usize {
        self.width
    }

    fn sample(&self, point: usize, reps: Range<u64>) -> Vec<f64> {
        self.sample_points(&[point], reps).pop().expect("one point")
    }

    fn sample_points(&self, points: &[usize], reps: Range<u64>) -> Vec<Vec<f64>> {
        let n = (reps.end - reps.start) as usize;
        points
            .par_iter()
            .map(|&p| {
                let mut rows = vec![0.0; n * self.width];
                rows.par_chunks_mut(self.width).enumerate().for_each(|(i, row)| {
                    self.models[p].replicate(Streams::new(self.seed, reps.start + i as u64), row);
                });
                rows
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    /// n0: replications of every point before anything is decided (>= 2).
    /// Larger n0 estimates the variances better (smaller η), smaller n0
    /// drops hopeless points sooner; 10–30 is the usual range.
    pub first_stage: u64,
    /// Each round raises the replications of the survivors to
    /// max(r + n0, ⌈r × growth⌉).
    pub growth: f64,
    /// Total replications over all points; the search stops before a round
    /// that would exceed it.
    pub budget: Option<u64>,
    /// No point gets more replications than this: the schedule ends here.
    pub max_per_point: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { first_stage: 20, growth: 1.5, budget: None, max_per_point: 100_000 }
    }
}

impl Settings {
    /// Replications per surviving point after each round: fixed in advance,
    /// so that the looks of the quantile tests can be counted.
    pub fn schedule(&self) -> Vec<u64> {
        let mut schedule = vec![self.first_stage];
        let mut r = self.first_stage;
        while r < self.max_per_point {
            let grown = (r as f64 * self.growth).ceil() as u64;
            r = grown.max(r + self.first_stage).min(self.max_per_point);
            schedule.push(r);
        }
        schedule
    }

    fn check(&self) -> Result<(), RecommendError> {
        let bad = |m: String| Err(RecommendError::Settings(m));
        if self.first_stage < 2 {
            return bad(format!("the first stage needs at least 2 replications, found {}", self.first_stage));
        }
        if !(self.growth >= 1.0 && self.growth <= 100.0) {
            return bad(format!("the growth per round must be from 1 to 100, found {}", self.growth));
        }
        if self.max_per_point < self.first_stage {
            return bad(format!(
                "the cap per point ({}) is below the first stage ({})",
                self.max_per_point, self.first_stage
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RecommendError {
    #[error(
        "point {point}, replication {replication}: `{metric}` is {value}, but `recommend` needs a number there to judge it"
    )]
    NotANumber { point: usize, replication: u64, metric: String, value: f64 },
    #[error(
        "a budget of {budget} replications does not cover the first stage: {first_stage} for each of {points} point(s) = {needed}"
    )]
    BudgetTooSmall { budget: u64, needed: u64, first_stage: u64, points: usize },
    #[error("{0}")]
    Settings(String),
}

/// What became of a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The selected point: feasible, and better than every other point by
    /// the guarantee.
    Best,
    /// Judged feasible, and its objective mean is estimated within δ of the
    /// best's (paired differences over the replications it got): the
    /// guarantee does not tell it from the best.
    Tie,
    /// Judged feasible and still in contention when the budget or the cap
    /// stopped the search.
    Feasible,
    /// Still in contention, feasibility not yet judged, when the search stopped.
    Undecided,
    /// Dropped: worse than a point judged feasible.
    Dominated,
    /// Dropped: a constraint judged not to hold.
    Infeasible,
    /// Marked by the caller as not fitting (for example, the model does not fit
    /// the instance's memory); never simulated.
    DoesNotFit,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Best => "best",
            Status::Tie => "tie",
            Status::Feasible => "feasible",
            Status::Undecided => "undecided",
            Status::Dominated => "dominated",
            Status::Infeasible => "infeasible",
            Status::DoesNotFit => "does-not-fit",
        }
    }
}

/// Whether a constraint holds, at the procedure's confidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Yes,
    No,
    Undecided,
}

/// A point estimate with a two-sided interval at `confidence` (each on its
/// own, not simultaneous). Unbounded ends are infinite; NaN where nothing was
/// simulated.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConstraintResult {
    /// The mean with a Student-t interval, or the type-7 sample quantile with
    /// a distribution-free order-statistic interval.
    pub estimate: Estimate,
    pub holds: Verdict,
    /// The round in which it was judged.
    pub decided_round: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointResult {
    pub status: Status,
    /// 1 = best; then ties, contenders, dropped points by objective mean,
    /// infeasible points by shortfall, points that do not fit.
    pub rank: usize,
    pub replications: u64,
    /// The round (1 = first stage) in which it was dropped.
    pub dropped_round: Option<usize>,
    /// The feasible point it was worse than.
    pub dropped_by: Option<usize>,
    pub objective: Estimate,
    /// In the order of `Objective::constraints`.
    pub constraints: Vec<ConstraintResult>,
    /// The largest relative shortfall of the estimates against their
    /// thresholds (`Constraint::shortfall`, negative when all hold); None
    /// without constraints or data. "Closest" means smallest.
    pub shortfall: Option<f64>,
}

/// One round, for the progress display and the notebook.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Round {
    /// 1 = the first stage.
    pub round: usize,
    /// Replications of each point that was sampled in this round.
    pub replications: u64,
    /// Points sampled in this round.
    pub sampled: usize,
    /// Points still in contention after it.
    pub survivors: usize,
    /// Replications spent so far, over all points.
    pub spent: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// A best point, and the points tied with it (by objective mean).
    Selected { best: usize, ties: Vec<usize> },
    /// Every point was judged infeasible; all of them, closest first.
    NothingFeasible { closest: Vec<usize> },
    /// The caller marked every point as not fitting.
    NothingFits,
    /// The budget ran out first; the feasible contender with the lowest mean,
    /// if any, without the guarantee.
    BudgetSpent { leader: Option<usize> },
    /// The cap per point was reached first (a quantile exactly at its
    /// threshold, or no tolerance); as `BudgetSpent`.
    CapReached { leader: Option<usize> },
}

/// How α = 1 − confidence was spent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorSplit {
    pub alpha: f64,
    /// Share of the feasibility checks (0 without constraints).
    pub feasibility: f64,
    /// Share of the selection (0 with fewer than two points).
    pub selection: f64,
    /// Error of one feasibility test: feasibility / (k − 1 + s).
    pub per_test: f64,
    /// Error of one comparison: selection / (k − 1).
    pub per_pair: f64,
    /// Looks a quantile test can have (rounds in the schedule); each at
    /// per_test / looks.
    pub looks: usize,
}

impl ErrorSplit {
    fn new(alpha: f64, points: usize, constraints: usize, looks: usize) -> Self {
        let (checks, selects) = (constraints > 0, points > 1);
        let parts = (checks as u32 + selects as u32).max(1) as f64;
        let feasibility = if checks { alpha / parts } else { 0.0 };
        let selection = if selects { alpha / parts } else { 0.0 };
        let per_test = if checks { feasibility / (points.max(1) - 1 + constraints) as f64 } else { 0.0 };
        let per_pair = if selects { selection / (points - 1) as f64 } else { 0.0 };
        ErrorSplit { alpha, feasibility, selection, per_test, per_pair, looks }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    pub outcome: Outcome,
    /// One per point, in the caller's order.
    pub points: Vec<PointResult>,
    pub rounds: Vec<Round>,
    /// Replications spent over all points.
    pub spent: u64,
    /// The absolute indifference δ of the objective (NaN if nothing ran).
    pub delta: f64,
    pub errors: ErrorSplit,
}

impl Recommendation {
    pub fn best(&self) -> Option<usize> {
        match self.outcome {
            Outcome::Selected { best, .. } => Some(best),
            _ => None,
        }
    }

    /// Point indices by rank.
    pub fn ranking(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.points.len()).collect();
        order.sort_by_key(|&i| self.points[i].rank);
        order
    }
}

/// Why a point left the contention.
#[derive(Clone, Copy, Debug)]
enum Exit {
    Infeasible,
    /// Worse than `by`, a point judged feasible.
    Beaten {
        by: usize,
    },
}

/// The running state of one constraint test of one point.
#[derive(Clone, Debug)]
enum Test {
    /// Σ(Y − c) (or Σ(c − Y) for `>=`), and S² of Y from the first stage.
    Mean { sum: f64, variance: f64 },
    /// Replications on the side of c ± ε that argues for feasibility, and on
    /// the side that argues against it (see `quantile_verdict`).
    Quantile { for_feasible: u64, against: u64 },
}

struct PointState {
    alive: bool,
    /// One column per metric the objective uses, replications in index order.
    data: Vec<Vec<f64>>,
    objective_sum: f64,
    tests: Vec<Test>,
    verdicts: Vec<Verdict>,
    decided: Vec<Option<usize>>,
    dropped: Option<(usize, Exit)>,
}

impl PointState {
    fn new(fits: bool, objective: &Objective, columns: usize) -> Self {
        let s = objective.constraints.len();
        PointState {
            alive: fits,
            data: vec![Vec::new(); columns],
            objective_sum: 0.0,
            tests: objective
                .constraints
                .iter()
                .map(|c| match c.statistic {
                    Statistic::Mean => Test::Mean { sum: 0.0, variance: f64::NAN },
                    Statistic::Percentile(_) => Test::Quantile { for_feasible: 0, against: 0 },
                })
                .collect(),
            verdicts: vec![Verdict::Undecided; s],
            decided: vec![None; s],
            dropped: None,
        }
    }

    fn reps(&self) -> u64 {
        self.data[0].len() as u64
    }
    fn feasible(&self) -> bool {
        self.verdicts.iter().all(|v| *v == Verdict::Yes)
    }
}

/// Searches the points for the best feasible one. `fits[p]` false marks
/// point p as not fitting: it is never sampled and reported `does-not-fit`.
/// `progress` hears about every round. The procedure is sequential, and the
/// sampler's output does not depend on threads, so neither does the result.
pub fn recommend(
    sampler: &dyn Sampler,
    objective: &Objective,
    settings: &Settings,
    fits: &[bool],
    progress: &dyn Fn(&Round),
) -> Result<Recommendation, RecommendError> {
    settings.check()?;
    let width = sampler.width();
    let n0 = settings.first_stage;
    let candidates: Vec<usize> = (0..fits.len()).filter(|&p| fits[p]).collect();
    let schedule = settings.schedule();
    let alpha = 1.0 - objective.confidence;
    let errors = ErrorSplit::new(alpha, candidates.len(), objective.constraints.len(), schedule.len());
    if let Some(budget) = settings.budget {
        let needed = n0 * candidates.len() as u64;
        if budget < needed {
            return Err(RecommendError::BudgetTooSmall { budget, needed, first_stage: n0, points: candidates.len() });
        }
    }

    let (columns, slot) = columns_read(objective);
    assert!(columns.iter().all(|c| c.index < width), "the objective's metrics are columns of the sampler");
    let points = fits.iter().map(|&fit| PointState::new(fit, objective, columns.len())).collect();
    let mut search = Search {
        objective,
        n0,
        h2_select: if errors.per_pair > 0.0 { bounds::h_squared(errors.per_pair, n0) } else { 0.0 },
        h2_check: if errors.per_test > 0.0 { bounds::h_squared(errors.per_test, n0) } else { 0.0 },
        per_look: errors.per_test / schedule.len() as f64,
        delta: f64::NAN,
        width,
        columns,
        slot,
        points,
        pair_variance: HashMap::new(),
    };
    if candidates.is_empty() {
        let points = finish(objective, &search.slot, &search.points, &Outcome::NothingFits, alpha);
        let rounds = Vec::new();
        return Ok(Recommendation { outcome: Outcome::NothingFits, points, rounds, spent: 0, delta: f64::NAN, errors });
    }

    let mut rounds = Vec::new();
    let mut spent = 0;
    let mut r = 0;
    let mut outcome = Outcome::CapReached { leader: None };
    for (m, &target) in schedule.iter().enumerate() {
        let round = m + 1;
        let alive: Vec<usize> = (0..search.points.len()).filter(|&p| search.points[p].alive).collect();
        let cost = alive.len() as u64 * (target - r);
        if settings.budget.is_some_and(|b| spent + cost > b) {
            outcome = Outcome::BudgetSpent { leader: None };
            break;
        }
        let tables = sampler.sample_points(&alive, r..target);
        assert_eq!(tables.len(), alive.len(), "one table per point");
        for (&p, rows) in alive.iter().zip(&tables) {
            assert_eq!(rows.len() as u64, (target - r) * width as u64, "rows of point {p}");
            search.record(p, rows, r)?;
        }
        spent += cost;
        r = target;
        if m == 0 {
            search.first_stage(&candidates);
        }

        search.judge_feasibility(&alive, round);
        let contenders: Vec<usize> = alive.iter().copied().filter(|&p| search.points[p].alive).collect();
        search.compare(&contenders, round);
        let survivors: Vec<usize> = contenders.into_iter().filter(|&p| search.points[p].alive).collect();

        let log = Round { round, replications: r, sampled: alive.len(), survivors: survivors.len(), spent };
        progress(&log);
        rounds.push(log);
        if survivors.is_empty() {
            outcome = Outcome::NothingFeasible { closest: Vec::new() };
            break;
        }
        if search.resolved(&survivors) {
            let best = *survivors.iter().min_by(|&&a, &&b| search.order(a, b)).expect("a survivor");
            outcome = Outcome::Selected { best, ties: search.ties(best) };
            break;
        }
    }

    let outcome = match outcome {
        Outcome::BudgetSpent { .. } => Outcome::BudgetSpent { leader: search.leader() },
        Outcome::CapReached { .. } => Outcome::CapReached { leader: search.leader() },
        other => other,
    };
    let (delta, points, slot) = (search.delta, search.points, search.slot);
    let results = finish(objective, &slot, &points, &outcome, alpha);
    let outcome = match outcome {
        Outcome::NothingFeasible { .. } => {
            // Every candidate was judged infeasible; the ranking orders them by shortfall.
            let mut closest = candidates;
            closest.sort_by_key(|&p| results[p].rank);
            Outcome::NothingFeasible { closest }
        }
        other => other,
    };
    Ok(Recommendation { outcome, points: results, rounds, spent, delta, errors })
}

/// The state of one search: its constants and every point's data.
struct Search<'a> {
    objective: &'a Objective,
    n0: u64,
    /// h² of the comparisons and of the mean feasibility tests.
    h2_select: f64,
    h2_check: f64,
    /// Error of one look of a quantile test.
    per_look: f64,
    /// The absolute indifference, set by the first stage.
    delta: f64,
    width: usize,
    columns: Vec<Column>,
    /// Each constraint's column among `columns`.
    slot: Vec<usize>,
    points: Vec<PointState>,
    /// First-stage S² of the paired objective differences, by (lower, higher) index.
    pair_variance: HashMap<(usize, usize), f64>,
}

impl Search<'_> {
    /// Adds the rows of replications first.. of point p.
    fn record(&mut self, p: usize, rows: &[f64], first: u64) -> Result<(), RecommendError> {
        let objective = self.objective;
        let point = &mut self.points[p];
        for (j, row) in rows.chunks_exact(self.width).enumerate() {
            for (column, data) in self.columns.iter().zip(&mut point.data) {
                let x = row[column.index];
                if x.is_nan() || (column.finite && !x.is_finite()) {
                    let metric = column.name.clone();
                    return Err(RecommendError::NotANumber {
                        point: p,
                        replication: first + j as u64,
                        metric,
                        value: x,
                    });
                }
                data.push(x);
            }
            point.objective_sum += row[self.columns[0].index];
            for (c, test) in objective.constraints.iter().zip(&mut point.tests) {
                let y = row[c.metric.column];
                match test {
                    Test::Mean { sum, .. } => {
                        *sum += match c.bound {
                            Bound::AtMost => y - c.threshold,
                            Bound::AtLeast => c.threshold - y,
                        }
                    }
                    Test::Quantile { for_feasible, against } => {
                        let (f, a) = match c.bound {
                            Bound::AtMost => (y <= c.threshold + c.tolerance, y <= c.threshold - c.tolerance),
                            Bound::AtLeast => (y < c.threshold - c.tolerance, y < c.threshold + c.tolerance),
                        };
                        *for_feasible += f as u64;
                        *against += a as u64;
                    }
                }
            }
        }
        Ok(())
    }

    /// Fixes δ and the variances of the mean tests from the first stage.
    fn first_stage(&mut self, candidates: &[usize]) {
        self.delta = indifference_delta(self.objective.indifference, candidates, &self.points, self.n0);
        for &p in candidates {
            let point = &mut self.points[p];
            for (test, &i) in point.tests.iter_mut().zip(&self.slot) {
                if let Test::Mean { variance, .. } = test {
                    *variance = bounds::mean_var(&point.data[i]).1;
                }
            }
        }
    }

    /// Runs each open test of each point in `alive`; drops the infeasible.
    fn judge_feasibility(&mut self, alive: &[usize], round: usize) {
        for &p in alive {
            let point = &mut self.points[p];
            let r = point.reps();
            for (c, constraint) in self.objective.constraints.iter().enumerate() {
                if point.verdicts[c] != Verdict::Undecided {
                    continue;
                }
                let verdict = match point.tests[c] {
                    // An infinite replication (a percentile over arrivals
                    // that were not all served) decides the mean at once.
                    Test::Mean { sum, .. } if sum.is_infinite() => {
                        if sum > 0.0 {
                            Verdict::No
                        } else {
                            Verdict::Yes
                        }
                    }
                    Test::Mean { sum, variance } => {
                        let hw = bounds::half_width(self.h2_check, variance, constraint.tolerance, r);
                        if sum <= -hw {
                            Verdict::Yes
                        } else if sum >= hw {
                            Verdict::No
                        } else {
                            Verdict::Undecided
                        }
                    }
                    Test::Quantile { for_feasible, against } => {
                        let q = constraint.statistic.probability().expect("a percentile");
                        quantile_verdict(constraint.bound, q, r, for_feasible, against, self.per_look)
                    }
                };
                if verdict != Verdict::Undecided {
                    point.verdicts[c] = verdict;
                    point.decided[c] = Some(round);
                }
            }
            if point.verdicts.contains(&Verdict::No) {
                point.alive = false;
                point.dropped = Some((round, Exit::Infeasible));
            }
        }
    }

    fn pair_variance(&mut self, i: usize, l: usize) -> f64 {
        let n0 = self.n0 as usize;
        let points = &self.points;
        *self
            .pair_variance
            .entry((i.min(l), i.max(l)))
            .or_insert_with(|| bounds::paired_var(&points[i].data[0][..n0], &points[l].data[0][..n0]))
    }

    /// The continuation half-width of the sum of differences of a pair.
    fn half_width(&mut self, i: usize, l: usize) -> f64 {
        let v = self.pair_variance(i, l);
        bounds::half_width(self.h2_select, v, self.delta, self.points[i].reps())
    }

    /// Drops every contender worse than a contender judged feasible, all at
    /// once (by the one it is furthest behind).
    fn compare(&mut self, contenders: &[usize], round: usize) {
        let feasible: Vec<usize> = contenders.iter().copied().filter(|&p| self.points[p].feasible()).collect();
        let mut beaten = Vec::new();
        for &i in contenders {
            let mut worst: Option<(f64, usize)> = None;
            for &l in feasible.iter().filter(|&&l| l != i) {
                let excess = self.points[i].objective_sum - self.points[l].objective_sum - self.half_width(i, l);
                if excess > 0.0 && worst.is_none_or(|(e, _)| excess > e) {
                    worst = Some((excess, l));
                }
            }
            if let Some((_, by)) = worst {
                beaten.push((i, by));
            }
        }
        for (i, by) in beaten {
            self.points[i].alive = false;
            self.points[i].dropped = Some((round, Exit::Beaten { by }));
        }
    }

    /// Every survivor judged feasible and every pair past its apex.
    fn resolved(&mut self, survivors: &[usize]) -> bool {
        if !survivors.iter().all(|&p| self.points[p].feasible()) {
            return false;
        }
        for (a, &i) in survivors.iter().enumerate() {
            for &l in &survivors[a + 1..] {
                if self.half_width(i, l) > 0.0 {
                    return false;
                }
            }
        }
        true
    }

    /// Lower objective mean first, then lower index.
    fn order(&self, a: usize, b: usize) -> std::cmp::Ordering {
        mean(&self.points[a]).total_cmp(&mean(&self.points[b])).then(a.cmp(&b))
    }

    /// Survivors other than the best (exact ties), and the points judged
    /// feasible and dropped whose paired mean difference to the best, over
    /// the replications they got, is below δ; by objective mean.
    fn ties(&self, best: usize) -> Vec<usize> {
        let best_objective = &self.points[best].data[0];
        let mut ties: Vec<usize> = (0..self.points.len())
            .filter(|&p| p != best)
            .filter(|&p| {
                let point = &self.points[p];
                let close = || {
                    let x = &point.data[0];
                    let diff = x.iter().zip(best_objective).map(|(a, b)| a - b).sum::<f64>() / x.len() as f64;
                    diff < self.delta
                };
                match point.dropped {
                    None => point.alive,
                    Some((_, Exit::Beaten { .. })) => point.feasible() && close(),
                    Some((_, Exit::Infeasible)) => false,
                }
            })
            .collect();
        ties.sort_by(|&a, &b| self.order(a, b));
        ties
    }

    /// The feasible contender with the lowest mean when the search was cut short.
    fn leader(&self) -> Option<usize> {
        (0..self.points.len())
            .filter(|&p| self.points[p].alive && self.points[p].feasible())
            .min_by(|&a, &b| self.order(a, b))
    }
}

/// A metric column the search reads.
struct Column {
    index: usize,
    name: String,
    /// Must be finite in every replication (the objective); constraints
    /// only refuse NaN: an infinite value is on one side of any bound.
    finite: bool,
}

/// The columns read (the objective first, then each constrained metric once)
/// and each constraint's position among them.
fn columns_read(objective: &Objective) -> (Vec<Column>, Vec<usize>) {
    let m = &objective.minimize;
    let mut columns = vec![Column { index: m.column, name: m.name.clone(), finite: true }];
    let slot = objective
        .constraints
        .iter()
        .map(|c| {
            columns.iter().position(|k| k.index == c.metric.column).unwrap_or_else(|| {
                columns.push(Column { index: c.metric.column, name: c.metric.name.clone(), finite: false });
                columns.len() - 1
            })
        })
        .collect();
    (columns, slot)
}

/// δ = `indifference` × |the lowest first-stage mean| (or of the largest in
/// size if that is 0, or 1 if all are 0), fixed for the rest of the search.
fn indifference_delta(indifference: f64, candidates: &[usize], points: &[PointState], n0: u64) -> f64 {
    let means: Vec<f64> =
        candidates.iter().map(|&p| points[p].data[0][..n0 as usize].iter().sum::<f64>() / n0 as f64).collect();
    let lowest = means.iter().copied().fold(f64::INFINITY, f64::min);
    let largest = means.iter().map(|m| m.abs()).fold(0.0, f64::max);
    let scale = if lowest != 0.0 {
        lowest.abs()
    } else if largest > 0.0 {
        largest
    } else {
        1.0
    };
    indifference * scale
}

/// The verdict of a quantile constraint after n replications, each look at
/// error `gamma`, by exact binomial (Clopper–Pearson) bounds.
///
/// `q-quantile <= c` holds exactly when F(c) >= q, and the count of
/// replications <= c is Binomial(n, F(c)). Feasible when the lower bound of
/// F(c + ε) is >= q (so the quantile is <= c + ε), infeasible when the upper
/// bound of F(c − ε) is < q (so it is > c − ε). `>=` mirrors this with
/// P(X < c ∓ ε). `for_feasible` and `against` count the replications
/// <= c + ε and <= c − ε (for `>=`: < c − ε and < c + ε).
fn quantile_verdict(bound: Bound, q: f64, n: u64, for_feasible: u64, against: u64, gamma: f64) -> Verdict {
    let (yes, no) = match bound {
        Bound::AtMost => {
            (bounds::binomial_at_least(for_feasible, n, q) <= gamma, bounds::binomial_at_most(against, n, q) < gamma)
        }
        Bound::AtLeast => {
            (bounds::binomial_at_most(for_feasible, n, q) < gamma, bounds::binomial_at_least(against, n, q) < gamma)
        }
    };
    // Both at once only when the quantile is within ε: either answer is right.
    if yes {
        Verdict::Yes
    } else if no {
        Verdict::No
    } else {
        Verdict::Undecided
    }
}

fn mean(point: &PointState) -> f64 {
    point.objective_sum / point.reps() as f64
}

/// The objective's and each constraint's estimate for one point, intervals
/// at level 1 − `a`.
fn estimates(objective: &Objective, slot: &[usize], point: &PointState, a: f64) -> (Estimate, Vec<Estimate>) {
    let nan = Estimate { value: f64::NAN, low: f64::NAN, high: f64::NAN };
    if point.reps() == 0 {
        return (nan, vec![nan; objective.constraints.len()]);
    }
    let mean_estimate = |x: &[f64]| {
        let (m, v) = bounds::mean_var(x);
        let half = bounds::t_half_width(v.sqrt(), x.len(), a);
        Estimate { value: m, low: m - half, high: m + half }
    };
    let constraints = objective
        .constraints
        .iter()
        .zip(slot)
        .map(|(c, &i)| {
            let x = &point.data[i];
            match c.statistic.probability() {
                None => mean_estimate(x),
                Some(q) => {
                    let mut sorted = x.clone();
                    sorted.sort_by(f64::total_cmp);
                    let (l, u) = bounds::quantile_ranks(sorted.len() as u64, q, a);
                    let low = l.map_or(f64::NEG_INFINITY, |l| sorted[l as usize - 1]);
                    let high = u.map_or(f64::INFINITY, |u| sorted[u as usize - 1]);
                    Estimate { value: crate::base::stats::quantiles(&mut sorted, &[q])[0], low, high }
                }
            }
        })
        .collect();
    (mean_estimate(&point.data[0]), constraints)
}

/// Statuses, estimates and ranks.
fn finish(objective: &Objective, slot: &[usize], points: &[PointState], outcome: &Outcome, a: f64) -> Vec<PointResult> {
    let (best, ties) = match outcome {
        Outcome::Selected { best, ties } => (Some(*best), ties.as_slice()),
        _ => (None, &[][..]),
    };
    let mut results: Vec<PointResult> = points
        .iter()
        .enumerate()
        .map(|(p, point)| {
            let sampled = point.reps() > 0;
            let status = if !sampled {
                Status::DoesNotFit
            } else if best == Some(p) {
                Status::Best
            } else if ties.contains(&p) {
                Status::Tie
            } else {
                match point.dropped {
                    Some((_, Exit::Infeasible)) => Status::Infeasible,
                    Some((_, Exit::Beaten { .. })) => Status::Dominated,
                    None if point.feasible() => Status::Feasible,
                    None => Status::Undecided,
                }
            };
            let (estimate, constraint_estimates) = estimates(objective, slot, point, a);
            let shortfall = (sampled && !objective.constraints.is_empty()).then(|| {
                constraint_estimates
                    .iter()
                    .zip(&objective.constraints)
                    .map(|(e, c)| c.shortfall(e.value))
                    .fold(f64::NEG_INFINITY, f64::max)
            });
            PointResult {
                status,
                rank: 0,
                replications: point.reps(),
                dropped_round: point.dropped.map(|(round, _)| round),
                dropped_by: match point.dropped {
                    Some((_, Exit::Beaten { by, .. })) => Some(by),
                    _ => None,
                },
                objective: estimate,
                constraints: constraint_estimates
                    .into_iter()
                    .enumerate()
                    .map(|(c, estimate)| ConstraintResult {
                        estimate,
                        holds: point.verdicts[c],
                        decided_round: point.decided[c],
                    })
                    .collect(),
                shortfall,
            }
        })
        .collect();
    let class = |s: Status| match s {
        Status::Best => 0,
        Status::Tie => 1,
        Status::Feasible => 2,
        Status::Undecided => 3,
        Status::Dominated => 4,
        Status::Infeasible => 5,
        Status::DoesNotFit => 6,
    };
    let key = |r: &PointResult| match r.status {
        Status::Infeasible => r.shortfall.unwrap_or(f64::NAN),
        _ => r.objective.value,
    };
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&results[a], &results[b]);
        class(ra.status).cmp(&class(rb.status)).then(key(ra).total_cmp(&key(rb))).then(a.cmp(&b))
    });
    for (rank, p) in order.into_iter().enumerate() {
        results[p].rank = rank + 1;
    }
    results
}
