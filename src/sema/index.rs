//! Indexing and slicing, `x[:, t, 0:64]`, in the elaborator.
//!
//! The meaning is NumPy's basic indexing — an integer picks one position
//! and drops the axis, `start:end:step` keeps it, `...` stands for the
//! whole axes the other items leave, missing trailing items are `:` — with
//! one deliberate difference: a bound outside the axis is an error (E0320)
//! instead of being clamped, and so is an empty slice (E0321), because in a
//! model whose sizes are all known such a bound is a bug, not a convenience.
//! Only whole-axis slices may touch a dim whose size is known at run time
//! only (the batch): anything else could not be checked (E0324).
//!
//! Lowering: one `slice` (start and stride per axis, the result shape), a
//! `reverse` of the axes with a negative step, and a `reshape` that drops
//! the indexed axes. Lists (`params[0]`) index like tensors' first axis.

use super::elab::Elab;
use super::value::{Env, Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::Diagnostic;
use crate::ir::Dim;
use crate::syntax::ast::{Expr, IndexItem};

/// One index item with its parts evaluated.
enum Item {
    At(i64, Span),
    Slice {
        start: Option<(i64, Span)>,
        end: Option<(i64, Span)>,
        step: Option<(i64, Span)>,
        span: Span,
    },
    Ellipsis(Span),
}

/// What one axis of the operand becomes.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct AxisPick {
    /// First element taken (the lowest position, whatever the step's sign).
    pub start: usize,
    /// Distance between taken elements (positive).
    pub stride: usize,
    /// Elements taken.
    pub len: Dim,
    /// The step was negative: the taken elements are reversed.
    pub reversed: bool,
    /// An integer index: the axis is dropped.
    pub drop: bool,
}

impl Elab<'_> {
    pub(super) fn index(&mut self, base: Val, base_span: Span, items: &[IndexItem], env: &mut Env, span: Span) -> Val {
        let mut evaluated = vec![];
        for it in items {
            match self.index_item(it, env) {
                Some(i) => evaluated.push(i),
                None => return Val::Error,
            }
        }
        match base {
            Val::List(list) => self.index_list(&list, base_span, &evaluated),
            Val::Error => Val::Error,
            Val::Any => Val::Any,
            other => {
                let Some(t) = self.as_tensor(&other, base_span, "indexing") else {
                    return Val::Error;
                };
                let Some(shape) = t.ty.shape.clone() else {
                    return self.tensor(
                        TensorTy {
                            dtype: t.ty.dtype,
                            shape: None,
                        },
                        None,
                    );
                };
                let Some(picks) = self.axis_picks(&shape, &t, &evaluated, base_span, span) else {
                    return Val::Error;
                };
                self.lower_picks(&t, &picks)
            }
        }
    }

    /// Evaluate an item's parts: compile-time integers.
    fn index_item(&mut self, it: &IndexItem, env: &mut Env) -> Option<Item> {
        Some(match it {
            IndexItem::At(e) => Item::At(self.index_int(e, env)?, e.span),
            IndexItem::Slice { start, end, step, span } => {
                let mut part = |p: &Option<Expr>| -> Option<Option<(i64, Span)>> {
                    match p {
                        None => Some(None),
                        Some(e) => Some(Some((self.index_int(e, env)?, e.span))),
                    }
                };
                let (start, end, step) = (part(start)?, part(end)?, part(step)?);
                if let Some((0, s)) = step {
                    let d = Diagnostic::error("E0321", "a slice step cannot be 0", s, "step 0")
                        .with_help("write `1` to take every element, `-1` to reverse");
                    self.report(d);
                    return None;
                }
                Item::Slice {
                    start,
                    end,
                    step,
                    span: *span,
                }
            }
            IndexItem::Ellipsis(s) => Item::Ellipsis(*s),
        })
    }

    fn index_int(&mut self, e: &Expr, env: &mut Env) -> Option<i64> {
        let v = self.eval(e, env);
        match v {
            Val::Int(i) => Some(i),
            Val::Error | Val::Any => None,
            Val::Tensor(ref t) => {
                let help = if t.ty.dtype == crate::ir::DType::I32 {
                    "to pick rows by a tensor of ids, use `gather(x, ids)`"
                } else {
                    "indices are compile-time integers"
                };
                let d = Diagnostic::error(
                    "E0202",
                    "an index must be a compile-time integer",
                    e.span,
                    format!("this is {}", v.kind()),
                )
                .with_help(help);
                self.report(d);
                None
            }
            other => {
                let d = Diagnostic::error(
                    "E0202",
                    "an index must be a compile-time integer",
                    e.span,
                    format!("this is {}", other.kind()),
                );
                let d = self.with_rounding_fix(d, &other, e.span);
                self.report(d);
                None
            }
        }
    }

    /// `params[0]`, `params[1:]`: items of a list.
    fn index_list(&mut self, list: &[Val], span: Span, items: &[Item]) -> Val {
        let len = list.len() as i64;
        match items {
            [Item::At(i, s)] => match in_range(*i, len) {
                Some(k) => list[k].clone(),
                None => {
                    self.out_of_range(*i, len as usize, *s, "the list");
                    Val::Error
                }
            },
            [one @ Item::Slice { .. }] => {
                let Some(p) = self.pick(one, &Dim::Known(list.len()), 0) else {
                    return Val::Error;
                };
                let n = p.len.known().expect("known length");
                let mut out: Vec<Val> = (0..n).map(|j| list[p.start + j * p.stride].clone()).collect();
                if p.reversed {
                    out.reverse();
                }
                Val::List(out)
            }
            _ => {
                let d = Diagnostic::error(
                    "E0309",
                    "a list takes one index or one slice",
                    items.first().map_or(span, item_span),
                    format!("the list has {} items", list.len()),
                );
                self.report(d);
                Val::Error
            }
        }
    }

    /// Resolve every item against the operand's axes.
    fn axis_picks(&mut self, shape: &[Dim], t: &Tensor, items: &[Item], base_span: Span, span: Span) -> Option<Vec<AxisPick>> {
        let ellipses: Vec<Span> = items
            .iter()
            .filter_map(|i| if let Item::Ellipsis(s) = i { Some(*s) } else { None })
            .collect();
        if ellipses.len() > 1 {
            let d = Diagnostic::error("E0321", "an index can have only one `...`", ellipses[1], "a second `...`");
            self.report(d);
            return None;
        }
        let rank = shape.len();
        let used = items.len() - ellipses.len();
        if used > rank {
            let d = Diagnostic::error(
                "E0309",
                format!("{used} indices for a tensor of rank {rank}"),
                item_span(&items[items.len() - ellipses.len().max(1).min(items.len())]),
                format!("indexes axis {}, but the tensor is {}", used - 1, t.ty),
            )
            .with_secondary(base_span, format!("this has shape {}", t.ty));
            self.report(d);
            return None;
        }
        let _ = span;
        // The axis each item applies to: before `...` from the front, after
        // it from the back; axes no item names are whole.
        let split = items.iter().position(|i| matches!(i, Item::Ellipsis(_))).unwrap_or(items.len());
        let after = items.len() - (split + ellipses.len());
        let mut picks: Vec<AxisPick> = shape.iter().map(whole).collect();
        for (k, it) in items.iter().enumerate() {
            let axis = match k.cmp(&split) {
                std::cmp::Ordering::Less => k,
                std::cmp::Ordering::Equal => continue,
                std::cmp::Ordering::Greater => rank - after + (k - split - 1),
            };
            picks[axis] = self.pick(it, &shape[axis], axis)?;
        }
        Some(picks)
    }

    /// What `it` takes of an axis of size `dim`.
    fn pick(&mut self, it: &Item, dim: &Dim, axis: usize) -> Option<AxisPick> {
        let n = match dim {
            Dim::Known(n) => *n as i64,
            Dim::Sym(s) => {
                let whole_slice = matches!(
                    it,
                    Item::Slice {
                        start: None,
                        end: None,
                        step: None | Some((1, _)),
                        ..
                    }
                );
                if whole_slice {
                    return Some(whole(dim));
                }
                let d = Diagnostic::error(
                    "E0324",
                    format!("axis {axis} has size `{s}`, known only when the model runs"),
                    item_span(it),
                    "cannot check this against it",
                )
                .with_help("only `:` (the whole axis) can index it");
                self.report(d);
                return None;
            }
        };
        match it {
            Item::Ellipsis(_) => Some(whole(dim)),
            Item::At(i, s) => match in_range(*i, n) {
                Some(k) => Some(AxisPick {
                    start: k,
                    stride: 1,
                    len: Dim::Known(1),
                    reversed: false,
                    drop: true,
                }),
                None => {
                    self.out_of_range(*i, n as usize, *s, &format!("axis {axis}"));
                    None
                }
            },
            Item::Slice { start, end, step, span } => {
                let step = step.map_or(1, |s| s.0);
                // Bounds count from the end when negative, as in Python.
                let norm = |b: i64| if b < 0 { b + n } else { b };
                let (first, count) = if step > 0 {
                    let lo = start.map_or(0, |s| norm(s.0));
                    let hi = end.map_or(n, |e| norm(e.0));
                    let hi_ok = (0..=n).contains(&hi);
                    if let Some(s) = start.filter(|_| !(0..n).contains(&lo)) {
                        // Too far below: start at the first element.
                        let fix = (lo < 0 && hi_ok && hi > 0).then_some(0);
                        return self.bound_error(s, n, axis, "start", fix);
                    }
                    if let Some(e) = end.filter(|_| !hi_ok) {
                        // Past the end: end at the end.
                        let fix = (hi > n).then_some(n);
                        return self.bound_error(e, n, axis, "end", fix);
                    }
                    if hi <= lo {
                        return self.empty_slice(*span, lo, hi, step, axis);
                    }
                    // Elements lo, lo + step, ... below hi (in u64: any step).
                    (lo, ((hi - lo - 1) as u64 / step.unsigned_abs()) as i64 + 1)
                } else {
                    // Downwards from `start` (default the last) to just
                    // above `end` (default past the first).
                    let hi = start.map_or(n - 1, |s| norm(s.0));
                    let lo = end.map_or(-1, |e| norm(e.0));
                    if let Some(s) = start.filter(|_| !(0..n).contains(&hi)) {
                        let fix = (hi >= n && lo < n - 1).then_some(n - 1);
                        return self.bound_error(s, n, axis, "start", fix);
                    }
                    if let Some(e) = end.filter(|_| !(0..n).contains(&lo)) {
                        return self.bound_error(e, n, axis, "end", None);
                    }
                    if hi <= lo {
                        return self.empty_slice(*span, hi, lo, step, axis);
                    }
                    let s = step.unsigned_abs();
                    let count = (hi - lo - 1) as u64 / s + 1;
                    (hi - ((count - 1) * s) as i64, count as i64)
                };
                Some(AxisPick {
                    start: first as usize,
                    stride: step.unsigned_abs() as usize,
                    len: Dim::Known(count as usize),
                    reversed: step < 0,
                    drop: false,
                })
            }
        }
    }

    fn out_of_range(&mut self, i: i64, n: usize, span: Span, what: &str) {
        let d = Diagnostic::error(
            "E0320",
            format!("index {i} is out of range for {what} of size {n}"),
            span,
            if n == 0 {
                "there are no elements".to_string()
            } else {
                format!("valid indices are -{n} to {}", n - 1)
            },
        );
        self.report(d);
    }

    /// A slice bound outside the axis; `fix` is the nearest bound that
    /// gives a non-empty slice, when there is one.
    fn bound_error(&mut self, (b, span): (i64, Span), n: i64, axis: usize, which: &str, fix: Option<i64>) -> Option<AxisPick> {
        let mut d = Diagnostic::error(
            "E0320",
            format!("slice {which} {b} is out of range for axis {axis} of size {n}"),
            span,
            format!("the axis has positions 0 to {} (-{n} to -1 from the end)", n - 1),
        );
        if let Some(f) = fix {
            d = d.with_help(format!("to take the axis up to its edge, write `{f}`"));
        }
        self.report(d);
        None
    }

    fn empty_slice(&mut self, span: Span, from: i64, to: i64, step: i64, axis: usize) -> Option<AxisPick> {
        let d = Diagnostic::error(
            "E0321",
            format!("this slice of axis {axis} is empty"),
            span,
            if step > 0 {
                format!("starts at {from} and ends at {to}")
            } else {
                format!("steps down from {from} to {to}")
            },
        )
        .with_note("a slice must take at least one element; with a negative step, start above end");
        self.report(d);
        None
    }

    /// Emit the slice, reverse and reshape the picks describe.
    fn lower_picks(&mut self, t: &Tensor, picks: &[AxisPick]) -> Val {
        let shape = t.ty.shape.clone().expect("known shape");
        let kept: Vec<Dim> = picks.iter().filter(|p| !p.drop).map(|p| p.len.clone()).collect();
        let ty = TensorTy {
            dtype: t.ty.dtype,
            shape: Some(kept.clone()),
        };
        let ir = t.ir.map(|v| {
            let sliced_shape: Vec<Dim> = picks.iter().map(|p| p.len.clone()).collect();
            let mut v = if sliced_shape == shape {
                v
            } else {
                let starts = picks.iter().map(|p| p.start).collect();
                let strides = picks.iter().map(|p| p.stride).collect();
                self.b.slice(v, starts, strides, &sliced_shape)
            };
            let rev: Vec<usize> = (0..picks.len()).filter(|&a| picks[a].reversed).collect();
            if !rev.is_empty() {
                v = self.b.reverse(v, rev);
            }
            self.b.reshape(v, &kept)
        });
        self.tensor(ty, ir)
    }
}

/// The whole axis.
fn whole(d: &Dim) -> AxisPick {
    AxisPick {
        start: 0,
        stride: 1,
        len: d.clone(),
        reversed: false,
        drop: false,
    }
}

/// `i` (negative from the end) as a position in `0..n`.
fn in_range(i: i64, n: i64) -> Option<usize> {
    let k = if i < 0 { i + n } else { i };
    (0..n).contains(&k).then_some(k as usize)
}

fn item_span(it: &Item) -> Span {
    match it {
        Item::At(_, s) | Item::Ellipsis(s) | Item::Slice { span: s, .. } => *s,
    }
}
