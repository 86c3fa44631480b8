//! Inference: traffic, the request-level and fluid engines, the autoscaler.

pub mod autoscaler;
pub mod traffic;
