//! One random stream per (master seed, replication, purpose).
//!
//! Each purpose draws from its own stream, so changing one part of a design
//! (say the checkpoint interval) leaves the random numbers of every other part
//! where they were: replication r of every sweep point sees the same
//! interruptions and the same capacity waits (common random numbers).

use rand_pcg::Pcg64;

/// The generator: PCG XSL-RR 128/64, portable and fully specified, so the
/// same seed gives the same numbers on every platform and `rand_pcg` release.
pub type SimRng = Pcg64;

/// What a stream is used for. The discriminants are part of the seed
/// derivation: never renumber one, only add new ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    Interruptions = 1,
    CapacityWait = 2,
    Startup = 3,
    Restore = 4,
    CheckpointWrite = 5,
    AdvisorRate = 6,
    Arrivals = 7,
    ServiceTime = 8,
    ZoneOutages = 9,
    TraceOffset = 10,
    Notice = 11,
    /// Per-step noise factors of synthetic traffic.
    TrafficNoise = 12,
    /// Which requests a scaled-down (`scale` < 1) as-is trace replay keeps.
    TrafficThinning = 13,
    /// Request sizes drawn from a trace for Poisson arrivals over its binned rates.
    TrafficSizes = 14,
    /// Lifetimes of spot instances of an endpoint, and zone-wide reclaims.
    SpotReclaims = 15,
    /// Token counts (input, then output) drawn per request for an LLM endpoint.
    TokenCounts = 16,
    /// Hardware failures of an LLM training job's GPUs (SPEC 2.13).
    HardwareFailures = 17,
}

/// The streams of one replication.
#[derive(Clone, Copy, Debug)]
pub struct Streams {
    pub seed: u64,
    pub replication: u64,
}

impl Streams {
    pub fn new(seed: u64, replication: u64) -> Self {
        Streams { seed, replication }
    }

    pub fn rng(&self, purpose: Purpose) -> SimRng {
        self.rng_indexed(purpose, 0)
    }

    /// The streams of member `k` of a whole (component k of an endpoint):
    /// every purpose independent of every other member's, and of the whole's.
    pub fn member(&self, k: u64) -> Streams {
        Streams { seed: splitmix64(self.seed ^ splitmix64(0x636f_6d70_0000_0000 + k)), replication: self.replication }
    }

    /// The stream of the `index`-th member of a purpose (zone k's outages,
    /// instance k's lifetimes); index 0 is `rng(purpose)`.
    pub fn rng_indexed(&self, purpose: Purpose, index: u64) -> SimRng {
        // Index k > 0 shifts the purpose into a range no purpose number uses.
        let p = purpose as u64 + (index << 32);
        let state_hi = splitmix64(self.seed ^ splitmix64(p));
        let state_lo = splitmix64(self.replication ^ splitmix64(state_hi));
        let state = ((state_hi as u128) << 64) | state_lo as u128;
        // Distinct increments give statistically independent sequences even
        // if two states ever collided.
        let stream = ((p as u128) << 64) | splitmix64(self.seed.wrapping_add(p)) as u128;
        Pcg64::new(state, stream)
    }
}

/// SplitMix64's finaliser: a bijective mixer with full avalanche.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a = Streams::new(7, 3);
        assert_eq!(a.rng(Purpose::Interruptions).next_u64(), a.rng(Purpose::Interruptions).next_u64());
        let firsts: Vec<u64> = [
            Streams::new(7, 3).rng(Purpose::Interruptions).next_u64(),
            Streams::new(7, 3).rng(Purpose::CapacityWait).next_u64(),
            Streams::new(7, 4).rng(Purpose::Interruptions).next_u64(),
            Streams::new(8, 3).rng(Purpose::Interruptions).next_u64(),
        ]
        .to_vec();
        for i in 0..firsts.len() {
            for j in i + 1..firsts.len() {
                assert_ne!(firsts[i], firsts[j]);
            }
        }
    }

    #[test]
    fn generator_output_is_pinned() {
        // Guards the seed derivation: a change here changes every result file.
        let x = Streams::new(1, 0).rng(Purpose::Interruptions).next_u64();
        assert_eq!(x, Streams::new(1, 0).rng(Purpose::Interruptions).next_u64());
        assert_eq!(x, PINNED_FIRST_DRAW);
    }

    const PINNED_FIRST_DRAW: u64 = 7_165_774_083_463_219_910;
}
