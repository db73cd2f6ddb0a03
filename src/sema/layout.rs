//! Builtins that move elements rather than compute them: `concat`, `stack`,
//! `split`, `chunk`, `pad`, `gather` and `arange`. Each checks its shapes
//! here and lowers to the IR's `concat`, `slice`, `pad`, `gather` and
//! `iota` ops (`split` and `chunk` are slices; `stack` is a reshape and a
//! concat).
//!
//! Axes default to 0, as in NumPy and PyTorch. Nothing may cut, pad or join
//! along a dim known only at run time (the batch): E0324.

use super::elab::Elab;
use super::shape;
use super::value::{Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::Diagnostic;
use crate::ir::{DType, Dim};

/// A normalised axis of a tensor of rank `rank`, or an E0306 report.
pub(super) fn axis_of(e: &mut Elab, a: i64, rank: usize, span: Span) -> Option<usize> {
    match shape::axis(a, rank) {
        Some(x) => Some(x),
        None => {
            let d = Diagnostic::error(
                "E0306",
                format!("axis {a} is out of range for a tensor of rank {rank}"),
                span,
                if rank == 0 {
                    "a scalar has no axes".to_string()
                } else {
                    format!("valid axes are {} to {}", -(rank as i64), rank as i64 - 1)
                },
            );
            e.report(d);
            None
        }
    }
}

/// The size of `dim`, or an E0324 report when it is symbolic.
fn known_size(e: &mut Elab, dim: &Dim, what: &str, span: Span) -> Option<usize> {
    let help = if what.contains("pad") {
        "give this axis the width 0 (`[0, ...]`)"
    } else {
        "choose another axis with `axis:`"
    };
    match dim {
        Dim::Known(n) => Some(*n),
        Dim::Sym(s) => {
            let d = Diagnostic::error(
                "E0324",
                format!("{what} along an axis of size `{s}`, known only when the model runs"),
                span,
                format!("this axis is `{s}`"),
            )
            .with_help(help);
            e.report(d);
            None
        }
    }
}

impl Elab<'_> {
    /// The tensors of a list argument, each with its own span when the list
    /// was written out (`[a, b]`), else the list's span.
    fn tensor_list(&mut self, v: &Val, span: Span, what: &str) -> Option<Vec<(Tensor, Span)>> {
        let Val::List(items) = v else {
            if !v.is_poison() {
                let d = Diagnostic::error(
                    "E0203",
                    format!("`{what}` joins a list of tensors"),
                    span,
                    format!("this is {}", v.kind()),
                )
                .with_help(format!("write `{what}([a, b], axis: 0)`"));
                self.report(d);
            }
            return None;
        };
        let spans = self.list_items.get(&span).cloned().unwrap_or_default();
        let mut out = vec![];
        for (i, it) in items.iter().enumerate() {
            let s = spans.get(i).copied().unwrap_or(span);
            out.push((self.as_tensor(it, s, &format!("`{what}`"))?, s));
        }
        if out.is_empty() {
            let d = Diagnostic::error("E0203", format!("`{what}` of an empty list"), span, "no tensors here");
            self.report(d);
            return None;
        }
        Some(out)
    }

    /// `concat(xs, axis)` and, with `stack`, `stack(xs, axis)`.
    pub(super) fn concat(&mut self, xs: &(Val, Span), axis: i64, axis_span: Span, stack: bool) -> Val {
        let what = if stack { "stack" } else { "concat" };
        let Some(parts) = self.tensor_list(&xs.0, xs.1, what) else {
            return Val::Error;
        };
        let (first, first_span) = parts[0].clone();
        for (t, s) in &parts[1..] {
            if t.ty.dtype != first.ty.dtype {
                let d = Diagnostic::error(
                    "E0201",
                    format!("`{what}` of {} and {} tensors", first.ty.dtype, t.ty.dtype),
                    *s,
                    format!("this is {}", t.ty),
                )
                .with_secondary(first_span, format!("this is {}", first.ty));
                self.report(d);
                return Val::Error;
            }
        }
        let shapes: Option<Vec<Vec<Dim>>> = parts.iter().map(|(t, _)| t.ty.shape.clone()).collect();
        let Some(shapes) = shapes else {
            return self.tensor(
                TensorTy {
                    dtype: first.ty.dtype,
                    shape: None,
                },
                None,
            );
        };
        let rank = shapes[0].len();
        let Some(ax) = axis_of(self, axis, if stack { rank + 1 } else { rank }, axis_span) else {
            return Val::Error;
        };
        for ((t, s), sh) in parts.iter().zip(&shapes).skip(1) {
            let differs = if stack {
                sh != &shapes[0]
            } else {
                sh.len() != rank || sh.iter().zip(&shapes[0]).enumerate().any(|(i, (a, b))| i != ax && a != b)
            };
            if differs {
                let rule = if stack {
                    "`stack` needs tensors of one shape".to_string()
                } else if sh.len() != rank {
                    format!("`concat` needs tensors of one rank, found {} and {}", rank, sh.len())
                } else {
                    format!("`concat` along axis {ax} needs equal dims on every other axis")
                };
                let d = Diagnostic::error(
                    "E0322",
                    format!("{rule}: {} and {}", first.ty, t.ty),
                    *s,
                    format!("this has shape {}", t.ty),
                )
                .with_secondary(first_span, format!("this has shape {}", first.ty));
                self.report(d);
                return Val::Error;
            }
        }
        // Stacking is concatenation of the parts with a new axis of size 1.
        let parts: Vec<Tensor> = if stack {
            parts
                .into_iter()
                .map(|(t, _)| {
                    let mut s = t.ty.shape.clone().expect("known");
                    s.insert(ax, Dim::Known(1));
                    let ir = t.ir.map(|v| self.b.reshape(v, &s));
                    Tensor {
                        ty: TensorTy {
                            dtype: t.ty.dtype,
                            shape: Some(s),
                        },
                        ir,
                    }
                })
                .collect()
        } else {
            parts.into_iter().map(|(t, _)| t).collect()
        };
        let mut total = 0usize;
        for (i, p) in parts.iter().enumerate() {
            let span = if i == 0 { first_span } else { xs.1 };
            let Some(n) = known_size(self, &p.ty.shape.as_ref().expect("known")[ax], what, span) else {
                return Val::Error;
            };
            total = total.saturating_add(n);
        }
        let mut out = parts[0].ty.shape.clone().expect("known");
        out[ax] = Dim::Known(total);
        let irs: Option<Vec<_>> = parts.iter().map(|p| p.ir).collect();
        let ir = irs.map(|vs| if vs.len() == 1 { vs[0] } else { self.b.concat(&vs, ax) });
        self.tensor(
            TensorTy {
                dtype: first.ty.dtype,
                shape: Some(out),
            },
            ir,
        )
    }

    /// `split(x, sizes, axis)` (`sizes` a list) and `chunk(x, n, axis)`:
    /// a list of consecutive slices along `axis`.
    pub(super) fn split(&mut self, x: &(Val, Span), sizes: &(Val, Span), axis: i64, axis_span: Span, chunk: bool) -> Val {
        let what = if chunk { "chunk" } else { "split" };
        let Some(t) = self.as_tensor(&x.0, x.1, &format!("`{what}`")) else {
            return Val::Error;
        };
        let Some(shape) = t.ty.shape.clone() else { return Val::Any };
        let Some(ax) = axis_of(self, axis, shape.len(), axis_span) else {
            return Val::Error;
        };
        let Some(n) = known_size(self, &shape[ax], &format!("`{what}`"), x.1) else {
            return Val::Error;
        };
        let pieces: Vec<usize> = if chunk {
            let Val::Int(k) = sizes.0 else {
                return self.expected_int(&sizes.0, sizes.1, "the number of chunks");
            };
            if k < 1 || k as usize > n.max(1) || n % (k as usize) != 0 {
                let d = Diagnostic::error(
                    "E0323",
                    format!("`chunk` cannot cut axis {ax} of size {n} into {k} equal pieces"),
                    sizes.1,
                    format!("{k} does not divide {n}"),
                )
                .with_secondary(x.1, format!("this has shape {}", t.ty));
                self.report(d);
                return Val::Error;
            }
            vec![n / k as usize; k as usize]
        } else {
            let Val::List(items) = &sizes.0 else {
                if sizes.0.is_poison() {
                    return Val::Any;
                }
                let d = Diagnostic::error(
                    "E0203",
                    "`split` takes the sizes of the pieces as a list",
                    sizes.1,
                    format!("this is {}", sizes.0.kind()),
                )
                .with_help("e.g. `split(x, [3, 5], axis: -1)`; for equal pieces use `chunk(x, n)`");
                self.report(d);
                return Val::Error;
            };
            let mut out = vec![];
            for it in items {
                match it {
                    Val::Int(k) if *k >= 1 => out.push(*k as usize),
                    other => return self.expected_int(other, sizes.1, "a piece size (at least 1)"),
                }
            }
            let sum = out.iter().fold(0usize, |a, &b| a.saturating_add(b));
            if sum != n {
                let d = Diagnostic::error(
                    "E0323",
                    format!("`split` sizes add up to {sum}, but axis {ax} has {n}"),
                    sizes.1,
                    format!("these add up to {sum}"),
                )
                .with_secondary(x.1, format!("this has shape {}", t.ty));
                self.report(d);
                return Val::Error;
            }
            out
        };
        let mut start = 0;
        let mut out = vec![];
        for len in pieces {
            let mut starts = vec![0; shape.len()];
            starts[ax] = start;
            let mut s = shape.clone();
            s[ax] = Dim::Known(len);
            let ir = t.ir.map(|v| {
                if len == n {
                    v
                } else {
                    self.b.slice(v, starts, vec![1; shape.len()], &s)
                }
            });
            out.push(self.tensor(
                TensorTy {
                    dtype: t.ty.dtype,
                    shape: Some(s),
                },
                ir,
            ));
            start += len;
        }
        Val::List(out)
    }

    fn expected_int(&mut self, v: &Val, span: Span, what: &str) -> Val {
        if v.is_poison() {
            return Val::Error;
        }
        let d = Diagnostic::error(
            "E0202",
            format!("{what} must be a compile-time integer"),
            span,
            format!("this is {}", v.kind()),
        );
        let d = self.with_rounding_fix(d, v, span);
        self.report(d);
        Val::Error
    }

    /// `gather(x, ids, axis)`: `x` with axis `axis` replaced by the
    /// positions `ids` names (an embedding lookup: `gather(E, tokens)`).
    pub(super) fn gather(&mut self, x: &(Val, Span), ids: &(Val, Span), axis: i64, axis_span: Span) -> Val {
        let Some(t) = self.as_tensor(&x.0, x.1, "`gather`") else {
            return Val::Error;
        };
        let Some(i) = self.as_tensor(&ids.0, ids.1, "`gather`") else {
            return Val::Error;
        };
        if i.ty.dtype != DType::I32 {
            let d = Diagnostic::error(
                "E0201",
                format!("`gather` needs i32 ids, found {}", i.ty.dtype),
                ids.1,
                format!("this is {}", i.ty),
            )
            .with_secondary(x.1, format!("gathering from {}", t.ty))
            .with_note("ids are positions along the axis: integer data such as `tokens: i32[batch, steps]`; a float cannot name a row");
            self.report(d);
            return Val::Error;
        }
        let (Some(xs), Some(is)) = (t.ty.shape.clone(), i.ty.shape.clone()) else {
            return self.tensor(
                TensorTy {
                    dtype: t.ty.dtype,
                    shape: None,
                },
                None,
            );
        };
        let Some(ax) = axis_of(self, axis, xs.len(), axis_span) else {
            return Val::Error;
        };
        let mut out: Vec<Dim> = xs[..ax].to_vec();
        out.extend(is.iter().cloned());
        out.extend(xs[ax + 1..].iter().cloned());
        let ir = match (t.ir, i.ir) {
            (Some(a), Some(b)) => Some(self.b.gather(a, b, ax)),
            _ => None,
        };
        self.tensor(
            TensorTy {
                dtype: t.ty.dtype,
                shape: Some(out),
            },
            ir,
        )
    }

    /// `pad(x, widths, value)`: `widths` is one integer for every side of
    /// every axis, or a list with, per axis, an integer or `[before, after]`.
    pub(super) fn pad(&mut self, x: &(Val, Span), widths: &(Val, Span), value: f64) -> Val {
        let Some(t) = self.as_tensor(&x.0, x.1, "`pad`") else {
            return Val::Error;
        };
        if !self.require_f32(&t, x.1, "`pad`") {
            return Val::Error;
        }
        let Some(shape) = t.ty.shape.clone() else { return Val::Any };
        let rank = shape.len();
        let bad = |e: &mut Elab, msg: String, label: String| {
            let d = Diagnostic::error("E0202", msg, widths.1, label).with_help(format!(
                "e.g. `pad(x, 1)` or, per axis, `pad(x, [{}])`",
                vec!["[0, 0]"; rank.max(1)].join(", ")
            ));
            e.report(d);
            Val::Error
        };
        let pairs: Vec<(i64, i64)> = match &widths.0 {
            Val::Int(k) => vec![(*k, *k); rank],
            Val::List(items) if items.len() == rank => {
                let mut out = vec![];
                for it in items {
                    match it {
                        Val::Int(k) => out.push((*k, *k)),
                        Val::List(p) => match p.as_slice() {
                            [Val::Int(a), Val::Int(b)] => out.push((*a, *b)),
                            _ => {
                                return bad(
                                    self,
                                    "each axis's padding is an integer or `[before, after]`".into(),
                                    format!("contains {}", it.kind()),
                                )
                            }
                        },
                        other => {
                            return bad(
                                self,
                                "each axis's padding is an integer or `[before, after]`".into(),
                                format!("contains {}", other.kind()),
                            )
                        }
                    }
                }
                out
            }
            Val::List(items) => {
                return bad(
                    self,
                    format!("`pad` needs a width for each of the {rank} axes, found {}", items.len()),
                    format!("{} entries for a tensor {}", items.len(), t.ty),
                )
            }
            v if v.is_poison() => return Val::Error,
            other => {
                return bad(
                    self,
                    "`pad` widths must be compile-time integers".into(),
                    format!("this is {}", other.kind()),
                )
            }
        };
        if pairs.iter().any(|&(a, b)| a < 0 || b < 0) {
            return bad(self, "padding widths cannot be negative".into(), "a negative width".into());
        }
        const MAX_WIDTH: i64 = 1 << 31;
        if pairs.iter().any(|&(a, b)| a > MAX_WIDTH || b > MAX_WIDTH) {
            return bad(
                self,
                format!("padding widths above {MAX_WIDTH} are not supported"),
                "too wide".into(),
            );
        }
        let mut out = shape.clone();
        for (k, &(lo, hi)) in pairs.iter().enumerate() {
            if lo == 0 && hi == 0 {
                continue;
            }
            let Some(n) = known_size(self, &shape[k], "`pad`", widths.1) else {
                return Val::Error;
            };
            out[k] = Dim::Known(n + lo as usize + hi as usize);
        }
        let low: Vec<usize> = pairs.iter().map(|p| p.0 as usize).collect();
        let high: Vec<usize> = pairs.iter().map(|p| p.1 as usize).collect();
        let ir = t.ir.map(|v| {
            let padded = self.b.pad(v, low.clone(), high.clone());
            if value == 0.0 || out == shape {
                return padded;
            }
            // The border takes `value`: where a padded mask of ones is 0.
            let ones = self.b.fill(1.0, &shape);
            let inside = self.b.pad(ones, low.clone(), high.clone());
            let fill = self.b.fill(value, &out);
            self.b.select(inside, padded, fill)
        });
        self.tensor(TensorTy::f32(out), ir)
    }

    /// `arange(stop)` or `arange(start, stop, step)`: evenly spaced f32
    /// values, a compile-time length.
    pub(super) fn arange(&mut self, start: f64, stop: f64, step: f64, span: Span) -> Val {
        if step == 0.0 {
            let d = Diagnostic::error("E0321", "`arange` step cannot be 0", span, "step 0");
            self.report(d);
            return Val::Error;
        }
        let len = ((stop - start) / step).ceil();
        if len.is_nan() || len < 1.0 || len > (1u64 << 32) as f64 {
            let d = Diagnostic::error(
                "E0321",
                format!(
                    "`arange({start}, {stop}, {step})` has {} values",
                    if len >= 1.0 { len } else { 0.0 }
                ),
                span,
                if len >= 1.0 { "too many values" } else { "no values" },
            );
            self.report(d);
            return Val::Error;
        }
        let shape = vec![Dim::Known(len as usize)];
        let mut v = self.b.iota(&shape, 0);
        if step != 1.0 {
            let s = self.b.fill(step, &shape);
            v = self.b.mul(v, s);
        }
        if start != 0.0 {
            let s = self.b.fill(start, &shape);
            v = self.b.add(v, s);
        }
        self.tensor(TensorTy::f32(shape), Some(v))
    }
}
