//! `nnc sample FILE --weights W`: text from a trained character model
//! (a `train` block reading `text(...)`), printed after its prompt.

use super::report::{self, Engine};
use crate::runtime::generate::{self, Sampling};
use crate::runtime::text;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct SampleArgs {
    pub file: PathBuf,
    /// A weights file written by `nnc run` (weights.safetensors).
    #[arg(long)]
    pub weights: PathBuf,
    /// Characters to generate after the prompt.
    #[arg(long, default_value_t = 200)]
    pub length: usize,
    /// Divides the logits before the softmax: 0 takes the most likely
    /// character, below 1 is more conservative, above 1 more varied.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// The text to continue (default: a newline, the start of a line).
    #[arg(long, default_value = "\n")]
    pub prompt: String,
    /// Seed of the draws: the same seed gives the same text.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub engine: Engine,
}

pub fn sample(args: &SampleArgs) -> i32 {
    let Some(c) = report::load_checked(&args.file, None) else {
        return 1;
    };
    let (plan, w) = match super::eval::plan_and_weights(&c.analysis.plans, &args.weights) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let vocab = match generate::text_shape(plan) {
        Ok((_, v)) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let prompt = match text::char_ids(&args.prompt, vocab, Path::new("--prompt")) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code);
            return 1;
        }
    };
    let s = Sampling {
        length: args.length,
        temperature: args.temperature,
        seed: args.seed,
    };
    match generate::generate(plan, args.engine.kind(), &w, &prompt, s) {
        Ok(ids) => {
            let body: String = ids.iter().map(|&id| text::char_of(id as usize)).collect();
            super::say!("{}{body}", args.prompt);
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
