//! Tools for learners: the backward pass autodiff derived, in the
//! textbook's notation (`nnc explain --grad`), one training step traced
//! with its numbers (`nnc trace`).
//!
//! Pure logic over a checked file's train plans; the `cli` prints.

pub mod backward;
pub mod derivatives;
pub mod explain;
pub mod graph;
pub mod notation;
pub mod overrides;
pub mod plot;
pub mod search;
pub mod steps;
pub mod trace;
pub mod trace_text;
pub mod windows;
