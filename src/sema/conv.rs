//! The spatial builtins: `conv2d`, `max_pool2d`, `avg_pool2d`.
//!
//! Each checks its window against the input with the output-size
//! arithmetic spelled out in the message, then lowers to the window ops of
//! the IR: a convolution is `im2col`, a reshape and one matrix product per
//! group (the GEMM does the FLOPs; `opt` folds the batch into its rows once
//! the batch size is known), average pooling is `im2col` and a sum, max
//! pooling is its own op (its gradient picks one position per window).

use super::builtins::{int_arg, missing, tensor_of, Args};
use super::elab::Elab;
use super::value::{Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::Diagnostic;
use crate::ir::{self, Dim, Op, Window};

/// Parameter names of each spatial builtin, for `builtins::BUILTINS`.
pub const CONV2D: &[&str] = &["x", "weight", "stride", "pad", "dilation", "groups"];
pub const POOL2D: &[&str] = &["x", "kernel", "stride", "pad"];

/// Padding as written: explicit sizes per side, or a rule.
enum Pad {
    Sides { lo: [usize; 2], hi: [usize; 2] },
    Same,
}

pub fn call(e: &mut Elab, name: &str, a: &Args, span: Span) -> Val {
    let x = a.get(0).cloned().expect("the caller checked the first argument");
    let Some(t) = tensor_of(e, &x, name) else { return Val::Error };
    if !e.require_f32(&t, x.1, name) {
        return Val::Error;
    }
    match name {
        "conv2d" => conv2d(e, &t, x.1, a, span),
        _ => pool(e, name, &t, x.1, a, span),
    }
}

/// A positive compile-time integer, or a pair of them (height, width).
fn pair(e: &mut Elab, a: &Args, i: usize, what: &str, default: [usize; 2], min: i64) -> Option<[usize; 2]> {
    let Some((v, s)) = a.get(i).cloned() else { return Some(default) };
    let items = match &v {
        Val::List(items) if items.len() == 2 => items.clone(),
        Val::List(items) => {
            let d = Diagnostic::error(
                "E0206",
                format!("{what} takes one integer or a pair [height, width]"),
                s,
                format!("this list has {} entries", items.len()),
            );
            e.report(d);
            return None;
        }
        other => vec![other.clone(), other.clone()],
    };
    let mut out = [0; 2];
    for (k, it) in items.iter().enumerate() {
        if it.is_poison() {
            return None;
        }
        let n = int_arg(e, it, s, what)?;
        if n < min {
            let bound = if min == 0 { "0 or more" } else { "at least 1" };
            let d = Diagnostic::error("E0206", format!("{what} must be {bound}"), s, format!("this is {n}"));
            e.report(d);
            return None;
        }
        out[k] = n as usize;
    }
    Some(out)
}

fn pad_arg(e: &mut Elab, a: &Args, i: usize) -> Option<Pad> {
    match a.get(i) {
        None => Some(Pad::Sides { lo: [0; 2], hi: [0; 2] }),
        Some((Val::Str(s), _)) if s == "valid" => Some(Pad::Sides { lo: [0; 2], hi: [0; 2] }),
        Some((Val::Str(s), _)) if s == "same" => Some(Pad::Same),
        Some((Val::Str(s), sp)) => {
            let d = Diagnostic::error(
                "E0206",
                format!("unknown padding \"{s}\""),
                *sp,
                "expected a number, [height, width], \"same\" or \"valid\"",
            );
            e.report(d);
            None
        }
        Some(_) => pair(e, a, i, "`pad`", [0; 2], 0).map(|p| Pad::Sides { lo: p, hi: p }),
    }
}

/// Resolve "same" (TensorFlow's rule, which for stride 1 is PyTorch's: the
/// output is ⌈input / stride⌉, the odd pixel of padding goes after).
fn resolve_pad(pad: Pad, hw: [usize; 2], kernel: [usize; 2], stride: [usize; 2], dilation: [usize; 2]) -> ([usize; 2], [usize; 2]) {
    match pad {
        Pad::Sides { lo, hi } => (lo, hi),
        Pad::Same => {
            let (mut lo, mut hi) = ([0; 2], [0; 2]);
            for i in 0..2 {
                let out = hw[i].div_ceil(stride[i]);
                let need = (out.saturating_sub(1)) * stride[i] + dilation[i] * (kernel[i] - 1) + 1;
                let total = need.saturating_sub(hw[i]);
                lo[i] = total / 2;
                hi[i] = total - lo[i];
            }
            (lo, hi)
        }
    }
}

/// `(h + 2·pad − dilation·(k − 1) − 1) / stride + 1` for one axis, as text
/// with the numbers filled in (padding written per side when asymmetric).
pub fn arithmetic(w: &Window, axis: usize, len: usize) -> String {
    let (lo, hi) = (w.pad_lo[axis], w.pad_hi[axis]);
    let pad = if lo == hi { format!("2·{lo}") } else { format!("{lo} + {hi}") };
    // Signed, so a window too large shows the 0 (or less) it leads to.
    let (k, s, d) = (w.kernel[axis] as i64, w.stride[axis] as i64, w.dilation[axis] as i64);
    let numerator = (len + lo + hi) as i64 - d * (k - 1) - 1;
    let value = numerator.div_euclid(s.max(1)) + 1;
    format!("({len} + {pad} − {d}·({k} − 1) − 1) / {s} + 1 = {value}")
}

/// A short description of what the window does to the spatial size, for
/// notes on later errors ("the 5×5 convolution without padding takes 28 to 24").
pub fn effect(what: &str, w: &Window, hw: [usize; 2], out: [usize; 2]) -> String {
    let k = format!("{}×{}", w.kernel[0], w.kernel[1]);
    let padding = if w.pad_lo == [0; 2] && w.pad_hi == [0; 2] {
        " without padding".to_string()
    } else if w.pad_lo == w.pad_hi && w.pad_lo[0] == w.pad_lo[1] {
        format!(" with padding {}", w.pad_lo[0])
    } else {
        " with padding".to_string()
    };
    let stride = if w.stride[0] == w.stride[1] && w.stride[0] > 1 {
        format!(", stride {}", w.stride[0])
    } else {
        String::new()
    };
    let size = |v: [usize; 2]| {
        if v[0] == v[1] {
            v[0].to_string()
        } else {
            format!("{}×{}", v[0], v[1])
        }
    };
    format!("the {k} {what}{padding}{stride} takes {} to {}", size(hw), size(out))
}

/// The image's `(n, c, [h, w])`, or an error at `span` when it is not
/// `[n, c, h, w]` with known `h` and `w`. `Ok(None)`: unknown, checking alone.
#[allow(clippy::type_complexity)]
fn image(e: &mut Elab, t: &Tensor, span: Span, name: &str) -> Result<Option<(Dim, Dim, [usize; 2])>, ()> {
    let Some(shape) = &t.ty.shape else { return Ok(None) };
    if shape.len() != 4 {
        let d = Diagnostic::error(
            "E0309",
            format!("`{name}` needs images [n, channels, height, width], found {}", t.ty),
            span,
            format!("this has rank {}", shape.len()),
        )
        .with_help("a batch of single-channel images [n, h, w] becomes [n, 1, h, w] with `reshape(x, [n, 1, h, w])`");
        e.report(d);
        return Err(());
    }
    match (shape[2].known(), shape[3].known()) {
        (Some(h), Some(w)) => Ok(Some((shape[0].clone(), shape[1].clone(), [h, w]))),
        _ => {
            let d = Diagnostic::error(
                "E0309",
                format!("`{name}` needs known height and width, found {}", t.ty),
                span,
                "symbolic spatial size",
            );
            e.report(d);
            Err(())
        }
    }
}

/// Check that `w` fits `hw`; the error names the arithmetic. For pooling,
/// also that the windows tile the input (no row or column left over).
fn check_fit(e: &mut Elab, name: &str, w: &Window, hw: [usize; 2], at: Span, tile: bool) -> Option<[usize; 2]> {
    for axis in 0..2 {
        let which = ["height", "width"][axis];
        if w.out_len(axis, hw[axis]).is_none() {
            let span_k = w.dilation[axis] * (w.kernel[axis] - 1) + 1;
            let padded = hw[axis] + w.pad_lo[axis] + w.pad_hi[axis];
            let d = Diagnostic::error(
                "E0310",
                format!("`{name}`'s window spans {span_k} along the {which} but the padded input has only {padded}"),
                at,
                format!("{}, and it must be at least 1", arithmetic(w, axis, hw[axis])),
            )
            .with_help(format!(
                "use a kernel of at most {} or pad the input by {} more on each side",
                padded.div_ceil(w.dilation[axis]),
                (span_k - padded).div_ceil(2)
            ));
            e.report(d);
            return None;
        }
        let padded = hw[axis] + w.pad_lo[axis] + w.pad_hi[axis];
        let rest = (padded - (w.dilation[axis] * (w.kernel[axis] - 1) + 1)) % w.stride[axis];
        if tile && rest != 0 {
            let d = Diagnostic::error(
                "E0312",
                format!(
                    "`{name}`'s windows do not tile the {which} {}: {} leaves {rest} left over",
                    hw[axis],
                    arithmetic(w, axis, hw[axis])
                ),
                at,
                format!("window {} with stride {}", w.kernel[axis], w.stride[axis]),
            )
            .with_help(format!(
                "crop or pad the input to a {which} of {} or {}, or choose a stride that divides {}",
                padded - rest - w.pad_lo[axis] - w.pad_hi[axis],
                padded - rest + w.stride[axis] - w.pad_lo[axis] - w.pad_hi[axis],
                padded - (w.dilation[axis] * (w.kernel[axis] - 1) + 1)
            ));
            e.report(d);
            return None;
        }
    }
    w.out_hw(hw)
}

/// `conv2d(x: [n, c, h, w], weight: [out, c / groups, kh, kw])` → `[n, out, oh, ow]`.
fn conv2d(e: &mut Elab, x: &Tensor, xs: Span, a: &Args, span: Span) -> Val {
    let Some((wv, ws)) = a.get(1).cloned() else {
        return missing(e, "conv2d", "weight", span);
    };
    let Some(wt) = tensor_of(e, &(wv, ws), "conv2d") else {
        return Val::Error;
    };
    if !e.require_f32(&wt, ws, "conv2d") {
        return Val::Error;
    }
    let stride = pair(e, a, 2, "`stride`", [1; 2], 1);
    let pad = pad_arg(e, a, 3);
    let dilation = pair(e, a, 4, "`dilation`", [1; 2], 1);
    let groups = match a.get(5).cloned() {
        None => Some(1),
        Some((v, s)) => match int_arg(e, &v, s, "`groups`") {
            Some(g) if g >= 1 => Some(g as usize),
            Some(g) => {
                let d = Diagnostic::error("E0206", "`groups` must be at least 1", s, format!("this is {g}"));
                e.report(d);
                None
            }
            None => None,
        },
    };
    let (Some(stride), Some(pad), Some(dilation), Some(groups)) = (stride, pad, dilation, groups) else {
        return Val::Error;
    };
    let Ok(img) = image(e, x, xs, "conv2d") else { return Val::Error };
    let Some(wshape) = wt.ty.shape.clone() else {
        return e.tensor(TensorTy::unknown(), None);
    };
    if wshape.len() != 4 {
        let d = Diagnostic::error(
            "E0309",
            format!("`conv2d` needs a weight [out, in / groups, kh, kw], found {}", wt.ty),
            ws,
            format!("this has rank {}", wshape.len()),
        );
        e.report(d);
        return Val::Error;
    }
    let Some((n, c, hw)) = img else {
        return e.tensor(TensorTy::unknown(), None);
    };
    let known = |d: &Dim| d.known();
    let (Some(out), Some(cg), Some(kh), Some(kw)) = (known(&wshape[0]), known(&wshape[1]), known(&wshape[2]), known(&wshape[3])) else {
        return e.tensor(TensorTy::unknown(), None);
    };
    let c = match c.known() {
        Some(c) => c,
        None => {
            let d = Diagnostic::error(
                "E0309",
                format!("`conv2d` needs a known channel count, found {}", x.ty),
                xs,
                "symbolic channels",
            );
            e.report(d);
            return Val::Error;
        }
    };
    if c % groups != 0 || out % groups != 0 {
        let d = Diagnostic::error(
            "E0206",
            format!("`groups` = {groups} must divide both the input channels ({c}) and the output channels ({out})"),
            a.get(5).map_or(span, |g| g.1),
            format!("{groups} groups"),
        );
        e.report(d);
        return Val::Error;
    }
    if cg * groups != c {
        let msg = if groups == 1 {
            format!(
                "`conv2d` weight expects {cg} input channel{}, the input has {c}",
                if cg == 1 { "" } else { "s" }
            )
        } else {
            format!(
                "`conv2d` weight expects {cg} channels per group ({} in all with {groups} groups), the input has {c}",
                cg * groups
            )
        };
        let d = Diagnostic::error("E0311", msg, xs, format!("this is {}", x.ty))
            .with_secondary(ws, format!("the weight is {}", wt.ty))
            .with_help(format!(
                "give the weight {} input channels per group: [{out}, {}, {kh}, {kw}]",
                c / groups,
                c / groups
            ));
        e.report(d);
        return Val::Error;
    }
    if kh == 0 || kw == 0 {
        let d = Diagnostic::error(
            "E0206",
            "`conv2d`'s kernel must be at least 1×1",
            ws,
            format!("the weight is {}", wt.ty),
        );
        e.report(d);
        return Val::Error;
    }
    let kernel = [kh, kw];
    let (pad_lo, pad_hi) = resolve_pad(pad, hw, kernel, stride, dilation);
    let window = Window {
        kernel,
        stride,
        dilation,
        pad_lo,
        pad_hi,
    };
    let Some([oh, ow]) = check_fit(e, "conv2d", &window, hw, ws, false) else {
        return Val::Error;
    };
    let out_ty = TensorTy::f32(vec![n.clone(), Dim::Known(out), Dim::Known(oh), Dim::Known(ow)]);
    let (Some(xv), Some(wv)) = (x.ir, wt.ir) else {
        return e.tensor(out_ty, None);
    };
    let note = effect("convolution", &window, hw, [oh, ow]);
    let y = lower_conv(e, xv, wv, &window, [n, Dim::Known(c)], out, groups, [oh, ow]);
    e.note_shape(y, note);
    e.tensor(out_ty, Some(y))
}

/// `im2col`, then per group a product with the `[c·kh·kw, out]` weights.
#[allow(clippy::too_many_arguments)]
fn lower_conv(
    e: &mut Elab,
    x: ir::Value,
    w: ir::Value,
    window: &Window,
    nc: [Dim; 2],
    out: usize,
    groups: usize,
    ohw: [usize; 2],
) -> ir::Value {
    let [n, c] = nc;
    let c = c.known().expect("checked");
    let k = |x: usize| Dim::Known(x);
    let [oh, ow] = ohw;
    let [kh, kw] = window.kernel;
    let (cg, og) = (c / groups, out / groups);
    let l = oh * ow;
    let cols = e.b.push(Op::Im2col { window: window.clone() }, &[x]);
    let y = if groups == 1 {
        let cols = e.b.reshape(cols, &[n.clone(), k(l), k(c * kh * kw)]);
        let w2 = e.b.reshape(w, &[k(out), k(c * kh * kw)]);
        let w2 = e.b.transpose(w2, vec![1, 0]);
        let wb = e.b.broadcast(w2, &[n.clone(), k(c * kh * kw), k(out)]);
        e.b.matmul(cols, wb)
    } else {
        let cols = e.b.reshape(cols, &[n.clone(), k(l), k(groups), k(cg * kh * kw)]);
        let cols = e.b.transpose(cols, vec![0, 2, 1, 3]);
        let wg = e.b.reshape(w, &[k(groups), k(og), k(cg * kh * kw)]);
        let wg = e.b.transpose(wg, vec![0, 2, 1]);
        let wb = e.b.broadcast(wg, &[n.clone(), k(groups), k(cg * kh * kw), k(og)]);
        let y = e.b.matmul(cols, wb);
        e.b.transpose(y, vec![0, 2, 1, 3])
    };
    // [n, oh·ow, out] is [n, oh, ow, out] in memory; the transpose to
    // channels-first is a view the next elementwise kernel reads through.
    let y = e.b.reshape(y, &[n, k(oh), k(ow), k(out)]);
    e.b.transpose(y, vec![0, 3, 1, 2])
}

/// `max_pool2d` / `avg_pool2d(x, kernel, stride: kernel, pad: 0)`.
fn pool(e: &mut Elab, name: &str, x: &Tensor, xs: Span, a: &Args, span: Span) -> Val {
    let kernel = match a.get(1) {
        Some(_) => pair(e, a, 1, "`kernel`", [1; 2], 1),
        None => return missing(e, name, "kernel", span),
    };
    let Some(kernel) = kernel else { return Val::Error };
    let stride = pair(e, a, 2, "`stride`", kernel, 1);
    let pad = pad_arg(e, a, 3);
    let (Some(stride), Some(pad)) = (stride, pad) else {
        return Val::Error;
    };
    let Ok(img) = image(e, x, xs, name) else { return Val::Error };
    let Some((n, c, hw)) = img else {
        return e.tensor(TensorTy::unknown(), None);
    };
    let (pad_lo, pad_hi) = resolve_pad(pad, hw, kernel, stride, [1; 2]);
    let window = Window {
        kernel,
        stride,
        dilation: [1; 2],
        pad_lo,
        pad_hi,
    };
    // Max pooling's padding never wins, so a window of padding alone would
    // have no maximum: PyTorch's limit, padding at most half the window.
    for (axis, &k) in kernel.iter().enumerate() {
        let most = window.pad_lo[axis].max(window.pad_hi[axis]);
        if most * 2 > k {
            let d = Diagnostic::error(
                "E0206",
                format!("`{name}` padding may be at most half the window ({} here)", k / 2),
                a.get(3).map_or(span, |p| p.1),
                format!("pads {most}"),
            );
            e.report(d);
            return Val::Error;
        }
    }
    let at = a.get(1).map_or(span, |k| k.1);
    let Some([oh, ow]) = check_fit(e, name, &window, hw, at, true) else {
        return Val::Error;
    };
    let out_ty = TensorTy::f32(vec![n.clone(), c.clone(), Dim::Known(oh), Dim::Known(ow)]);
    let Some(xv) = x.ir else { return e.tensor(out_ty, None) };
    let y = if name == "max_pool2d" {
        e.b.push(Op::MaxPool { window: window.clone() }, &[xv])
    } else {
        // Padding counts as zeros in the mean (PyTorch's default).
        let cols = e.b.push(Op::Im2col { window: window.clone() }, &[xv]);
        let sum = e.b.reduce_sum(cols, vec![4, 5], false);
        let sum = e.b.transpose(sum, vec![0, 3, 1, 2]);
        let shape = vec![n, c, Dim::Known(oh), Dim::Known(ow)];
        let count = e.b.fill((kernel[0] * kernel[1]) as f64, &shape);
        e.b.div(sum, count)
    };
    let what = if name == "max_pool2d" { "max pooling" } else { "average pooling" };
    e.note_shape(y, effect(what, &window, hw, [oh, ow]));
    e.tensor(out_ty, Some(y))
}

impl Elab<'_> {
    /// Remember what produced `v`'s spatial size (see `shape_notes`).
    fn note_shape(&mut self, v: ir::Value, note: String) {
        self.shape_notes.insert(v, note);
    }

    /// For a tensor that was flattened from images: "flatten gives 6·24·24 =
    /// 3456: the 5×5 convolution without padding takes 28 to 24". Follows
    /// the reshape back through elementwise ops (bias, activation) to the
    /// last convolution or pooling.
    pub(super) fn flatten_origin(&self, v: ir::Value) -> Option<String> {
        let f = self.b.func();
        let inst = f.def(v)?;
        let Op::Reshape { .. } = inst.op else { return None };
        let src = inst.args[0];
        let dims = f.ty(src).shape.clone();
        let mut frontier = vec![src];
        let mut seen = 0;
        while let Some(u) = frontier.pop() {
            if let Some(note) = self.shape_notes.get(&u) {
                let known: Vec<String> = dims[1..].iter().map(|d| d.to_string()).collect();
                let total: usize = dims[1..].iter().map(|d| d.known().unwrap_or(0)).product();
                return Some(format!("flatten gives {} = {total}: {note}", known.join("·")));
            }
            seen += 1;
            if seen > 32 {
                return None;
            }
            if let Some(d) = f.def(u) {
                let same = |a: &&ir::Value| f.ty(**a).shape == dims;
                match d.op {
                    Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Transpose { .. } | Op::Reshape { .. } => frontier.extend(
                        d.args
                            .iter()
                            .filter(|a| same(a) || matches!(d.op, Op::Transpose { .. } | Op::Reshape { .. })),
                    ),
                    _ => {}
                }
            }
        }
        None
    }
}
