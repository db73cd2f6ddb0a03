//! Shape arithmetic: broadcasting, matrix products, reshapes, axes.

use crate::ir::Dim;

/// NumPy broadcasting of two shapes, or the index (from the right) of the
/// first incompatible dim pair.
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, usize> {
    let n = a.len().max(b.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let da = (i < a.len()).then(|| &a[a.len() - 1 - i]);
        let db = (i < b.len()).then(|| &b[b.len() - 1 - i]);
        let d = match (da, db) {
            (Some(x), None) | (None, Some(x)) => x.clone(),
            (Some(x), Some(y)) if x == y => x.clone(),
            (Some(Dim::Known(1)), Some(y)) => y.clone(),
            (Some(x), Some(Dim::Known(1))) => x.clone(),
            _ => return Err(i),
        };
        out.push(d);
    }
    out.reverse();
    Ok(out)
}

/// `[n]` against `[n, 1]` with the same symbolic `n` (a batch of targets
/// against a column of predictions): `Some(true)` when `b` is the vector.
/// Broadcasting would give `[n, n]`; with a symbolic `n` (the batch) that
/// is never what was meant.
pub fn vector_against_column(a: &[Dim], b: &[Dim]) -> Option<bool> {
    let is = |v: &[Dim], c: &[Dim]| matches!((v, c), ([Dim::Sym(x)], [Dim::Sym(y), Dim::Known(1)]) if x == y);
    if is(b, a) {
        Some(true)
    } else if is(a, b) {
        Some(false)
    } else {
        None
    }
}

/// Product of known dims and the sorted symbols, so element counts of
/// `[B, 784]` and `[B, 28, 28]` compare equal.
pub fn element_count(shape: &[Dim]) -> (i64, Vec<String>) {
    let mut n: i64 = 1;
    let mut syms = vec![];
    for d in shape {
        match d {
            Dim::Known(k) => n = n.saturating_mul(*k as i64),
            Dim::Sym(s) => syms.push(s.clone()),
        }
    }
    syms.sort();
    (n, syms)
}

/// Normalise a possibly negative axis for a tensor of rank `rank`.
pub fn axis(a: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    (0..r).contains(&a).then_some(a as usize)
}

pub fn shape_str(shape: &[Dim]) -> String {
    crate::ir::shape_to_string(shape)
}
