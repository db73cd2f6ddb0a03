//! IR-to-IR optimisation passes.
//!
//! Each pass is a pure `fn(&Func) -> Func` that keeps the function's name,
//! its params (order, names, types) and the types of its results; only the
//! instructions between them change. Every pass rebuilds its output through
//! [`ir::Builder`], so values stay dense and in definition order, and checks
//! it with [`ir::verify`] in debug builds (a failure there is a bug in the
//! pass, never in the input).
//!
//! - [`simplify`]: exact algebraic rewrites and constant folding.
//! - [`cse`]: one value per identical (op, attributes, operands).
//! - [`dce`]: drop instructions the results do not depend on.
//! - [`batch_fold`]: batched products against one shared matrix become one
//!   product (only where every dim is known, i.e. after specialisation).
//! - [`optimize`]: the four above, repeated to a fixed point, after taking
//!   scans' input projections out of their loops
//!   (`ir::scan::hoist_projections`) and optimising their bodies.

mod batch_fold;
mod cse;
mod dce;
mod simplify;

pub use batch_fold::batch_fold;
pub use cse::cse;
pub use dce::dce;
pub use simplify::simplify;

use crate::ir::{self, Builder, Func, Value};

/// Upper bound on `optimize` rounds. Each round only shrinks or rewrites
/// towards simpler forms, so real programs settle in two or three; the bound
/// guards against a rule pair that undoes each other.
const MAX_ROUNDS: usize = 16;

/// Simplify, then CSE, then DCE, until a round changes nothing (compared on
/// the printed text, which is canonical because every pass renumbers).
pub fn optimize(f: &Func) -> Func {
    let mut cur = optimize_bodies(&ir::scan::hoist_projections(f));
    let mut text = ir::print_func(&cur);
    for _ in 0..MAX_ROUNDS {
        let next = dce(&cse(&batch_fold(&simplify(&cur))));
        let next_text = ir::print_func(&next);
        if next_text == text {
            return next;
        }
        cur = next;
        text = next_text;
    }
    cur
}

/// `f` with the body of every scan optimised (each shared body once, so
/// sibling scans keep sharing it).
fn optimize_bodies(f: &Func) -> Func {
    use std::sync::Arc;
    let mut out = f.clone();
    let mut done: Vec<(Arc<ir::scan::Scan>, Arc<ir::scan::Scan>)> = vec![];
    for inst in &mut out.insts {
        if let ir::Op::Scan { scan, .. } = &mut inst.op {
            let known = done.iter().find(|(old, _)| Arc::ptr_eq(old, scan)).map(|(_, new)| new.clone());
            let new = known.unwrap_or_else(|| {
                let mut s = (**scan).clone();
                s.body = optimize(&scan.body);
                let new = Arc::new(s);
                done.push((scan.clone(), new.clone()));
                new
            });
            *scan = new;
        }
    }
    out
}

/// A fresh builder holding a copy of `f`'s params, plus the map from `f`'s
/// values to the new function's values (filled in as instructions are
/// copied or replaced).
struct Rebuild {
    b: Builder,
    map: Vec<Option<Value>>,
}

impl Rebuild {
    fn new(f: &Func) -> Rebuild {
        let mut b = Builder::new(f.name.clone());
        let mut map = vec![None; f.types.len()];
        for (&p, name) in f.params.iter().zip(&f.param_names) {
            map[p.index()] = Some(b.param(name.clone(), f.ty(p).clone()));
        }
        Rebuild { b, map }
    }

    /// The new value standing for old value `v`. Input functions verify, so
    /// every operand was defined (and mapped) before its use.
    fn get(&self, v: Value) -> Value {
        self.map[v.index()].unwrap_or_else(|| panic!("internal error: {v} used before it was rebuilt"))
    }

    fn args(&self, args: &[Value]) -> Vec<Value> {
        args.iter().map(|&a| self.get(a)).collect()
    }

    fn finish(self, f: &Func, pass: &str) -> Func {
        let results: Vec<Value> = f.results.iter().map(|&r| self.get(r)).collect();
        let out = self.b.finish(&results);
        if cfg!(debug_assertions) {
            if let Err(e) = ir::verify(&out) {
                panic!("internal error: {pass} produced invalid IR: {e}\n{}", ir::print_func(&out));
            }
            let tys = |g: &Func| -> Vec<ir::Type> { g.results.iter().map(|&r| g.ty(r).clone()).collect() };
            assert_eq!(tys(&out), tys(f), "internal error: {pass} changed the result types");
        }
        out
    }
}
