//! The runtime owns tensors, data loading, batching, the training loop and
//! checkpoints; it is the only place that calls into compiled code.
//!
//! - [`data`]: datasets from IDX (MNIST) and CSV files, plain or gzip.
//! - [`split`]: seeded shuffles, train/validation splits, mini-batches,
//!   standardisation, one-hot encoding.
//! - [`metrics`]: accuracy, confusion matrix, macro P/R/F1, MSE/MAE/R².

pub mod data;
pub mod metrics;
pub mod split;
