//! The one integration-test binary (one link keeps test builds fast).

mod cli;
mod data;
mod examples;
mod format;
mod gradcheck;
mod ir_passes;
mod ir_snap;
mod jit;
mod lsp;
mod lsp_e2e;
mod lsp_editors;
mod lsp_nvim;
mod lsp_stdio;
mod robust;
mod stdlib_grad;
mod tidy;
mod ui;
