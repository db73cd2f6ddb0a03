//! The one integration-test binary (one link keeps test builds fast).

mod cli;
mod data;
mod examples;
mod gradcheck;
mod ir_passes;
mod ir_snap;
mod jit;
mod robust;
mod stdlib_grad;
mod tidy;
mod train_schedule;
mod ui;
