//! How long a new instance, or a new copy on an instance with room, takes
//! to serve (SPEC 2.12, docs/autoscaling.md "Start-up in stages"). One draw of
//! every stage serves both, so a copy's start-up is the instance's less the
//! stages it skips, on the same random numbers.

use rand::Rng;
use serde::Serialize;

use crate::base::dist::Dist;
use crate::base::time::SimTime;

/// A design's start-up: the single `startup` distribution, or stages.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Startup {
    /// Today's one distribution. It has no stages to skip, so a copy takes
    /// as long as an instance.
    Single(Dist),
    Staged(Box<Stages>),
}

impl From<Dist> for Startup {
    fn from(d: Dist) -> Self {
        Startup::Single(d)
    }
}

/// `[inference.startup]`: each stage a distribution (derived ones constant).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stages {
    pub provision: Dist,
    /// Zero with `container_caching`: the image is already on the instance.
    pub image_pull: Dist,
    /// The download on its own, as a copy (with no image pull) sees it.
    pub weights_download: Dist,
    pub weights_load: Dist,
    pub engine_init: Dist,
    pub health_check: Dist,
    /// The share of its own rate the download keeps while the image pull
    /// runs beside it (1: no contention).
    pub download_share_while_pulling: f64,
}

/// One draw of every stage, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageTimes {
    pub provision: f64,
    pub image_pull: f64,
    /// The download alone (no image pull beside it).
    pub weights_download: f64,
    /// The download while the image pull runs beside it.
    pub weights_download_pulling: f64,
    pub weights_load: f64,
    pub engine_init: f64,
    pub health_check: f64,
}

impl StageTimes {
    /// A new instance: provision, then the image pull beside the weights
    /// download, then load, engine start-up and the health check.
    pub fn instance_secs(&self) -> f64 {
        self.provision
            + self.image_pull.max(self.weights_download_pulling)
            + self.weights_load
            + self.engine_init
            + self.health_check
    }

    /// A new copy on an instance with room: no provisioning, no image pull.
    pub fn copy_secs(&self) -> f64 {
        self.weights_download + self.weights_load + self.engine_init + self.health_check
    }
}

/// The time a download of `alone` seconds (at its own rate) takes while a
/// pull of `pull` seconds runs beside it, keeping `share` of its rate until
/// the pull ends.
pub fn download_while_pulling(alone: f64, pull: f64, share: f64) -> f64 {
    if alone <= pull * share { alone / share } else { pull + (alone - pull * share) }
}

impl Stages {
    /// Draws the six stages, in the order they are listed.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> StageTimes {
        let provision = self.provision.sample_secs(rng);
        let image_pull = self.image_pull.sample_secs(rng);
        let weights_download = self.weights_download.sample_secs(rng);
        StageTimes {
            provision,
            image_pull,
            weights_download,
            weights_download_pulling: download_while_pulling(
                weights_download,
                image_pull,
                self.download_share_while_pulling,
            ),
            weights_load: self.weights_load.sample_secs(rng),
            engine_init: self.engine_init.sample_secs(rng),
            health_check: self.health_check.sample_secs(rng),
        }
    }
}

impl Startup {
    /// A new instance's start-up. `Single` draws once, as it always has.
    pub fn instance<R: Rng + ?Sized>(&self, rng: &mut R) -> SimTime {
        match self {
            Startup::Single(d) => d.sample(rng),
            Startup::Staged(s) => SimTime::from_secs_f64(s.sample(rng).instance_secs()),
        }
    }

    /// A new copy's start-up on an instance with room.
    pub fn copy<R: Rng + ?Sized>(&self, rng: &mut R) -> SimTime {
        match self {
            Startup::Single(d) => d.sample(rng),
            Startup::Staged(s) => SimTime::from_secs_f64(s.sample(rng).copy_secs()),
        }
    }

    pub fn stages(&self) -> Option<&Stages> {
        match self {
            Startup::Single(_) => None,
            Startup::Staged(s) => Some(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Purpose, Streams};

    fn stages(share: f64) -> Stages {
        Stages {
            provision: Dist::Uniform { min: 40.0, max: 80.0 },
            image_pull: Dist::LogNormal { median: 300.0, sigma: 0.3 },
            weights_download: Dist::Exponential { mean: 120.0 },
            weights_load: Dist::Constant(SimTime::from_secs(8)),
            engine_init: Dist::Uniform { min: 60.0, max: 120.0 },
            health_check: Dist::Constant(SimTime::from_secs(30)),
            download_share_while_pulling: share,
        }
    }

    #[test]
    fn a_copy_skips_exactly_provisioning_and_the_pull() {
        for share in [1.0, 0.46] {
            let s = stages(share);
            let mut rng = Streams::new(7, 0).rng(Purpose::Startup);
            for _ in 0..1000 {
                let t = s.sample(&mut rng);
                let skipped = t.provision + t.image_pull.max(t.weights_download_pulling) - t.weights_download;
                assert!((t.instance_secs() - t.copy_secs() - skipped).abs() < 1e-9);
                assert!(t.copy_secs() < t.instance_secs());
                if share == 1.0 {
                    let plain = t.provision + t.image_pull.max(t.weights_download);
                    assert!((t.instance_secs() - t.copy_secs() - (plain - t.weights_download)).abs() < 1e-9);
                }
            }
        }
    }

    #[test]
    fn the_startup_level_draws_agree_with_the_stages() {
        let s = Startup::Staged(Box::new(stages(0.46)));
        let streams = Streams::new(3, 1);
        let (mut a, mut b, mut c) =
            (streams.rng(Purpose::Startup), streams.rng(Purpose::Startup), streams.rng(Purpose::Startup));
        for _ in 0..200 {
            let t = s.stages().unwrap().sample(&mut c);
            assert_eq!(s.instance(&mut a), SimTime::from_secs_f64(t.instance_secs()));
            assert_eq!(s.copy(&mut b), SimTime::from_secs_f64(t.copy_secs()));
        }
    }

    #[test]
    fn a_single_distribution_draws_once_per_start_up() {
        let d = Dist::Uniform { min: 240.0, max: 480.0 };
        let s = Startup::from(d.clone());
        let streams = Streams::new(1, 0);
        let (mut a, mut b) = (streams.rng(Purpose::Startup), streams.rng(Purpose::Startup));
        for _ in 0..100 {
            assert_eq!(s.instance(&mut a), d.sample(&mut b));
        }
    }

    #[test]
    fn contention_closed_form() {
        // 168 s beside a 333 s pull at share 77/168: the blog's figures.
        let share = 77.0 / 168.0;
        assert!((download_while_pulling(77.0, 333.0, share) - 168.0).abs() < 1e-9);
        // A pull that ends first: 10 s at half rate (5 s of work), then 95 s alone.
        assert!((download_while_pulling(100.0, 10.0, 0.5) - 105.0).abs() < 1e-12);
        assert_eq!(download_while_pulling(100.0, 0.0, 0.5), 100.0);
        assert_eq!(download_while_pulling(100.0, 500.0, 1.0), 100.0);
    }
}
