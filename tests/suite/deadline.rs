//! Deadlines and spot policies (SPEC 2.6, docs/deadline-policies.md):
//! hand-worked traces, the safety net, the optimum as a lower bound, bad
//! input, and agreement with the Can't Be Late simulator's figures.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use spotsim::base::time::SimTime;
use spotsim::commands::verify::poisson_job;
use spotsim::engine::{Model, Runner};
use spotsim::experiment;
use spotsim::scenarios::training::TrainingJob;
use spotsim::scenarios::training::policy::Policy;
use spotsim::spot::Interruptions;
use spotsim::spot::trace::{Convention, SpotTrace};

use crate::simulate;

/// Available [0, 60), [120, 180) and [300, 600) minutes; 10-minute rows.
fn two_outages() -> Arc<SpotTrace> {
    let data = "[1,1,1,1,1,1, 0,0,0,0,0,0, 1,1,1,1,1,1, 0,0,0,0,0,0,0,0,0,0,0,0, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]";
    let text = format!(r#"{{"metadata": {{"gap_seconds": 600}}, "data": {data}}}"#);
    Arc::new(SpotTrace::parse_json("two-outages.json", &text, Convention::Available).unwrap())
}

/// 4 h of work by a 6 h deadline, 6-minute startup, 1-minute checkpoints that
/// cost nothing; on-demand $3/h, spot $0.90/h; the trace from its start.
fn hand_job(policy: Policy) -> TrainingJob {
    let mut job = poisson_job(4.0, 1.0, 10.0, 0.0, 0.0, 0.0, 6.0, 1);
    job.on_demand_price = 3.0;
    job.deadline = Some(SimTime::from_hours(6));
    job.policy = Some(policy);
    let spot = job.spot.as_mut().unwrap();
    spot.price_per_hour = 0.9;
    let trace = two_outages();
    spot.interruptions = Interruptions::Trace {
        files: vec![trace.file.clone()],
        traces: vec![trace],
        offset: Some(SimTime::ZERO),
        tick: None,
    };
    job
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn hand_worked_policies_on_two_outages() {
    let h = |m: f64| m / 60.0;
    // (policy, cost, wall, spot, on-demand, interruptions, met)
    let cases = [
        // Spot 0-60 (54 saved) and 120-180 (108); waiting past the give-up time
        // 360 - 6 - 132 - 6 = 216, it finishes on on-demand 216-354.
        (Policy::Greedy, 0.9 * 2.0 + 3.0 * h(138.0), h(354.0), 2.0, h(138.0), 2.0, 1.0),
        // Ahead after the first reclaim (54 > 40): waits until it falls behind
        // at 81, on-demand until ahead of the line 12 min later at 123, spot
        // 123-180 (141), behind at 211.5, on-demand to 300 (223.5), spot to 322.5.
        (Policy::UniformProgress, 0.9 * h(139.5) + 3.0 * h(130.5), h(322.5), h(139.5), h(130.5), 2.0, 1.0),
        (Policy::OnDemand, 3.0 * h(246.0), h(246.0), 0.0, h(246.0), 0.0, 1.0),
        // Spot whenever it can: 0-60, 120-180, 300-438; late.
        (Policy::SpotOnly, 0.9 * h(258.0), h(438.0), h(258.0), 0.0, 2.0, 0.0),
    ];
    for (policy, cost, wall, spot, od, interruptions, met) in cases {
        let rows = simulate(&hand_job(policy), 1, 1);
        let got = |m: &str| rows.only(m);
        assert!(near(got("cost_usd"), cost), "{policy:?}: cost {} vs {cost}", got("cost_usd"));
        assert!(near(got("wall_time_h"), wall), "{policy:?}: wall {} vs {wall}", got("wall_time_h"));
        assert!(near(got("spot_time_h"), spot), "{policy:?}: spot {}", got("spot_time_h"));
        assert!(near(got("on_demand_time_h"), od), "{policy:?}: on-demand {}", got("on_demand_time_h"));
        assert_eq!(got("interruptions"), interruptions, "{policy:?}");
        assert_eq!(got("deadline_met"), met, "{policy:?}");
    }
    // The optimum: spot in all three stretches (162 min of progress) and one
    // 84-minute on-demand block in the long outage, done at 360: $6.90.
    let rows = simulate(&hand_job(Policy::Optimal), 1, 1);
    assert!((rows.only("cost_usd") - 6.9).abs() < 6.9 * 1e-3, "{}", rows.only("cost_usd"));
    assert_eq!(rows.only("deadline_met"), 1.0);
    assert!(near(rows.only("spot_time_h"), 3.0));
}

/// A job on one of the bundled V100 traces, random offsets.
fn v100_job(zone: &str, policy: Policy, slack: f64) -> TrainingJob {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/traces/aws-v100");
    let text = std::fs::read_to_string(root.join(format!("{zone}.csv"))).unwrap();
    let trace = Arc::new(SpotTrace::parse_csv(zone, &text, Convention::Available).unwrap());
    let mut job = poisson_job(24.0, 30.0, 10.0, 2.0, 5.0, 0.0, 5.0, 1);
    job.deadline = Some(SimTime::from_secs_f64(job.on_demand_time().as_secs_f64() * (1.0 + slack)));
    job.policy = Some(policy);
    job.spot.as_mut().unwrap().interruptions =
        Interruptions::Trace { files: vec![zone.into()], traces: vec![trace], offset: None, tick: None };
    job
}

#[test]
fn the_safety_net_meets_every_deadline_on_demand_would() {
    // The reader refuses deadlines on-demand from the start cannot meet, so
    // every policy with the net must meet every one: traces and Poisson.
    for zone in ["us-east-1a", "us-east-2b", "us-west-2a"] {
        for slack in [0.01, 0.1, 0.4] {
            for policy in [Policy::Greedy, Policy::UniformProgress, Policy::Fallback, Policy::OnDemand] {
                let rows = simulate(&v100_job(zone, policy, slack), 300, 7);
                assert_eq!(rows.mean("deadline_met"), 1.0, "{zone} slack {slack} {policy:?}");
            }
        }
    }
    for mtbf in [0.5, 3.0, 20.0] {
        for policy in [Policy::Greedy, Policy::UniformProgress] {
            let mut job = poisson_job(24.0, 30.0, mtbf, 2.0, 5.0, 30.0, 5.0, 4);
            job.deadline = Some(SimTime::from_secs_f64(job.on_demand_time().as_secs_f64() * 1.15));
            job.policy = Some(policy);
            let rows = simulate(&job, 2000, 3);
            assert_eq!(rows.mean("deadline_met"), 1.0, "mtbf {mtbf} {policy:?}");
        }
    }
}

#[test]
fn no_policy_is_cheaper_than_the_optimum() {
    for zone in ["us-east-1a", "us-east-1d", "us-east-2a", "us-west-2a"] {
        for slack in [0.05, 0.3] {
            let optimal = simulate(&v100_job(zone, Policy::Optimal, slack), 100, 11).column("cost_usd");
            for policy in [Policy::Greedy, Policy::UniformProgress, Policy::OnDemand, Policy::SpotOnly] {
                let rows = simulate(&v100_job(zone, policy, slack), 100, 11);
                for ((cost, met), best) in rows.column("cost_usd").iter().zip(rows.column("deadline_met")).zip(&optimal)
                {
                    if met == 1.0 {
                        assert!(*cost >= best - 1e-9, "{zone} {slack} {policy:?}: {cost} < optimal {best}");
                    }
                }
            }
        }
    }
}

/// A GCP JSON trace whose only price is its `metadata.price_info.price` has
/// a constant price: `optimal` plans with it (issue 20: it was refused), and
/// it is the lower bound of every policy that meets the deadline, at every
/// random offset.
#[test]
fn optimal_plans_on_a_json_trace_with_its_constant_price() {
    let trace = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/traces/gcp-h100/us-east4-a.json");
    let text = format!(
        r#"replications = 60
[training]
price_per_hour = 82.53
work = "48h"
startup = "10m"
deadline = "60h"
[training.checkpoint]
interval = "1h"
write = "2m"
restore = "5m"
[training.policy]
name = "optimal"
[spot]
interruptions = {{ model = "trace", file = "{}", convention = "preempted" }}
[sweep]
"training.policy.name" = ["optimal", "greedy", "uniform-progress", "on-demand", "spot-only"]
"#,
        trace.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gcp.toml");
    std::fs::write(&file, text).unwrap();
    let e = experiment::load(&file, &[]).unwrap_or_else(|e| panic!("{e}"));
    let results = spotsim::commands::run::simulate(&e, &Runner::new(2).unwrap(), &|_| {});
    let width = e.metrics().len();
    let column = |point: usize, metric: &str| -> Vec<f64> {
        let m = e.metrics().iter().position(|&x| x == metric).unwrap();
        results[point].chunks_exact(width).map(|r| r[m]).collect()
    };
    let optimal = column(0, "cost_usd");
    assert!(optimal.iter().all(|c| c.is_finite() && *c > 0.0), "{optimal:?}");
    for (point, p) in e.points.iter().enumerate().skip(1) {
        let costs = column(point, "cost_usd");
        let met = column(point, "deadline_met");
        for (r, ((cost, met), best)) in costs.iter().zip(&met).zip(&optimal).enumerate() {
            if *met == 1.0 {
                assert!(cost >= &(best - 1e-9), "{:?} replication {r}: {cost} < optimal {best}", p.values);
            }
        }
    }
}

/// Loads `text` as an experiment file and returns the error's text.
fn input_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, text).unwrap();
    experiment::load(&file, &[]).map(|_| ()).unwrap_err().to_string()
}

const BASE: &str = r#"
[training]
price_per_hour = 3.06
work = "48h"
startup = "5m"
deadline = "60h"

[spot]
interruptions = { model = "poisson", mtbf = "10h" }
"#;

#[test]
fn bad_deadlines_and_policies_name_file_line_key_and_hint() {
    let e = input_error(&BASE.replace("deadline = \"60h\"", "deadline = \"40h\""));
    assert!(e.contains("bad.toml:6") && e.contains("training.deadline") && e.contains("shorter than"), "{e}");
    assert!(e.contains("at least"), "{e}");

    let e = input_error(&format!("{BASE}\n[training.policy]\nname = \"uniform-progres\"\n"));
    assert!(e.contains("training.policy.name") && e.contains("uniform-progress"), "{e}");

    let e = input_error(&format!("{BASE}\n[training.policy]\nname = \"optimal\"\n"));
    assert!(e.contains("training.policy.name") && e.contains("not a trace") && e.contains("hint"), "{e}");

    let e = input_error(&BASE.replace("deadline = \"60h\"", "deadline = \"60h\"\nmax_wait = \"50h\""));
    assert!(e.contains("max_wait") && e.contains("before its deadline") && e.contains("training.deadline"), "{e}");

    let e =
        input_error(&format!("{}\n[training.policy]\nname = \"greedy\"\n", BASE.replace("deadline = \"60h\"\n", "")));
    assert!(e.contains("needs a deadline") && e.contains("training.deadline"), "{e}");
}

#[test]
fn fallback_stays_the_default() {
    let job = poisson_job(24.0, 30.0, 10.0, 2.0, 5.0, 15.0, 5.0, 1);
    assert_eq!(job.policy(), Policy::Fallback);
    assert_eq!(job.metrics(), spotsim::scenarios::training::METRICS);
    // An explicit fallback without a deadline runs the same job.
    let mut explicit = job.clone();
    explicit.policy = Some(Policy::Fallback);
    let (a, b) = (simulate(&job, 500, 5), simulate(&explicit, 500, 5));
    for m in spotsim::scenarios::training::METRICS {
        assert_eq!(a.column(m), b.column(m), "{m}");
    }
}

/// spotsim's mean cost and finish per (trace, deadline, restart, policy) over
/// the reference's offsets, and the reference's own means.
pub fn cant_be_late_agreement() -> BTreeMap<(String, String, String, String), [f64; 4]> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cant-be-late");
    let reference = std::fs::read_to_string(data.join("cbl-reference.csv")).unwrap();
    let mut sums: BTreeMap<(String, String, String, String), [f64; 5]> = BTreeMap::new();
    let mut cases: BTreeMap<(String, u64), ()> = BTreeMap::new();
    for line in reference.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let key = (f[0].to_string(), f[4].to_string(), f[5].to_string(), f[6].to_string());
        let s = sums.entry(key).or_default();
        s[2] += f[7].parse::<f64>().unwrap();
        s[3] += f[8].parse::<f64>().unwrap();
        s[4] += 1.0;
        cases.insert((f[0].to_string(), f[1].parse().unwrap()), ());
    }
    let runner = Runner::new(1).unwrap();
    for (zone, offset) in cases.keys() {
        let sets = [
            format!("spot.interruptions.file=\"../../../models/traces/aws-v100/{zone}.csv\""),
            format!("spot.interruptions.offset=\"{}s\"", offset * 195),
        ];
        let e = experiment::load(&data.join("cant-be-late.toml"), &sets).unwrap_or_else(|err| panic!("{err}"));
        for point in &e.points {
            let job = point.design.downcast::<TrainingJob>().unwrap();
            let policy = job.policy().name().replace('-', "_");
            let deadline = format!("{:.1}", job.deadline.unwrap().as_hours_f64());
            let restart = format!("{}", job.startup.mean_secs() / 3600.0);
            let row = runner.run(job as &dyn Model, 1, 1, &|_| {});
            let metric = |m: &str| row[job.metrics().iter().position(|x| *x == m).unwrap()];
            let s = sums.get_mut(&(zone.clone(), deadline, restart, policy)).expect("a reference case");
            s[0] += metric("cost_usd");
            s[1] += metric("wall_time_h");
        }
    }
    sums.into_iter().map(|(k, s)| (k, [s[0] / s[4], s[1] / s[4], s[2] / s[4], s[3] / s[4]])).collect()
}

#[test]
fn agrees_with_cant_be_late() {
    let table = cant_be_late_agreement();
    assert_eq!(table.len(), 72);
    let mut report = String::from(
        "| trace | deadline h | restart h | policy | spotsim $ | sky_spot $ | Δ cost | spotsim finish h | sky_spot finish h | Δ finish h |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut worst = (0.0f64, 0.0f64);
    for ((zone, d, r, policy), [cost, finish, ref_cost, ref_finish]) in &table {
        let dc = cost / ref_cost - 1.0;
        let df = finish - ref_finish;
        worst = (worst.0.max(dc.abs()), worst.1.max(df.abs()));
        report += &format!(
            "| {zone} | {d} | {r} | {policy} | {cost:.2} | {ref_cost:.2} | {:+.2}% | {finish:.2} | {ref_finish:.2} | {df:+.3} |\n",
            100.0 * dc
        );
    }
    if std::env::var_os("CBL_TABLE").is_some() {
        println!("{report}");
    }
    assert!(worst.1 < 0.1, "worst finish difference {:.3} h\n{report}", worst.1);
    assert!(worst.0 < 0.03, "worst cost difference {:.2}%\n{report}", 100.0 * worst.0);
    for ((zone, d, r, policy), [cost, _, ref_cost, _]) in &table {
        let explained = EXPLAINED.contains(&(zone.as_str(), d.as_str(), r.as_str(), policy.as_str()));
        let dc = (cost / ref_cost - 1.0).abs();
        assert!(dc < 0.02 || explained, "{zone} {d} {r} {policy}: {:.2}% not explained\n{report}", 100.0 * dc);
    }
    // Over all six traces, each policy and setting agrees within 1%.
    let mut pooled: BTreeMap<(&str, &str, &str), [f64; 2]> = BTreeMap::new();
    for ((_, d, r, policy), [cost, _, ref_cost, _]) in &table {
        let p = pooled.entry((d, r, policy)).or_default();
        p[0] += cost;
        p[1] += ref_cost;
    }
    for (key, [a, b]) in pooled {
        assert!((a / b - 1.0).abs() < 0.01, "{key:?}: {a} vs {b}");
    }
}

/// Cases beyond 2% (all within 3%), each explained in
/// docs/deadline-policies.md, "Agreement": sky_spot rounds its guards to
/// whole ticks (time left down, work left up), so its switches come up to
/// two ticks earlier; where spot stints last three or four ticks that
/// decides whether a stint is caught, at one or two offsets of eight.
const EXPLAINED: [(&str, &str, &str, &str); 3] = [
    ("us-east-1d", "52.0", "0.2", "uniform_progress"),
    ("us-east-2a", "52.0", "0.2", "greedy"),
    ("us-east-2b", "52.0", "0.05", "uniform_progress"),
];

#[test]
fn a_fixed_tick_replays_rows_evenly() {
    let text = "date,availability\n2023-01-01 00:00:00,1\n2023-01-01 00:03:00,0\n2023-01-01 00:10:00,1\n";
    let t = SpotTrace::parse_csv("t.csv", text, Convention::Available).unwrap();
    assert_eq!(t.next_unavailable(SimTime::ZERO, SimTime::ZERO), SimTime::from_mins(3));
    let t = t.with_tick(SimTime::from_secs(195)).unwrap();
    assert_eq!(t.length(), SimTime::from_secs(3 * 195));
    assert_eq!(t.next_unavailable(SimTime::ZERO, SimTime::ZERO), SimTime::from_secs(195));
    assert_eq!(t.next_available(SimTime::ZERO, SimTime::from_secs(200)), SimTime::from_secs(390));
}
