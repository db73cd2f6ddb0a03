//! The runtime owns tensors, data loading, batching, the training step and
//! loop, and checkpoints; it is the only place that calls into compiled code.
//!
//! - [`data`]: datasets from IDX (MNIST) and CSV files, plain or gzip;
//!   [`text`]: a text file as windows of character ids; [`generate`]:
//!   text sampled from a character model.
//! - [`split`]: seeded shuffles, train/validation splits,
//!   standardisation, one-hot encoding; [`batch`]: mini-batches gathered
//!   one step ahead on a loader thread.
//! - [`metrics`]: accuracy, confusion matrix, macro P/R/F1, MSE/MAE/R².
//! - [`load`]: a `train` block's data source to splits in the model's shape.
//! - [`step`]: the whole training step as one IR function.
//! - [`train`]: the training loop; [`schedule`]: learning-rate schedules;
//!   [`backend`]: what runs the IR.
//! - [`checkpoint`]: weights as safetensors; [`history`]: metrics as CSV
//!   and JSON lines; [`curves`]: learning curves as SVG and PNG.
//! - [`images`]: generated samples as a PNG grid and an IDX file.
//! - [`summary`]: the per-layer table of a model, from the checker alone.
//! - [`bench`]: step, inference and epoch times on random data.

pub mod backend;
pub mod batch;
pub mod bench;
pub mod checkpoint;
pub mod curves;
pub mod data;
pub mod generate;
pub mod history;
pub mod images;
pub mod load;
pub mod metrics;
pub mod schedule;
pub mod split;
pub mod step;
pub mod summary;
pub mod text;
pub mod train;
