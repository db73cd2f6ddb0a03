//! The one integration-test binary (one link keeps test builds fast).

mod examples;
mod format;
mod gradcheck;
mod ir_snap;
mod lsp;
mod lsp_e2e;
mod lsp_editors;
mod lsp_nvim;
mod stdlib_grad;
mod tidy;
mod ui;
