//! Batched products against one shared matrix become one product.
//!
//! A convolution is lowered per image: `[n, L, ckk] @ broadcast([ckk, out])`
//! (the batch is symbolic while the model is checked, so the IR cannot yet
//! write `[n·L, ckk]`). Once the function is specialised to a batch size,
//! this pass folds the batch into the rows:
//!
//! - `a @ broadcast(w)` and `a @ swap(broadcast(w))` (the backward product
//!   against the weights) → `reshape(reshape(a, [P·m, k]) @ w, [.., m, n])`;
//! - `reduce_sum(swap(a) @ g, over the batch axes)` (the weight gradient,
//!   a sum of per-image products) → `swap(reshape(a, [P·m, k])) @
//!   reshape(g, [P·m, n])`.
//!
//! One large GEMM instead of `n` small ones is what lets the `gemm` crate
//! reach its peak. Unlike `simplify`, the second rule reassociates a sum
//! (the per-image partial products are no longer rounded separately), so
//! results may differ in the last bits; the forward rule computes every
//! output element from the same products.

use super::Rebuild;
use crate::ir::{Dim, Func, Op, Value};

pub fn batch_fold(f: &Func) -> Func {
    let mut p = Folder {
        rb: Rebuild::new(f),
        defs: Vec::new(),
    };
    for inst in &f.insts {
        let args = p.rb.args(&inst.args);
        let v = p.rewrite(&inst.op, &args).unwrap_or_else(|| p.push(inst.op.clone(), &args));
        p.rb.map[inst.result.index()] = Some(v);
    }
    p.rb.finish(f, "batch_fold")
}

struct Folder {
    rb: Rebuild,
    defs: Vec<Option<(Op, Vec<Value>)>>,
}

fn known(shape: &[Dim]) -> Option<Vec<usize>> {
    shape.iter().map(Dim::known).collect()
}

/// `perm` swaps the last two axes and keeps the others.
fn is_swap(perm: &[usize]) -> bool {
    let r = perm.len();
    r >= 2 && perm[r - 2] == r - 1 && perm[r - 1] == r - 2 && perm[..r - 2].iter().enumerate().all(|(i, &p)| i == p)
}

impl Folder {
    fn push(&mut self, op: Op, args: &[Value]) -> Value {
        let v = self.rb.b.push(op.clone(), args);
        if self.defs.len() <= v.index() {
            self.defs.resize(v.index() + 1, None);
        }
        self.defs[v.index()] = Some((op, args.to_vec()));
        v
    }

    fn def(&self, v: Value) -> Option<&(Op, Vec<Value>)> {
        self.defs.get(v.index())?.as_ref()
    }

    fn dims(&self, v: Value) -> Option<Vec<usize>> {
        known(&self.rb.b.shape(v))
    }

    /// A rank-2 `w` such that `v` is `w` (or `wᵀ` when the flag is set)
    /// broadcast over leading dims.
    fn shared_matrix(&self, v: Value) -> Option<(Value, bool)> {
        let (op, args) = self.def(v)?;
        if let Op::Broadcast { .. } = op {
            return (self.rb.b.ty(args[0]).rank() == 2).then_some((args[0], false));
        }
        if let Op::Transpose { perm } = op {
            if is_swap(perm) {
                let (w, t) = self.shared_matrix(args[0])?;
                return Some((w, !t));
            }
        }
        None
    }

    /// `v` as a `[rows, cols]` matrix with the leading dims folded into rows.
    fn rows(&mut self, v: Value) -> Value {
        let d = self.dims(v).expect("checked known");
        let r = d.len();
        let rows: usize = d[..r - 1].iter().product();
        self.push(
            Op::Reshape {
                shape: vec![Dim::Known(rows), Dim::Known(d[r - 1])],
            },
            &[v],
        )
    }

    fn rewrite(&mut self, op: &Op, args: &[Value]) -> Option<Value> {
        if let Op::MatMul = op {
            return self.shared_product(args);
        }
        if let Op::ReduceSum { axes, keep: false } = op {
            return self.summed_products(axes, args[0]);
        }
        None
    }

    /// `a @ broadcast(w)` (or of `swap(broadcast(w))`) as one product.
    fn shared_product(&mut self, args: &[Value]) -> Option<Value> {
        let out = self.dims(args[0])?;
        let r = out.len();
        if r < 3 {
            return None;
        }
        self.dims(args[1])?;
        let (w, transposed) = self.shared_matrix(args[1])?;
        let w = if transposed {
            self.push(Op::Transpose { perm: vec![1, 0] }, &[w])
        } else {
            w
        };
        let a = self.rows(args[0]);
        let y = self.push(Op::MatMul, &[a, w]);
        let n = self.dims(w)?[1];
        let mut shape: Vec<Dim> = out[..r - 1].iter().map(|&x| Dim::Known(x)).collect();
        shape.push(Dim::Known(n));
        Some(self.push(Op::Reshape { shape }, &[y]))
    }

    /// `reduce_sum(swap(a) @ g)` over the batch axes as one product.
    fn summed_products(&mut self, axes: &[usize], v: Value) -> Option<Value> {
        let (op, margs) = self.def(v)?.clone();
        if op != Op::MatMul {
            return None;
        }
        let d = self.dims(v)?;
        let r = d.len();
        if r < 3 || *axes != (0..r - 2).collect::<Vec<_>>() {
            return None;
        }
        let (x, y) = (margs[0], margs[1]);
        // x = swap(a): fold a's rows, then transpose the matrix.
        let (Op::Transpose { perm }, targs) = self.def(x)? else {
            return None;
        };
        if !is_swap(perm) {
            return None;
        }
        let a = targs[0];
        self.dims(a)?;
        let a2 = self.rows(a);
        let at = self.push(Op::Transpose { perm: vec![1, 0] }, &[a2]);
        let y2 = self.rows(y);
        Some(self.push(Op::MatMul, &[at, y2]))
    }
}
