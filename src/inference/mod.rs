//! Inference: traffic, the request-level and fluid engines, the autoscaler.

pub mod autoscaler;
pub mod control;
pub mod endpoint;
pub mod fleet;
pub mod fluid;
pub mod queueing;
pub mod request;
pub mod serverless;
pub mod traffic;
