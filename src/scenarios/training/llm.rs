//! LLM training at scale (SPEC 2.13): the arithmetic that turns a model, a
//! token budget and a cluster into the training model's inputs (compute
//! time, checkpoint size, write and restore times, a failure rate). Pure
//! functions of their arguments; the figures they rest on are cited here and
//! in `docs/training-model.md`, "LLM training at scale".

use serde::Serialize;

use crate::base::time::SimTime;

/// Where checkpoints are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Storage {
    S3,
    FsxLustre,
    Nvme,
    PeerMemory,
}

pub const STORAGE_NAMES: [&str; 4] = ["s3", "fsx-lustre", "nvme", "peer-memory"];

impl Storage {
    pub fn from_name(name: &str) -> Option<Storage> {
        let all = [Storage::S3, Storage::FsxLustre, Storage::Nvme, Storage::PeerMemory];
        STORAGE_NAMES.iter().position(|&n| n == name).map(|i| all[i])
    }

    /// Whether a checkpoint here is gone when every node of the job is lost
    /// at once (a spot reclaim, a zone outage): local drives and host memory
    /// are; a hardware failure of one node leaves its peers' copies.
    pub fn volatile(self) -> bool {
        matches!(self, Storage::Nvme | Storage::PeerMemory)
    }
}

/// What happens after a hardware failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recovery {
    /// Managed spot training: the whole job relaunches when capacity returns.
    SpotRestart,
    /// The failed node is replaced by a fresh launch (startup), no capacity wait.
    OnDemandRestart,
    /// A warm spare takes the failed node's place (no startup) while one is
    /// ready; the pool is refilled by a fresh launch.
    AutoResume,
}

pub const RECOVERY_NAMES: [&str; 3] = ["spot-restart", "on-demand-restart", "auto-resume"];

impl Recovery {
    pub fn from_name(name: &str) -> Option<Recovery> {
        let all = [Recovery::SpotRestart, Recovery::OnDemandRestart, Recovery::AutoResume];
        RECOVERY_NAMES.iter().position(|&n| n == name).map(|i| all[i])
    }
}

/// Data × tensor × pipeline parallel degrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub data: u32,
    pub tensor: u32,
    pub pipeline: u32,
}

impl Layout {
    pub fn gpus(&self) -> u64 {
        u64::from(self.data) * u64::from(self.tensor) * u64::from(self.pipeline)
    }
}

/// `[training.llm]` resolved: the inputs with every default filled in, and
/// what they come to. `check` and the manifest print it.
#[derive(Clone, Debug, Serialize)]
pub struct LlmTraining {
    pub profile: String,
    pub parameters: f64,
    pub tokens: f64,
    pub sequence_length: u32,
    pub gpus: u32,
    pub layout: Layout,
    pub peak_tflops_per_gpu: f64,
    pub mfu: f64,
    pub mfu_source: String,
    /// 6·N + attention, per token, times the tokens.
    pub flops: f64,
    pub compute_time_h: f64,
    pub bytes_per_parameter_state: f64,
    pub checkpoint_size_gb: f64,
    pub memory_per_gpu_needed_gib: f64,
    pub memory_per_gpu_gib: f64,
    pub storage: Storage,
    pub storage_write_gb_per_s: f64,
    pub storage_read_gb_per_s: f64,
    pub async_checkpoint: bool,
    /// Time to write one checkpoint to storage (the background part when async).
    pub write: SimTime,
    /// Snapshot to host memory (async only): the stall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SimTime>,
    /// Process launch, NCCL initialisation, data-loader state: part of every restore.
    pub reinit: SimTime,
    pub restore: SimTime,
    /// Per GPU; the job's is this over `gpus`.
    pub gpu_mtbf: SimTime,
    pub job_mtbf_h: f64,
    pub recovery: Recovery,
    pub spares: u32,
    /// Tiered: every checkpoint to the peers' memory, every
    /// `persistent_every`-th (and the last) to `storage` as well.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_tier: Option<MemoryTier>,
    /// With async checkpoints: the write that overlaps the next segment.
    #[serde(skip)]
    pub background: Option<SimTime>,
}

/// The memory tier of tiered checkpoints (HyperPod's and Gemini's in-memory
/// checkpoints): a copy in peer nodes' host memory survives a failed node,
/// not the loss of the whole job.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MemoryTier {
    pub persistent_every: u32,
    /// To the peers' memory, over the network.
    pub write: SimTime,
    /// From the peers' memory, re-initialisation included.
    pub restore: SimTime,
}

impl LlmTraining {
    /// Hardware failures of the whole job, per second: every GPU's rate.
    pub fn failure_rate_per_s(&self) -> f64 {
        f64::from(self.gpus) / self.gpu_mtbf.as_secs_f64()
    }

    /// The checkpoint write the job stalls for: the memory tier's, the
    /// snapshot (async), or the write to storage.
    pub fn stall(&self) -> SimTime {
        match (self.memory_tier, self.snapshot) {
            (Some(t), _) => t.write,
            (None, Some(s)) => s,
            (None, None) => self.write,
        }
    }

    /// The restore after a failed node: from the memory tier when there is one.
    pub fn node_restore(&self) -> SimTime {
        self.memory_tier.map_or(self.restore, |t| t.restore)
    }

    /// Spare nodes held: `spares` with auto-resume, none otherwise.
    pub fn pool(&self) -> u32 {
        if self.recovery == Recovery::AutoResume { self.spares } else { 0 }
    }
}

/// Training FLOPs per token: 6·N for the weights (forward 2N, backward 4N)
/// plus 12·L·H·S for attention's score and value products over a sequence of
/// S tokens (PaLM, Chowdhery et al. 2022, Appendix B: 6N + 12·L·H·Q·T, with
/// heads × head size = H, the model dimension). Recomputed activations are
/// not counted: they are hardware FLOPs, not model FLOPs.
pub fn flops_per_token(parameters: f64, layers: u32, hidden: u32, sequence: u32) -> f64 {
    6.0 * parameters + 12.0 * f64::from(layers) * f64::from(hidden) * f64::from(sequence)
}

/// Seconds of compute for `flops` on `gpus` GPUs of `peak_tflops` at `mfu`.
pub fn compute_secs(flops: f64, gpus: u32, peak_tflops: f64, mfu: f64) -> f64 {
    flops / (f64::from(gpus) * peak_tflops * 1e12 * mfu)
}

/// Bytes per parameter of mixed-precision Adam's state as checkpointed:
/// bf16 weights (2) + fp32 master weights (4) + two fp32 moments (4 + 4).
/// ZeRO (Rajbhandari et al. 2020, section 3.1) counts 2 + 2 + 12 = 16 bytes
/// in memory; the gradients (2) are not saved.
pub const ADAM_STATE_BYTES: f64 = 14.0;

/// Memory one GPU holds of the model and its optimiser state, in bytes:
/// bf16 weights and gradients (2 + 2 bytes) split over tensor × pipeline,
/// and the 12 bytes of fp32 optimiser state split further over the data
/// ranks (ZeRO stage 1, Megatron's distributed optimiser). Activations and
/// buffers come on top: this is a lower bound.
pub fn state_bytes_per_gpu(parameters: f64, layout: Layout) -> f64 {
    let model_parallel = f64::from(layout.tensor) * f64::from(layout.pipeline);
    parameters / model_parallel * (4.0 + 12.0 / f64::from(layout.data))
}

/// One published MFU row: GPU family, model parameters, GPUs, MFU, source.
pub struct MfuRow {
    pub gpu: &'static str,
    pub parameters: f64,
    pub gpus: u32,
    pub mfu: f64,
    pub source: &'static str,
}

/// Published model-FLOPs utilisation by GPU family, model size and scale.
/// Megatron-LM's figures count the recomputed forward pass (their eq. 3,
/// 96 = 4 × 24 FLOPs per weight per token); 3/4 of them are model FLOPs.
pub const MFU_ROWS: &[MfuRow] = &[
    MfuRow {
        gpu: "H100",
        parameters: 405e9,
        gpus: 8192,
        mfu: 0.43,
        source: "Llama 3 (Dubey et al. 2024, arXiv 2407.21783), Table 4, row 1: 8,192 H100s, TP 8, PP 16, DP 64, 430 TFLOP/s per GPU, BF16 MFU 43%",
    },
    MfuRow {
        gpu: "H100",
        parameters: 405e9,
        gpus: 16384,
        mfu: 0.41,
        source: "Llama 3 (Dubey et al. 2024), Table 4, row 2: 16,384 H100s, TP 8, PP 16, DP 128, 400 TFLOP/s per GPU, BF16 MFU 41%",
    },
    MfuRow {
        gpu: "A100",
        parameters: 175e9,
        gpus: 1024,
        mfu: 0.75 * 140.0 / 312.0,
        source: "Megatron-LM (Narayanan et al. 2021, arXiv 2104.04473), section 5.1: GPT-3 175B on 1,024 A100s at 140 TFLOP/s per GPU with recomputation; 105 model TFLOP/s, MFU 33.7%",
    },
    MfuRow {
        gpu: "A100",
        parameters: 1008e9,
        gpus: 3072,
        mfu: 0.75 * 163.0 / 312.0,
        source: "Megatron-LM (Narayanan et al. 2021), Table 1, last row: 1T parameters on 3,072 A100s at 163 TFLOP/s per GPU with recomputation; MFU 39.2%",
    },
];

/// The GPU family of a catalog GPU name, for the MFU table: the H200 is the
/// H100's die with more memory, so it takes the H100's rows.
pub fn gpu_family(gpu: &str) -> Option<&'static str> {
    if gpu.contains("H100") || gpu.contains("H200") {
        Some("H100")
    } else if gpu.contains("A100") {
        Some("A100")
    } else {
        None
    }
}

/// The published row nearest to (`parameters`, `gpus`) in log scale on the
/// same GPU family; `None` when the family has no row.
pub fn default_mfu(gpu: &str, parameters: f64, gpus: u32) -> Option<&'static MfuRow> {
    let family = gpu_family(gpu)?;
    let distance =
        |r: &MfuRow| (r.parameters / parameters).ln().powi(2) + (f64::from(r.gpus) / f64::from(gpus)).ln().powi(2);
    MFU_ROWS.iter().filter(|r| r.gpu == family).min_by(|a, b| distance(a).total_cmp(&distance(b)))
}

/// Llama 3's pre-training: 419 unexpected interruptions in a 54-day snapshot
/// on 16,384 H100s (Dubey et al. 2024, section 3.3.4 and Table 5).
pub const LLAMA3_INTERRUPTIONS: f64 = 419.0;
pub const LLAMA3_DAYS: f64 = 54.0;
pub const LLAMA3_GPUS: u32 = 16384;

/// Llama 3's 419 unexpected interruptions by root cause (Dubey et al. 2024,
/// Table 5), in its order; `failure_causes` picks some of them.
pub const LLAMA3_CAUSES: [(&str, u32); 18] = [
    ("faulty-gpu", 148),
    ("gpu-hbm3", 72),
    ("software-bug", 54),
    ("network", 35),
    ("host-maintenance", 32),
    ("gpu-sram", 19),
    ("gpu-system-processor", 17),
    ("nic", 7),
    ("nccl-watchdog", 7),
    ("silent-data-corruption", 6),
    ("gpu-thermal", 6),
    ("ssd", 3),
    ("power-supply", 3),
    ("server-chassis", 2),
    ("io-expansion-board", 2),
    ("dependency", 2),
    ("cpu", 2),
    ("system-memory", 2),
];

/// Per-GPU mean time between failures of the given Llama 3 causes, hours.
pub fn llama3_cause_mtbf_h(count: u32) -> f64 {
    f64::from(LLAMA3_GPUS) * LLAMA3_DAYS * 24.0 / f64::from(count)
}

/// Per-GPU mean time between job-stopping failures, hours: Llama 3's
/// 16,384 GPUs × 54 days ÷ 419 = 50,677 h. Its causes (Table 5): faulty GPU
/// 148, GPU HBM3 72, software bug 54, network switch or cable 35, host
/// maintenance 32, GPU SRAM 19, GPU system processor 17, NIC 7, NCCL
/// watchdog 7, silent data corruption 6, GPU thermal 6, SSD 3, power supply
/// 3, server chassis 2, IO expansion board 2, dependency 2, CPU 2, system
/// memory 2.
pub fn llama3_gpu_mtbf_h() -> f64 {
    f64::from(LLAMA3_GPUS) * LLAMA3_DAYS * 24.0 / LLAMA3_INTERRUPTIONS
}

/// The largest single-instance S3 throughput measured, Gbit/s (see
/// `catalog::profile::S3_MAX_GBPS`); S3's request limit per partitioned
/// prefix is 3,500 PUT and 5,500 GET a second (Amazon S3 User Guide,
/// "Best practices design patterns: optimizing Amazon S3 performance").
pub const S3_PUTS_PER_PREFIX: f64 = 3500.0;
pub const S3_GETS_PER_PREFIX: f64 = 5500.0;
/// Multipart part size, bytes: the AWS CLI's default `multipart_chunksize`, 8 MiB.
pub const S3_PART_BYTES: f64 = 8.0 * 1048576.0;

/// FSx for Lustre PERSISTENT_2 SSD: throughput per TiB provisioned, MB/s
/// (125, 250, 500 or 1000; FSx for Lustre User Guide, "Managing throughput
/// capacity"), and its storage sizes: 1.2 TiB, then multiples of 2.4 TiB.
pub const FSX_THROUGHPUT_CHOICES: [f64; 4] = [125.0, 250.0, 500.0, 1000.0];
pub const FSX_DEFAULT_THROUGHPUT: f64 = 1000.0;

/// The smallest FSx PERSISTENT_2 size that holds `keep` checkpoints of `gb`, TiB.
pub fn fsx_capacity_tib(gb: f64, keep: f64) -> f64 {
    let tib = gb * keep * 1e9 / 1099511627776.0;
    if tib <= 1.2 { 1.2 } else { (tib / 2.4).ceil() * 2.4 }
}

/// Write (or read) bandwidth of the whole job to its storage, GB/s (10^9
/// bytes). `node_gbps` is one node's network (Gbit/s), `nodes` writers in
/// parallel, each under its own prefix on S3.
pub fn storage_gb_per_s(
    storage: Storage,
    nodes: u32,
    node_gbps: f64,
    s3_max_gbps: f64,
    fsx_gb_per_s: f64,
    read: bool,
) -> Option<f64> {
    let n = f64::from(nodes);
    let network = n * node_gbps / 8.0;
    match storage {
        Storage::S3 => {
            let requests = if read { S3_GETS_PER_PREFIX } else { S3_PUTS_PER_PREFIX };
            let per_node = (node_gbps.min(s3_max_gbps) / 8.0).min(requests * S3_PART_BYTES / 1e9);
            Some(n * per_node)
        }
        Storage::FsxLustre => Some(fsx_gb_per_s.min(network)),
        // A copy to a peer node's host memory (Gemini-style): the network.
        Storage::PeerMemory => Some(network),
        // No sourced figure for the instance drives: the user gives it.
        Storage::Nvme => None,
    }
}

/// Host-to-device copy bandwidth assumed for a snapshot to host memory,
/// GB/s per GPU: PCIe Gen4 x16 per direction (the catalog's header).
pub const SNAPSHOT_GB_PER_S: f64 = 31.5;

/// Asynchronous checkpoints: training stalls for the snapshot, and for the
/// previous write when it outlasts a segment (the next snapshot waits for it).
pub fn async_stall_secs(snapshot_s: f64, write_s: f64, interval_s: f64) -> f64 {
    snapshot_s + (write_s - interval_s).max(0.0)
}

/// Seconds, rounded to the millisecond as the other derived times are.
/// Saturates rather than wraps for times beyond any horizon.
pub fn millis(secs: f64) -> SimTime {
    SimTime::from_secs_f64((secs * 1e3).round().max(0.0) / 1e3)
}

/// The longest compute time `[training.llm]` accepts, seconds: 30 years.
pub const MAX_COMPUTE_SECS: f64 = 30.0 * 365.25 * 86400.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_adds_a_few_percent_to_6n() {
        // Llama-3-8B at 8,192 tokens: 12·32·4096·8192 = 1.29e10 on 4.82e10.
        let f = flops_per_token(8.03e9, 32, 4096, 8192);
        assert!((f - (6.0 * 8.03e9 + 12.0 * 32.0 * 4096.0 * 8192.0)).abs() < 1.0);
        assert!(f / (6.0 * 8.03e9) > 1.2 && f / (6.0 * 8.03e9) < 1.3);
    }

    #[test]
    fn the_mfu_table_picks_the_nearest_row_of_the_family() {
        assert_eq!(default_mfu("NVIDIA H100 80GB", 405e9, 16384).unwrap().mfu, 0.41);
        assert_eq!(default_mfu("NVIDIA H200 141GB", 8e9, 8000).unwrap().mfu, 0.43);
        assert_eq!(default_mfu("NVIDIA A100 80GB", 70e9, 256).unwrap().gpus, 1024);
        assert!(default_mfu("NVIDIA L4 24GB", 8e9, 8).is_none());
    }

    #[test]
    fn state_memory_and_storage_by_hand() {
        // 8B over TP 1 × PP 1 × DP 8: 8e9 × (4 + 1.5) = 44 GB.
        let l = Layout { data: 8, tensor: 1, pipeline: 1 };
        assert!((state_bytes_per_gpu(8e9, l) - 44e9).abs() < 1.0);
        // S3 on 4 p5 nodes: 64 Gbit/s each (8 GB/s), under 3,500 × 8 MiB.
        assert_eq!(storage_gb_per_s(Storage::S3, 4, 3200.0, 64.0, 0.0, false), Some(32.0));
        // FSx at 12 GB/s is below 4 × 400 Gbit/s.
        assert_eq!(storage_gb_per_s(Storage::FsxLustre, 4, 400.0, 64.0, 12.0, false), Some(12.0));
        assert_eq!(storage_gb_per_s(Storage::Nvme, 4, 400.0, 64.0, 12.0, false), None);
        assert_eq!(fsx_capacity_tib(100.0, 2.0), 1.2);
        assert_eq!(fsx_capacity_tib(2000.0, 2.0), 4.8);
        assert!((llama3_gpu_mtbf_h() - 50677.0).abs() < 0.01);
        let total: u32 = LLAMA3_CAUSES.iter().map(|c| c.1).sum();
        assert_eq!(f64::from(total), LLAMA3_INTERRUPTIONS);
        assert_eq!(llama3_cause_mtbf_h(total), llama3_gpu_mtbf_h());
        assert_eq!(async_stall_secs(2.0, 100.0, 60.0), 42.0);
        assert_eq!(async_stall_secs(2.0, 10.0, 60.0), 2.0);
    }
}
