//! The language server (`nnc lsp`): diagnostics as you type, hover with
//! shapes, inlay hints, go to definition (also into the stdlib), completion,
//! signature help,
//! document symbols, semantic tokens, formatting and quick fixes (the
//! diagnostics' `help:` replacements, when they check), over stdio.
//!
//! Every request is answered from immutable [`document::Snapshot`]s built
//! by `driver::compile`, which is pure and takes milliseconds, so the loop
//! is synchronous: each change recompiles the file and publishes its
//! diagnostics before the next message is read. While a text does not
//! parse, hover, definitions and hints use the last text that did. Each
//! message is handled under `catch_unwind`: an internal error becomes an
//! error response (and a line on stderr), never a dead server.

mod actions;
mod call;
mod complete;
pub mod convert;
mod diagnostics;
pub mod document;
mod hover;
mod info;
mod inlay;
mod nav;
mod semantic;
mod server;
mod signature;
pub mod stdlib;
mod walk;

pub use server::{capabilities, serve, serve_stdio, Locator, STACK_SIZE};
