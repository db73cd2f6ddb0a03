//! Backends that run IR functions on host tensors: the reference
//! interpreter (the oracle) and compiled native code.

use crate::codegen::{Compiled, Options};
use crate::ir::{self, Dim, Func};
use ndarray::{ArrayBase, ArrayD, ArrayViewD, Data, IxDyn};
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
}

/// Bind `func`'s symbols from argument shapes, checking every known dim:
/// compiled code must never see a shape it was not compiled for.
fn bind(func: &Func, shapes: &[&[usize]]) -> Result<Binding, String> {
    if shapes.len() != func.params.len() {
        return Err(format!("{} takes {} arguments, got {}", func.name, func.params.len(), shapes.len()));
    }
    let mut bound: Binding = vec![];
    for (i, (&p, &shape)) in func.params.iter().zip(shapes).enumerate() {
        let ty = func.ty(p);
        let name = &func.param_names[i];
        if ty.shape.len() != shape.len() {
            return Err(format!("argument `{name}` has rank {}, expected {}", shape.len(), ty));
        }
        for (d, &n) in ty.shape.iter().zip(shape) {
            match d {
                Dim::Known(k) if *k != n => return Err(format!("argument `{name}` has shape {shape:?}, expected {ty}")),
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

/// `func` with the symbols of `key` replaced by their sizes, and the shapes
/// of its results.
fn specialize(func: &Func, key: &Binding) -> (Func, Vec<Vec<usize>>) {
    // Fixed sizes let the optimizer fold more (a mean's element count).
    let f = crate::opt::optimize(&func.specialize(&|s| key.iter().find(|(k, _)| k == s).map(|(_, v)| *v)));
    let shapes = f
        .results
        .iter()
        .map(|&r| f.ty(r).shape.iter().map(|d| d.known().unwrap_or(0)).collect())
        .collect();
    (f, shapes)
}

/// An argument as a row-major slice, borrowed when already contiguous.
fn contiguous<S: Data<Elem = f32>>(a: &ArrayBase<S, IxDyn>) -> std::borrow::Cow<'_, [f32]> {
    match a.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(a.iter().copied().collect()),
    }
}

impl Runner for JitRunner {
    fn call(&mut self, args: &[&ArrayD<f32>]) -> Result<Vec<ArrayD<f32>>, String> {
        let arg_shapes: Vec<&[usize]> = args.iter().map(|a| a.shape()).collect();
        let key = bind(&self.func, &arg_shapes)?;
        if !self.compiled.contains_key(&key) {
            let (f, shapes) = specialize(&self.func, &key);
            let code = Compiled::compile(&f, &quiet(self.threads))?;
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
        let owned: Vec<std::borrow::Cow<'_, [f32]>> = args.iter().map(|a| contiguous(a)).collect();
        let ins: Vec<&[f32]> = owned.iter().map(|c| c.as_ref()).collect();
        let mut outs: Vec<Vec<f32>> = shapes.iter().map(|s| vec![0.0; s.iter().product()]).collect();
        let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
        c.run(&ins, &mut refs)?;
        Ok(outs
            .into_iter()
            .zip(shapes.iter())
            .map(|(o, s)| ArrayD::from_shape_vec(IxDyn(s), o).expect("planned size"))
            .collect())
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
        }),
    }
}

/// The training step `(x, y, step, lr, weights..) -> (loss, output,
/// weights'..)`, where the weights are the parameters then the optimizer
/// states, run so that the weights are updated where they lie.
pub trait StepRunner {
    /// One step on `inputs` = `[x, y, step, lr]`. Returns the loss and the
    /// model's output. When the loss is NaN or infinite, `weights` are left
    /// as they were (the last good weights).
    fn step(&mut self, inputs: [ArrayViewD<'_, f32>; 4], weights: &mut [ArrayD<f32>]) -> Result<(f32, ArrayD<f32>), String>;
}

/// A step run by any `Runner`: the results replace the weights.
struct ReplacingStep(Box<dyn Runner>);

impl StepRunner for ReplacingStep {
    fn step(&mut self, inputs: [ArrayViewD<'_, f32>; 4], weights: &mut [ArrayD<f32>]) -> Result<(f32, ArrayD<f32>), String> {
        let inputs: Vec<ArrayD<f32>> = inputs.iter().map(|a| a.to_owned()).collect();
        let mut args: Vec<&ArrayD<f32>> = inputs.iter().collect();
        args.extend(weights.iter());
        let mut out = self.0.call(&args)?.into_iter();
        let loss = out.next().and_then(|l| l.iter().next().copied()).unwrap_or(f32::NAN);
        let output = out.next().ok_or("the training step returns no output")?;
        if loss.is_finite() {
            for (w, new) in weights.iter_mut().zip(out) {
                *w = new;
            }
        }
        Ok((loss, output))
    }
}

/// Compiled code for one batch shape of the step.
struct StepCode {
    code: Compiled,
    output_shape: Vec<usize>,
    /// The code could not return before its first in-place write when the
    /// loss is not finite, so the weights are copied before each call.
    backup: bool,
}

/// The compiled step with every weight paired to its update
/// (`Compiled::compile_inplace`): no result buffers, no copies, half the
/// memory traffic of writing new tensors.
struct JitStep {
    func: Func,
    threads: usize,
    compiled: HashMap<Binding, StepCode>,
}

impl JitStep {
    fn compile(&self, key: &Binding, weights: usize) -> Result<StepCode, String> {
        let (f, shapes) = specialize(&self.func, key);
        let (code, backup) = compile_step(&f, weights, &quiet(self.threads))?;
        Ok(StepCode {
            code,
            output_shape: shapes.get(1).cloned().ok_or("the training step returns no output")?,
            backup,
        })
    }
}

/// Compile a training step (no symbolic dims) as `nnc run` runs it: each of
/// its `weights` (parameters, then optimizer states) updated in place, and
/// no update written when the loss is not finite. The flag is true when the
/// code could not be made to return before its first update, so the caller
/// must keep a copy of the weights to restore.
pub fn compile_step(f: &Func, weights: usize, opts: &Options) -> Result<(Compiled, bool), String> {
    let pairs: Vec<(usize, usize)> = (0..weights).map(|i| (4 + i, 2 + i)).collect();
    match Compiled::compile_inplace(f, opts, &pairs, Some(0)) {
        Ok(code) => Ok((code, false)),
        Err(_) => Ok((Compiled::compile_inplace(f, opts, &pairs, None)?, true)),
    }
}

impl StepRunner for JitStep {
    fn step(&mut self, inputs: [ArrayViewD<'_, f32>; 4], weights: &mut [ArrayD<f32>]) -> Result<(f32, ArrayD<f32>), String> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|a| a.shape()).chain(weights.iter().map(|w| w.shape())).collect();
        let key = bind(&self.func, &shapes)?;
        if !self.compiled.contains_key(&key) {
            let code = self.compile(&key, weights.len())?;
            self.compiled.insert(key.clone(), code);
        }
        let StepCode {
            code,
            output_shape,
            backup,
        } = self.compiled.get_mut(&key).expect("compiled above");
        for w in weights.iter_mut() {
            if !w.is_standard_layout() {
                *w = w.as_standard_layout().into_owned();
            }
        }
        let saved = backup.then(|| weights.to_vec());
        let args: Vec<std::borrow::Cow<'_, [f32]>> = inputs.iter().map(contiguous).collect();
        let args: Vec<&[f32]> = args.iter().map(|c| c.as_ref()).collect();
        let mut state: Vec<&mut [f32]> = weights
            .iter_mut()
            .map(|w| w.as_slice_mut().expect("made standard layout above"))
            .collect();
        let mut loss = [f32::NAN];
        let mut output = vec![0.0; output_shape.iter().product()];
        code.run_inplace(&args, &mut state, &mut [&mut loss, &mut output])?;
        if let Some(saved) = saved.filter(|_| !loss[0].is_finite()) {
            weights.clone_from_slice(&saved);
        }
        let output = ArrayD::from_shape_vec(IxDyn(output_shape), output).expect("planned size");
        Ok((loss[0], output))
    }
}

/// A step runner for the training step `func` (see `runtime::step`).
pub fn step_runner(kind: BackendKind, func: &Func) -> Box<dyn StepRunner> {
    match kind {
        BackendKind::Interp => Box::new(ReplacingStep(runner(kind, func))),
        BackendKind::Jit { threads } => Box::new(JitStep {
            func: crate::opt::optimize(func),
            threads,
            compiled: HashMap::new(),
        }),
    }
}

/// Compile options for running: no CLIF or kernel text, which only
/// `nnc ir` and the tests read.
fn quiet(threads: usize) -> Options {
    Options {
        text: false,
        ..Options::threads(threads)
    }
}
