//! `recommend --emit sagemaker DIR`: the chosen design as the request bodies
//! of SageMaker's and Application Auto Scaling's APIs, one JSON file per
//! call, for `aws … --cli-input-json file://FILE` (docs/recommend.md,
//! "Emitting SageMaker API requests").
//!
//! The bodies are these structs, serialised with the APIs' member names; the
//! CI holds every emitted file to botocore's service models
//! (`.ci/validate_sagemaker.py`). What spotsim cannot know (the model's name,
//! an S3 path) is a placeholder that the models' patterns accept, spelt
//! `REPLACE-WITH-…`. A design SageMaker cannot run as simulated is refused
//! with the key that makes it so.

use serde::{Deserialize, Serialize};

use crate::experiment::{Experiment, InputError};
use crate::scenarios::inference::autoscaler::{
    AutoscalingPolicy, DEFAULT_PERIOD, DEFAULT_SCALE_IN_DATAPOINTS, DEFAULT_SCALE_IN_RATIO,
    DEFAULT_SCALE_OUT_DATAPOINTS, HIGH_RES_PERIOD, HIGH_RES_SCALE_IN_DATAPOINTS, ScalingMetric,
};
use crate::scenarios::inference::design::{Endpoint, Mode};
use crate::scenarios::inference::llm::Routing;
use crate::spot::Market;

/// The model `CreateModel` made (its image, weights and role): spotsim
/// writes no `CreateModel`.
pub const MODEL_PLACEHOLDER: &str = "REPLACE-WITH-MODEL-NAME";
/// Where an asynchronous endpoint writes its answers.
pub const S3_PLACEHOLDER: &str = "s3://REPLACE-WITH-BUCKET/async-output";
/// The one production variant; SageMaker's console calls it so too.
pub const VARIANT: &str = "AllTraffic";
/// Longest name SageMaker takes for an endpoint, a configuration or a variant.
const MAX_NAME: usize = 63;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEndpointConfig {
    pub endpoint_config_name: String,
    pub production_variants: Vec<ProductionVariant>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub async_inference_config: Option<AsyncInferenceConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductionVariant {
    pub variant_name: String,
    pub model_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub instance_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub initial_instance_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub routing_config: Option<RoutingConfig>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub serverless_config: Option<ServerlessConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingConfig {
    pub routing_strategy: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerlessConfig {
    #[serde(rename = "MemorySizeInMB")]
    pub memory_size_in_mb: u32,
    pub max_concurrency: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provisioned_concurrency: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AsyncInferenceConfig {
    pub output_config: AsyncOutputConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AsyncOutputConfig {
    pub s3_output_path: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEndpoint {
    pub endpoint_name: String,
    pub endpoint_config_name: String,
}

/// What Application Auto Scaling scales, and between which limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterScalableTarget {
    pub service_namespace: String,
    pub resource_id: String,
    pub scalable_dimension: String,
    pub min_capacity: u32,
    pub max_capacity: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutScalingPolicy {
    pub policy_name: String,
    pub service_namespace: String,
    pub resource_id: String,
    pub scalable_dimension: String,
    pub policy_type: String,
    pub target_tracking_scaling_policy_configuration: TargetTracking,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetTracking {
    pub target_value: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub predefined_metric_specification: Option<PredefinedMetric>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub customized_metric_specification: Option<CustomizedMetric>,
    /// Whole seconds, as the API takes them.
    pub scale_out_cooldown: u64,
    pub scale_in_cooldown: u64,
    pub disable_scale_in: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PredefinedMetric {
    pub predefined_metric_type: String,
}

/// A CloudWatch metric by name: asynchronous endpoints' backlog has no
/// predefined type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomizedMetric {
    pub metric_name: String,
    pub namespace: String,
    pub dimensions: Vec<MetricDimension>,
    pub statistic: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDimension {
    pub name: String,
    pub value: String,
}

/// A scheduled change of the limits, every day at the same time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutScheduledAction {
    pub service_namespace: String,
    pub scheduled_action_name: String,
    pub resource_id: String,
    pub scalable_dimension: String,
    pub schedule: String,
    pub scalable_target_action: ScalableTargetAction,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTargetAction {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub min_capacity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_capacity: Option<u32>,
}

/// The request bodies of one design, in the order the calls are made, and
/// what the simulation had that the API cannot say.
#[derive(Debug)]
pub struct Emission {
    pub endpoint_name: String,
    pub files: Vec<(String, Vec<u8>)>,
    pub notes: Vec<String>,
}

/// Refuses, before anything runs, an experiment that has no endpoint to emit.
pub fn check(experiment: &Experiment) -> Result<(), InputError> {
    if experiment.points.iter().all(|p| p.design.downcast::<Endpoint>().is_some()) {
        return Ok(());
    }
    let table = if experiment.origin_of("training").line.is_some() { "training" } else { "inference" };
    Err(InputError::new(
        &experiment.origin_of(table),
        Some(table),
        "`--emit sagemaker` writes an endpoint's configuration, and this experiment is not an [inference] endpoint",
    )
    .with_hint(Some("drop --emit: a training job's recommendation has no endpoint to create".into())))
}

/// A SageMaker name (`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`) from `text`: every
/// run of other characters becomes one hyphen, and `suffix` is kept whole.
pub fn sagemaker_name(text: &str, suffix: &str) -> String {
    let mut name = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    name.truncate(MAX_NAME - suffix.len());
    let mut name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        name = "spotsim".into();
    }
    name + suffix
}

/// The request bodies for point `point` of `experiment`, or the reason
/// SageMaker cannot run it as simulated.
pub fn emit(experiment: &Experiment, point: usize) -> Result<Emission, InputError> {
    let endpoint = experiment.points[point]
        .design
        .downcast::<Endpoint>()
        .ok_or_else(|| check(experiment).expect_err("not an endpoint"))?;
    let refuse = |key: &str, message: String, hint: &str| {
        let table = key.split('.').next().unwrap_or(key);
        InputError::new(&experiment.origin_of(table), Some(key), format!("point {point}: {message}"))
            .with_hint(Some(hint.into()))
    };
    if endpoint.market == Market::Spot {
        return Err(refuse(
            "inference.market",
            "SageMaker endpoints have no spot instances, so a spot endpoint has no SageMaker equivalent".into(),
            "recommend among on-demand designs to emit one",
        ));
    }
    let name = sagemaker_name(&experiment.name, "");
    let config_name = sagemaker_name(&experiment.name, "-config");
    let mut notes = Vec::new();
    if endpoint.zones.is_some() {
        notes.push("[zones]: SageMaker spreads an endpoint's instances over zones itself; no API key says how".into());
    }
    let mut variant = ProductionVariant {
        variant_name: VARIANT.into(),
        model_name: MODEL_PLACEHOLDER.into(),
        instance_type: None,
        initial_instance_count: None,
        routing_config: None,
        serverless_config: None,
    };
    if endpoint.mode == Mode::Serverless {
        let terms = endpoint.serverless.as_ref().expect("a serverless design has its terms");
        variant.serverless_config = Some(ServerlessConfig {
            memory_size_in_mb: (terms.memory_gb * 1024.0).round() as u32,
            max_concurrency: terms.max_concurrency,
            provisioned_concurrency: (terms.provisioned_concurrency > 0).then_some(terms.provisioned_concurrency),
        });
    } else {
        let Some(instance) = &endpoint.instance else {
            return Err(refuse(
                "inference.instance",
                "the design gives a price but no instance type, and SageMaker needs the type".into(),
                "name the type, such as instance = \"ml.g5.xlarge\"",
            ));
        };
        variant.instance_type = Some(instance.clone());
        variant.initial_instance_count = Some(endpoint.initial_instances.max(1));
        variant.routing_config = Some(RoutingConfig {
            routing_strategy: routing(endpoint, &mut notes)
                .map_err(|m| {
                    refuse("inference.llm.routing", m, "route by least-outstanding requests, SageMaker's default")
                })?
                .into(),
        });
    }
    let asynchronous = endpoint.mode == Mode::Async;
    let config = CreateEndpointConfig {
        endpoint_config_name: config_name.clone(),
        production_variants: vec![variant],
        async_inference_config: asynchronous.then(|| AsyncInferenceConfig {
            output_config: AsyncOutputConfig { s3_output_path: S3_PLACEHOLDER.into() },
        }),
    };
    let mut files = vec![
        ("CreateEndpointConfig.json".to_string(), to_json(&config)),
        (
            "CreateEndpoint.json".to_string(),
            to_json(&CreateEndpoint { endpoint_name: name.clone(), endpoint_config_name: config_name }),
        ),
    ];
    if let Some(policy) = &endpoint.autoscaling {
        files.extend(scaling_files(&name, policy, &mut notes).map_err(|(key, m, hint)| refuse(key, m, hint))?);
    }
    Ok(Emission { endpoint_name: name, files, notes })
}

/// SageMaker's routing strategy for the design's routing.
fn routing(endpoint: &Endpoint, notes: &mut Vec<String>) -> Result<&'static str, String> {
    match endpoint.llm.as_ref().map(|l| l.routing) {
        // One queue before the fleet is least-outstanding routing at its best.
        None | Some(Routing::LeastOutstanding) => Ok("LEAST_OUTSTANDING_REQUESTS"),
        Some(Routing::SessionAffinity) => {
            notes.push(
                "routing = \"session-affinity\": SageMaker's stateful sessions are per request (the client sends \
                 X-Amzn-SageMaker-Session-Id); the variant routes new sessions by least-outstanding requests"
                    .into(),
            );
            Ok("LEAST_OUTSTANDING_REQUESTS")
        }
        Some(Routing::PrefixAware) => {
            Err("routing = \"prefix-aware\" has no SageMaker equivalent: its routing strategies are \
             LEAST_OUTSTANDING_REQUESTS and RANDOM"
                .into())
        }
    }
}

/// A refusal from the scaling part: the key, the message, the hint.
type Refusal = (&'static str, String, &'static str);

/// `RegisterScalableTarget`, `PutScalingPolicy` and the scheduled actions of
/// a variant scaled by instances.
fn scaling_files(
    name: &str,
    policy: &AutoscalingPolicy,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, Vec<u8>)>, Refusal> {
    let zero = policy.min == 0 || policy.scheduled.iter().any(|a| a.min == Some(0));
    if zero {
        return Err((
            "inference.autoscaling.min",
            "a minimum of 0 instances: SageMaker scales to zero only inference components and asynchronous \
             endpoints, from a step-scaling alarm that spotsim does not emit yet"
                .into(),
            "emit a design with min >= 1",
        ));
    }
    let metric = match policy.metric {
        ScalingMetric::InvocationsPerInstance => Metric::Predefined("SageMakerVariantInvocationsPerInstance"),
        ScalingMetric::ConcurrentRequestsPerCopy => {
            Metric::Predefined("SageMakerVariantConcurrentRequestsPerModelHighResolution")
        }
        ScalingMetric::BacklogPerInstance => Metric::Custom("ApproximateBacklogSizePerInstance"),
        ScalingMetric::Utilization => {
            return Err((
                "inference.autoscaling.metric",
                "\"utilization\" (the busy-worker share) is no metric SageMaker publishes".into(),
                "scale on \"invocations-per-instance\" or \"concurrent-requests-per-copy\" to emit the design",
            ));
        }
    };
    alarm_notes(policy, notes);
    let resource_id = format!("endpoint/{name}/variant/{VARIANT}");
    let dimension = "sagemaker:variant:DesiredInstanceCount";
    let target = RegisterScalableTarget {
        service_namespace: "sagemaker".into(),
        resource_id: resource_id.clone(),
        scalable_dimension: dimension.into(),
        min_capacity: policy.min,
        max_capacity: policy.max,
    };
    let (predefined, customized) = match metric {
        Metric::Predefined(t) => (Some(PredefinedMetric { predefined_metric_type: t.into() }), None),
        Metric::Custom(m) => (
            None,
            Some(CustomizedMetric {
                metric_name: m.into(),
                namespace: "AWS/SageMaker".into(),
                dimensions: vec![MetricDimension { name: "EndpointName".into(), value: name.into() }],
                statistic: "Average".into(),
            }),
        ),
    };
    let scaling = PutScalingPolicy {
        policy_name: format!("{name}-target-tracking"),
        service_namespace: "sagemaker".into(),
        resource_id: resource_id.clone(),
        scalable_dimension: dimension.into(),
        policy_type: "TargetTrackingScaling".into(),
        target_tracking_scaling_policy_configuration: TargetTracking {
            target_value: policy.target,
            predefined_metric_specification: predefined,
            customized_metric_specification: customized,
            scale_out_cooldown: whole_seconds(policy.scale_out_cooldown.as_secs_f64(), "scale_out_cooldown", notes),
            scale_in_cooldown: whole_seconds(policy.scale_in_cooldown.as_secs_f64(), "scale_in_cooldown", notes),
            disable_scale_in: policy.disable_scale_in,
        },
    };
    let mut files = vec![
        (format!("RegisterScalableTarget-{VARIANT}.json"), to_json(&target)),
        (format!("PutScalingPolicy-{VARIANT}.json"), to_json(&scaling)),
    ];
    for (i, action) in policy.scheduled.iter().enumerate() {
        let minutes = action.at.as_secs_f64() / 60.0;
        if minutes >= 24.0 * 60.0 || minutes.fract() != 0.0 {
            return Err((
                "inference.autoscaling.scheduled",
                format!("a scheduled action at {} is not a whole minute of the first day", action.at),
                "give scheduled actions at whole minutes before \"24h\": they are emitted as daily cron schedules",
            ));
        }
        let (hour, minute) = (minutes as u64 / 60, minutes as u64 % 60);
        let body = PutScheduledAction {
            service_namespace: "sagemaker".into(),
            scheduled_action_name: format!("{name}-scheduled-{}", i + 1),
            resource_id: resource_id.clone(),
            scalable_dimension: dimension.into(),
            schedule: format!("cron({minute} {hour} * * ? *)"),
            scalable_target_action: ScalableTargetAction { min_capacity: action.min, max_capacity: action.max },
        };
        files.push((format!("PutScheduledAction-{}.json", i + 1), to_json(&body)));
    }
    if !policy.scheduled.is_empty() {
        notes.push(
            "scheduled actions: the simulation's time 0 is taken as midnight UTC, and each action repeats daily".into(),
        );
    }
    Ok(files)
}

enum Metric {
    Predefined(&'static str),
    Custom(&'static str),
}

/// What target tracking leaves to AWS: the alarms its policy creates. A
/// design that simulated other alarms than AWS's gets a note, not a refusal:
/// the policy is still the one to take, but it will not act as simulated.
fn alarm_notes(policy: &AutoscalingPolicy, notes: &mut Vec<String>) {
    let high_res = policy.metric.high_resolution();
    let period = if high_res { HIGH_RES_PERIOD } else { DEFAULT_PERIOD };
    let scale_in = if high_res { HIGH_RES_SCALE_IN_DATAPOINTS } else { DEFAULT_SCALE_IN_DATAPOINTS };
    let differs = [
        ("period", policy.period != period),
        ("scale_out_datapoints", policy.scale_out_datapoints != DEFAULT_SCALE_OUT_DATAPOINTS),
        ("scale_in_datapoints", policy.scale_in_datapoints != scale_in),
        ("scale_in_ratio", policy.scale_in_ratio != DEFAULT_SCALE_IN_RATIO),
    ];
    let keys: Vec<&str> = differs.iter().filter(|(_, d)| *d).map(|(k, _)| *k).collect();
    if !keys.is_empty() {
        notes.push(format!(
            "inference.autoscaling.{}: not AWS's; target tracking creates its own alarms, and no API key sets them",
            keys.join(", ")
        ));
    }
}

/// Seconds as the API's whole seconds; a fraction is rounded, and said.
fn whole_seconds(seconds: f64, key: &str, notes: &mut Vec<String>) -> u64 {
    let whole = seconds.round();
    if whole != seconds {
        notes.push(format!(
            "inference.autoscaling.{key}: {seconds} s rounded to {whole} s (the API takes whole seconds)"
        ));
    }
    whole as u64
}

fn to_json(body: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(body).expect("plain structs serialise");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::experiment::{Fit, load_text};

    fn experiment(text: &str) -> Experiment {
        load_text(text, Path::new("emit.toml"), Path::new("."), &[], Fit::Mark).expect("valid")
    }

    const ENDPOINT: &str = r#"name = "Chat endpoint (v2)"
[inference]
instance = "ml.g5.xlarge"
workers = 4
service_time = "50ms"
autoscaling = { metric = "invocations-per-instance", target = 700, min = 2, max = 9, scale_out_cooldown = "1m", scale_in_cooldown = "10m" }
[traffic]
synthetic = { mean_rps = 10 }
duration = "1h"
"#;

    fn body<T: for<'de> Deserialize<'de>>(emission: &Emission, file: &str) -> T {
        let (_, bytes) = emission.files.iter().find(|(n, _)| n == file).unwrap_or_else(|| panic!("{file}"));
        serde_json::from_slice(bytes).expect("parses")
    }

    #[test]
    fn names_follow_sagemakers_pattern() {
        assert_eq!(sagemaker_name("Chat endpoint (v2)", ""), "Chat-endpoint-v2");
        assert_eq!(sagemaker_name("__x__", "-config"), "x-config");
        assert_eq!(sagemaker_name("---", ""), "spotsim");
        let long = sagemaker_name(&"a".repeat(100), "-config");
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("-config"));
    }

    #[test]
    fn a_known_design_gives_its_values() {
        let e = emit(&experiment(ENDPOINT), 0).unwrap();
        let names: Vec<&str> = e.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "CreateEndpointConfig.json",
                "CreateEndpoint.json",
                "RegisterScalableTarget-AllTraffic.json",
                "PutScalingPolicy-AllTraffic.json"
            ]
        );
        let config: CreateEndpointConfig = body(&e, "CreateEndpointConfig.json");
        assert_eq!(config.endpoint_config_name, "Chat-endpoint-v2-config");
        let v = &config.production_variants[0];
        assert_eq!(v.instance_type.as_deref(), Some("ml.g5.xlarge"));
        assert_eq!(v.initial_instance_count, Some(2));
        assert_eq!(v.routing_config.as_ref().unwrap().routing_strategy, "LEAST_OUTSTANDING_REQUESTS");
        let target: RegisterScalableTarget = body(&e, "RegisterScalableTarget-AllTraffic.json");
        assert_eq!(target.resource_id, "endpoint/Chat-endpoint-v2/variant/AllTraffic");
        assert_eq!((target.min_capacity, target.max_capacity), (2, 9));
        let policy: PutScalingPolicy = body(&e, "PutScalingPolicy-AllTraffic.json");
        let tt = &policy.target_tracking_scaling_policy_configuration;
        assert_eq!(tt.target_value, 700.0);
        assert_eq!((tt.scale_out_cooldown, tt.scale_in_cooldown), (60, 600));
        assert_eq!(
            tt.predefined_metric_specification.as_ref().unwrap().predefined_metric_type,
            "SageMakerVariantInvocationsPerInstance"
        );
        assert!(e.notes.is_empty(), "{:?}", e.notes);
    }

    #[test]
    fn bodies_round_trip_and_carry_the_apis_member_names() {
        let e = emit(&experiment(ENDPOINT), 0).unwrap();
        let config: CreateEndpointConfig = body(&e, "CreateEndpointConfig.json");
        assert_eq!(to_json(&config), e.files[0].1);
        let policy: PutScalingPolicy = body(&e, "PutScalingPolicy-AllTraffic.json");
        assert_eq!(to_json(&policy), e.files[3].1);
        let raw: serde_json::Value = serde_json::from_slice(&e.files[3].1).unwrap();
        let tt = &raw["TargetTrackingScalingPolicyConfiguration"];
        assert_eq!(tt["ScaleInCooldown"], 600);
        assert_eq!(
            tt["PredefinedMetricSpecification"]["PredefinedMetricType"],
            "SageMakerVariantInvocationsPerInstance"
        );
        assert!(tt.get("CustomizedMetricSpecification").is_none());
    }
}
