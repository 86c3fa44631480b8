//! Reads `startup` of `[inference]`: one distribution, or the table
//! `[inference.startup]` of stages, each given or derived from the model's
//! size and the catalog's bandwidths (docs/autoscaling.md "Start-up in stages").

use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::catalog::profile::Profile;
use crate::catalog::{Instance, catalog};
use crate::input::section::{Result, Section};
use crate::input::tree::Value;
use crate::scenarios::inference::startup::{Stages, Startup};

/// Today's default: one distribution for the whole start-up.
pub const DEFAULT_STARTUP: Dist = Dist::Uniform { min: 240.0, max: 480.0 };

// The fitted figures below come from AWS's container-caching post, Qwen3-8B
// on ml.g6.2xlarge with the 17.7 GB LMI image (https://aws.amazon.com/blogs/
// machine-learning/introducing-container-caching-in-amazon-sagemaker-ai-for-
// faster-model-scaling/, 2026-06-16): image pull 333 s beside an S3 download
// of 168 s, 525 s in all; with caching no pull, the download 77 s, 258 s.
// Held-out checks are its three customers' P50s (docs/autoscaling.md).

/// The LMI container image of that post, GB (compressed, as pulled).
pub const DEFAULT_IMAGE_GB: f64 = 17.7;
/// ECR image pull, layers fetched and extracted: 17.7 GB in 333 s.
pub const ECR_PULL_MB_PER_S: f64 = 17.7e3 / 333.0;
/// SageMaker's S3 model download on its own: Qwen3-8B's 16.4 GB (8.2e9
/// parameters x 2 bytes) in 77 s; about 2.4 S3 connections at the 85-90 MB/s
/// AWS gives per connection (https://docs.aws.amazon.com/AmazonS3/latest/
/// userguide/optimizing-performance-design-patterns.html, "Horizontal
/// scaling and request parallelization").
pub const S3_DOWNLOAD_MB_PER_S: f64 = 16.4e3 / 77.0;
/// The download keeps this share of its rate while the image pull runs
/// beside it: 77 s alone, 168 s beside the 333 s pull.
pub const DOWNLOAD_SHARE_WHILE_PULLING: f64 = 77.0 / 168.0;
/// Provisioning, engine start-up and the health check have no published
/// split: together they are the post's remainder (525 - 333 and 258 - 77,
/// less the load, about 186 s), split as assumed in docs/autoscaling.md.
pub const DEFAULT_PROVISION: SimTime = SimTime::from_secs(60);
pub const DEFAULT_ENGINE_INIT: SimTime = SimTime::from_secs(96);
pub const DEFAULT_HEALTH_CHECK: SimTime = SimTime::from_secs(30);

/// `startup` of `[inference]` (`s`), on `instance` with `profile`.
pub(super) fn read_startup(s: &Section, instance: Option<&str>, profile: Option<&Profile>) -> Result<Startup> {
    let staged = s.entry("startup").is_some_and(|e| match &e.node.value {
        Value::Table(t) => t.get("dist").is_none(),
        _ => false,
    });
    if !staged {
        return Ok(Startup::Single(s.dist("startup")?.unwrap_or(DEFAULT_STARTUP)));
    }
    let t = s.section("startup")?.expect("checked");
    read_stages(&t, instance, profile).map(|st| Startup::Staged(Box::new(st)))
}

/// What a derived stage needs to know, or why it cannot know it.
struct Derive<'a, 'b> {
    t: &'a Section<'b>,
    instance: Option<&'static Instance>,
    instance_name: Option<&'a str>,
    weights_gb: Option<f64>,
}

impl Derive<'_, '_> {
    fn instance(&self, stage: &str, what: &str) -> Result<&'static Instance> {
        self.instance.ok_or_else(|| {
            let why = match self.instance_name {
                Some(name) => format!("`inference.instance` \"{name}\" is not in the catalog"),
                None => "the design names no `inference.instance`".to_string(),
            };
            self.t.missing(stage, &format!("a distribution: it is derived from the instance's {what}, and {why}"))
        })
    }

    fn weights_gb(&self, stage: &str) -> Result<f64> {
        self.weights_gb.ok_or_else(|| {
            self.t.missing(
                stage,
                "a distribution, or `weights_size` (such as \"16GB\"): the profile has no [model] to size the \
                 weights from (parameters x bytes per parameter)",
            )
        })
    }
}

fn seconds(secs: f64) -> Dist {
    Dist::Constant(SimTime::from_secs_f64(secs))
}

fn read_stages(t: &Section, instance_name: Option<&str>, profile: Option<&Profile>) -> Result<Stages> {
    let caching = t.boolean("container_caching")?.unwrap_or(false);
    let fast_loader = t.boolean("fast_model_loader")?.unwrap_or(false);
    let image_gb = t.gigabytes("image_size")?.unwrap_or(DEFAULT_IMAGE_GB);
    let weights_gb = match t.gigabytes("weights_size")? {
        Some(g) => Some(g),
        None => profile.and_then(|p| p.model.as_ref()).map(|m| m.weight_bytes() / 1e9),
    };
    let derive = Derive { t, instance: instance_name.and_then(|n| catalog().find(n)), instance_name, weights_gb };
    let conflict = |key: &'static str, switch: &str, why: &str| -> Result<()> {
        match t.entry(key) {
            Some(entry) => Err(t
                .error(entry, format!("`{switch} = true` {why}: `{key}` does not apply"))
                .with_hint(Some(format!("remove `{key}`, or set `{switch} = false`")))),
            None => Ok(()),
        }
    };
    if caching {
        conflict("image_pull", "container_caching", "puts the image on the instance before it starts")?;
        conflict("image_size", "container_caching", "puts the image on the instance before it starts")?;
    }
    if fast_loader {
        conflict("weights_load", "fast_model_loader", "streams the weights from S3 to the GPUs as they download")?;
    }
    let provision = t.dist("provision")?.unwrap_or(Dist::Constant(DEFAULT_PROVISION));
    let image_pull = match t.dist("image_pull")? {
        _ if caching => Dist::Constant(SimTime::ZERO),
        Some(d) => d,
        None => seconds(image_gb * 1e3 / ECR_PULL_MB_PER_S),
    };
    let given_download = t.dist("weights_download")?;
    let derived_download = given_download.is_none();
    let weights_download = match given_download {
        Some(d) => d,
        None => {
            let gb = derive.weights_gb("weights_download")?;
            let instance = derive.instance("weights_download", "network bandwidth")?;
            seconds(gb * 1e3 / download_rate_mb_s(instance, fast_loader))
        }
    };
    let weights_load = match t.dist("weights_load")? {
        _ if fast_loader => Dist::Constant(SimTime::ZERO),
        Some(d) => d,
        None => {
            let gb = derive.weights_gb("weights_load")?;
            let instance = derive.instance("weights_load", "host-to-GPU bandwidth (`host_to_gpu_gb_per_s`)")?;
            let link = instance.host_to_gpu_gb_per_s.ok_or_else(|| {
                t.missing(
                    "weights_load",
                    &format!("a distribution: the catalog has no host-to-GPU bandwidth for {}", instance.name),
                )
            })?;
            seconds(gb / link)
        }
    };
    let engine_init = t.dist("engine_init")?.unwrap_or(Dist::Constant(DEFAULT_ENGINE_INIT));
    let health_check = t.dist("health_check")?.unwrap_or(Dist::Constant(DEFAULT_HEALTH_CHECK));
    t.finish()?;
    Ok(Stages {
        provision,
        image_pull,
        weights_download,
        weights_load,
        engine_init,
        health_check,
        // A given download is as measured; a derived one is the download alone.
        download_share_while_pulling: if derived_download { DOWNLOAD_SHARE_WHILE_PULLING } else { 1.0 },
    })
}

/// EBS gp2's most per volume, 250 MiB/s (the catalog's `[source] storage`).
pub const EBS_GP2_MAX_MB_PER_S: f64 = 250.0 * 1.048_576;

/// The derived download's rate in MB/s on `instance`: SageMaker's
/// download, within the instance's network and, onto an EBS volume, gp2's
/// limit; or with Fast Model Loader the weights streamed to the GPUs (no
/// disk) over enough S3 connections to fill the instance's network (its
/// re:Invent 2024 post: "streaming model weights directly from Amazon S3 to
/// the accelerator", https://aws.amazon.com/blogs/machine-learning/
/// introducing-fast-model-loader-in-sagemaker-inference-accelerate-
/// autoscaling-for-your-large-language-models-llms-part-1/).
pub fn download_rate_mb_s(instance: &Instance, fast_model_loader: bool) -> f64 {
    let network_mb_s = instance.network_gbps * 125.0;
    let disk_mb_s = if instance.model_storage == "ebs-gp2" { EBS_GP2_MAX_MB_PER_S } else { f64::INFINITY };
    if fast_model_loader { network_mb_s } else { S3_DOWNLOAD_MB_PER_S.min(network_mb_s).min(disk_mb_s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_download_rate_is_the_least_of_s3_the_network_and_the_disk() {
        let find = |n: &str| catalog().find(n).expect("in the catalog");
        // ml.g6.2xlarge: NVMe, 625 MB/s of network: SageMaker's 213 MB/s.
        assert_eq!(download_rate_mb_s(find("ml.g6.2xlarge"), false), S3_DOWNLOAD_MB_PER_S);
        assert_eq!(download_rate_mb_s(find("ml.g6.2xlarge"), true), 625.0);
        // ml.c5.xlarge: 1.25 Gbit/s, below both.
        assert_eq!(download_rate_mb_s(find("ml.c5.xlarge"), false), 156.25);
        // An EBS-only type: gp2's 262 MB/s is above S3's 213 MB/s, so S3 binds.
        let p3 = find("ml.p3.2xlarge");
        assert_eq!(p3.model_storage, "ebs-gp2");
        assert_eq!(download_rate_mb_s(p3, false), S3_DOWNLOAD_MB_PER_S.min(p3.network_gbps * 125.0));
        for i in &catalog().instances {
            assert!(["nvme", "ebs-gp2"].contains(&i.model_storage.as_str()), "{}", i.name);
            assert_eq!(i.host_to_gpu_gb_per_s.is_some(), i.gpu.starts_with("NVIDIA"), "{}", i.name);
        }
    }
}
