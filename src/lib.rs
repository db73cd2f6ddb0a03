//! nnc: a compiler for neural networks written as `.nn` files.
//!
//! (The architecture text is filled in as the stages land.)

pub mod autodiff;
pub mod base;
pub mod cli;
pub mod codegen;
pub mod diag;
pub mod driver;
pub mod ir;
pub mod lsp;
pub mod opt;
pub mod runtime;
pub mod sema;
pub mod syntax;
