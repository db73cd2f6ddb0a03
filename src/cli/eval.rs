//! `nnc eval FILE --weights W`: the final report of `nnc run` for saved
//! weights, on the test split (or the whole data when there is none).

use super::report::{self, Engine};
use crate::plan::TrainPlan;
use crate::runtime::checkpoint::{self, LoadError};
use crate::runtime::load;
use crate::runtime::train::{self, Weights};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct EvalArgs {
    pub file: PathBuf,
    /// A weights file written by `nnc run` (weights.safetensors).
    #[arg(long)]
    pub weights: PathBuf,
    /// Where relative dataset paths are also looked up (also NNC_DATA).
    #[arg(long, env = "NNC_DATA")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub engine: Engine,
}

/// The plan of `plans` whose model the weights file belongs to; the error
/// is the first plan's (`error[E0704]: FILE: does not fit model ...`).
pub fn plan_and_weights<'a>(plans: &'a [TrainPlan], path: &Path) -> Result<(&'a TrainPlan, Weights), LoadError> {
    let mut first_err = None;
    for plan in plans {
        let fresh = train::initial_weights(plan).map_err(|e| LoadError {
            code: "E0501",
            message: format!("initialising `{}`: {e}", plan.model),
        })?;
        match checkpoint::load(path, plan, &fresh) {
            Ok(w) => return Ok((plan, w)),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| LoadError {
        code: "E0805",
        message: "the file has no `train` block, so no model to load weights into".into(),
    }))
}

pub fn eval(args: &EvalArgs) -> i32 {
    let Some(c) = report::load_checked(&args.file, args.data_dir.as_deref()) else {
        return 1;
    };
    let (plan, w) = match plan_and_weights(&c.analysis.plans, &args.weights) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let splits = match load::load_splits(plan, &report::base_dir(&args.file), args.data_dir.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error[{}]: cannot read the data of `train {}`: {e}", e.code, plan.model);
            return 1;
        }
    };
    let (name, data) = match &splits.test {
        Some(t) => ("test", t),
        None => ("training", &splits.train),
    };
    match report::final_report(plan, args.engine.kind(), &w, name, data) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("error: evaluating {} failed: {e}", plan.model);
            1
        }
    }
}
