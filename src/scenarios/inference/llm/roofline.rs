//! Step times from a model's architecture and its GPUs' figures (SPEC 2.8,
//! `step_time = "roofline"`), the memory a replica needs, and the KV
//! capacity the rest of its memory holds.
//!
//! - prefill is compute-bound: 2·parameters FLOPs per prompt token plus
//!   causal attention, 2·layers·hidden FLOPs per token², over the peak
//!   FLOP/s times `PREFILL_MFU`; never faster than reading the weights;
//! - decode reads the weights and the KV cache of every context token once
//!   per iteration, at the memory bandwidth times
//!   `DECODE_BANDWIDTH_EFFICIENCY`; its linear layers do 2·parameters FLOPs
//!   per sequence, and at large batches (B ≈ 100–250 on A100 and H100) that
//!   compute, at the peak times `DECODE_MFU`, takes longer than the weight
//!   read: the linear part is the larger of the two;
//! - tensor parallelism over t GPUs splits all of that t ways and adds two
//!   all-reduces per layer, each a ring (NCCL's algorithm for these sizes):
//!   a launch floor, 2·(t−1) steps at the link's per-step latency (NVLink or
//!   PCIe, from the catalog), and 2·(t−1)/t of the activations over the link;
//! - every iteration adds `ITERATION_OVERHEAD_MS` (scheduler, sampling,
//!   kernel launches), and `OVERHEAD_PER_SEQUENCE_MS` per decoding sequence
//!   (in a measured table this is the decode's `c·B`).
//!
//! The constants are defaults; `docs/llm-serving.md` keeps their sources
//! and the roofline's error against measurements.

use serde::Serialize;

use super::step::StepTime;
use crate::catalog::Instance;
pub use crate::catalog::profile::ModelArch;

// The constants are fitted on a TRAINING set of measurements and held to
// others they were not fitted to; tests/data/llm/ keeps both as CSVs with their
// sources, `docs/llm-serving.md` ("Validation") the error table, and the test
// `llm_validation` recomputes every held-out row through the engine.

/// Share of peak memory bandwidth that decode iterations reach: 0.78, the
/// median bandwidth share of Vidur's measured linear-layer (GEMM) times for
/// one decode token at TP 1 (Llama-2-7B, Llama-3-8B, Llama-2-70B on A100
/// and H100: 0.75–0.86; microsoft/vidur @7d47513, data/profiling/compute).
pub const DECODE_BANDWIDTH_EFFICIENCY: f64 = 0.78;
/// Share of peak dense FLOP/s that prefill reaches (model FLOPs
/// utilisation): 0.64, the mean of DistServe's fitted prefill times for
/// OPT-13B on one A100-80GB at 512 and 2048 tokens (0.60 and 0.68, whole
/// iterations, the overhead below taken out; LLMServe/DistServe @82831f1).
/// Vidur's GEMM-only figure at 2048 tokens is higher, 0.70–0.77.
pub const PREFILL_MFU: f64 = 0.64;
/// Share of peak dense FLOP/s that the linear layers reach in a decode
/// batch: 0.62, the median over Vidur's profiles (A100 Llama-2-7B 0.632 and
/// Llama-3-8B 0.611, A40 Llama-2-7B 0.626, H100 Llama-2-7B 0.552; mlp.csv at
/// TP 1, 1–1024 tokens) of the efficiency that best fits their times with
/// `max(weights / (bandwidth·DECODE_BANDWIDTH_EFFICIENCY), 2·params·B / (peak·e))`
/// (least squares in log time).
pub const DECODE_MFU: f64 = 0.62;
/// Fixed cost of one all-reduce as a serving engine issues it (kernel launch,
/// NCCL's base latency and the framework's call), microseconds: 30, the
/// median over A100 and H100 DGX nodes at 2, 4 and 8 GPUs of Vidur's measured
/// NCCL all-reduce medians for messages up to 256 KiB (21–50 µs;
/// data/profiling/network/*_dgx/all_reduce.csv) less their 2·(t−1) ring steps
/// at NVLink's step latency. The ring's steps come on top: see [`allreduce_us`].
pub const ALLREDUCE_BASE_US: f64 = 30.0;
/// Per-iteration overhead outside the GPU's work, milliseconds: 0.9, what
/// is left of vLLM 0.23's 5.1 ms inter-token latency for Qwen2.5-0.5B on
/// one L4 (<https://ai.wmx.dev/benchmarks>) once its 0.99 GB weight read at
/// the efficiency above is taken out.
pub const ITERATION_OVERHEAD_MS: f64 = 0.9;

/// Overhead per decoding sequence and iteration, milliseconds (sampling,
/// detokenisation and output processing grow with the batch): 0.065, the
/// slope of vLLM 0.22.1's TPOT p50 over 1, 4 and 16 closed-loop users
/// (16.05, 16.43, 17.30 ms: 0.080 ms per user, least squares) for
/// Qwen2.5-72B on 4 × H100, less the slope the engine gives there without it
/// (0.015: prefill interference and the KV read) (InferenceBench,
/// yobitelcomm/bench @eb9dc5c, validation-runs/2026-06-13-llm-h100).
pub const OVERHEAD_PER_SEQUENCE_MS: f64 = 0.065;
/// The same overhead in TensorRT-LLM, whose batch manager, sampling and
/// detokenisation run in C++ rather than Python: fitted on TensorRT-LLM
/// 0.14.0's own throughput table at TP 1 (tests/data/llm/training.csv).
pub const TRTLLM_OVERHEAD_PER_SEQUENCE_MS: f64 = 0.003;

/// The per-sequence overhead of the serving engine a design names
/// (`serving_engine`): TensorRT-LLM's, else vLLM's (the default engine).
pub fn overhead_per_sequence_ms(serving_engine: Option<&str>) -> f64 {
    let trtllm = serving_engine.is_some_and(|e| {
        let e = e.trim_start().to_lowercase();
        e.starts_with("tensorrt-llm") || e.starts_with("trt-llm") || e.starts_with("trtllm")
    });
    if trtllm { TRTLLM_OVERHEAD_PER_SEQUENCE_MS } else { OVERHEAD_PER_SEQUENCE_MS }
}

/// One GPU's figures, from the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Gpu {
    pub memory_bytes: f64,
    pub bandwidth_gb_per_s: Option<f64>,
    pub tflops: Option<f64>,
    /// The fp8 peak, where the GPU has fp8 tensor cores.
    pub fp8_tflops: Option<f64>,
    pub interconnect_gb_per_s: Option<f64>,
    /// One ring step's latency over the GPU-to-GPU link, µs.
    pub link_step_latency_us: Option<f64>,
    /// Over PCIe, the GPUs behind one CPU socket; a ring of more crosses the
    /// sockets' interconnect. None over NVLink.
    pub pcie_gpus_per_socket: Option<u32>,
}

impl Gpu {
    pub fn of(instance: &Instance) -> Self {
        Gpu {
            memory_bytes: instance.gpu_memory_cuda_gib.unwrap_or(instance.memory_per_accelerator_gib())
                * (1u64 << 30) as f64,
            bandwidth_gb_per_s: instance.gpu_memory_bandwidth_gb_per_s,
            tflops: instance.gpu_fp16_tflops,
            fp8_tflops: instance.gpu_fp8_tflops,
            interconnect_gb_per_s: instance.gpu_interconnect_gb_per_s,
            link_step_latency_us: instance.gpu_link_step_latency_us,
            pcie_gpus_per_socket: instance.gpu_pcie_sockets.map(|n| instance.gpus / n.max(1)),
        }
    }
}

/// Why a model cannot be served as asked.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// The weights (per GPU) need more than the usable memory: (needed, usable) GiB.
    TooBig { need_gib: f64, have_gib: f64 },
    /// The catalog lacks a figure the roofline needs.
    Missing(&'static str),
}

/// Peak activation memory of vLLM's profiling forward pass, per batched
/// token, in units of `hidden · bytes_per_parameter`: 20.2, from vLLM's own
/// log for Meta-Llama-3-8B (bf16, hidden 4096) at its default 8192 batched
/// tokens: "PyTorch activation peak memory 1.26GiB" (vllm-project/vllm PR
/// #10511, youkaichao, 2024-12-14; the MLP's gate/up output, 2 × 14336
/// values per token, dominates).
pub const ACTIVATION_HIDDENS_PER_TOKEN: f64 = 20.2;
/// Memory outside PyTorch's allocator per GPU (CUDA context growth, cuBLAS
/// workspaces, NCCL buffers), GiB: 0.18, the mean of vLLM's logged
/// "non_torch_memory" once its profiler counts only the increase (0.16 GiB,
/// H100, TP 1, vllm-project/vllm PR #12126; 0.20 GiB at TP 4, PR #14447).
pub const NON_TORCH_GIB: f64 = 0.18;
/// vLLM's KV block, tokens (its default `block_size`).
pub const KV_BLOCK_TOKENS: u64 = 16;

/// KV-cache tokens a replica of `gpus` GPUs holds, as vLLM sizes it
/// (`determine_available_memory` of its GPU worker): per GPU, the memory
/// times `memory_util`, less the weights' share, the activation peak of a
/// forward pass over `batched_tokens` and the non-torch memory; in whole
/// blocks of `KV_BLOCK_TOKENS`. CUDA graphs are captured after the cache is
/// sized and live in the `1 − memory_util` margin, so they take nothing here.
pub fn kv_capacity(
    model: &ModelArch,
    gpu: &Gpu,
    gpus: u32,
    memory_util: f64,
    batched_tokens: u32,
) -> Result<u64, Refusal> {
    let gib = |b: f64| b / (1u64 << 30) as f64;
    let t = gpus as f64;
    let usable = gpu.memory_bytes * memory_util;
    let weights = model.weight_bytes() / t;
    if weights >= usable {
        return Err(Refusal::TooBig { need_gib: gib(model.weight_bytes()), have_gib: gib(usable * t) });
    }
    let activation =
        ACTIVATION_HIDDENS_PER_TOKEN * model.hidden as f64 * model.bytes_per_parameter * batched_tokens as f64;
    let free = usable - weights - activation - NON_TORCH_GIB * (1u64 << 30) as f64;
    let block = KV_BLOCK_TOKENS as f64 * model.kv_bytes_per_token() / t;
    Ok((free / block).floor().max(0.0) as u64 * KV_BLOCK_TOKENS)
}

/// Share of a PCIe link's bandwidth that NCCL's ring all-reduce reaches as
/// bus bandwidth with the GPUs on one CPU socket: fitted on TensorRT-LLM
/// 0.14.0's Llama-3.1-70B FP8 runs on 4 × L40S (tests/data/llm/training.csv).
/// Over NVLink NCCL gets about the link's figure (475 GB/s bus bandwidth on
/// 8 × H200 against 450 GB/s per direction: NVIDIA/nccl-tests#272), over
/// PCIe about half (NVIDIA/nccl#1639: 35 GB/s on 4 and 28 on 8 PCIe Gen5
/// GPUs, of 63 per direction, where the CPUs and memory carry every byte).
pub const PCIE_BUS_EFFICIENCY: f64 = 0.52;
/// The same share when the ring takes GPUs of both sockets of a two-socket
/// host: fitted on the same runs on 8 × L40S (ml.g6e.48xlarge).
pub const CROSS_SOCKET_BUS_EFFICIENCY: f64 = 0.46;

/// One ring all-reduce over `t` GPUs of a message of `bytes`, microseconds:
/// `ALLREDUCE_BASE_US`, then 2·(t−1) steps (reduce-scatter, all-gather) of
/// `step_us` each, moving 2·(t−1)/t of the message over `link_gb_per_s` per
/// direction. Per GPU the work shrinks as 1/t while this grows with t, so
/// tensor-parallel efficiency falls with t, faster over PCIe.
pub fn allreduce_us(t: u32, bytes: f64, step_us: f64, link_gb_per_s: f64) -> f64 {
    let steps = 2.0 * (t as f64 - 1.0);
    ALLREDUCE_BASE_US + steps * step_us + steps / t as f64 * bytes / (link_gb_per_s * 1e3)
}

/// The roofline's terms for one replica, milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RooflineTerms {
    pub weight_read_ms: f64,
    pub prefill_ms_per_token: f64,
    /// The linear layers' compute per decoding sequence.
    pub decode_ms_per_seq: f64,
    pub prefill_ms_per_token_sq: f64,
    pub kv_read_ms_per_token: f64,
    pub comm_ms_per_iteration: f64,
    pub comm_ms_per_token: f64,
    pub overhead_ms: f64,
    pub overhead_ms_per_seq: f64,
}

impl RooflineTerms {
    pub fn derive(model: &ModelArch, gpu: &Gpu, gpus: u32) -> Result<Self, Refusal> {
        let bw = gpu.bandwidth_gb_per_s.ok_or(Refusal::Missing("gpu_memory_bandwidth_gb_per_s"))? * 1e9;
        let fp16 = gpu.tflops.ok_or(Refusal::Missing("gpu_fp16_tflops"))?;
        // A model of one byte per parameter (fp8) runs on fp8 tensor cores
        // where the GPU has them (vLLM's W8A8 fp8 on Hopper and Ada); elsewhere
        // its weights are widened to fp16 for the multiplication.
        let fp8 = gpu.fp8_tflops.filter(|_| model.bytes_per_parameter <= 1.0);
        let flops = fp8.unwrap_or(fp16) * 1e12;
        let t = gpus as f64;
        let read = bw * DECODE_BANDWIDTH_EFFICIENCY * t;
        let compute = flops * PREFILL_MFU * t;
        let decode_compute = flops * DECODE_MFU * t;
        let ms = 1e3;
        let (comm_iter, comm_token) = if gpus > 1 {
            let link = gpu.interconnect_gb_per_s.ok_or(Refusal::Missing("gpu_interconnect_gb_per_s"))?
                * match gpu.pcie_gpus_per_socket {
                    Some(per_socket) if gpus > per_socket => CROSS_SOCKET_BUS_EFFICIENCY,
                    Some(_) => PCIE_BUS_EFFICIENCY,
                    None => 1.0,
                };
            let step = gpu.link_step_latency_us.ok_or(Refusal::Missing("gpu_link_step_latency_us"))?;
            let allreduces = 2.0 * model.layers as f64;
            // Linear in the message: the fixed part per iteration, the bytes' part per token.
            let fixed = allreduce_us(gpus, 0.0, step, link);
            // The all-reduced activations stay 16-bit when the weights are
            // fp8: the quantized GEMMs of vLLM and TensorRT-LLM write bf16/fp16.
            let activation_bytes = model.bytes_per_parameter.max(2.0);
            let per_token = allreduce_us(gpus, model.hidden as f64 * activation_bytes, step, link) - fixed;
            (allreduces * fixed * 1e-3, allreduces * per_token * 1e-3)
        } else {
            (0.0, 0.0)
        };
        Ok(RooflineTerms {
            weight_read_ms: model.weight_bytes() / read * ms,
            prefill_ms_per_token: 2.0 * model.parameters / compute * ms,
            decode_ms_per_seq: 2.0 * model.parameters / decode_compute * ms,
            prefill_ms_per_token_sq: 2.0 * model.layers as f64 * model.hidden as f64 / compute * ms,
            kv_read_ms_per_token: model.kv_bytes_per_token() / read * ms,
            comm_ms_per_iteration: comm_iter,
            comm_ms_per_token: comm_token,
            overhead_ms: ITERATION_OVERHEAD_MS,
            overhead_ms_per_seq: OVERHEAD_PER_SEQUENCE_MS,
        })
    }

    /// The terms with the per-sequence overhead of `serving_engine`.
    pub fn for_engine(self, serving_engine: Option<&str>) -> Self {
        RooflineTerms { overhead_ms_per_seq: overhead_per_sequence_ms(serving_engine), ..self }
    }

    pub fn step_time(&self) -> StepTime {
        StepTime::roofline(
            self.weight_read_ms,
            self.prefill_ms_per_token,
            self.prefill_ms_per_token_sq,
            self.decode_ms_per_seq,
            self.kv_read_ms_per_token,
            self.comm_ms_per_iteration,
            self.comm_ms_per_token,
            self.overhead_ms,
            self.overhead_ms_per_seq,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::inference::llm::step::{Batch, PS_PER_MS};

    // The catalog's ring-step latencies: NCCL's tuning model, ring LL.
    const NVLINK_STEP_US: f64 = 0.6;
    const PCIE_STEP_US: f64 = 1.0;

    fn llama3_8b() -> ModelArch {
        ModelArch { parameters: 8.03e9, layers: 32, hidden: 4096, kv_heads: 8, head_dim: 128, bytes_per_parameter: 2.0 }
    }

    fn a100() -> Gpu {
        Gpu {
            memory_bytes: 40.0 * (1u64 << 30) as f64,
            bandwidth_gb_per_s: Some(1555.0),
            tflops: Some(312.0),
            fp8_tflops: None,
            interconnect_gb_per_s: Some(300.0),
            link_step_latency_us: Some(NVLINK_STEP_US),
            pcie_gpus_per_socket: None,
        }
    }

    #[test]
    fn decode_is_the_weight_and_kv_read_and_prefill_the_compute() {
        let m = llama3_8b();
        assert_eq!(m.kv_bytes_per_token(), 131_072.0);
        let r = RooflineTerms::derive(&m, &a100(), 1).unwrap();
        // 16.06 GB at 1555 GB/s × the efficiency.
        assert!((r.weight_read_ms - 16.06e9 / (1555e9 * DECODE_BANDWIDTH_EFFICIENCY) * 1e3).abs() < 1e-9);
        let st = r.step_time();
        let one = st.iteration(&Batch { seqs: 1, ctx: 1000, ..Batch::default() }) as f64 / PS_PER_MS;
        let want =
            r.weight_read_ms + 1000.0 * r.kv_read_ms_per_token + ITERATION_OVERHEAD_MS + OVERHEAD_PER_SEQUENCE_MS;
        assert!((one - want).abs() < 1e-5, "{one} vs {want}");
        // A short prompt is bound by the weight read; a long one by compute.
        let short = st.iteration(&Batch { prompt: 8, prompt_sq: 64, ..Batch::default() }) as f64 / PS_PER_MS;
        assert!((short - r.weight_read_ms - ITERATION_OVERHEAD_MS).abs() < 1e-5);
        let l = 4096.0;
        let long = st.iteration(&Batch { prompt: 4096, prompt_sq: 4096 * 4096, ..Batch::default() }) as f64 / PS_PER_MS;
        let compute = l * r.prefill_ms_per_token + l * l * r.prefill_ms_per_token_sq;
        // Coefficients are whole picoseconds: 0.4 ps per token² off over 4096².
        assert!((long - compute - ITERATION_OVERHEAD_MS).abs() < 1e-2, "{long} vs {compute}");
        // Tensor parallel halves the reads and adds the all-reduces.
        let r2 = RooflineTerms::derive(&m, &a100(), 2).unwrap();
        assert!((r2.weight_read_ms - r.weight_read_ms / 2.0).abs() < 1e-9);
        let fixed = ALLREDUCE_BASE_US + 2.0 * NVLINK_STEP_US;
        assert!((r2.comm_ms_per_iteration - 64.0 * fixed * 1e-3).abs() < 1e-12);
        assert!((r2.comm_ms_per_token - 64.0 * 4096.0 * 2.0 / 300e9 * 1e3).abs() < 1e-12);
    }

    #[test]
    fn large_decode_batches_are_bound_by_compute_and_runs_stay_exact() {
        let m = llama3_8b();
        let r = RooflineTerms::derive(&m, &a100(), 1).unwrap();
        let st = r.step_time();
        let ms = |b: &Batch| st.iteration(b) as f64 / PS_PER_MS;
        // The linear layers turn compute-bound where 2·params·B / (312 T·0.62)
        // passes the weight read: B ≈ 164 on an A100 40GB.
        let knee = r.weight_read_ms / r.decode_ms_per_seq;
        assert!((knee - 16.06e9 / (1555e9 * 0.78) / (2.0 * 8.03e9 / (312e12 * DECODE_MFU))).abs() < 1e-9);
        assert!((150.0..180.0).contains(&knee), "{knee}");
        let at = |seqs: u64| ms(&Batch { seqs, ctx: seqs * 500, ..Batch::default() });
        let kv = |seqs: u64| (seqs * 500) as f64 * r.kv_read_ms_per_token;
        let overhead = |seqs: u64| ITERATION_OVERHEAD_MS + seqs as f64 * OVERHEAD_PER_SEQUENCE_MS;
        assert!((at(64) - r.weight_read_ms - kv(64) - overhead(64)).abs() < 1e-5);
        let big = 512.0 * r.decode_ms_per_seq;
        assert!((at(512) - big - kv(512) - overhead(512)).abs() < 1e-5, "{} vs {big}", at(512));
        // A chunked iteration runs its linear layers once over prompt and
        // decode tokens together.
        let mixed = ms(&Batch { prompt: 2048, prompt_sq: 2048 * 2048, seqs: 200, ctx: 100_000 });
        let compute =
            2048.0 * r.prefill_ms_per_token + 2048.0 * 2048.0 * r.prefill_ms_per_token_sq + 200.0 * r.decode_ms_per_seq;
        assert!((mixed - compute - 100_000.0 * r.kv_read_ms_per_token - overhead(200)).abs() < 1e-2);
        // Bulk advance over a compute-bound run is still the sum of its steps.
        for seqs in [1u64, 100, 256, 1000] {
            let run = st.run(seqs, 3000);
            let mut t = 0u128;
            for j in 0..200u64 {
                assert_eq!(run.time(j), t);
                t += st.iteration(&Batch { seqs, ctx: 3000 + j * seqs, ..Batch::default() });
            }
        }
    }

    #[test]
    fn capacity_follows_memory_and_a_big_model_is_refused() {
        let m = llama3_8b();
        let gib = (1u64 << 30) as f64;
        let cap = kv_capacity(&m, &a100(), 1, 0.9, 8192).unwrap();
        let free = 40.0 * gib * 0.9 - 16.06e9 - 20.2 * 4096.0 * 2.0 * 8192.0 - 0.18 * gib;
        assert_eq!(cap, (free / (16.0 * 131_072.0)).floor() as u64 * 16);
        // A smaller token budget leaves more for the cache; tensor
        // parallelism splits the weights and the KV heads alike.
        assert!(kv_capacity(&m, &a100(), 1, 0.9, 2048).unwrap() > cap);
        let two = kv_capacity(&m, &a100(), 2, 0.9, 8192).unwrap();
        let free2 = 40.0 * gib * 0.9 - 16.06e9 / 2.0 - 20.2 * 4096.0 * 2.0 * 8192.0 - 0.18 * gib;
        assert_eq!(two, (free2 / (16.0 * 65_536.0)).floor() as u64 * 16);
        let big = ModelArch { parameters: 70.6e9, layers: 80, hidden: 8192, ..m };
        let Err(Refusal::TooBig { need_gib, .. }) = kv_capacity(&big, &a100(), 2, 0.9, 8192) else { panic!() };
        assert!((need_gib - 141.2e9 / gib).abs() < 1e-9);
        assert!(kv_capacity(&big, &a100(), 8, 0.9, 8192).is_ok());
    }

    /// vLLM's published sizing of Llama-3.1-8B on a 24 GB GPU (an A10 of
    /// Oracle's AI Quick Actions, vLLM 0.7, chunked prefill at 2048 tokens
    /// as vLLM enables it for a 131072-token context): "total_gpu_memory
    /// (22.07GiB) x gpu_memory_utilization (0.90)", "# CUDA blocks: 2356"
    /// (oracle-samples/oci-data-science-ai-samples,
    /// ai-quick-actions/troubleshooting-tips.md). Not a training figure.
    #[test]
    fn capacity_matches_vllms_published_block_count_on_a_24_gb_gpu() {
        let gpu = Gpu { memory_bytes: 22.07 * (1u64 << 30) as f64, ..a100() };
        let blocks = kv_capacity(&llama3_8b(), &gpu, 1, 0.9, 2048).unwrap() / KV_BLOCK_TOKENS;
        let error = blocks as f64 / 2356.0 - 1.0;
        assert!(error.abs() < 0.05, "{blocks} blocks against vLLM's 2356: {:+.1}%", 100.0 * error);
        // "memory − weights" alone would give 2511 blocks, +7%.
        // And vLLM's "# GPU blocks: 7351" for Llama-2-7B on one A100 80GB
        // (vllm-project/vllm PR #2031, 2023-12-12; V0 at its default 4096
        // batched tokens, the model's context), from the nominal 80 GiB.
        let llama2 = ModelArch { parameters: 6.74e9, kv_heads: 32, ..llama3_8b() };
        let a100_80 = Gpu { memory_bytes: 80.0 * (1u64 << 30) as f64, ..a100() };
        let blocks = kv_capacity(&llama2, &a100_80, 1, 0.9, 4096).unwrap() / KV_BLOCK_TOKENS;
        let error = blocks as f64 / 7351.0 - 1.0;
        assert!(error.abs() < 0.05, "{blocks} blocks against vLLM's 7351: {:+.1}%", 100.0 * error);
    }

    #[test]
    fn fp8_models_use_the_fp8_peak_where_the_gpu_has_one() {
        let fp8 = ModelArch { bytes_per_parameter: 1.0, ..llama3_8b() };
        let h100 = Gpu { tflops: Some(989.0), fp8_tflops: Some(1979.0), ..a100() };
        let r = RooflineTerms::derive(&fp8, &h100, 1).unwrap();
        let want = 2.0 * 8.03e9 / (1979e12 * PREFILL_MFU) * 1e3;
        assert!((r.prefill_ms_per_token - want).abs() < 1e-12);
        // An fp16 model on the same GPU, and fp8 on an A100 (no fp8 cores),
        // use the fp16 peak.
        let r16 = RooflineTerms::derive(&llama3_8b(), &h100, 1).unwrap();
        assert!((r16.prefill_ms_per_token - 2.0 * 8.03e9 / (989e12 * PREFILL_MFU) * 1e3).abs() < 1e-12);
        let ra = RooflineTerms::derive(&fp8, &a100(), 1).unwrap();
        assert!((ra.prefill_ms_per_token - 2.0 * 8.03e9 / (312e12 * PREFILL_MFU) * 1e3).abs() < 1e-12);
        // Tensor parallel: the weights' read halves with fp8, the all-reduced
        // activations stay 16-bit.
        let (f8, f16) =
            (RooflineTerms::derive(&fp8, &h100, 4).unwrap(), RooflineTerms::derive(&llama3_8b(), &h100, 4).unwrap());
        assert!((f8.weight_read_ms / f16.weight_read_ms - 0.5).abs() < 1e-12);
        assert!(f8.comm_ms_per_token > 0.0 && (f8.comm_ms_per_token - f16.comm_ms_per_token).abs() < 1e-15);
    }

    #[test]
    fn a_ring_all_reduce_takes_its_closed_form() {
        // 1 MiB over NVLink at 300 GB/s per direction: base, 2(t−1) steps,
        // 2(t−1)/t of the message.
        let mib = 1048576.0;
        let wire = mib / 300e3;
        for (t, want) in [(2, 30.0 + 1.2 + wire), (4, 30.0 + 3.6 + 1.5 * wire), (8, 30.0 + 8.4 + 1.75 * wire)] {
            let got = allreduce_us(t, mib, NVLINK_STEP_US, 300.0);
            assert!((got - want).abs() < 1e-9, "t = {t}: {got} vs {want}");
        }
        assert!((allreduce_us(4, mib, NVLINK_STEP_US, 300.0) - 38.8430).abs() < 1e-3);
        // PCIe (1 µs a step, 31.5 GB/s) is slower at every size and count,
        // by the bandwidth mostly: 10× at a decode batch's megabytes.
        for t in [2, 4, 8] {
            for bytes in [0.0, 8192.0, mib, 16.0 * mib] {
                assert!(allreduce_us(t, bytes, PCIE_STEP_US, 31.5) > allreduce_us(t, bytes, NVLINK_STEP_US, 300.0));
            }
        }
        let ratio = (allreduce_us(4, 16.0 * mib, PCIE_STEP_US, 31.5) - ALLREDUCE_BASE_US)
            / (allreduce_us(4, 16.0 * mib, NVLINK_STEP_US, 300.0) - ALLREDUCE_BASE_US);
        assert!((8.0..10.0).contains(&ratio), "{ratio}");
    }

    #[test]
    fn tensor_parallel_efficiency_falls_with_the_gpu_count_and_faster_over_pcie() {
        let m = llama3_8b();
        let pcie = Gpu { link_step_latency_us: Some(PCIE_STEP_US), interconnect_gb_per_s: Some(31.5), ..a100() };
        let decode = |gpu: &Gpu, t: u32| {
            let st = RooflineTerms::derive(&m, gpu, t).unwrap().step_time();
            st.iteration(&Batch { seqs: 64, ctx: 64 * 1000, ..Batch::default() }) as f64 / PS_PER_MS
        };
        for gpu in [a100(), pcie] {
            let one = decode(&gpu, 1);
            let efficiency: Vec<f64> = [2, 4, 8].iter().map(|&t| one / (t as f64 * decode(&gpu, t))).collect();
            assert!(efficiency.windows(2).all(|w| w[1] < w[0]) && efficiency[0] < 1.0, "{efficiency:?}");
        }
        for t in [2, 4, 8] {
            assert!(decode(&pcie, t) > decode(&a100(), t));
        }
    }

    #[test]
    fn a_missing_link_is_refused() {
        let m = llama3_8b();
        let no_link = Gpu { interconnect_gb_per_s: None, ..a100() };
        assert_eq!(RooflineTerms::derive(&m, &no_link, 2), Err(Refusal::Missing("gpu_interconnect_gb_per_s")));
        let no_latency = Gpu { link_step_latency_us: None, ..a100() };
        assert_eq!(RooflineTerms::derive(&m, &no_latency, 2), Err(Refusal::Missing("gpu_link_step_latency_us")));
        assert!(RooflineTerms::derive(&m, &no_latency, 1).is_ok());
    }
}
