//! The runtime: host tensors, data loading, batching, the training step and
//! loop, and the backends that run IR.

pub mod backend;
pub mod data;
pub mod load;
pub mod metrics;
pub mod split;
pub mod step;
pub mod train;
