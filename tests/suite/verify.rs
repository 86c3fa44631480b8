//! The closed-form checks of `spotsim verify`, as tests.

use spotsim::commands::verify::{DALY_MAX_EXCESS, optimum_checks, training_checks};
use spotsim::engine::Runner;

#[test]
fn training_matches_the_checkpoint_restart_closed_form() {
    let runner = Runner::new(2).unwrap();
    let checks = training_checks(&runner, 40_000, 7);
    assert!(checks.len() >= 24);
    for c in &checks {
        assert!(c.passed(), "{}: simulated {} exact {} z {}", c.name, c.simulated, c.exact, c.z());
    }
}

#[test]
fn daly_interval_is_the_optimum_and_simulates_to_the_closed_form() {
    let runner = Runner::new(2).unwrap();
    let (rows, checks) = optimum_checks(&runner, 40_000, 8);
    for r in &rows {
        assert!(r.excess_daly <= DALY_MAX_EXCESS, "{r:?}");
        assert!(r.excess_daly <= r.excess_young + 1e-12, "Daly is at least as good as Young: {r:?}");
        assert!((r.daly_s / r.optimum_s - 1.0).abs() < 0.01, "{r:?}");
    }
    for c in &checks {
        assert!(c.passed(), "{}: z {}", c.name, c.z());
    }
}
