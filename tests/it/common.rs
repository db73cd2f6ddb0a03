//! Helpers shared by the test modules.

use nnc::ir::{Builder, Func, Op};
use std::path::{Path, PathBuf};

/// `sum(f(args) * r)` for a fixed random normal `r`: a scalar that depends
/// on every element of `f`'s first result, so its gradient reaches all of
/// them.
pub fn scalarize(f: &Func) -> Func {
    let mut b = Builder::new(format!("{}_loss", f.name));
    let ps: Vec<_> = f.params.iter().map(|&p| b.param("p", f.ty(p).clone())).collect();
    let out = b.inline(f, &ps)[0];
    let shape = b.shape(out);
    let key = b.constant(0.0);
    let r = b.push(
        Op::RandomNormal {
            shape: shape.clone(),
            seed: 99,
        },
        &[key],
    );
    let m = b.mul(out, r);
    let s = b.reduce_sum(m, (0..shape.len()).collect(), false);
    b.finish(&[s])
}

/// Where the shared datasets are (`NNC_DATA`, or `../shared/data` beside
/// the checkout as in CI); a missing `sub`directory fails the test loudly
/// rather than skipping it.
pub fn data_dir(sub: &str) -> PathBuf {
    let dir = std::env::var_os("NNC_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    assert!(
        dir.join(sub).is_dir(),
        "{sub}/ not found in {}: set NNC_DATA to the directory holding it",
        dir.display()
    );
    dir
}
