//! Inference: traffic (arrivals and token counts), the request-level,
//! token-level LLM (`llm_engine`, on the replica model of `llm`), fluid and
//! serverless engines, the autoscaler and the control plane. `design` holds
//! the types the engines share; `endpoint` picks the engine for a design and
//! turns its outcome into metrics, so no engine imports another.

pub mod autoscaler;
pub mod components;
pub mod control;
pub mod design;
pub mod endpoint;
pub mod fleet;
pub mod fluid;
pub mod llm;
pub mod llm_engine;
pub mod queueing;
pub mod request;
pub mod serverless;
pub mod traffic;
