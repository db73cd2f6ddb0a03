//! Backends that run IR functions on host tensors: the reference
//! interpreter (the oracle) and compiled native code.

use crate::codegen::{Compiled, Options};
use crate::ir::{self, Dim, Func};
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;

/// Which engine runs the IR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// The f64 reference interpreter: slow, the oracle.
    Interp,
    /// Cranelift-compiled code, one function per batch shape.
    Jit { threads: usize },
}

/// An IR function ready to call on f32 host tensors (labels are f32
/// holding integers).
pub trait Runner {
    fn call(&mut self, args: &[&ArrayD<f32>]) -> Result<Vec<ArrayD<f32>>, String>;
    /// Hand back tensors that are no longer needed (the previous step's
    /// parameters), so their memory holds the next call's results instead
    /// of being freed and faulted in again.
    fn recycle(&mut self, _old: Vec<ArrayD<f32>>) {}
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

/// Sizes bound to a function's symbolic dims, e.g. `[("batch", 32)]`.
type Binding = Vec<(String, usize)>;

/// Compiled code for one binding, and the shapes of its results.
struct Specialized {
    code: Compiled,
    result_shapes: Vec<Vec<usize>>,
}

/// Compiles `func` once per binding of its symbolic dims (in practice, per
/// batch size: the full batch and the last partial one).
pub struct JitRunner {
    func: Func,
    threads: usize,
    compiled: HashMap<Binding, Specialized>,
    /// Recycled result buffers by length.
    pool: HashMap<usize, Vec<Vec<f32>>>,
}

/// Buffers kept per length: enough for one step's parameters and states.
const POOL_DEPTH: usize = 8;

impl JitRunner {
    /// Bind symbols from the argument shapes, checking every known dim:
    /// compiled code must never see a shape it was not compiled for.
    fn bind(&self, args: &[&ArrayD<f32>]) -> Result<Binding, String> {
        if args.len() != self.func.params.len() {
            return Err(format!(
                "{} takes {} arguments, got {}",
                self.func.name,
                self.func.params.len(),
                args.len()
            ));
        }
        let mut bound: Binding = vec![];
        for (i, (&p, a)) in self.func.params.iter().zip(args).enumerate() {
            let ty = self.func.ty(p);
            let name = &self.func.param_names[i];
            if ty.shape.len() != a.ndim() {
                return Err(format!("argument `{name}` has rank {}, expected {}", a.ndim(), ty));
            }
            for (d, &n) in ty.shape.iter().zip(a.shape()) {
                match d {
                    Dim::Known(k) if *k != n => return Err(format!("argument `{name}` has shape {:?}, expected {ty}", a.shape())),
                    Dim::Known(_) => {}
                    Dim::Sym(s) => match bound.iter().find(|(b, _)| b == s) {
                        Some((_, v)) if *v != n => return Err(format!("argument `{name}`: dim {s} is {n} here but {v} elsewhere")),
                        Some(_) => {}
                        None => bound.push((s.clone(), n)),
                    },
                }
            }
        }
        Ok(bound)
    }
}

impl Runner for JitRunner {
    fn call(&mut self, args: &[&ArrayD<f32>]) -> Result<Vec<ArrayD<f32>>, String> {
        let key = self.bind(args)?;
        if !self.compiled.contains_key(&key) {
            let f = self.func.specialize(&|s| key.iter().find(|(k, _)| k == s).map(|(_, v)| *v));
            let shapes = f
                .results
                .iter()
                .map(|&r| f.ty(r).shape.iter().map(|d| d.known().unwrap_or(0)).collect())
                .collect();
            let code = Compiled::compile(&f, &Options { threads: self.threads })?;
            self.compiled.insert(
                key.clone(),
                Specialized {
                    code,
                    result_shapes: shapes,
                },
            );
        }
        let Specialized {
            code: c,
            result_shapes: shapes,
        } = self.compiled.get_mut(&key).expect("compiled above");
        // Arguments in standard layout, borrowed when already contiguous.
        let owned: Vec<std::borrow::Cow<'_, [f32]>> = args
            .iter()
            .map(|a| match a.as_slice() {
                Some(s) => std::borrow::Cow::Borrowed(s),
                None => std::borrow::Cow::Owned(a.iter().copied().collect()),
            })
            .collect();
        let ins: Vec<&[f32]> = owned.iter().map(|c| c.as_ref()).collect();
        // Every result is written in full by the compiled code, so recycled
        // buffers need no clearing.
        let pool = &mut self.pool;
        let mut outs: Vec<Vec<f32>> = shapes
            .iter()
            .map(|s| {
                let n: usize = s.iter().product();
                pool.get_mut(&n).and_then(Vec::pop).unwrap_or_else(|| vec![0.0; n])
            })
            .collect();
        let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
        c.run(&ins, &mut refs)?;
        Ok(outs
            .into_iter()
            .zip(shapes.iter())
            .map(|(o, s)| ArrayD::from_shape_vec(IxDyn(s), o).expect("planned size"))
            .collect())
    }

    fn recycle(&mut self, old: Vec<ArrayD<f32>>) {
        for a in old {
            if !a.is_standard_layout() {
                continue;
            }
            let (v, offset) = a.into_raw_vec_and_offset();
            if offset.unwrap_or(0) == 0 {
                let slot = self.pool.entry(v.len()).or_default();
                if slot.len() < POOL_DEPTH {
                    slot.push(v);
                }
            }
        }
    }
}

/// A runner for `func` after simplification, CSE and DCE (the passes keep
/// results bit-identical for finite inputs, so the oracle is unaffected).
pub fn runner(kind: BackendKind, func: &Func) -> Box<dyn Runner> {
    let func = crate::opt::optimize(func);
    match kind {
        BackendKind::Interp => Box::new(InterpRunner { func }),
        BackendKind::Jit { threads } => Box::new(JitRunner {
            func,
            threads,
            compiled: HashMap::new(),
            pool: HashMap::new(),
        }),
    }
}
