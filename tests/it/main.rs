//! The one integration-test binary (one link keeps test builds fast).

mod cli;
mod common;
mod data;
mod diff;
mod examples;
mod format;
mod gradcheck;
mod ir_passes;
mod ir_snap;
mod jit;
mod lang;
mod lsp;
mod lsp_e2e;
mod lsp_editors;
mod lsp_nvim;
mod lsp_stdio;
mod mnist;
mod robust;
mod stdlib_grad;
mod teach;
mod tidy;
mod train_cli;
mod train_run;
mod train_schedule;
mod ui;
