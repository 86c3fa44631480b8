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
use crate::scenarios::Design;
use crate::scenarios::inference::autoscaler::{
    AutoscalingPolicy, DEFAULT_PERIOD, DEFAULT_SCALE_IN_DATAPOINTS, DEFAULT_SCALE_IN_RATIO,
    DEFAULT_SCALE_OUT_DATAPOINTS, HIGH_RES_PERIOD, HIGH_RES_SCALE_IN_DATAPOINTS, ScalingMetric,
};
use crate::scenarios::inference::components::{Component, ComponentsEndpoint};
use crate::scenarios::inference::design::{Endpoint, Mode};
use crate::scenarios::inference::llm::Routing;
use crate::spot::Market;

/// The model `CreateModel` made (its image, weights and role): spotsim
/// writes no `CreateModel`.
pub const MODEL_PLACEHOLDER: &str = "REPLACE-WITH-MODEL-NAME";
/// The role an endpoint with inference components runs its models as.
pub const ROLE_PLACEHOLDER: &str = "arn:aws:iam::000000000000:role/REPLACE-WITH-SAGEMAKER-EXECUTION-ROLE";
/// The step-scaling policy's ARN, which `PutScalingPolicy` returns.
pub const POLICY_ARN_PLACEHOLDER: &str = "REPLACE-WITH-PolicyARN-THAT-PutScalingPolicy-RETURNS";
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
    /// An endpoint with inference components names the role its models run as.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub execution_role_arn: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductionVariant {
    pub variant_name: String,
    /// A single-model variant's model; none with inference components.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub model_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub instance_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub initial_instance_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub managed_instance_scaling: Option<ManagedInstanceScaling>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub routing_config: Option<RoutingConfig>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub serverless_config: Option<ServerlessConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManagedInstanceScaling {
    pub status: String,
    pub min_instance_count: u32,
    pub max_instance_count: u32,
}

/// One model on an endpoint's instances, as copies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInferenceComponent {
    pub inference_component_name: String,
    pub endpoint_name: String,
    pub variant_name: String,
    pub specification: ComponentSpecification,
    pub runtime_config: ComponentRuntimeConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentSpecification {
    pub model_name: String,
    pub compute_resource_requirements: ComputeResourceRequirements,
}

/// What one copy reserves on its instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComputeResourceRequirements {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub number_of_accelerator_devices_required: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub number_of_cpu_cores_required: Option<f64>,
    pub min_memory_required_in_mb: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentRuntimeConfig {
    pub copy_count: u32,
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
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_tracking_scaling_policy_configuration: Option<TargetTracking>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step_scaling_policy_configuration: Option<StepScaling>,
}

/// The step-scaling policy that wakes a component from zero copies: one
/// copy when its alarm fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepScaling {
    pub adjustment_type: String,
    pub metric_aggregation_type: String,
    pub cooldown: u64,
    pub step_adjustments: Vec<StepAdjustment>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepAdjustment {
    pub metric_interval_lower_bound: f64,
    pub scaling_adjustment: i32,
}

/// CloudWatch's alarm on the requests that found no copy, which invokes the
/// step-scaling policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMetricAlarm {
    pub alarm_name: String,
    pub metric_name: String,
    pub namespace: String,
    pub statistic: String,
    pub dimensions: Vec<MetricDimension>,
    pub period: u64,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub threshold: f64,
    pub comparison_operator: String,
    pub treat_missing_data: String,
    pub alarm_actions: Vec<String>,
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
    /// The endpoints the files create: one, or one a component when the
    /// components do not share instances.
    pub endpoints: Vec<String>,
    pub files: Vec<(String, Vec<u8>)>,
    pub notes: Vec<String>,
}

/// Refuses, before anything runs, an experiment that has no endpoint to emit.
pub fn check(experiment: &Experiment) -> Result<(), InputError> {
    let endpoint = |d: &dyn Design| d.downcast::<Endpoint>().is_some() || d.downcast::<ComponentsEndpoint>().is_some();
    if experiment.points.iter().all(|p| endpoint(&*p.design)) {
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

/// A refusal: the key that makes the design impossible, why, and what to do.
type Refusal = (&'static str, String, &'static str);

/// The request bodies for point `point` of `experiment`, or the reason
/// SageMaker cannot run it as simulated.
pub fn emit(experiment: &Experiment, point: usize) -> Result<Emission, InputError> {
    let design = &*experiment.points[point].design;
    let mut notes = Vec::new();
    let result = match (design.downcast::<Endpoint>(), design.downcast::<ComponentsEndpoint>()) {
        (Some(endpoint), _) => single_model(&experiment.name, endpoint, &mut notes),
        (_, Some(endpoint)) => with_components(&experiment.name, endpoint, &mut notes),
        _ => return Err(check(experiment).expect_err("not an endpoint")),
    };
    let files = result.map_err(|(key, message, hint)| {
        let table = key.split('.').next().unwrap_or(key);
        InputError::new(&experiment.origin_of(table), Some(key), format!("point {point}: {message}"))
            .with_hint(Some(hint.into()))
    })?;
    let endpoints = files
        .iter()
        .filter(|(file, _)| file.starts_with("CreateEndpoint") && !file.starts_with("CreateEndpointConfig"))
        .map(|(_, bytes)| serde_json::from_slice::<CreateEndpoint>(bytes).expect("written above").endpoint_name)
        .collect();
    Ok(Emission { endpoints, files, notes })
}

type Files = Vec<(String, Vec<u8>)>;

/// An endpoint of one model, scaled by instances.
fn single_model(experiment: &str, endpoint: &Endpoint, notes: &mut Vec<String>) -> Result<Files, Refusal> {
    if endpoint.market == Market::Spot {
        return Err((
            "inference.market",
            "SageMaker endpoints have no spot instances, so a spot endpoint has no SageMaker equivalent".into(),
            "recommend among on-demand designs to emit one",
        ));
    }
    if endpoint.zones.is_some() {
        notes.push("[zones]: SageMaker spreads an endpoint's instances over zones itself; no API key says how".into());
    }
    let name = sagemaker_name(experiment, "");
    let mut variant = ProductionVariant {
        variant_name: VARIANT.into(),
        model_name: Some(MODEL_PLACEHOLDER.into()),
        instance_type: None,
        initial_instance_count: None,
        managed_instance_scaling: None,
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
            return Err((
                "inference.instance",
                "the design gives a price but no instance type, and SageMaker needs the type".into(),
                "name the type, such as instance = \"ml.g5.xlarge\"",
            ));
        };
        variant.instance_type = Some(instance.clone());
        variant.initial_instance_count = Some(endpoint.initial_instances.max(1));
        variant.routing_config = Some(routing([endpoint], notes)?);
    }
    let asynchronous = endpoint.mode == Mode::Async;
    let config = CreateEndpointConfig {
        endpoint_config_name: sagemaker_name(experiment, "-config"),
        production_variants: vec![variant],
        async_inference_config: asynchronous.then(|| AsyncInferenceConfig {
            output_config: AsyncOutputConfig { s3_output_path: S3_PLACEHOLDER.into() },
        }),
        execution_role_arn: None,
    };
    let mut files = endpoint_files("", &name, &config);
    if let Some(policy) = &endpoint.autoscaling {
        if !asynchronous && (policy.min == 0 || policy.scheduled.iter().any(|a| a.min == Some(0))) {
            return Err((
                "inference.autoscaling.min",
                "a minimum of 0 instances: SageMaker scales a real-time endpoint to zero only with inference \
                 components"
                    .into(),
                "emit a design with min >= 1, or give the model as an [[inference.components]] entry",
            ));
        }
        let scaled = Scaled {
            resource_id: format!("endpoint/{name}/variant/{VARIANT}"),
            dimension: "sagemaker:variant:DesiredInstanceCount",
            label: VARIANT.into(),
            name: name.clone(),
            dimension_name: "EndpointName",
            copies: false,
            // An asynchronous endpoint wakes on its backlog [S13 of docs/autoscaling.md].
            wake_metric: asynchronous.then_some("HasBacklogWithoutCapacity"),
            limits: (policy.min, policy.max),
        };
        files.extend(scaling_files(&scaled, policy, notes)?);
    }
    Ok(files)
}

/// An endpoint whose models are inference components, its instances under
/// managed instance scaling; or, not shared, one such endpoint a component.
fn with_components(experiment: &str, design: &ComponentsEndpoint, notes: &mut Vec<String>) -> Result<Files, Refusal> {
    let groups: Vec<(String, Vec<&Component>, u32)> = if design.shared {
        vec![(sagemaker_name(experiment, ""), design.components.iter().collect(), design.pool.min_instances)]
    } else {
        // The comparison design: each component alone, from zero instances.
        design
            .components
            .iter()
            .map(|c| (sagemaker_name(&format!("{experiment}-{}", c.name), ""), vec![c], 0))
            .collect()
    };
    let mut files = Files::new();
    for (endpoint_name, components, min_instances) in &groups {
        let variant = ProductionVariant {
            variant_name: VARIANT.into(),
            model_name: None,
            instance_type: Some(design.instance.clone()),
            initial_instance_count: Some((*min_instances).max(1)),
            managed_instance_scaling: Some(ManagedInstanceScaling {
                status: "ENABLED".into(),
                min_instance_count: *min_instances,
                max_instance_count: design.pool.max_instances,
            }),
            routing_config: Some(routing(components.iter().map(|c| &c.endpoint), notes)?),
            serverless_config: None,
        };
        let config = CreateEndpointConfig {
            endpoint_config_name: sagemaker_name(endpoint_name, "-config"),
            production_variants: vec![variant],
            async_inference_config: None,
            execution_role_arn: Some(ROLE_PLACEHOLDER.into()),
        };
        let file_suffix = if design.shared { String::new() } else { format!("-{endpoint_name}") };
        files.extend(endpoint_files(&file_suffix, endpoint_name, &config));
        for c in components {
            files.extend(component_files(endpoint_name, c, notes)?);
        }
    }
    Ok(files)
}

/// `CreateEndpointConfig` and `CreateEndpoint`, their names ending in `suffix`.
fn endpoint_files(suffix: &str, name: &str, config: &CreateEndpointConfig) -> Files {
    let create =
        CreateEndpoint { endpoint_name: name.into(), endpoint_config_name: config.endpoint_config_name.clone() };
    vec![
        (format!("CreateEndpointConfig{suffix}.json"), to_json(config)),
        (format!("CreateEndpoint{suffix}.json"), to_json(&create)),
    ]
}

/// One component's `CreateInferenceComponent` and the scaling of its copies.
fn component_files(endpoint_name: &str, c: &Component, notes: &mut Vec<String>) -> Result<Files, Refusal> {
    let ic_name = sagemaker_name(&format!("{endpoint_name}-{}", c.name), "");
    let label = sagemaker_name(&c.name, "");
    let body = CreateInferenceComponent {
        inference_component_name: ic_name.clone(),
        endpoint_name: endpoint_name.into(),
        variant_name: VARIANT.into(),
        specification: ComponentSpecification {
            model_name: MODEL_PLACEHOLDER.into(),
            compute_resource_requirements: ComputeResourceRequirements {
                number_of_accelerator_devices_required: (c.copy.gpus > 0).then_some(f64::from(c.copy.gpus)),
                number_of_cpu_cores_required: (c.copy.cpus > 0.0).then_some(c.copy.cpus),
                // The API's floor is 128 MB.
                min_memory_required_in_mb: ((c.copy.memory_gib * 1024.0).round() as u32).max(128),
            },
        },
        runtime_config: ComponentRuntimeConfig { copy_count: c.min_copies },
    };
    let mut files = vec![(format!("CreateInferenceComponent-{label}.json"), to_json(&body))];
    if let Some(policy) = &c.endpoint.autoscaling {
        let scaled = Scaled {
            resource_id: format!("inference-component/{ic_name}"),
            dimension: "sagemaker:inference-component:DesiredCopyCount",
            label,
            name: ic_name,
            dimension_name: "InferenceComponentName",
            copies: true,
            wake_metric: Some("NoCapacityInvocationFailures"),
            limits: (c.min_copies, c.max_copies),
        };
        files.extend(scaling_files(&scaled, policy, notes)?);
    }
    Ok(files)
}

/// SageMaker's routing strategy for the designs' routing.
fn routing<'a>(
    endpoints: impl IntoIterator<Item = &'a Endpoint>,
    notes: &mut Vec<String>,
) -> Result<RoutingConfig, Refusal> {
    for routing in endpoints.into_iter().filter_map(|e| e.llm.as_ref().map(|l| l.routing)) {
        match routing {
            Routing::LeastOutstanding => {}
            Routing::SessionAffinity => notes.push(
                "routing = \"session-affinity\": SageMaker's stateful sessions are per request (the client sends \
                 X-Amzn-SageMaker-Session-Id); the variant routes new sessions by least-outstanding requests"
                    .into(),
            ),
            Routing::PrefixAware => {
                return Err((
                    "inference.llm.routing",
                    "routing = \"prefix-aware\" has no SageMaker equivalent: its routing strategies are \
                     LEAST_OUTSTANDING_REQUESTS and RANDOM"
                        .into(),
                    "route by least-outstanding requests, SageMaker's default",
                ));
            }
        }
    }
    // One queue before the fleet, spotsim's request engine, is
    // least-outstanding routing at its best; nothing spotsim runs is random.
    Ok(RoutingConfig { routing_strategy: "LEAST_OUTSTANDING_REQUESTS".into() })
}

/// What Application Auto Scaling scales: a variant's instances or a
/// component's copies.
struct Scaled {
    resource_id: String,
    dimension: &'static str,
    /// Ends the files' names: `PutScalingPolicy-LABEL.json`.
    label: String,
    /// The endpoint's or the component's name, for policy names and metrics.
    name: String,
    dimension_name: &'static str,
    copies: bool,
    /// The alarm's metric that wakes it from zero, if SageMaker has one.
    wake_metric: Option<&'static str>,
    limits: (u32, u32),
}

/// `RegisterScalableTarget`, `PutScalingPolicy` (target tracking; step
/// scaling and its alarm to wake from zero) and the scheduled actions.
fn scaling_files(scaled: &Scaled, policy: &AutoscalingPolicy, notes: &mut Vec<String>) -> Result<Files, Refusal> {
    let (metric, key) = (policy.metric, "inference.autoscaling.metric");
    let predefined = match (metric, scaled.copies) {
        (ScalingMetric::InvocationsPerInstance, false) => Some("SageMakerVariantInvocationsPerInstance"),
        (ScalingMetric::ConcurrentRequestsPerCopy, false) => {
            Some("SageMakerVariantConcurrentRequestsPerModelHighResolution")
        }
        (ScalingMetric::InvocationsPerInstance, true) => Some("SageMakerInferenceComponentInvocationsPerCopy"),
        (ScalingMetric::ConcurrentRequestsPerCopy, true) => {
            Some("SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution")
        }
        (ScalingMetric::BacklogPerInstance, false) => None,
        (ScalingMetric::Utilization, _) | (ScalingMetric::BacklogPerInstance, true) => {
            return Err((
                key,
                format!("\"{}\" is no metric SageMaker publishes for this design", metric.name()),
                "scale on \"invocations-per-instance\" or \"concurrent-requests-per-copy\" to emit the design",
            ));
        }
    };
    alarm_notes(policy, notes);
    let (min_capacity, max_capacity) = scaled.limits;
    let target = RegisterScalableTarget {
        service_namespace: "sagemaker".into(),
        resource_id: scaled.resource_id.clone(),
        scalable_dimension: scaled.dimension.into(),
        min_capacity,
        max_capacity,
    };
    let dimensions = vec![MetricDimension { name: scaled.dimension_name.into(), value: scaled.name.clone() }];
    let tracking = TargetTracking {
        target_value: policy.target,
        predefined_metric_specification: predefined.map(|t| PredefinedMetric { predefined_metric_type: t.into() }),
        // An asynchronous endpoint's backlog, by its CloudWatch name [S13 of docs/autoscaling.md].
        customized_metric_specification: predefined.is_none().then(|| CustomizedMetric {
            metric_name: "ApproximateBacklogSizePerInstance".into(),
            namespace: "AWS/SageMaker".into(),
            dimensions: dimensions.clone(),
            statistic: "Average".into(),
        }),
        scale_out_cooldown: whole_seconds(policy.scale_out_cooldown.as_secs_f64(), "scale_out_cooldown", notes),
        scale_in_cooldown: whole_seconds(policy.scale_in_cooldown.as_secs_f64(), "scale_in_cooldown", notes),
        disable_scale_in: policy.disable_scale_in,
    };
    let label = &scaled.label;
    let policy_body = |name: String, tracking: Option<TargetTracking>, step: Option<StepScaling>| PutScalingPolicy {
        policy_name: name,
        service_namespace: "sagemaker".into(),
        resource_id: scaled.resource_id.clone(),
        scalable_dimension: scaled.dimension.into(),
        policy_type: if tracking.is_some() { "TargetTrackingScaling" } else { "StepScaling" }.into(),
        target_tracking_scaling_policy_configuration: tracking,
        step_scaling_policy_configuration: step,
    };
    let mut files = vec![
        (format!("RegisterScalableTarget-{label}.json"), to_json(&target)),
        (
            format!("PutScalingPolicy-{label}.json"),
            to_json(&policy_body(format!("{}-target-tracking", scaled.name), Some(tracking), None)),
        ),
    ];
    if let Some((wake, metric_name)) = policy.wake.zip(scaled.wake_metric) {
        // Out of zero: a step of one when the alarm's metric (requests that
        // found no capacity) is at least 1, as spotsim's wake rule does.
        let step = StepScaling {
            adjustment_type: "ChangeInCapacity".into(),
            metric_aggregation_type: "Maximum".into(),
            cooldown: whole_seconds(wake.period.as_secs_f64(), "wake.period", notes),
            step_adjustments: vec![StepAdjustment { metric_interval_lower_bound: 0.0, scaling_adjustment: 1 }],
        };
        let policy_name = format!("{}-wake", scaled.name);
        let alarm = PutMetricAlarm {
            alarm_name: policy_name.clone(),
            metric_name: metric_name.into(),
            namespace: "AWS/SageMaker".into(),
            statistic: "Maximum".into(),
            dimensions,
            period: whole_seconds(wake.period.as_secs_f64(), "wake.period", notes),
            evaluation_periods: wake.datapoints,
            datapoints_to_alarm: wake.datapoints,
            threshold: 1.0,
            comparison_operator: "GreaterThanOrEqualToThreshold".into(),
            treat_missing_data: "missing".into(),
            alarm_actions: vec![POLICY_ARN_PLACEHOLDER.into()],
        };
        files.push((
            format!("PutScalingPolicy-{label}-wake.json"),
            to_json(&policy_body(policy_name, None, Some(step))),
        ));
        files.push((format!("PutMetricAlarm-{label}-wake.json"), to_json(&alarm)));
    }
    files.extend(scheduled_files(scaled, policy, notes)?);
    Ok(files)
}

/// The scheduled actions, as daily cron schedules.
fn scheduled_files(scaled: &Scaled, policy: &AutoscalingPolicy, notes: &mut Vec<String>) -> Result<Files, Refusal> {
    let mut files = Files::new();
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
            scheduled_action_name: format!("{}-scheduled-{}", scaled.name, i + 1),
            resource_id: scaled.resource_id.clone(),
            scalable_dimension: scaled.dimension.into(),
            schedule: format!("cron({minute} {hour} * * ? *)"),
            scalable_target_action: ScalableTargetAction { min_capacity: action.min, max_capacity: action.max },
        };
        files.push((format!("PutScheduledAction-{}-{}.json", scaled.label, i + 1), to_json(&body)));
    }
    if !policy.scheduled.is_empty() {
        notes.push(
            "scheduled actions: the simulation's time 0 is taken as midnight UTC, and each action repeats daily".into(),
        );
    }
    Ok(files)
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
            "autoscaling {}: not AWS's; target tracking creates its own alarms, and no API key sets them",
            keys.join(", ")
        ));
    }
}

/// Seconds as the API's whole seconds; a fraction is rounded, and said.
fn whole_seconds(seconds: f64, key: &str, notes: &mut Vec<String>) -> u64 {
    let whole = seconds.round();
    if whole != seconds {
        notes.push(format!("autoscaling {key}: {seconds} s taken as {whole} s (the API takes whole seconds)"));
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
        let tt = policy.target_tracking_scaling_policy_configuration.as_ref().unwrap();
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

    #[test]
    fn inference_components_become_one_request_each_with_their_copies_scaled() {
        let e = crate::experiment::load(Path::new("experiments/two-models-one-endpoint.toml"), &[]).unwrap();
        let shared = emit(&e, 0).unwrap();
        let names: Vec<&str> = shared.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "CreateEndpointConfig.json",
                "CreateEndpoint.json",
                "CreateInferenceComponent-chat.json",
                "RegisterScalableTarget-chat.json",
                "PutScalingPolicy-chat.json",
                "CreateInferenceComponent-small.json",
                "RegisterScalableTarget-small.json",
                "PutScalingPolicy-small.json",
                "PutScalingPolicy-small-wake.json",
                "PutMetricAlarm-small-wake.json",
            ]
        );
        let config: CreateEndpointConfig = body(&shared, "CreateEndpointConfig.json");
        let v = &config.production_variants[0];
        assert_eq!((v.model_name.as_deref(), v.instance_type.as_deref()), (None, Some("ml.g5.12xlarge")));
        let scaling = v.managed_instance_scaling.as_ref().unwrap();
        assert_eq!(
            (scaling.status.as_str(), scaling.min_instance_count, scaling.max_instance_count),
            ("ENABLED", 1, 4)
        );
        assert_eq!(config.execution_role_arn.as_deref(), Some(ROLE_PLACEHOLDER));
        let chat: CreateInferenceComponent = body(&shared, "CreateInferenceComponent-chat.json");
        assert_eq!(chat.inference_component_name, "two-models-one-endpoint-chat");
        assert_eq!(chat.specification.compute_resource_requirements.number_of_accelerator_devices_required, Some(1.0));
        assert_eq!(chat.runtime_config.copy_count, 2);
        let target: RegisterScalableTarget = body(&shared, "RegisterScalableTarget-chat.json");
        assert_eq!(target.resource_id, "inference-component/two-models-one-endpoint-chat");
        assert_eq!(target.scalable_dimension, "sagemaker:inference-component:DesiredCopyCount");
        assert_eq!((target.min_capacity, target.max_capacity), (2, 8));
        let policy: PutScalingPolicy = body(&shared, "PutScalingPolicy-chat.json");
        let tt = policy.target_tracking_scaling_policy_configuration.unwrap();
        assert_eq!(tt.target_value, 8.0);
        assert_eq!(
            tt.predefined_metric_specification.unwrap().predefined_metric_type,
            "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
        );
        let small: RegisterScalableTarget = body(&shared, "RegisterScalableTarget-small.json");
        assert_eq!((small.min_capacity, small.max_capacity), (0, 2));
        let alarm: PutMetricAlarm = body(&shared, "PutMetricAlarm-small-wake.json");
        assert_eq!(alarm.metric_name, "NoCapacityInvocationFailures");
        assert_eq!(alarm.dimensions[0].value, "two-models-one-endpoint-small");

        // Not shared: an endpoint a component, each from zero instances.
        assert_eq!(shared.endpoints, ["two-models-one-endpoint"]);
        let apart = emit(&e, 1).unwrap();
        assert_eq!(apart.endpoints, ["two-models-one-endpoint-chat", "two-models-one-endpoint-small"]);
        let config: CreateEndpointConfig = body(&apart, "CreateEndpointConfig-two-models-one-endpoint-small.json");
        let scaling = config.production_variants[0].managed_instance_scaling.clone().unwrap();
        assert_eq!((scaling.min_instance_count, scaling.max_instance_count), (0, 10));
        let small: CreateInferenceComponent = body(&apart, "CreateInferenceComponent-small.json");
        assert_eq!(small.endpoint_name, "two-models-one-endpoint-small");
    }

    #[test]
    fn designs_sagemaker_cannot_run_are_refused_by_their_key() {
        let cases = [
            ("workers = 4", "workers = 4\nmarket = \"spot\"", "inference.market", "no spot instances"),
            ("invocations-per-instance\", target = 700", "utilization\", target = 0.7", "metric", "publishes"),
            ("min = 2", "min = 0, wake = {}", "inference.autoscaling.min", "to zero only with inference"),
        ];
        for (from, to, key, says) in cases {
            let mut text = ENDPOINT.replace(from, to);
            if to.contains("spot") {
                text += "[spot]\ninterruptions = { model = \"poisson\", mtbf = \"10h\" }\n";
            }
            let err = emit(&experiment(&text), 0).expect_err(to);
            assert!(err.key.as_deref().is_some_and(|k| k.ends_with(key)), "{to}: {err}");
            assert!(err.message.contains(says), "{to}: {err}");
        }
    }

    #[test]
    fn an_asynchronous_endpoint_scales_on_its_backlog_and_wakes_from_zero() {
        let e = crate::experiment::load(Path::new("experiments/async-inference.toml"), &[]).unwrap();
        let emission = emit(&e, 0).unwrap();
        let config: CreateEndpointConfig = body(&emission, "CreateEndpointConfig.json");
        assert_eq!(config.async_inference_config.unwrap().output_config.s3_output_path, S3_PLACEHOLDER);
        let target: RegisterScalableTarget = body(&emission, "RegisterScalableTarget-AllTraffic.json");
        assert_eq!((target.min_capacity, target.max_capacity), (0, 20));
        let policy: PutScalingPolicy = body(&emission, "PutScalingPolicy-AllTraffic.json");
        let metric = policy.target_tracking_scaling_policy_configuration.unwrap().customized_metric_specification;
        let metric = metric.unwrap();
        assert_eq!(
            (metric.metric_name.as_str(), metric.statistic.as_str()),
            ("ApproximateBacklogSizePerInstance", "Average")
        );
        assert_eq!(
            metric.dimensions,
            [MetricDimension { name: "EndpointName".into(), value: "async-inference".into() }]
        );
        let wake: PutScalingPolicy = body(&emission, "PutScalingPolicy-AllTraffic-wake.json");
        assert_eq!(wake.policy_type, "StepScaling");
        let alarm: PutMetricAlarm = body(&emission, "PutMetricAlarm-AllTraffic-wake.json");
        assert_eq!(alarm.metric_name, "HasBacklogWithoutCapacity");
        let rule = e.points[0].design.downcast::<Endpoint>().unwrap().autoscaling.as_ref().unwrap().wake.unwrap();
        assert_eq!((alarm.period as f64, alarm.evaluation_periods), (rule.period.as_secs_f64(), rule.datapoints));
    }

    #[test]
    fn a_serverless_design_is_a_serverless_variant_without_scaling() {
        let e = crate::experiment::load(Path::new("experiments/serverless-vs-endpoint.toml"), &[]).unwrap();
        let point = (0..e.points.len())
            .find(|&p| e.points[p].design.downcast::<Endpoint>().is_some_and(|d| d.mode == Mode::Serverless))
            .expect("a serverless point");
        let emission = emit(&e, point).unwrap();
        assert_eq!(emission.files.len(), 2, "no scaling files");
        let config: CreateEndpointConfig = body(&emission, "CreateEndpointConfig.json");
        let v = &config.production_variants[0];
        assert_eq!(v.instance_type, None);
        let terms = v.serverless_config.as_ref().unwrap();
        assert_eq!((terms.memory_size_in_mb, terms.max_concurrency, terms.provisioned_concurrency), (4096, 20, None));
    }
}
