//! Syntax: the pest grammar binding, pest pairs → AST, and (for tools) the
//! logos token stream and the formatter.

pub mod ast;
mod parser;

pub use parser::parse;
