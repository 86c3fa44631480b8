//! The integration tests, built into one binary (one link on a small CI machine).

mod async_inference;
mod autoscaling;
mod calibrate;
mod capacity;
mod child;
mod cli;
mod components;
mod deadline;
mod designs;
mod determinism;
mod inference;
mod layout;
mod llm;
mod llm_training;
mod llm_validation;
mod loadtest;
mod mutants;
mod prefix;
mod profiles;
mod recommend;
mod robust;
mod scale_to_zero;
mod serverless;
mod shard;
mod training;
mod verify;
mod zones;

use spotsim::engine::{Model, Runner};
use spotsim::scenarios::training::TrainingJob;

/// Rows of metrics, one per replication.
pub struct Rows {
    metrics: &'static [&'static str],
    values: Vec<f64>,
}

impl Rows {
    pub fn column(&self, metric: &str) -> Vec<f64> {
        let m = self.metrics.iter().position(|&x| x == metric).unwrap_or_else(|| panic!("no metric {metric}"));
        self.values.chunks_exact(self.metrics.len()).map(|r| r[m]).collect()
    }
    pub fn mean(&self, metric: &str) -> f64 {
        let c = self.column(metric);
        c.iter().sum::<f64>() / c.len() as f64
    }
    pub fn sem(&self, metric: &str) -> f64 {
        let c = self.column(metric);
        let n = c.len() as f64;
        let mean = c.iter().sum::<f64>() / n;
        (c.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
    }
    /// Every replication's value, for metrics that must be the same in all of them.
    pub fn only(&self, metric: &str) -> f64 {
        let c = self.column(metric);
        assert!(c.iter().all(|&x| x == c[0]), "{metric} varies: {:?}", &c[..c.len().min(5)]);
        c[0]
    }
}

pub fn simulate(job: &TrainingJob, replications: u64, seed: u64) -> Rows {
    let runner = Runner::new(2).unwrap();
    Rows { metrics: job.metrics(), values: runner.run(job as &dyn Model, seed, replications, &|_| {}) }
}

/// |a - b| within a relative 1e-9: for values that are exact up to float rounding.
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}
