//! `nnc run`: train, report per epoch, evaluate.

use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct RunArgs {
    pub file: PathBuf,
    /// Where relative dataset paths are also looked up (also NNC_DATA).
    #[arg(long, env = "NNC_DATA")]
    pub data_dir: Option<PathBuf>,
    /// Print only the final report.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: &RunArgs) -> i32 {
    let c = match super::load(&args.file) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return 1;
        }
    };
    if super::report(&c) > 0 {
        return 1;
    }
    if c.analysis.plans.is_empty() {
        eprintln!("error: {} has no `train` block to run", args.file.display());
        return 1;
    }
    0
}
