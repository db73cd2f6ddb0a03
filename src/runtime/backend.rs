//! Backends that run IR functions on host tensors: the reference
//! interpreter (the oracle) and, when it lands, compiled code.

use crate::ir::{self, Func};
use ndarray::ArrayD;

/// Which engine runs the training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Interp,
}

/// An IR function ready to call on f32 host tensors (labels are f32
/// holding integers).
pub trait Runner {
    fn call(&mut self, args: &[&ArrayD<f32>]) -> Result<Vec<ArrayD<f32>>, String>;
}

/// Runs a function on the f64 reference interpreter.
pub struct InterpRunner {
    func: Func,
}

impl Runner for InterpRunner {
    fn call(&mut self, args: &[&ArrayD<f32>]) -> Result<Vec<ArrayD<f32>>, String> {
        let args: Vec<ir::interp::Tensor> = args.iter().map(|a| a.mapv(f64::from)).collect();
        let out = ir::interp::run(&self.func, &args)?;
        Ok(out.into_iter().map(|t| t.mapv(|v| v as f32)).collect())
    }
}

/// A runner for `func` after simplification, CSE and DCE (the passes keep
/// results bit-identical for finite inputs, so the oracle is unaffected).
pub fn runner(kind: BackendKind, func: &Func) -> Box<dyn Runner> {
    let func = crate::opt::optimize(func);
    match kind {
        BackendKind::Interp => Box::new(InterpRunner { func }),
    }
}
