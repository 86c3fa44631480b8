//! Availability zones and their outage processes.
//!
//! Each zone alternates between up and down periods (an alternating renewal
//! process): up periods are exponential with mean `mtbf`, down periods follow
//! the `duration` distribution. Zones fail independently, each from its own
//! random stream (`Purpose::ZoneOutages`, index = zone), so adding a zone or
//! querying zones in another order leaves every other zone's history where it
//! was. See `docs/zones.md` for the semantics the models follow.

use serde::Serialize;

use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::engine::{Purpose, SimRng, Streams};

/// Until health checks replace instances lost in a zone, when not given.
pub const DEFAULT_DETECTION: SimTime = SimTime::from_mins(5);
/// The most zones an experiment may declare.
pub const MAX_ZONES: u32 = 64;

/// `[zones]`, every default filled in. Serialises with the file's key names.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Zones {
    pub count: u32,
    /// `None`: zones never fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage: Option<Outage>,
    /// Until health checks replace instances lost in a zone.
    pub detection: SimTime,
    pub spot_reclaim: SpotReclaim,
    /// Move instances back into a zone when it recovers.
    pub rebalance: bool,
}

/// The outage process of every zone: up ~ Exp(mean `mtbf`), down ~ `duration`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outage {
    /// The mean up time from the end of one outage to the start of the next (MTTF).
    pub mtbf: SimTime,
    pub duration: Dist,
}

impl Outage {
    /// The long-run fraction of time one zone is down.
    pub fn unavailability(&self) -> f64 {
        zone_unavailability(self.mtbf.as_secs_f64(), self.duration.mean_secs())
    }
}

/// How spot reclaims strike the instances of a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpotReclaim {
    /// Each spot instance is reclaimed independently.
    Instance,
    /// One reclaim event takes every spot instance in a zone at once.
    Zone,
}

/// The outage history of one zone: down intervals `[start, end)` in time order,
/// generated lazily from the zone's own stream.
#[derive(Clone, Debug)]
struct History {
    rng: SimRng,
    down: Vec<(SimTime, SimTime)>,
    /// No further outage will ever start (no outage model, or time ran out).
    complete: bool,
}

impl History {
    /// Generates outages until one starts strictly after `t`, or the history
    /// is complete: then every outage starting at or before `t` is known.
    fn extend_past(&mut self, outage: &Outage, t: SimTime) {
        let up_dist = Dist::Exponential { mean: outage.mtbf.as_secs_f64() };
        while !self.complete && self.down.last().is_none_or(|&(start, _)| start <= t) {
            let last_end = self.down.last().map_or(SimTime::ZERO, |&(_, end)| end);
            // At least one tick each, so up and down periods never vanish and
            // consecutive outages never merge into one.
            let up = up_dist.sample(&mut self.rng).max(SimTime::from_nanos(1));
            let down = outage.duration.sample(&mut self.rng).max(SimTime::from_nanos(1));
            let start = last_end + up;
            if start == SimTime::MAX {
                self.complete = true;
                break;
            }
            let end = start + down;
            self.down.push((start, end));
            if end == SimTime::MAX {
                // Down for good: nothing follows.
                self.complete = true;
            }
        }
    }

    /// The index of the outage that covers `t`, if the zone is down at `t`.
    /// Requires `extend_past(t)`.
    fn covering(&self, t: SimTime) -> Option<usize> {
        let i = self.down.partition_point(|&(start, _)| start <= t);
        (i > 0 && t < self.down[i - 1].1).then(|| i - 1)
    }
}

/// One replication's outage histories, generated lazily, per zone, from zone
/// k's own stream (`Streams::rng_indexed(Purpose::ZoneOutages, k)`).
///
/// All zones are up at t = 0; the first up period of each zone is a fresh
/// exponential draw. Each up and each down period lasts at least one tick.
/// Queries may come in any order and at any time: a zone's history is always
/// generated from its start, in order, so it does not depend on the queries.
#[derive(Clone, Debug)]
pub struct ZoneOutages {
    outage: Option<Outage>,
    zones: Vec<History>,
}

impl ZoneOutages {
    pub fn new(zones: &Zones, streams: &Streams) -> Self {
        let histories = (0..zones.count)
            .map(|k| History {
                rng: streams.rng_indexed(Purpose::ZoneOutages, k as u64),
                down: Vec::new(),
                complete: zones.outage.is_none(),
            })
            .collect();
        ZoneOutages { outage: zones.outage.clone(), zones: histories }
    }

    pub fn count(&self) -> u32 {
        self.zones.len() as u32
    }

    /// The history of `zone`, known past `t`.
    fn history(&mut self, zone: u32, t: SimTime) -> &History {
        let h = &mut self.zones[zone as usize];
        if let Some(outage) = &self.outage {
            h.extend_past(outage, t);
        }
        h
    }

    pub fn is_up(&mut self, zone: u32, t: SimTime) -> bool {
        self.history(zone, t).covering(t).is_none()
    }

    /// The first time >= `t` at which `zone` is down: `t` itself if it is down
    /// at `t`, else the start of its next outage; `SimTime::MAX` if no outage
    /// ever starts (as without an outage model).
    pub fn next_down(&mut self, zone: u32, t: SimTime) -> SimTime {
        let h = self.history(zone, t);
        if h.covering(t).is_some() {
            return t;
        }
        let i = h.down.partition_point(|&(start, _)| start <= t);
        h.down.get(i).map_or(SimTime::MAX, |&(start, _)| start)
    }

    /// The first time >= `t` at which `zone` is up: `t` itself if it is up at
    /// `t`, else the end of the current outage (`SimTime::MAX` if it never ends).
    pub fn next_up(&mut self, zone: u32, t: SimTime) -> SimTime {
        let h = self.history(zone, t);
        h.covering(t).map_or(t, |i| h.down[i].1)
    }

    /// Outage starts in `[0, t)` over all zones (the `zone_outages` metric).
    pub fn outages_before(&mut self, t: SimTime) -> u64 {
        (0..self.count()).map(|zone| self.history(zone, t).down.partition_point(|&(start, _)| start < t) as u64).sum()
    }

    /// The next zone event strictly after `t` over all zones: `(time, zone,
    /// up)`, where `up` is true for a recovery and false for the start of an
    /// outage. Events at the same time come in zone order; `None` if no zone
    /// changes state after `t`.
    pub fn next_event_after(&mut self, t: SimTime) -> Option<(SimTime, u32, bool)> {
        let mut best: Option<(SimTime, u32, bool)> = None;
        for zone in 0..self.count() {
            let h = self.history(zone, t);
            let event = match h.covering(t) {
                Some(i) => (h.down[i].1, true),
                None => match h.down.get(h.down.partition_point(|&(start, _)| start <= t)) {
                    Some(&(start, _)) => (start, false),
                    None => continue,
                },
            };
            // An outage that never ends has no recovery event.
            if event.0 == SimTime::MAX {
                continue;
            }
            // Strict `<`: the lower zone index wins ties.
            if best.is_none_or(|(time, _, _)| event.0 < time) {
                best = Some((event.0, zone, event.1));
            }
        }
        best
    }
}

/// The long-run fraction of time a zone is down: MTTR / (MTTF + MTTR), where
/// `mtbf_s` is the mean up time and `mean_down_s` the mean outage duration.
pub fn zone_unavailability(mtbf_s: f64, mean_down_s: f64) -> f64 {
    let cycle = mtbf_s + mean_down_s;
    if cycle > 0.0 { mean_down_s / cycle } else { 0.0 }
}

/// The probability that at least `k` of `n` independent components are up,
/// each with probability `p_up`: Σ_{i=k}^{n} C(n, i) p^i (1 − p)^(n−i).
pub fn k_of_n_availability(n: u32, k: u32, p_up: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let q = 1.0 - p_up;
    let mut binom = 1.0_f64; // C(n, i), built up from C(n, 0)
    let mut total = 0.0;
    for i in 0..=n {
        if i >= k {
            total += binom * p_up.powi(i as i32) * q.powi((n - i) as i32);
        }
        binom = binom * (n - i) as f64 / (i + 1) as f64;
    }
    total.min(1.0)
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    fn zones(count: u32, mtbf_h: u64, duration: Dist) -> Zones {
        Zones {
            count,
            outage: Some(Outage { mtbf: SimTime::from_hours(mtbf_h), duration }),
            detection: DEFAULT_DETECTION,
            spot_reclaim: SpotReclaim::Instance,
            rebalance: false,
        }
    }

    fn lognormal_1h() -> Dist {
        Dist::LogNormal { median: 3600.0, sigma: 1.0 }
    }

    /// Mean and standard error across replications.
    fn mean_se(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, (var / n).sqrt())
    }

    /// Time `zone` spends down in `[0, horizon)`, walked with the public queries.
    fn down_time(o: &mut ZoneOutages, zone: u32, horizon: SimTime) -> SimTime {
        let mut total = SimTime::ZERO;
        let mut t = SimTime::ZERO;
        while t < horizon {
            let start = o.next_down(zone, t);
            if start >= horizon {
                break;
            }
            let end = o.next_up(zone, start).min(horizon);
            total += end - start;
            t = end;
        }
        total
    }

    #[test]
    fn long_run_fraction_down_matches_the_closed_form() {
        let z = zones(2, 10, lognormal_1h());
        let p = z.outage.as_ref().unwrap().unavailability();
        let horizon = SimTime::from_hours(2000);
        for zone in 0..2 {
            let fractions: Vec<f64> = (0..400)
                .map(|r| {
                    let mut o = ZoneOutages::new(&z, &Streams::new(5, r));
                    down_time(&mut o, zone, horizon).as_secs_f64() / horizon.as_secs_f64()
                })
                .collect();
            let (mean, se) = mean_se(&fractions);
            let zscore = (mean - p) / se;
            assert!(zscore.abs() < 4.0, "zone {zone}: {mean} vs {p} (z = {zscore})");
        }
    }

    /// Down indicators of each zone at one uniform random time in [100h, 300h)
    /// per replication, far enough from t = 0 to be stationary.
    fn snapshots(z: &Zones, reps: u64) -> Vec<Vec<bool>> {
        (0..reps)
            .map(|r| {
                let streams = Streams::new(9, r);
                let at = streams.rng(Purpose::Startup).random_range(100.0..300.0) * 3600.0;
                let t = SimTime::from_secs_f64(at);
                let mut o = ZoneOutages::new(z, &streams);
                (0..z.count).map(|k| !o.is_up(k, t)).collect()
            })
            .collect()
    }

    fn proportion_z(hits: usize, n: usize, p: f64) -> f64 {
        let phat = hits as f64 / n as f64;
        (phat - p) / (p * (1.0 - p) / n as f64).sqrt()
    }

    #[test]
    fn zones_fail_independently() {
        let z = zones(2, 3, Dist::Exponential { mean: 3600.0 });
        let p = z.outage.as_ref().unwrap().unavailability(); // 0.25
        let n = 20_000;
        let snaps = snapshots(&z, n as u64);
        let each = [0, 1].map(|k| snaps.iter().filter(|s| s[k]).count());
        let both = snaps.iter().filter(|s| s[0] && s[1]).count();
        for hits in each {
            let zs = proportion_z(hits, n, p);
            assert!(zs.abs() < 4.0, "marginal {hits}/{n} vs {p} (z = {zs})");
        }
        let zs = proportion_z(both, n, p * p);
        assert!(zs.abs() < 4.0, "both down {both}/{n} vs {} (z = {zs})", p * p);
    }

    #[test]
    fn all_three_down_matches_the_closed_form() {
        let z = zones(3, 3, lognormal_1h());
        let p_down = z.outage.as_ref().unwrap().unavailability();
        let n = 30_000;
        let all = snapshots(&z, n as u64).iter().filter(|s| s.iter().all(|&d| d)).count();
        // P(all down) = 1 − P(at least one of 3 up).
        let p_all = 1.0 - k_of_n_availability(3, 1, 1.0 - p_down);
        assert!((p_all - p_down.powi(3)).abs() < 1e-12);
        let zs = proportion_z(all, n, p_all);
        assert!(zs.abs() < 4.0, "all down {all}/{n} vs {p_all} (z = {zs})");
    }

    /// Every state change of every zone in `[0, horizon)`, in event order.
    fn events(o: &mut ZoneOutages, horizon: SimTime) -> Vec<(SimTime, u32, bool)> {
        let mut out = Vec::new();
        let mut t = SimTime::ZERO;
        while let Some(e) = o.next_event_after(t) {
            if e.0 >= horizon {
                break;
            }
            // Several zones may change at the same instant: take them all.
            out.push(e);
            let mut more = Vec::new();
            for k in e.1 + 1..o.count() {
                let before = !o.is_up(k, e.0 - SimTime::from_nanos(1));
                if o.is_up(k, e.0) == before {
                    more.push((e.0, k, !before));
                }
            }
            out.extend(more);
            t = e.0;
        }
        out
    }

    #[test]
    fn history_does_not_depend_on_the_queries() {
        let z = zones(3, 5, lognormal_1h());
        let streams = Streams::new(3, 7);
        let horizon = SimTime::from_hours(500);
        let reference = events(&mut ZoneOutages::new(&z, &streams), horizon);
        assert!(reference.len() > 300, "{}", reference.len());

        // Far future first, zones backwards, then times backwards.
        let mut o = ZoneOutages::new(&z, &streams);
        let mut rng = streams.rng(Purpose::Startup);
        let probes: Vec<SimTime> =
            (0..2000).map(|_| SimTime::from_secs_f64(rng.random_range(0.0..horizon.as_secs_f64()))).collect();
        let mut a = Vec::new();
        for k in (0..3).rev() {
            for &t in probes.iter().rev() {
                a.push((k, t, o.is_up(k, t)));
            }
        }
        assert!(o.outages_before(horizon) > 150);
        assert_eq!(events(&mut o, horizon), reference);

        // The same probes on a fresh copy, in forward order, agree.
        let mut fresh = ZoneOutages::new(&z, &streams);
        for &(k, t, up) in a.iter().rev() {
            assert_eq!(fresh.is_up(k, t), up, "zone {k} at {t}");
        }
        // And each zone's stream is its own: a 2-zone world has the same zones 0 and 1.
        let two = events(&mut ZoneOutages::new(&zones(2, 5, lognormal_1h()), &streams), horizon);
        let first_two: Vec<_> = reference.iter().copied().filter(|e| e.1 < 2).collect();
        assert_eq!(two, first_two);
    }

    #[test]
    fn queries_are_consistent() {
        let z = zones(3, 2, Dist::Exponential { mean: 1800.0 });
        let streams = Streams::new(1, 0);
        let mut o = ZoneOutages::new(&z, &streams);
        let mut rng = streams.rng(Purpose::Startup);
        let tick = SimTime::from_nanos(1);
        for zone in 0..3 {
            assert!(o.is_up(zone, SimTime::ZERO));
        }
        for _ in 0..5000 {
            let zone = rng.random_range(0..3u32);
            let t = SimTime::from_secs_f64(rng.random_range(0.0..1000.0 * 3600.0));
            let (down, up) = (o.next_down(zone, t), o.next_up(zone, t));
            if o.is_up(zone, t) {
                assert_eq!(up, t);
                assert!(down > t && down < SimTime::MAX);
                assert!(!o.is_up(zone, down) && o.is_up(zone, down - tick));
                assert_eq!(o.next_up(zone, down - tick), down - tick);
            } else {
                assert_eq!(down, t);
                assert!(up > t && up < SimTime::MAX);
                assert!(o.is_up(zone, up) && !o.is_up(zone, up - tick));
                assert_eq!(o.next_down(zone, up - tick), up - tick);
            }
            // The next event of this zone is the next state change.
            let e = o.next_event_after(t).expect("zones keep failing");
            assert!(e.0 > t && e.0 <= down.max(up));
        }
    }

    #[test]
    fn events_alternate_and_count_outages() {
        let z = zones(3, 4, lognormal_1h());
        let mut o = ZoneOutages::new(&z, &Streams::new(2, 1));
        let horizon = SimTime::from_hours(300);
        let evs = events(&mut o, horizon);
        assert!(evs.windows(2).all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)), "time order, ties by zone");
        for k in 0..3 {
            let mine: Vec<bool> = evs.iter().filter(|e| e.1 == k).map(|e| e.2).collect();
            assert!(mine.iter().enumerate().all(|(i, &up)| up == (i % 2 == 1)), "zone {k} alternates");
        }
        let starts = evs.iter().filter(|e| !e.2).count() as u64;
        assert_eq!(o.outages_before(horizon), starts);
        assert_eq!(o.outages_before(SimTime::ZERO), 0);
        let first = evs[0].0;
        assert_eq!(o.outages_before(first), 0);
        assert_eq!(o.outages_before(first + SimTime::from_nanos(1)), 1);
    }

    #[test]
    fn without_an_outage_model_zones_never_fail() {
        let z = Zones { outage: None, ..zones(4, 1, lognormal_1h()) };
        let mut o = ZoneOutages::new(&z, &Streams::new(1, 0));
        assert_eq!(o.count(), 4);
        for t in [SimTime::ZERO, SimTime::from_hours(10_000), SimTime::MAX] {
            for k in 0..4 {
                assert!(o.is_up(k, t));
                assert_eq!(o.next_down(k, t), SimTime::MAX);
                assert_eq!(o.next_up(k, t), t);
            }
            assert_eq!(o.outages_before(t), 0);
            assert_eq!(o.next_event_after(t), None);
        }
    }

    #[test]
    fn an_endless_outage_has_no_recovery() {
        let z = zones(1, 1, Dist::Constant(SimTime::MAX));
        let mut o = ZoneOutages::new(&z, &Streams::new(1, 0));
        let start = o.next_down(0, SimTime::ZERO);
        assert!(start > SimTime::ZERO && start < SimTime::MAX);
        assert_eq!(o.next_event_after(SimTime::ZERO), Some((start, 0, false)));
        assert_eq!(o.next_up(0, start), SimTime::MAX);
        assert_eq!(o.next_event_after(start), None);
        assert!(!o.is_up(0, SimTime::from_nanos(u64::MAX - 1)));
        assert_eq!(o.outages_before(SimTime::MAX), 1);
    }

    #[test]
    fn k_of_n_hand_values() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(k_of_n_availability(3, 2, 0.9), 0.972));
        assert!(close(k_of_n_availability(3, 1, 0.9), 0.999));
        assert!(close(k_of_n_availability(3, 3, 0.9), 0.729));
        assert!(close(k_of_n_availability(2, 2, 0.5), 0.25));
        assert!(close(k_of_n_availability(5, 3, 0.5), 0.5));
        assert!(close(k_of_n_availability(4, 2, 0.5), 11.0 / 16.0));
        assert_eq!(k_of_n_availability(3, 0, 0.1), 1.0);
        assert_eq!(k_of_n_availability(3, 4, 0.99), 0.0);
        assert!(close(k_of_n_availability(64, 1, 0.5), 1.0 - 0.5f64.powi(64)));
        // "At least one of n": 1 − u^n.
        let u = zone_unavailability(2000.0 * 3600.0, 2.0 * 3600.0);
        assert!(close(k_of_n_availability(3, 1, 1.0 - u), 1.0 - u.powi(3)));
    }

    #[test]
    fn unavailability_closed_form() {
        assert_eq!(zone_unavailability(9.0, 1.0), 0.1);
        assert_eq!(zone_unavailability(0.0, 0.0), 0.0);
        assert!((zone_unavailability(2000.0, 2.0) - 2.0 / 2002.0).abs() < 1e-15);
    }

    #[test]
    fn serialises_with_the_file_keys() {
        let z = Zones { spot_reclaim: SpotReclaim::Zone, ..zones(3, 2000, Dist::Exponential { mean: 7200.0 }) };
        let json = serde_json::to_value(&z).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "count": 3,
                "outage": { "mtbf": "2000h", "duration": { "dist": "exponential", "mean": "2h" } },
                "detection": "5m",
                "spot_reclaim": "zone",
                "rebalance": false,
            })
        );
        let none = serde_json::to_value(Zones { outage: None, ..z }).unwrap();
        assert!(none.get("outage").is_none());
    }
}
