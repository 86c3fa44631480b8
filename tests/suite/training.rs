//! The rules of the training model (SPEC 2.1), one test or more per rule.

use spotsim::base::dist::Dist;
use spotsim::base::time::SimTime;
use spotsim::commands::verify::{expected, poisson_job};
use spotsim::spot::Market;
use spotsim::spot::{AdvisorDraw, Interruptions};

use crate::{close, simulate};

const H: f64 = 3600.0;

fn mins(m: u64) -> SimTime {
    SimTime::from_mins(m)
}

#[test]
fn on_demand_job_runs_every_segment_and_the_final_checkpoint() {
    // 100 h in 45 m segments: 133 full ones and a 15 m one, each followed by a write.
    let mut job = poisson_job(100.0, 45.0, 10.0, 5.0, 10.0, 15.0, 5.0, 2);
    job.market = Market::OnDemand;
    job.spot = None;
    let rows = simulate(&job, 50, 1);
    let writes = 134.0 * 5.0 / 60.0;
    assert!(close(rows.only("wall_time_h"), 5.0 / 60.0 + 100.0 + writes));
    assert!(close(rows.only("checkpoint_time_h"), writes));
    assert_eq!(rows.only("interruptions"), 0.0);
    assert_eq!(rows.only("waiting_time_h"), 0.0);
    assert!(close(rows.only("on_demand_time_h"), rows.only("billed_time_h")));
    assert!(close(rows.only("cost_usd"), 2.0 * 3.825 * rows.only("billed_time_h")));
    assert!(close(rows.only("cost_usd"), rows.only("on_demand_cost_usd")));
    assert!(rows.only("savings_frac").abs() < 1e-9);
    assert_eq!(rows.only("completed"), 1.0);
}

#[test]
fn zero_interruption_rate_means_no_interruptions_and_only_the_first_wait() {
    // The advisor's lowest band drawn uniformly includes p = 0 only at its edge, so use
    // an astronomically long MTBF and a constant wait.
    let mut job = poisson_job(10.0, 60.0, 1e12, 5.0, 10.0, 0.0, 5.0, 1);
    job.spot.as_mut().unwrap().capacity_wait = Dist::Constant(mins(20));
    let rows = simulate(&job, 200, 3);
    assert_eq!(rows.only("interruptions"), 0.0);
    assert!(close(rows.only("waiting_time_h"), 20.0 / 60.0));
    let billed = 5.0 / 60.0 + 10.0 + 10.0 * 5.0 / 60.0;
    assert!(close(rows.only("billed_time_h"), billed));
    assert!(close(rows.only("wall_time_h"), billed + 20.0 / 60.0));
    assert!(close(rows.only("cost_usd"), 0.3 * 3.825 * billed));
    assert!(close(rows.only("savings_frac"), 0.7));
}

#[test]
fn work_shorter_than_one_interval_is_one_segment_and_its_save() {
    let mut job = poisson_job(20.0 / 60.0, 60.0, 10.0, 5.0, 10.0, 0.0, 0.0, 1);
    job.market = Market::OnDemand;
    let rows = simulate(&job, 10, 1);
    assert!(close(rows.only("wall_time_h"), 25.0 / 60.0));
    assert!(close(rows.only("checkpoint_time_h"), 5.0 / 60.0));
    // On spot, the closed form with a single short segment holds.
    let job = poisson_job(20.0 / 60.0, 60.0, 0.5, 5.0, 10.0, 5.0, 2.0, 1);
    let rows = simulate(&job, 200_000, 2);
    let exact = expected(&job).unwrap().wall_time_s / H;
    let z = (rows.mean("wall_time_h") - exact) / rows.sem("wall_time_h");
    assert!(z.abs() < 4.0, "z = {z}");
}

#[test]
fn interruptions_strike_only_while_instances_are_held() {
    // Same streams, capacity waits of 0 and of 10 h: the held part of every
    // replication is identical, only the waiting differs.
    let short = poisson_job(50.0, 30.0, 5.0, 5.0, 10.0, 0.0, 5.0, 1);
    let mut long = short.clone();
    long.spot.as_mut().unwrap().capacity_wait = Dist::Constant(SimTime::from_hours(10));
    let (a, b) = (simulate(&short, 2000, 9), simulate(&long, 2000, 9));
    assert_eq!(a.column("interruptions"), b.column("interruptions"));
    assert_eq!(a.column("billed_time_h"), b.column("billed_time_h"));
    assert_eq!(a.column("lost_work_h"), b.column("lost_work_h"));
    for ((wa, wb), n) in a.column("wall_time_h").iter().zip(b.column("wall_time_h")).zip(b.column("interruptions")) {
        assert!(close(wb - wa, 10.0 * (n + 1.0)), "{wa} {wb} {n}");
    }
    // Billed time is everything but the waits.
    for ((w, b), d) in a.column("wall_time_h").iter().zip(a.column("billed_time_h")).zip(a.column("waiting_time_h")) {
        assert!(close(w - d, b));
    }
}

#[test]
fn lost_work_is_what_the_last_checkpoint_did_not_save() {
    // Billed time = compute kept + compute lost + writes + (parts of) startups and restores.
    let job = poisson_job(30.0, 30.0, 3.0, 5.0, 10.0, 15.0, 5.0, 1);
    let rows = simulate(&job, 5000, 4);
    for r in 0..5000 {
        let get = |m: &str| rows.column(m)[r];
        let n = get("interruptions");
        // Startups and restores are paid in full except the one an interruption cuts short.
        let overheads = (5.0 * (n + 1.0) + 10.0 * n) / 60.0;
        let kept_lost_written = 30.0 + get("lost_work_h") + get("checkpoint_time_h");
        let billed = get("billed_time_h");
        assert!(
            billed + 1e-9 >= kept_lost_written && billed <= kept_lost_written + overheads + 1e-9,
            "replication {r}"
        );
        // Each interruption loses at most one segment and its cut-off write.
        assert!(get("lost_work_h") <= n * 0.5 + 1e-9);
    }
}

#[test]
fn notice_checkpoint_saves_the_work_in_progress() {
    let mut with_notice = poisson_job(50.0, 60.0, 3.0, 1.0, 5.0, 10.0, 2.0, 1);
    with_notice.checkpoint.on_notice = true;
    let mut without = with_notice.clone();
    without.checkpoint.on_notice = false;
    let (a, b) = (simulate(&with_notice, 20_000, 5), simulate(&without, 20_000, 5));
    // With a 2-minute notice, an interruption loses at most the notice's remainder.
    let notice_h = 2.0 / 60.0;
    for (lost, n) in a.column("lost_work_h").iter().zip(a.column("interruptions")) {
        assert!(*lost <= n * notice_h + 1e-9, "lost {lost} h over {n} interruptions");
    }
    assert!(a.mean("lost_work_h") < 0.1 * b.mean("lost_work_h"));
    assert!(a.mean("wall_time_h") < b.mean("wall_time_h"));
    // Emergency checkpoints are writes too.
    assert!(a.mean("checkpoint_time_h") > b.mean("checkpoint_time_h"));
}

#[test]
fn notice_too_short_for_a_write_changes_nothing() {
    let mut with_notice = poisson_job(50.0, 60.0, 3.0, 5.0, 5.0, 10.0, 2.0, 1);
    with_notice.checkpoint.on_notice = true; // write 5 m > notice 2 m
    let mut without = with_notice.clone();
    without.checkpoint.on_notice = false;
    let (a, b) = (simulate(&with_notice, 3000, 6), simulate(&without, 3000, 6));
    for m in ["wall_time_h", "lost_work_h", "interruptions", "cost_usd"] {
        assert_eq!(a.column(m), b.column(m), "{m}");
    }
}

#[test]
fn n_nodes_have_n_times_the_hazard_and_the_cost() {
    // Four nodes at MTBF 40 h are one group at MTBF 10 h; with common random
    // numbers the replications match draw for draw, and cost is 4x.
    let four = poisson_job(50.0, 30.0, 40.0, 5.0, 10.0, 15.0, 5.0, 4);
    let one = poisson_job(50.0, 30.0, 10.0, 5.0, 10.0, 15.0, 5.0, 1);
    let (a, b) = (simulate(&four, 3000, 8), simulate(&one, 3000, 8));
    assert_eq!(a.column("interruptions"), b.column("interruptions"));
    assert_eq!(a.column("wall_time_h"), b.column("wall_time_h"));
    for (ca, cb) in a.column("cost_usd").iter().zip(b.column("cost_usd")) {
        assert!(close(*ca, 4.0 * cb));
    }
}

#[test]
fn weibull_group_hazard_follows_renewal_theory() {
    // A never-ending job capped at 2000 billed hours, no waits or restarts:
    // interruptions form a renewal process with Weibull(k, s n^(-1/k)) gaps, so
    // E[N(t)] -> t/mu + (sigma^2 - mu^2) / (2 mu^2).
    let (k, s, n) = (0.7, 12.0 * H, 8u32);
    let mut job = poisson_job(1e6, 60.0, 1.0, 0.0, 0.0, 0.0, 0.0, n);
    job.spot.as_mut().unwrap().interruptions = Interruptions::Weibull { shape: k, scale: SimTime::from_secs_f64(s) };
    job.max_runtime = Some(SimTime::from_hours(2000));
    let rows = simulate(&job, 4000, 10);
    let scale = s * (n as f64).powf(-1.0 / k) / H;
    let g = |x: f64| statrs::function::gamma::gamma(x);
    let mu = scale * g(1.0 + 1.0 / k);
    let var = scale * scale * g(1.0 + 2.0 / k) - mu * mu;
    let exact = 2000.0 / mu + (var - mu * mu) / (2.0 * mu * mu);
    let z = (rows.mean("interruptions") - exact) / rows.sem("interruptions");
    assert!(z.abs() < 4.0, "mean {} exact {exact} z {z}", rows.mean("interruptions"));
    assert_eq!(rows.only("completed"), 0.0);
    assert!(close(rows.only("billed_time_h"), 2000.0));
}

#[test]
fn advisor_band_becomes_a_monthly_rate() {
    // Band 10-15% at its midpoint: rate -ln(1 - 0.125)/730 per hour. Over 730
    // billed hours, the expected number of interruptions is -ln(0.875) per node.
    let mut job = poisson_job(1e6, 60.0, 1.0, 0.0, 0.0, 0.0, 0.0, 10);
    job.spot.as_mut().unwrap().interruptions =
        Interruptions::Advisor { band: "10-15%", low: 0.10, high: 0.15, draw: AdvisorDraw::Midpoint };
    job.max_runtime = Some(SimTime::from_hours(730));
    let rows = simulate(&job, 20_000, 11);
    let exact = -10.0 * (0.875f64).ln();
    let z = (rows.mean("interruptions") - exact) / rows.sem("interruptions");
    assert!(z.abs() < 4.0, "mean {} exact {exact} z {z}", rows.mean("interruptions"));
}

#[test]
fn max_wait_stops_a_job_that_waits_too_long() {
    let mut job = poisson_job(10.0, 60.0, 10.0, 5.0, 10.0, 0.0, 0.0, 1);
    job.spot.as_mut().unwrap().capacity_wait = Dist::Constant(SimTime::from_hours(2));
    job.max_wait = Some(SimTime::from_hours(1));
    let rows = simulate(&job, 20, 1);
    assert_eq!(rows.only("completed"), 0.0);
    assert_eq!(rows.only("wall_time_h"), 1.0);
    assert_eq!(rows.only("waiting_time_h"), 1.0);
    assert_eq!(rows.only("billed_time_h"), 0.0);
    assert_eq!(rows.only("cost_usd"), 0.0);
}

#[test]
fn max_wait_counts_running_time_too() {
    let mut job = poisson_job(10.0, 60.0, 10.0, 5.0, 10.0, 0.0, 0.0, 1);
    job.market = Market::OnDemand;
    job.max_wait = Some(SimTime::from_hours(5));
    let rows = simulate(&job, 5, 1);
    assert_eq!(rows.only("completed"), 0.0);
    assert_eq!(rows.only("wall_time_h"), 5.0);
    assert_eq!(rows.only("billed_time_h"), 5.0);
}

#[test]
fn max_runtime_caps_billed_time() {
    let mut job = poisson_job(100.0, 30.0, 3.0, 5.0, 10.0, 30.0, 5.0, 1);
    job.max_runtime = Some(SimTime::from_hours(136));
    let rows = simulate(&job, 5000, 12);
    let (done, billed) = (rows.column("completed"), rows.column("billed_time_h"));
    assert!(billed.iter().all(|&b| b <= 136.0 + 1e-9));
    assert!(done.contains(&0.0) && done.contains(&1.0));
    for (d, b) in done.iter().zip(&billed) {
        if *d == 0.0 {
            assert!(close(*b, 136.0), "an unfinished job used its whole runtime");
        }
    }
}

#[test]
fn fallback_moves_to_on_demand_after_a_long_wait() {
    // Every spot wait is 3 h; after 1 h the job gives up and runs on-demand.
    let mut job = poisson_job(10.0, 60.0, 2.0, 5.0, 10.0, 0.0, 5.0, 1);
    let spot = job.spot.as_mut().unwrap();
    spot.capacity_wait = Dist::Constant(SimTime::from_hours(3));
    spot.fallback_after_wait = Some(SimTime::from_hours(1));
    let rows = simulate(&job, 20, 1);
    let billed = 5.0 / 60.0 + 10.0 + 10.0 * 5.0 / 60.0;
    assert_eq!(rows.only("interruptions"), 0.0);
    assert_eq!(rows.only("waiting_time_h"), 1.0);
    assert!(close(rows.only("wall_time_h"), 1.0 + billed));
    assert!(close(rows.only("on_demand_time_h"), billed));
    assert!(close(rows.only("cost_usd"), 3.825 * billed));
}

#[test]
fn fallback_after_interruptions_pays_restore_and_stops_interruptions() {
    let mut job = poisson_job(40.0, 30.0, 2.0, 5.0, 10.0, 60.0, 5.0, 1);
    job.spot.as_mut().unwrap().fallback_after_wait = Some(SimTime::from_mins(30));
    let rows = simulate(&job, 5000, 13);
    let od = rows.column("on_demand_time_h");
    let waits = rows.column("waiting_time_h");
    let n = rows.column("interruptions");
    assert!(od.iter().filter(|&&t| t > 0.0).count() > 4000, "most jobs fall back");
    for r in 0..od.len() {
        // Each wait is at most 30 m, and there is one per launch.
        assert!(waits[r] <= (n[r] + 1.0) * 0.5 + 1e-9);
    }
    let cost = rows.column("cost_usd");
    let billed = rows.column("billed_time_h");
    for r in 0..od.len() {
        let expect = 3.825 * od[r] + 0.3 * 3.825 * (billed[r] - od[r]);
        assert!(close(cost[r], expect));
    }
}

#[test]
fn a_job_that_cannot_progress_stops_instead_of_hanging() {
    // A 10-hour startup against a 1-hour MTBF: practically never gets going.
    let job = poisson_job(10.0, 30.0, 1.0, 1.0, 1.0, 0.0, 600.0, 1);
    let rows = simulate(&job, 4, 1);
    assert_eq!(rows.only("completed"), 0.0);
    assert_eq!(rows.only("interruptions"), spotsim::scenarios::training::MAX_INTERRUPTIONS as f64);
}
