//! Fuzzing on stable Rust (cargo-fuzz needs nightly): generators and
//! mutators of inputs, and a runner that checks each input under a panic
//! catcher, a time limit and a memory limit, minimises what fails and
//! writes it as a reproducer.
//!
//! Three targets: `sources` (`.nn` text through the checker, formatter,
//! renderer and lowering), `lsp` (editing sessions against the language
//! server) and `data` (IDX, CSV and safetensors files through the
//! loaders). `tests/it/fuzz.rs` runs a fixed-seed slice of each; `nnc fuzz`
//! runs them for as long as wanted (see the README).

pub mod data;
pub mod gen;
pub mod lsp;
pub mod mutate;
pub mod rng;
pub mod runner;
pub mod sources;

pub use runner::{campaign, replay, Failure, Limits, Report, Stop, Target};

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static dyn Target> {
    match name {
        "sources" => Some(&sources::Sources),
        "lsp" => Some(&lsp::Lsp),
        "data" => Some(&data::Data),
        _ => None,
    }
}

pub const TARGETS: &[&str] = &["sources", "lsp", "data"];
