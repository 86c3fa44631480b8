//! The built-in instance catalog, `models/catalog.toml`, compiled into the
//! binary so that it works from any folder.
//! `profile` holds the model profiles, built in or read from a file.

use std::sync::OnceLock;

use serde::Deserialize;

pub mod profile;

const CATALOG_TOML: &str = include_str!("../../models/catalog.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub source: Source,
    #[serde(rename = "instance")]
    pub instances: Vec<Instance>,
    pub serverless: ServerlessCatalog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub prices: String,
    pub retrieved: String,
    pub region: String,
    /// Where every instance's `network_gbps` comes from.
    pub network: String,
    /// Where every instance's `accelerator_memory_gib` comes from.
    pub accelerator_memory: String,
    /// Where every GPU's bandwidth, FLOP/s and interconnect come from.
    pub gpu: String,
    /// Where every `host_to_gpu_gb_per_s` comes from.
    pub host_to_gpu: String,
    /// Where every `model_storage` comes from.
    pub storage: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub name: String,
    pub vcpus: u32,
    pub memory_gib: f64,
    pub gpus: u32,
    pub gpu: String,
    /// Baseline (sustained) network bandwidth in Gbit/s, not the "up to" burst.
    pub network_gbps: f64,
    /// Total accelerator (GPU / Inferentia) memory of the instance in GiB; 0 on a
    /// CPU instance, whose model memory is host memory (`memory_gib`).
    pub accelerator_memory_gib: f64,
    /// On-demand USD per instance-hour.
    pub price_per_hour: f64,
    /// Per GPU, for the LLM roofline (docs/llm-serving.md): peak memory
    /// bandwidth in GB/s, dense fp16/bf16 tensor TFLOP/s, and the GPU-to-GPU
    /// bandwidth per direction in GB/s. Absent where not yet sourced.
    #[serde(default)]
    pub gpu_memory_bandwidth_gb_per_s: Option<f64>,
    #[serde(default)]
    pub gpu_fp16_tflops: Option<f64>,
    #[serde(default)]
    pub gpu_interconnect_gb_per_s: Option<f64>,
    /// One ring all-reduce step's latency over that link, µs (NVLink or PCIe).
    #[serde(default)]
    pub gpu_link_step_latency_us: Option<f64>,
    /// One GPU's total memory as CUDA reports it (vLLM's `total_gpu_memory`),
    /// GiB, below the nominal size; where sourced.
    #[serde(default)]
    pub gpu_memory_cuda_gib: Option<f64>,
    /// Dense fp8 tensor TFLOP/s per GPU, on GPUs that have fp8 tensor cores.
    #[serde(default)]
    pub gpu_fp8_tflops: Option<f64>,
    /// Per GPU, the host-to-GPU (PCIe) bandwidth per direction in GB/s: what
    /// loading the weights to GPU memory is bounded by.
    #[serde(default)]
    pub host_to_gpu_gb_per_s: Option<f64>,
    /// Where an endpoint keeps downloaded model artifacts: "nvme" (instance
    /// storage) or "ebs-gp2" (an EBS volume, 250 MiB/s at most).
    pub model_storage: String,
    #[serde(default)]
    pub note: String,
}

/// `[serverless]`: the prices, and the memory sizes one may configure.
#[derive(Debug, Deserialize)]
pub struct ServerlessCatalog {
    #[serde(flatten)]
    pub prices: ServerlessPrices,
    pub memory_sizes_gb: Vec<u32>,
    pub source: String,
    pub retrieved: String,
}

/// Prices of serverless inference: what a serverless design is billed at.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, serde::Serialize)]
pub struct ServerlessPrices {
    /// USD per GB-second of compute on on-demand containers.
    pub compute_per_gb_second: f64,
    /// USD per request.
    pub request_price: f64,
    /// USD per GB-second that provisioned concurrency is configured.
    pub provisioned_per_gb_second: f64,
    /// USD per GB-second of compute on provisioned containers.
    pub provisioned_compute_per_gb_second: f64,
}

/// The catalog, parsed once. The file is part of the build and checked by a
/// test, so a parse failure here is a bug, not bad input.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| toml::from_str(CATALOG_TOML).expect("models/catalog.toml is valid"))
}

impl Instance {
    /// Whether the instance has GPUs or other accelerators (Inferentia).
    pub fn has_accelerator(&self) -> bool {
        self.accelerator_memory_gib > 0.0
    }

    /// The memory a model lives in on this instance, in GiB: the accelerator
    /// memory where there is one, otherwise host memory.
    pub fn model_memory_gib(&self) -> f64 {
        if self.has_accelerator() { self.accelerator_memory_gib } else { self.memory_gib }
    }

    /// Memory of one GPU / accelerator chip in GiB (the total over `gpus`); what
    /// one data-parallel replica of a model can use. 0 on a CPU instance.
    pub fn memory_per_accelerator_gib(&self) -> f64 {
        if self.has_accelerator() { self.accelerator_memory_gib / f64::from(self.gpus.max(1)) } else { 0.0 }
    }

    /// Seconds to move `gigabytes` (10^9 bytes) at the baseline bandwidth; the
    /// nominal lower bound of a transfer of that size.
    pub fn transfer_secs(&self, gigabytes: f64) -> f64 {
        gigabytes * 8.0 / self.network_gbps
    }
}

impl Catalog {
    pub fn find(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.instances.iter().map(|i| i.name.as_str())
    }

    /// The table `spotsim catalog` prints.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{:<18} {:>5} {:>9} {:>5}  {:<24} {:>9} {:>11} {:>10}\n",
            "instance", "vcpus", "memory", "gpus", "gpu", "acc mem", "network", "usd/hour"
        );
        for i in &self.instances {
            let gpu = if i.gpu.is_empty() { "-" } else { &i.gpu };
            let acc = if i.has_accelerator() { format!("{} GiB", i.accelerator_memory_gib) } else { "-".to_string() };
            let network = format!("{} Gb/s", i.network_gbps);
            out += &format!(
                "{:<18} {:>5} {:>6} GiB {:>5}  {:<24} {:>9} {:>11} {:>10.4}\n",
                i.name, i.vcpus, i.memory_gib, i.gpus, gpu, acc, network, i.price_per_hour
            );
        }
        out += &format!(
            "\nOn-demand prices in {}, {}; figures as of {} (each figure's date in its note).\n\
             memory is host memory; acc mem is total GPU / accelerator memory; network is the\n\
             baseline bandwidth, not the \"up to\" burst. Sources: `models/catalog.toml`.\n",
            self.source.region, self.source.prices, self.source.retrieved
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_the_required_instances() {
        let c = catalog();
        for name in [
            "ml.p3.2xlarge",
            "ml.p3.8xlarge",
            "ml.p4d.24xlarge",
            "ml.g4dn.xlarge",
            "ml.g5.xlarge",
            "ml.g5.12xlarge",
            "ml.c5.xlarge",
            "ml.c5.2xlarge",
            "ml.m5.xlarge",
        ] {
            let i = c.find(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(i.price_per_hour > 0.0 && i.vcpus > 0 && i.memory_gib > 0.0, "{name}");
        }
        assert_eq!(c.find("ml.p3.2xlarge").unwrap().price_per_hour, 3.825);
        assert!(c.render().contains("ml.g5.12xlarge"));
    }

    #[test]
    fn catalog_has_network_and_accelerator_memory_for_every_instance() {
        let c = catalog();
        assert!(!c.source.network.is_empty() && !c.source.accelerator_memory.is_empty());
        for i in &c.instances {
            assert!(i.network_gbps > 0.0, "{} has no network bandwidth", i.name);
            assert!(!i.note.is_empty(), "{} has no note", i.name);
            if i.gpus > 0 {
                assert!(i.accelerator_memory_gib > 0.0, "{} has GPUs but no accelerator memory", i.name);
            }
            assert!(i.model_memory_gib() > 0.0, "{}", i.name);
        }
        let p3 = c.find("ml.p3.2xlarge").unwrap();
        assert_eq!((p3.network_gbps, p3.accelerator_memory_gib), (2.5, 16.0));
        let p4d = c.find("ml.p4d.24xlarge").unwrap();
        assert_eq!((p4d.network_gbps, p4d.accelerator_memory_gib), (400.0, 320.0));
        let c5 = c.find("ml.c5.xlarge").unwrap();
        assert!(!c5.has_accelerator());
        assert_eq!(c5.model_memory_gib(), 8.0);
        assert_eq!(c.find("ml.inf2.xlarge").unwrap().model_memory_gib(), 32.0);
        assert_eq!(p4d.memory_per_accelerator_gib(), 40.0);
        assert_eq!(c5.memory_per_accelerator_gib(), 0.0);
        // 4 GB over 2.5 Gbit/s: 12.8 s.
        assert!((p3.transfer_secs(4.0) - 12.8).abs() < 1e-9);
        let table = c.render();
        assert!(table.contains("acc mem") && table.contains("Gb/s"));
        assert!(table.contains("320 GiB") && table.contains("400 Gb/s"));
    }

    #[test]
    fn catalog_holds_the_instances_the_model_profiles_use() {
        let c = catalog();
        for name in [
            "ml.c6i.2xlarge",
            "ml.g4dn.xlarge",
            "ml.g5.2xlarge",
            "ml.g5.12xlarge",
            "ml.g5.48xlarge",
            "ml.inf2.xlarge",
            "ml.p3.2xlarge",
            "ml.p3.8xlarge",
            "ml.p3.16xlarge",
            "ml.p4d.24xlarge",
        ] {
            assert!(c.find(name).is_some(), "{name} missing");
        }
    }

    #[test]
    fn every_gpu_type_has_its_roofline_figures() {
        let c = catalog();
        assert!(!c.source.gpu.is_empty());
        for name in [
            "ml.g6.xlarge",
            "ml.g6.2xlarge",
            "ml.g6.12xlarge",
            "ml.g6.48xlarge",
            "ml.g6e.xlarge",
            "ml.g6e.2xlarge",
            "ml.g6e.12xlarge",
            "ml.g6e.48xlarge",
            "ml.p4de.24xlarge",
            "ml.p5e.48xlarge",
            "ml.p5en.48xlarge",
        ] {
            assert!(c.find(name).is_some(), "{name} missing");
        }
        for i in c.instances.iter().filter(|i| i.gpu.starts_with("NVIDIA")) {
            assert!(i.gpu_memory_bandwidth_gb_per_s.is_some_and(|b| b > 0.0), "{}", i.name);
            assert!(i.gpu_fp16_tflops.is_some_and(|f| f > 0.0), "{}", i.name);
            assert_eq!(i.gpu_interconnect_gb_per_s.is_some(), i.gpus > 1, "{}", i.name);
            assert_eq!(i.gpu_link_step_latency_us.is_some(), i.gpus > 1, "{}", i.name);
            assert!(i.note.contains("GPU figures"), "{}", i.name);
        }
    }
}
