//! The primitives attention needs beyond `@` and `softmax`: cutting the
//! feature axis into heads and joining them back (views: a reshape and a
//! transpose, no per-head copies), and masking scores. They are primitives,
//! not stdlib code, for their checks: a head count that does not divide the
//! features (E0330) and a mask that does not broadcast to the scores
//! (E0331) are reported at the user's argument with the sizes and a fix.

use super::elab::Elab;
use super::shape;
use super::value::{Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::{Diagnostic, Fix};
use crate::ir::{DType, Dim};

/// The fill `masked` uses by default: far below any score, so `softmax`
/// gives a masked position an exact 0 (exp underflows) and a row whose
/// every position is masked stays finite (uniform) instead of NaN.
pub const MASK_FILL: f64 = -1e9;

impl Elab<'_> {
    /// `split_heads(x: [..., t, d], heads) -> [..., heads, t, d / heads]`.
    pub(super) fn split_heads(&mut self, x: &(Val, Span), heads: i64, heads_span: Span) -> Val {
        let Some(t) = self.as_tensor(&x.0, x.1, "`split_heads`") else {
            return Val::Error;
        };
        if !self.require_f32(&t, x.1, "`split_heads`") {
            return Val::Error;
        }
        let Some(s) = t.ty.shape.clone() else {
            return self.tensor(TensorTy::unknown(), None);
        };
        if s.len() < 2 {
            let d = Diagnostic::error(
                "E0301",
                format!("`split_heads` needs a sequence [..., t, d], found {}", t.ty),
                x.1,
                format!("this has shape {}", t.ty),
            );
            self.report(d);
            return Val::Error;
        }
        let r = s.len();
        let Dim::Known(d) = s[r - 1] else {
            let d = Diagnostic::error(
                "E0301",
                format!("`split_heads` needs a known feature size, found {}", s[r - 1]),
                x.1,
                format!("this has shape {}", t.ty),
            );
            self.report(d);
            return Val::Error;
        };
        if heads < 1 || d % heads as usize != 0 {
            self.heads_error(d, heads, heads_span);
            return Val::Error;
        }
        let h = heads as usize;
        let mut split = s.clone();
        split[r - 1] = Dim::Known(h);
        split.push(Dim::Known(d / h));
        // [..., t, heads, dk] -> [..., heads, t, dk]
        let mut perm: Vec<usize> = (0..=r).collect();
        perm.swap(r - 2, r - 1);
        let out: Vec<Dim> = perm.iter().map(|&p| split[p].clone()).collect();
        let ir = t.ir.map(|v| {
            let v = self.b.reshape(v, &split);
            self.b.transpose(v, perm)
        });
        self.tensor(TensorTy::f32(out), ir)
    }

    /// E0330 at the head count, with the nearest count that divides `d`.
    fn heads_error(&mut self, d: usize, heads: i64, at: Span) {
        let mut diag = Diagnostic::error(
            "E0330",
            format!("multi-head attention needs the features divisible by the heads: {d} features, {heads} heads"),
            at,
            format!("{heads} heads do not divide {d} features"),
        );
        let divisors = (1..=d).filter(|h| d.is_multiple_of(*h));
        let nearest = divisors.min_by_key(|&h| ((h as i64 - heads).abs(), h));
        if let Some(h) = nearest {
            let help = format!("use {h} heads ({d} / {h} = {} features per head)", d / h);
            match self.user_text(at).filter(|&u| self.text(u).trim().parse::<i64>() == Ok(heads)) {
                Some(user) => diag = diag.with_fix(help, Fix::replace(user, h.to_string())),
                None => diag = diag.with_help(help),
            }
        }
        self.report(diag);
    }

    /// `merge_heads(x: [..., heads, t, dk]) -> [..., t, heads * dk]`: the
    /// heads side by side again (the textbook's Concat(head_1, ..., head_h)).
    pub(super) fn merge_heads(&mut self, x: &(Val, Span)) -> Val {
        let Some(t) = self.as_tensor(&x.0, x.1, "`merge_heads`") else {
            return Val::Error;
        };
        if !self.require_f32(&t, x.1, "`merge_heads`") {
            return Val::Error;
        }
        let Some(s) = t.ty.shape.clone() else {
            return self.tensor(TensorTy::unknown(), None);
        };
        let r = s.len();
        let (Some(Dim::Known(h)), Some(Dim::Known(dk))) = (s.get(r.wrapping_sub(3)), s.get(r.wrapping_sub(1))) else {
            let d = Diagnostic::error(
                "E0301",
                format!("`merge_heads` needs heads [..., heads, t, d] of known sizes, found {}", t.ty),
                x.1,
                format!("this has shape {}", t.ty),
            );
            self.report(d);
            return Val::Error;
        };
        let (h, dk) = (*h, *dk);
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 3, r - 2);
        let moved: Vec<Dim> = perm.iter().map(|&p| s[p].clone()).collect();
        let mut out = moved[..r - 2].to_vec();
        out.push(Dim::Known(h * dk));
        let ir = t.ir.map(|v| {
            let v = self.b.transpose(v, perm);
            self.b.reshape(v, &out)
        });
        self.tensor(TensorTy::f32(out), ir)
    }

    /// `masked(x, mask, fill)`: `x` where `mask` is nonzero, else `fill`.
    /// Unlike `where`, the mask must broadcast *to* `x`: a mask that would
    /// widen the scores (a `[b, 1, 1, s]` padding mask on single-head scores
    /// `[b, t, s]` gives `[b, b, t, s]`) is an error, not a silent result.
    /// A compile-time number masks nothing (nonzero) or everything.
    pub(super) fn masked(&mut self, x: &(Val, Span), mask: &(Val, Span), fill: f64) -> Val {
        let Some(tx) = self.as_tensor(&x.0, x.1, "`masked`") else {
            return Val::Error;
        };
        if !self.require_f32(&tx, x.1, "`masked`") {
            return Val::Error;
        }
        let keep = match mask.0 {
            Val::Int(i) => Some(i != 0),
            Val::Float(f) => Some(f != 0.0),
            Val::Bool(b) => Some(b),
            _ => None,
        };
        if let Some(keep) = keep {
            if keep {
                return Val::Tensor(tx);
            }
            let Some(s) = tx.ty.shape.clone() else {
                return self.tensor(TensorTy::unknown(), None);
            };
            let ir = tx.ir.map(|_| self.b.fill(fill, &s));
            return self.tensor(TensorTy::f32(s), ir);
        }
        let Some(tm) = self.as_tensor(&mask.0, mask.1, "`masked`") else {
            return Val::Error;
        };
        let (Some(xs), Some(ms)) = (tx.ty.shape.clone(), tm.ty.shape.clone()) else {
            return self.tensor(tx.ty.clone(), None);
        };
        if !broadcasts_to(&ms, &xs) {
            self.mask_error(&tm, &tx, mask.1, &ms, &xs);
            return Val::Error;
        }
        let tm = self.broadcast_to(&tm, &xs);
        let ir = match (tm.ir, tx.ir) {
            (Some(m), Some(v)) => {
                let m = if tm.ty.dtype == DType::F32 { m } else { self.b.cast(m, DType::F32) };
                let f = self.b.fill(fill, &xs);
                Some(self.b.select(m, v, f))
            }
            _ => None,
        };
        self.tensor(TensorTy::f32(xs), ir)
    }

    /// E0331 at the mask, with a reshape that inserts the missing axes when
    /// the mask's dims appear in the scores' dims in order.
    fn mask_error(&mut self, tm: &Tensor, tx: &Tensor, at: Span, ms: &[Dim], xs: &[Dim]) {
        let mut d = Diagnostic::error(
            "E0331",
            format!("a mask of shape {} does not broadcast to the attention scores {}", tm.ty, tx.ty),
            at,
            format!("this mask has shape {}", tm.ty),
        )
        .with_note(format!(
            "the scores are [..., queries, keys] = {}; each mask dim, aligned from the right, must be 1 or equal to the scores' dim",
            tx.ty
        ));
        if let (Some(target), Some(user)) = (embed(ms, xs), self.user_text(at)) {
            let text = self.text(user).to_string();
            let dims: Vec<String> = target.iter().map(|d| d.to_string()).collect();
            let fixed = format!("reshape({text}, [{}])", dims.join(", "));
            d = d.with_fix(format!("give the mask the scores' axes: `{fixed}`"), Fix::replace(user, fixed));
        }
        self.report(d);
    }
}

impl Elab<'_> {
    /// `positions(table: [max_len, d], x: [..., t, d]) -> [t, d]`: the first
    /// `t` rows of a learned positional table. A table shorter than the
    /// sequence is E0332 at the sequence, with both sizes and a fix at the
    /// table's length where the user wrote it (`LearnedPositions(50, ...)`).
    pub(super) fn positions(&mut self, table: &(Val, Span), x: &(Val, Span)) -> Val {
        let (Some(tt), Some(tx)) = (
            self.as_tensor(&table.0, table.1, "`positions`"),
            self.as_tensor(&x.0, x.1, "`positions`"),
        ) else {
            return Val::Error;
        };
        let (Some(ts), Some(xs)) = (tt.ty.shape.clone(), tx.ty.shape.clone()) else {
            return self.tensor(TensorTy::unknown(), None);
        };
        if ts.len() != 2 || xs.len() < 2 {
            let d = Diagnostic::error(
                "E0301",
                format!(
                    "`positions` needs a table [max_len, d] and a sequence [..., t, d], found {} and {}",
                    tt.ty, tx.ty
                ),
                x.1,
                format!("this has shape {}", tx.ty),
            );
            self.report(d);
            return Val::Error;
        }
        let t = xs[xs.len() - 2].clone();
        let (Dim::Known(max_len), Dim::Known(steps)) = (ts[0].clone(), t.clone()) else {
            let d = Diagnostic::error(
                "E0301",
                format!("a learned positional table needs a known sequence length, found {t}"),
                x.1,
                format!("this has shape {}", tx.ty),
            );
            self.report(d);
            return Val::Error;
        };
        if steps > max_len {
            let mut d = Diagnostic::error(
                "E0332",
                format!("the sequence has {steps} positions, but the learned positional table has only {max_len}"),
                x.1,
                format!("{steps} positions here"),
            )
            .with_note(format!(
                "a learned table has one trained row per position: positions {max_len} to {} have none",
                steps - 1
            ));
            let help = format!("give the table at least {steps} positions");
            match self.table_length_span(&tt, max_len) {
                Some((at, call)) => {
                    let fixed = self.text_with(call, at, &steps.to_string());
                    d = d
                        .with_secondary(at, format!("the table has {max_len} positions"))
                        .with_fix(format!("{help}: `{fixed}`"), Fix::replace(at, steps.to_string()));
                }
                None => d = d.with_help(help),
            }
            self.report(d);
            return Val::Error;
        }
        let d = ts[1].clone();
        let out = vec![t, d];
        let ir = tt.ir.map(|v| self.b.slice(v, vec![0, 0], vec![1, 1], &out));
        self.tensor(TensorTy::f32(out), ir)
    }

    /// Where the user wrote the length of the layer whose parameter `table`
    /// is (its first argument, `max_len`), when that text is the number;
    /// and the layer's construction.
    fn table_length_span(&self, table: &Tensor, max_len: usize) -> Option<(Span, Span)> {
        let v = table.ir?;
        let param = self.params.iter().find(|p| p.value == v)?;
        let layer = param.name.rsplit_once('.')?.0;
        let inst = self.instances.iter().find(|i| i.name == layer)?;
        let first = inst.decl.params.first()?;
        let at = *inst.arg_spans.get(&first.name.name)?;
        (at.file == self.root && self.text(at).trim().parse::<usize>() == Ok(max_len)).then_some((at, inst.call_span))
    }
}

/// Whether `from` broadcasts to exactly `to` (NumPy rules, one direction).
fn broadcasts_to(from: &[Dim], to: &[Dim]) -> bool {
    from.len() <= to.len() && from.iter().rev().zip(to.iter().rev()).all(|(f, t)| *f == Dim::Known(1) || f == t)
}

/// `from`'s dims placed in `to`'s axes, in order, with 1 elsewhere: the
/// shape a reshape of the mask would need (only when it differs from
/// `from` and is a real reshape, so the element count stays).
fn embed(from: &[Dim], to: &[Dim]) -> Option<Vec<Dim>> {
    let mut out = vec![Dim::Known(1); to.len()];
    let mut j = to.len();
    for f in from.iter().rev() {
        if *f == Dim::Known(1) {
            continue;
        }
        let i = to[..j].iter().rposition(|t| t == f)?;
        out[i] = f.clone();
        j = i;
    }
    (out != from && shape::broadcast(&out, to).is_ok()).then_some(out)
}
