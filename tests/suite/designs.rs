//! Endpoint designs written as experiment text, as a user writes them, and
//! their metrics by name: what the capability files share.

use spotsim::engine::{Model, Runner};
use spotsim::experiment::{self, Experiment};
use spotsim::input::InputError;
use spotsim::scenarios::inference::design::Endpoint;

/// Loads an experiment from text, with extra files beside it.
pub fn load(text: &str, files: &[(&str, &str)]) -> Result<Experiment, InputError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let file = dir.path().join("exp.toml");
    std::fs::write(&file, text).unwrap();
    experiment::load(&file, &[])
}

pub fn endpoint(text: &str, files: &[(&str, &str)]) -> Endpoint {
    let e = load(text, files).unwrap_or_else(|err| panic!("{err}"));
    e.points[0].design.downcast::<Endpoint>().expect("an inference experiment").clone()
}

pub fn error(text: &str) -> InputError {
    load(text, &[]).expect_err("should be refused")
}

/// Rows of metrics by name, one per replication.
pub fn run(ep: &Endpoint, replications: u64) -> impl Fn(&str) -> Vec<f64> + use<> {
    let names = ep.metrics();
    let values = Runner::new(2).unwrap().run(ep as &dyn Model, 7, replications, &|_| {});
    move |name: &str| {
        let m = names.iter().position(|&x| x == name).unwrap_or_else(|| panic!("no metric {name}"));
        values.chunks_exact(names.len()).map(|r| r[m]).collect()
    }
}

pub const CONSTANT_SECOND: &str = "[inference]\nprice_per_hour = 1.0\nworkers = 1\n\
    service_time = { dist = \"constant\", value = \"1s\" }\nstartup = { dist = \"constant\", value = \"5m\" }\n";

pub const REALTIME: &str = "[inference]\nprice_per_hour = 1\nservice_time = \"50ms\"\n\
    [traffic]\nsynthetic = { mean_rps = 5 }\nduration = \"1h\"\n";

/// An LLM replica whose requests (100 prompt, 10 output tokens) take 10 ms a
/// step: a lone one is 10 ms of prefill and 9 decode steps, 100 ms.
pub const LLM_FIXED: &str = "[inference]\nengine = \"llm\"\nprice_per_hour = 1.0\n\
    startup = { dist = \"constant\", value = \"5m30s\" }\n\
    [inference.llm]\nkv_tokens = 100000\nmax_seqs = 4\n\
    step_time = { prefill = [10.0, 0.0, 0.0], decode = [10.0, 0.0, 0.0], overhead = [0.0, 0.0] }\n";
