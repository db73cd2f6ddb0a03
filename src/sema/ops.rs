//! Tensor arithmetic in the elaborator: broadcasting, elementwise ops,
//! matrix products; numbers fold at compile time.

use super::elab::Elab;
use super::shape;
use super::value::{Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::{Diagnostic, Fix};
use crate::ir::{self, BinaryOp, CmpOp, DType, Dim, UnaryOp};
use crate::syntax::ast::*;

impl Elab<'_> {
    // ---- tensors ----------------------------------------------------------

    pub fn tensor(&self, ty: TensorTy, ir: Option<ir::Value>) -> Val {
        Val::Tensor(Tensor { ty, ir })
    }

    /// A compile-time number as a scalar tensor.
    pub fn scalar(&mut self, x: f64) -> Tensor {
        let v = self.b.constant(x);
        Tensor {
            ty: TensorTy::f32(vec![]),
            ir: Some(v),
        }
    }

    /// View a value as a tensor for arithmetic; numbers become constants.
    pub fn as_tensor(&mut self, v: &Val, span: Span, what: &str) -> Option<Tensor> {
        match v {
            Val::Tensor(t) => Some(t.clone()),
            Val::Int(i) => Some(self.scalar(*i as f64)),
            Val::Float(x) => Some(self.scalar(*x)),
            Val::Bool(b) => Some(self.scalar(if *b { 1.0 } else { 0.0 })),
            Val::Any | Val::Dim(_) => Some(Tensor {
                ty: TensorTy::unknown(),
                ir: None,
            }),
            Val::Error => None,
            other => {
                let mut d = Diagnostic::error(
                    "E0203",
                    format!("{what} needs a tensor or a number"),
                    span,
                    format!("this is {}", other.kind()),
                );
                // A model where its output was meant: apply it to its input.
                if let (Val::Model(m), Some(user)) = (other, self.user_text(span)) {
                    if let Some(input) = m.inputs.first() {
                        let call = format!("{}({})", self.text(user), input.name.name);
                        d = d.with_fix(format!("apply the model: `{call}`"), Fix::replace(user, call));
                    }
                }
                self.report(d);
                None
            }
        }
    }

    pub(super) fn require_f32(&mut self, t: &Tensor, span: Span, what: &str) -> bool {
        if t.ty.dtype == DType::F32 {
            return true;
        }
        let d = Diagnostic::error(
            "E0201",
            format!("{what} needs f32 values, found {}", t.ty.dtype),
            span,
            format!("this is {}", t.ty),
        );
        let d = match self.class_labels {
            Some((labels, keyword)) if t.ir == Some(labels) => d
                .with_secondary(keyword, "read as class ids here")
                .with_fix(
                    "to predict the column's numbers, read it with `target:` instead of `label:`; class ids convert with `float(y)` or `one_hot(y, classes)`",
                    Fix::replace(keyword, "target"),
                ),
            _ => d.with_help("convert integer labels with `float(x)`, or one-hot encode them with `one_hot(x, classes)`"),
        };
        self.report(d);
        false
    }

    /// Remember `y` as class ids read through `keyword` (see `class_labels`).
    pub(super) fn note_class_labels(&mut self, y: &Val, keyword: Option<Span>) {
        if let (Val::Tensor(Tensor { ir: Some(v), .. }), Some(k)) = (y, keyword) {
            self.class_labels = Some((*v, k));
        }
    }

    /// Broadcast two tensors to a common shape (NumPy rules), emitting the
    /// explicit broadcasts. Reports E0302 on incompatible shapes.
    pub fn broadcast_pair(
        &mut self,
        a: &Tensor,
        b: &Tensor,
        op: &str,
        sa: Span,
        sb: Span,
        whole: Span,
    ) -> Option<(Tensor, Tensor, Option<Vec<Dim>>)> {
        let (Some(x), Some(y)) = (&a.ty.shape, &b.ty.shape) else {
            return Some((a.clone(), b.clone(), None));
        };
        if let Some(vector_is_b) = shape::vector_against_column(x, y) {
            self.vector_column_error(a, b, op, sa, sb, vector_is_b);
            return None;
        }
        match shape::broadcast(x, y) {
            Ok(out) => {
                let ca = self.broadcast_to(a, &out);
                let cb = self.broadcast_to(b, &out);
                Some((ca, cb, Some(out)))
            }
            Err(i) => {
                let da = x.len().checked_sub(i + 1).map(|j| x[j].to_string()).unwrap_or_default();
                let db = y.len().checked_sub(i + 1).map(|j| y[j].to_string()).unwrap_or_default();
                let mut d = Diagnostic::error(
                    "E0302",
                    format!("shapes {} and {} cannot be broadcast for `{op}`", a.ty, b.ty),
                    sb,
                    format!("this has shape {}", b.ty),
                )
                .with_secondary(sa, format!("this has shape {}", a.ty))
                .with_note(format!("dim {da} and dim {db} differ and neither is 1 (aligned from the right)"));
                let _ = whole;
                self.broadcast_fix(&mut d, b, x, sb, &db, &da);
                self.report(d);
                None
            }
        }
    }

    /// Fixes for an operand `b` (at `sb`) whose dim `bad` should be `want`
    /// to broadcast against the other operand of shape `other`: a layer
    /// parameter declared with the wrong shape (the declaration is what to
    /// change), a reduction that dropped its axis (`keep: true`), or a
    /// size written as a number.
    fn broadcast_fix(&mut self, d: &mut Diagnostic, b: &Tensor, other: &[Dim], sb: Span, bad: &str, want: &str) {
        if let Some(info) = b.ir.and_then(|v| self.params.iter().find(|p| p.value == v)).cloned() {
            if info.shape_span.file != self.root {
                return;
            }
            // A bias: one value per feature of the other operand.
            let Some(last) = other.last() else { return };
            let name = match last {
                Dim::Known(k) => {
                    let mut names: Vec<String> = info
                        .env
                        .names()
                        .into_iter()
                        .filter(|n| matches!(info.env.get(n), Some(Val::Int(v)) if *v == *k as i64))
                        .collect();
                    names.sort();
                    names.into_iter().next().unwrap_or_else(|| k.to_string())
                }
                Dim::Sym(s) => s.clone(),
            };
            let fixed = format!("[{name}]");
            let declared = self.text(info.shape_span).to_string();
            d.secondary.insert(
                0,
                crate::diag::Label {
                    span: d.primary.span,
                    message: format!("used here against {}", crate::ir::shape_to_string(other)),
                },
            );
            d.primary = crate::diag::Label {
                span: info.shape_span,
                message: format!("`{}` is declared {declared}", info.name),
            };
            *d = d.clone().with_fix(
                format!("declare it `{fixed}`, one value per feature"),
                Fix::replace(info.shape_span, fixed),
            );
            return;
        }
        let Some(user) = self.user_text(sb) else { return };
        let text = self.text(user).to_string();
        let reduction = ["mean(", "sum(", "max(", "min("].iter().any(|f| text.starts_with(f));
        if reduction && text.contains("axis") && !text.contains("keep") && text.ends_with(')') {
            let at = Span::new(user.file, user.end as usize - 1, user.end as usize - 1);
            *d = d.clone().with_fix(
                "keep the reduced axis as size 1 so it broadcasts: add `keep: true`",
                Fix {
                    title: "Add `keep: true`".into(),
                    edits: vec![crate::diag::Edit {
                        span: at,
                        replacement: ", keep: true".into(),
                    }],
                },
            );
            return;
        }
        if want.parse::<u64>().is_err() || bad.is_empty() {
            return;
        }
        let numbers: Vec<(usize, usize)> = number_tokens(&text).into_iter().filter(|(s, e)| &text[*s..*e] == bad).collect();
        if let [(s, e)] = numbers[..] {
            let span = Span::new(user.file, user.start as usize + s, user.start as usize + e);
            *d = d.clone().with_fix(format!("make it {want}"), Fix::replace(span, want.to_string()));
        }
    }

    /// E0313: `[batch, 1]` against `[batch]` would broadcast to
    /// `[batch, batch]` (every prediction against every target), which
    /// NumPy allows and no one means.
    fn vector_column_error(&mut self, a: &Tensor, b: &Tensor, op: &str, sa: Span, sb: Span, vector_is_b: bool) {
        let (vec_span, vec_t, col_span, col_t) = if vector_is_b { (sb, b, sa, a) } else { (sa, a, sb, b) };
        let n = vec_t.ty.shape.as_ref().map_or(String::new(), |s| s[0].to_string());
        let mut d = Diagnostic::error(
            "E0313",
            format!(
                "`{op}` of {} and {} would broadcast to [{n}, {n}], pairing every row with every other row",
                a.ty, b.ty
            ),
            vec_span,
            format!("this has shape {}", vec_t.ty),
        )
        .with_secondary(col_span, format!("this has shape {}", col_t.ty));
        if let Some(user) = self.user_text(vec_span) {
            let text = self.text(user).to_string();
            d = d.with_fix(
                format!("make it a column like the other operand: `reshape({text}, [-1, 1])`"),
                Fix::replace(user, format!("reshape({text}, [-1, 1])")),
            );
        }
        self.report(d);
    }

    pub fn broadcast_to(&mut self, t: &Tensor, shape: &[Dim]) -> Tensor {
        let ir = t.ir.map(|v| self.b.broadcast(v, shape));
        Tensor {
            ty: TensorTy {
                dtype: t.ty.dtype,
                shape: Some(shape.to_vec()),
            },
            ir,
        }
    }

    /// Elementwise binary op on tensors or numbers, with broadcasting.
    pub fn binary(&mut self, op: BinOp, l: &Val, r: &Val, sl: Span, sr: Span, whole: Span) -> Val {
        // Lists of tensors map elementwise (`params^2`), like JAX's tree_map.
        if let (Val::List(items), other) | (other, Val::List(items)) = (l, r) {
            let left_is_list = matches!(l, Val::List(_));
            let items = items.clone();
            let other = other.clone();
            return Val::List(
                items
                    .iter()
                    .map(|it| {
                        if left_is_list {
                            self.binary(op, it, &other, sl, sr, whole)
                        } else {
                            self.binary(op, &other, it, sl, sr, whole)
                        }
                    })
                    .collect(),
            );
        }
        // Compile-time arithmetic folds.
        match fold_numbers(op, l, r) {
            Some(Ok(v)) => return v,
            Some(Err(why)) => {
                let text = self.text(whole).split_whitespace().collect::<Vec<_>>().join(" ");
                let d = Diagnostic::error(
                    "E0204",
                    format!("compile-time arithmetic `{text}` {}", why.describe()),
                    whole,
                    format!("{} {} {}", l.kind(), op.symbol(), r.kind()),
                );
                let d = match why {
                    FoldError::Overflow => d.with_note(
                        "sizes and other compile-time integers are 64-bit; a float literal (`2.0^40`) computes in floating point",
                    ),
                    FoldError::DivideByZero => d,
                };
                self.report(d);
                return Val::Error;
            }
            None => {}
        }
        if matches!(l, Val::Error) || matches!(r, Val::Error) {
            return Val::Error;
        }
        // An unknown value (a definition checked on its own) with a number
        // stays unknown, not a tensor: `2 * d_model` may be a size or an index.
        let number_like = |v: &Val| matches!(v, Val::Any | Val::Int(_) | Val::Float(_));
        if (matches!(l, Val::Any) || matches!(r, Val::Any)) && number_like(l) && number_like(r) {
            return Val::Any;
        }
        let sym = op.symbol();
        if op == BinOp::Rem {
            let (at, v) = if matches!(l, Val::Int(_) | Val::Float(_)) {
                (sr, r)
            } else {
                (sl, l)
            };
            let d = Diagnostic::error(
                "E0202",
                "`%` is the remainder of compile-time numbers",
                at,
                format!("this is {}", v.kind()),
            );
            self.report(d);
            return Val::Error;
        }
        let (Some(a), Some(b)) = (
            self.as_tensor(l, sl, &format!("`{sym}`")),
            self.as_tensor(r, sr, &format!("`{sym}`")),
        ) else {
            return Val::Error;
        };
        if op == BinOp::MatMul {
            return self.matmul(&a, &b, sl, sr, whole);
        }
        let is_cmp = matches!(op, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne);
        let f32_operands = is_cmp || (self.require_f32(&a, sl, &format!("`{sym}`")) && self.require_f32(&b, sr, &format!("`{sym}`")));
        if !f32_operands {
            return Val::Error;
        }
        if is_cmp && a.ty.dtype != b.ty.dtype {
            // Compare labels with numbers: compare in f32.
        }
        let Some((a, b, shape)) = self.broadcast_pair(&a, &b, sym, sl, sr, whole) else {
            return Val::Error;
        };
        let ty = TensorTy { dtype: DType::F32, shape };
        let compared = is_cmp && (a.ir.is_some() && b.ir.is_some());
        let ir = match (a.ir, b.ir) {
            (Some(x), Some(y)) => {
                let x = self.b.cast(x, DType::F32);
                let y = self.b.cast(y, DType::F32);
                Some(match op {
                    BinOp::Add => self.b.binary(BinaryOp::Add, x, y),
                    BinOp::Sub => self.b.binary(BinaryOp::Sub, x, y),
                    BinOp::Mul => self.b.binary(BinaryOp::Mul, x, y),
                    BinOp::Div => self.b.binary(BinaryOp::Div, x, y),
                    BinOp::Pow => self.pow(x, y),
                    BinOp::Lt => self.b.compare(CmpOp::Lt, x, y),
                    BinOp::Le => self.b.compare(CmpOp::Le, x, y),
                    BinOp::Gt => self.b.compare(CmpOp::Gt, x, y),
                    BinOp::Ge => self.b.compare(CmpOp::Ge, x, y),
                    BinOp::Eq => self.b.compare(CmpOp::Eq, x, y),
                    BinOp::Ne => self.b.compare(CmpOp::Ne, x, y),
                    BinOp::MatMul | BinOp::Rem => unreachable!("handled above"),
                })
            }
            _ => None,
        };
        if let (true, Some(v)) = (compared, ir) {
            let at = self.user_place(whole);
            self.blockers.push((v, at));
        }
        self.tensor(ty, ir)
    }

    /// `x ^ y`; squares become a multiplication (exact and cheaper).
    pub(super) fn pow(&mut self, x: ir::Value, y: ir::Value) -> ir::Value {
        let exponent = self.constant_of(y);
        match exponent {
            Some(2.0) => self.b.mul(x, x),
            Some(1.0) => x,
            _ => self.b.binary(BinaryOp::Pow, x, y),
        }
    }

    /// The scalar constant behind `v` (through broadcasts), if any.
    pub(super) fn constant_of(&self, v: ir::Value) -> Option<f64> {
        let inst = self.b.func().def(v)?;
        match &inst.op {
            ir::Op::Const(c) => Some(*c),
            ir::Op::Broadcast { .. } => self.constant_of(inst.args[0]),
            _ => None,
        }
    }

    pub(super) fn matmul(&mut self, a: &Tensor, b: &Tensor, sa: Span, sb: Span, whole: Span) -> Val {
        if !(self.require_f32(a, sa, "`@`") && self.require_f32(b, sb, "`@`")) {
            return Val::Error;
        }
        let (Some(x), Some(y)) = (a.ty.shape.clone(), b.ty.shape.clone()) else {
            return self.tensor(TensorTy::unknown(), None);
        };
        if x.is_empty() || y.is_empty() {
            let (s, t) = if x.is_empty() { (sa, a) } else { (sb, b) };
            let d = Diagnostic::error(
                "E0309",
                "`@` needs tensors of rank 1 or more",
                s,
                format!("this is a scalar {}", t.ty),
            )
            .with_help("use `*` to multiply by a scalar");
            self.report(d);
            return Val::Error;
        }
        // Vectors are promoted to matrices as in NumPy and squeezed after.
        let (x2, squeeze_a) = if x.len() == 1 {
            (vec![Dim::Known(1), x[0].clone()], true)
        } else {
            (x.clone(), false)
        };
        let (y2, squeeze_b) = if y.len() == 1 {
            (vec![y[0].clone(), Dim::Known(1)], true)
        } else {
            (y.clone(), false)
        };
        let k_a = &x2[x2.len() - 1];
        let k_b = &y2[y2.len() - 2];
        if k_a != k_b {
            let mut d = Diagnostic::error(
                "E0303",
                format!("matrix product `{} @ {}` needs equal inner dims, found {k_a} and {k_b}", a.ty, b.ty),
                sb,
                format!("this has shape {}, its first dim must be {k_a}", b.ty),
            )
            .with_secondary(sa, format!("this has shape {}", a.ty));
            self.matmul_fix(&mut d, &x2, &y2, sa, sb, whole);
            self.report(d);
            return Val::Error;
        }
        let lead_a = &x2[..x2.len() - 2];
        let lead_b = &y2[..y2.len() - 2];
        let Ok(lead) = shape::broadcast(lead_a, lead_b) else {
            let d = Diagnostic::error(
                "E0303",
                format!("matrix product `{} @ {}`: leading dims cannot be broadcast", a.ty, b.ty),
                sb,
                format!("this has shape {}", b.ty),
            )
            .with_secondary(sa, format!("this has shape {}", a.ty));
            self.report(d);
            return Val::Error;
        };
        let m = x2[x2.len() - 2].clone();
        let n = y2[y2.len() - 1].clone();
        let mut out: Vec<Dim> = lead.clone();
        out.push(m.clone());
        out.push(n.clone());
        let ir = match (a.ir, b.ir) {
            (Some(va), Some(vb)) => {
                let va = self.b.reshape(va, &x2);
                let vb = self.b.reshape(vb, &y2);
                let mut sa_full = lead.clone();
                sa_full.extend([m.clone(), k_a.clone()]);
                let mut sb_full = lead.clone();
                sb_full.extend([k_b.clone(), n.clone()]);
                let va = self.b.broadcast(va, &sa_full);
                let vb = self.b.broadcast(vb, &sb_full);
                Some(self.b.matmul(va, vb))
            }
            _ => None,
        };
        let mut final_shape = out.clone();
        if squeeze_b {
            final_shape.pop();
        }
        if squeeze_a {
            let l = final_shape.len();
            final_shape.remove(l - if squeeze_b { 1 } else { 2 });
        }
        let ir = ir.map(|v| self.b.reshape(v, &final_shape));
        self.tensor(TensorTy::f32(final_shape), ir)
    }

    /// Fixes for `a @ b` with unequal inner dims: the operands in the other
    /// order, or one of them transposed, whichever makes the dims meet.
    /// The primary label moves to what the fix changes.
    fn matmul_fix(&mut self, d: &mut Diagnostic, x: &[Dim], y: &[Dim], sa: Span, sb: Span, whole: Span) {
        let (Some(ua), Some(ub)) = (self.user_text(sa), self.user_text(sb)) else {
            return;
        };
        let (ta, tb) = (self.text(ua).to_string(), self.text(ub).to_string());
        let (m, k) = (&x[x.len() - 2], &x[x.len() - 1]);
        let (k2, n) = (&y[y.len() - 2], &y[y.len() - 1]);
        let swapped = n == m;
        if swapped && whole.file == self.root {
            let fixed = format!("{tb} @ {ta}");
            d.primary = crate::diag::Label {
                span: whole,
                message: "the operands are in the wrong order".into(),
            };
            *d = d
                .clone()
                .with_fix(format!("multiply the other way round: `{fixed}`"), Fix::replace(whole, fixed));
        } else if n == k {
            let fixed = format!("transpose({tb})");
            d.primary.span = ub;
            *d = d
                .clone()
                .with_fix(format!("its last dim is {n}: transpose it, `{fixed}`"), Fix::replace(ub, fixed));
        } else if m == k2 {
            let fixed = format!("transpose({ta})");
            d.primary.span = ua;
            d.primary.message = format!("this has shape {}", crate::ir::shape_to_string(x));
            *d = d.clone().with_fix(format!("transpose it: `{fixed}`"), Fix::replace(ua, fixed));
        }
    }

    pub fn unary(&mut self, op: UnaryOp, v: &Val, span: Span, name: &str) -> Val {
        match v {
            Val::Int(_) | Val::Float(_) => {
                let x = match v {
                    Val::Int(i) => *i as f64,
                    Val::Float(f) => *f,
                    _ => unreachable!(),
                };
                let r = ir::scalar::unary(op, x);
                if op == UnaryOp::Neg {
                    if let Val::Int(i) = v {
                        return Val::Int(-i);
                    }
                }
                if op == UnaryOp::Abs {
                    if let Val::Int(i) = v {
                        return Val::Int(i.abs());
                    }
                }
                Val::Float(r)
            }
            _ => {
                let Some(t) = self.as_tensor(v, span, &format!("`{name}`")) else {
                    return Val::Error;
                };
                if !self.require_f32(&t, span, &format!("`{name}`")) {
                    return Val::Error;
                }
                let ir = t.ir.map(|x| self.b.unary(op, x));
                if let (UnaryOp::Sign, Some(v)) = (op, ir) {
                    let at = self.user_place(span);
                    self.blockers.push((v, at));
                }
                self.tensor(t.ty, ir)
            }
        }
    }
}

/// Byte ranges of the whole-number tokens in `text`.
fn number_tokens(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.')) {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i >= b.len() || !(b[i] == b'.' || b[i].is_ascii_alphabetic() || b[i] == b'_') {
                out.push((s, i));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Why compile-time arithmetic has no value.
pub(super) enum FoldError {
    Overflow,
    DivideByZero,
}

impl FoldError {
    fn describe(&self) -> &'static str {
        match self {
            FoldError::Overflow => "overflows",
            FoldError::DivideByZero => "divides by zero",
        }
    }
}

/// Arithmetic on compile-time numbers (`None`: an operand is not a number).
///
/// Integers stay exact: `+ - * ^` are checked 64-bit arithmetic (overflow
/// is an error, not a silent float), `/` gives an integer when it divides
/// exactly and a float otherwise (`1/16` is 0.0625, `(28 - 4) / 2` is the
/// size 12), `%` is the remainder with the sign of the divisor (Python's).
/// Rounding a quotient down is `floor(a / b)`, as the textbook writes it.
pub(super) fn fold_numbers(op: BinOp, l: &Val, r: &Val) -> Option<Result<Val, FoldError>> {
    use Val::*;
    let as_f = |v: &Val| match v {
        Int(i) => Some(*i as f64),
        Float(f) => Some(*f),
        _ => None,
    };
    if let (Int(a), Int(b)) = (l, r) {
        let (a, b) = (*a, *b);
        let exact = |v: Option<i64>| Some(v.map(Int).ok_or(FoldError::Overflow));
        return match op {
            BinOp::Add => exact(a.checked_add(b)),
            BinOp::Sub => exact(a.checked_sub(b)),
            BinOp::Mul => exact(a.checked_mul(b)),
            BinOp::Pow if b >= 0 => exact(u32::try_from(b).ok().and_then(|e| a.checked_pow(e))),
            BinOp::Pow if a == 0 => Some(Err(FoldError::DivideByZero)),
            BinOp::Pow => Some(Ok(Float((a as f64).powf(b as f64)))),
            BinOp::Div | BinOp::Rem if b == 0 => Some(Err(FoldError::DivideByZero)),
            BinOp::Div if a % b == 0 => exact(a.checked_div(b)),
            BinOp::Div => Some(Ok(Float(a as f64 / b as f64))),
            BinOp::Rem => Some(Ok(Int(floored_rem(a, b)))),
            BinOp::Lt => Some(Ok(Bool(a < b))),
            BinOp::Le => Some(Ok(Bool(a <= b))),
            BinOp::Gt => Some(Ok(Bool(a > b))),
            BinOp::Ge => Some(Ok(Bool(a >= b))),
            BinOp::Eq => Some(Ok(Bool(a == b))),
            BinOp::Ne => Some(Ok(Bool(a != b))),
            BinOp::MatMul => None,
        };
    }
    let (a, b) = (as_f(l)?, as_f(r)?);
    if matches!(op, BinOp::Div | BinOp::Rem) && b == 0.0 {
        return Some(Err(FoldError::DivideByZero));
    }
    // Arithmetic and comparisons as the IR defines them (`ir::scalar`).
    let arith = |op| ir::scalar::binary(op, a, b);
    let cmp = |op| Some(Ok(Bool(ir::scalar::compare(op, a, b))));
    let v = match op {
        BinOp::Add => arith(BinaryOp::Add),
        BinOp::Sub => arith(BinaryOp::Sub),
        BinOp::Mul => arith(BinaryOp::Mul),
        BinOp::Div => arith(BinaryOp::Div),
        BinOp::Rem => a - b * (a / b).floor(),
        BinOp::Pow if a == 0.0 && b < 0.0 => return Some(Err(FoldError::DivideByZero)),
        BinOp::Pow => arith(BinaryOp::Pow),
        BinOp::Lt => return cmp(CmpOp::Lt),
        BinOp::Le => return cmp(CmpOp::Le),
        BinOp::Gt => return cmp(CmpOp::Gt),
        BinOp::Ge => return cmp(CmpOp::Ge),
        BinOp::Eq => return cmp(CmpOp::Eq),
        BinOp::Ne => return cmp(CmpOp::Ne),
        BinOp::MatMul => return None,
    };
    // A finite result or NaN from finite operands (e.g. (-8)^(1/3)) is a
    // value; infinity from finite operands is an overflow.
    Some(if v.is_infinite() { Err(FoldError::Overflow) } else { Ok(Float(v)) })
}

/// `a % b` with the sign of `b`, as in Python: `-1 % 3` is 2.
fn floored_rem(a: i64, b: i64) -> i64 {
    // i64::MIN % -1 overflows in Rust; mathematically it is 0.
    let r = a.checked_rem(b).unwrap_or(0);
    if r != 0 && (r < 0) != (b < 0) {
        r + b
    } else {
        r
    }
}
