//! Helpers shared by the test modules.

use nnc::ir::{Builder, Func, Op};

/// `sum(f(args) * r)` for a fixed random normal `r`: a scalar that depends
/// on every element of `f`'s first result, so its gradient reaches all of
/// them.
pub fn scalarize(f: &Func) -> Func {
    let mut b = Builder::new(format!("{}_loss", f.name));
    let ps: Vec<_> = f.params.iter().map(|&p| b.param("p", f.ty(p).clone())).collect();
    let out = b.inline(f, &ps)[0];
    let shape = b.shape(out);
    let r = b.push(
        Op::RandomNormal {
            shape: shape.clone(),
            seed: 99,
        },
        &[],
    );
    let m = b.mul(out, r);
    let s = b.reduce_sum(m, (0..shape.len()).collect(), false);
    b.finish(&[s])
}
