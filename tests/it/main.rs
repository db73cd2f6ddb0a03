//! The one integration-test binary (one link keeps test builds fast).

mod data;
mod examples;
mod gradcheck;
mod ir_snap;
mod stdlib_grad;
mod tidy;
mod train_schedule;
mod ui;
