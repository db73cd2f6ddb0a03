//! Equations as small expression trees, printed in the textbook's notation
//! as plain Unicode text or as LaTeX (markdown embeds the LaTeX in `$…$`).
//!
//! The notation follows the backpropagation article the project serves:
//! `z[l]`, `a[l]`, `W[l]` for layer `l` (superscripts in text: `z¹`),
//! `δ[l] = ∂L/∂z[l]`, `⊙` for the elementwise product, `ᵀ` for the
//! transpose, `f'` for a derivative. Rows are samples (nnc computes
//! `x · W`, so the article's `δ aᵀ` appears as `aᵀ · δ`).

use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Latex,
    Markdown,
}

/// A named quantity: `W` of layer 2, `x`, `L`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name {
    pub base: String,
    pub layer: Option<usize>,
    /// A subscript: the step of a recurrence (`h₃`), or the number of an
    /// intermediate value the source leaves unnamed (`u₂`).
    pub index: Option<usize>,
    /// The generic step of a recurrence, `(a, d)` for `a·t + d` (`hₜ₋₁` is
    /// `(1, -1)`; `u₂ₜ₋₁` numbers two values a step), in place of `index`
    /// (`steps::fold`).
    pub step: Option<(i64, i64)>,
}

impl Name {
    pub fn plain(base: impl Into<String>) -> Name {
        Name {
            base: base.into(),
            layer: None,
            index: None,
            step: None,
        }
    }
    pub fn of_layer(base: impl Into<String>, layer: usize) -> Name {
        Name {
            base: base.into(),
            layer: Some(layer),
            index: None,
            step: None,
        }
    }
    pub fn with_index(self, index: usize) -> Name {
        Name {
            index: Some(index),
            ..self
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A named forward value.
    Var(Name),
    /// The adjoint ∂L/∂name (printed `δ` for a pre-activation `z`).
    Adj(Name),
    Num(f64),
    /// `f(args)`: a function of the stdlib or the file, or a primitive.
    Apply(String, Vec<Expr>),
    /// `f'(z)`: the derivative of an elementwise function.
    Deriv(String, Box<Expr>),
    /// `∂f/∂wrt`: a partial derivative of a scalar or vector function.
    Partial(Box<Expr>, Box<Expr>),
    /// The transposed Jacobian of `f` with respect to `wrt`, applied to `g`.
    JacT {
        f: Box<Expr>,
        wrt: Box<Expr>,
        g: Box<Expr>,
    },
    MatMul(Box<Expr>, Box<Expr>),
    Transpose(Box<Expr>),
    Hadamard(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Sum(Vec<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    /// A sum over the named axes (`Σ_batch`): the adjoint of a broadcast.
    SumOver(Vec<String>, Box<Expr>),
    /// `g` copied along reduced axes back to `shape`: the adjoint of a sum.
    Spread(Box<Expr>, String),
    /// `e[:, 0:64]`: a slice, its ranges written out.
    Index(Box<Expr>, String),
    /// `x ⋆ δ`: the cross-correlation of a convolution's windows.
    Correlate(Box<Expr>, Box<Expr>),
    /// `δ ∗ k`: the full convolution (a convolution's transpose).
    Convolve(Box<Expr>, Box<Expr>),
    /// `rot180(W)`: a kernel turned by 180° in its two spatial axes.
    Rot180(Box<Expr>),
}

impl Expr {
    pub fn is_one(&self) -> bool {
        matches!(self, Expr::Num(x) if *x == 1.0)
    }

    /// The number of nodes: how long the expression reads.
    pub fn size(&self) -> usize {
        1 + match self {
            Expr::Var(_) | Expr::Adj(_) | Expr::Num(_) => 0,
            Expr::Apply(_, list) | Expr::Sum(list) => list.iter().map(Expr::size).sum(),
            Expr::Deriv(_, a)
            | Expr::Transpose(a)
            | Expr::Neg(a)
            | Expr::SumOver(_, a)
            | Expr::Spread(a, _)
            | Expr::Index(a, _)
            | Expr::Rot180(a) => a.size(),
            Expr::Partial(a, b)
            | Expr::MatMul(a, b)
            | Expr::Hadamard(a, b)
            | Expr::Div(a, b)
            | Expr::Pow(a, b)
            | Expr::Sub(a, b)
            | Expr::Correlate(a, b)
            | Expr::Convolve(a, b) => a.size() + b.size(),
            Expr::JacT { f, wrt, g } => f.size() + wrt.size() + g.size(),
        }
    }
    fn prec(&self) -> u8 {
        match self {
            Expr::Sum(_) | Expr::Sub(..) => 1,
            Expr::MatMul(..) | Expr::Hadamard(..) | Expr::Div(..) | Expr::SumOver(..) | Expr::Correlate(..) | Expr::Convolve(..) => 2,
            Expr::Neg(_) => 3,
            Expr::Pow(..) => 4,
            Expr::Var(_)
            | Expr::Adj(_)
            | Expr::Num(_)
            | Expr::Apply(..)
            | Expr::Deriv(..)
            | Expr::Partial(..)
            | Expr::JacT { .. }
            | Expr::Transpose(_)
            | Expr::Index(..)
            | Expr::Rot180(_)
            | Expr::Spread(..) => 5,
        }
    }
}

/// `g ⊙ e`, dropping a factor of 1 (the adjoint of the loss itself).
pub fn hadamard(g: Expr, e: Expr) -> Expr {
    if g.is_one() {
        e
    } else {
        Expr::Hadamard(Box::new(g), Box::new(e))
    }
}

fn superscript(n: usize) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    n.to_string()
        .chars()
        .map(|c| DIGITS[c.to_digit(10).unwrap_or(0) as usize])
        .collect()
}

fn subscript(n: usize) -> String {
    const DIGITS: [char; 10] = ['₀', '₁', '₂', '₃', '₄', '₅', '₆', '₇', '₈', '₉'];
    n.to_string()
        .chars()
        .map(|c| DIGITS[c.to_digit(10).unwrap_or(0) as usize])
        .collect()
}

/// `t`, `t-1`, `2t+1`: `a·t + d`.
pub fn step_text((a, d): (i64, i64)) -> String {
    let t = if a == 1 { "t".to_string() } else { format!("{a}t") };
    match d {
        0 => t,
        d if d < 0 => format!("{t}-{}", -d),
        d => format!("{t}+{d}"),
    }
}

/// `ₜ`, `ₜ₋₁`, `₂ₜ₊₁`.
fn step_subscript(step: (i64, i64)) -> String {
    step_text(step)
        .chars()
        .map(|c| match c {
            't' => 'ₜ',
            '-' => '₋',
            '+' => '₊',
            c => c.to_digit(10).map_or(c, |d| char::from_u32(0x2080 + d).unwrap_or(c)),
        })
        .collect()
}

/// Greek and decorated names in LaTeX.
fn latex_base(base: &str) -> String {
    match base {
        "δ" => r"\delta".into(),
        "ŷ" => r"\hat{y}".into(),
        b if b.chars().count() == 1 => b.into(),
        b => format!(r"\mathrm{{{}}}", b.replace('_', r"\_")),
    }
}

pub fn name(n: &Name, fmt: Format) -> String {
    let (text, tex) = (fmt == Format::Text, fmt != Format::Text);
    let mut out = if text { n.base.clone() } else { latex_base(&n.base) };
    match (n.step, n.index) {
        (Some(d), _) if text => out.push_str(&step_subscript(d)),
        (Some(d), _) => {
            let _ = write!(out, "_{{{}}}", step_text(d));
        }
        (None, Some(i)) if text => out.push_str(&subscript(i)),
        (None, Some(i)) => {
            let _ = write!(out, "_{{{i}}}");
        }
        (None, None) => {}
    }
    match n.layer {
        Some(l) if text => out.push_str(&superscript(l)),
        Some(l) if tex => {
            let _ = write!(out, "^{{[{l}]}}");
        }
        _ => {}
    }
    out
}

/// The name of the adjoint of `n`: `δ¹` for a pre-activation `z¹`.
pub fn adjoint_name(n: &Name, fmt: Format) -> String {
    if n.base == "z" {
        return name(
            &Name {
                base: "δ".into(),
                ..n.clone()
            },
            fmt,
        );
    }
    match fmt {
        Format::Text => format!("∂L/∂{}", name(n, fmt)),
        _ => format!(r"\frac{{\partial L}}{{\partial {}}}", name(n, fmt)),
    }
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn func_name(f: &str, fmt: Format) -> String {
    match fmt {
        Format::Text => f.to_string(),
        _ => format!(r"\mathrm{{{}}}", f.replace('_', r"\_")),
    }
}

/// Print `e` in `fmt` (LaTeX for both latex and markdown).
pub fn render(e: &Expr, fmt: Format) -> String {
    let mut out = String::new();
    write_expr(&mut out, e, fmt);
    out
}

fn child(out: &mut String, e: &Expr, min: u8, fmt: Format) {
    if e.prec() < min {
        out.push_str(if fmt == Format::Text { "(" } else { r"\left(" });
        write_expr(out, e, fmt);
        out.push_str(if fmt == Format::Text { ")" } else { r"\right)" });
    } else {
        write_expr(out, e, fmt);
    }
}

fn args(out: &mut String, list: &[Expr], fmt: Format) {
    out.push('(');
    for (i, a) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(out, a, fmt);
    }
    out.push(')');
}

fn binop(out: &mut String, a: &Expr, op: &str, b: &Expr, prec: u8, fmt: Format) {
    child(out, a, prec, fmt);
    out.push_str(op);
    // Right operands of the same precedence are parenthesised: a ⊙ (b · c).
    child(out, b, prec + 1, fmt);
}

fn write_expr(out: &mut String, e: &Expr, fmt: Format) {
    let tex = fmt != Format::Text;
    match e {
        Expr::Var(n) => out.push_str(&name(n, fmt)),
        Expr::Adj(n) => out.push_str(&adjoint_name(n, fmt)),
        Expr::Num(x) => out.push_str(&num(*x)),
        Expr::Apply(f, list) => {
            out.push_str(&func_name(f, fmt));
            args(out, list, fmt);
        }
        Expr::Deriv(f, z) => {
            out.push_str(&func_name(f, fmt));
            out.push('\'');
            args(out, std::slice::from_ref(z.as_ref()), fmt);
        }
        Expr::Partial(f, wrt) => {
            if tex {
                out.push_str(r"\frac{\partial ");
                write_expr(out, f, fmt);
                out.push_str(r"}{\partial ");
                write_expr(out, wrt, fmt);
                out.push('}');
            } else {
                out.push('∂');
                child(out, f, 5, fmt);
                out.push_str("/∂");
                child(out, wrt, 5, fmt);
            }
        }
        Expr::JacT { f, wrt, g } => {
            if tex {
                out.push_str(r"\left(\frac{\partial ");
                write_expr(out, f, fmt);
                out.push_str(r"}{\partial ");
                write_expr(out, wrt, fmt);
                out.push_str(r"}\right)^{\top} ");
            } else {
                out.push_str("(∂");
                child(out, f, 5, fmt);
                out.push_str("/∂");
                child(out, wrt, 5, fmt);
                out.push_str(")ᵀ ");
            }
            child(out, g, 5, fmt);
        }
        Expr::MatMul(a, b) => binop(out, a, if tex { r" \cdot " } else { " · " }, b, 2, fmt),
        Expr::Hadamard(a, b) => binop(out, a, if tex { r" \odot " } else { " ⊙ " }, b, 2, fmt),
        Expr::Div(a, b) => binop(out, a, " / ", b, 2, fmt),
        Expr::Correlate(a, b) => binop(out, a, if tex { r" \star " } else { " ⋆ " }, b, 2, fmt),
        Expr::Convolve(a, b) => binop(out, a, if tex { r" \ast " } else { " ∗ " }, b, 2, fmt),
        Expr::Rot180(a) => {
            out.push_str(&func_name("rot180", fmt));
            args(out, std::slice::from_ref(a.as_ref()), fmt);
        }
        Expr::Pow(a, b) => {
            child(out, a, 5, fmt);
            out.push('^');
            if tex {
                out.push('{');
                write_expr(out, b, fmt);
                out.push('}');
            } else {
                child(out, b, 5, fmt);
            }
        }
        Expr::Transpose(a) => {
            // `{a^{[1]}}^{\top}`: LaTeX refuses a double superscript.
            if tex {
                out.push('{');
            }
            child(out, a, 5, fmt);
            out.push_str(if tex { r"}^{\top}" } else { "ᵀ" });
        }
        Expr::Sum(terms) => {
            for (i, t) in terms.iter().enumerate() {
                if i > 0 {
                    out.push_str(" + ");
                }
                child(out, t, 1, fmt);
            }
        }
        Expr::Sub(a, b) => binop(out, a, " - ", b, 1, fmt),
        Expr::Neg(a) => {
            out.push('-');
            child(out, a, 4, fmt);
        }
        Expr::SumOver(axes, a) => {
            if tex {
                let _ = write!(out, r"\sum_{{\text{{{}}}}} ", axes.join(", "));
            } else {
                let _ = write!(out, "Σ_{} ", axes.join(","));
            }
            child(out, a, 3, fmt);
        }
        Expr::Index(a, ranges) => {
            child(out, a, 5, fmt);
            let _ = write!(out, "[{ranges}]");
        }
        Expr::Spread(a, shape) => {
            if tex {
                out.push_str(r"\mathrm{broadcast}(");
                write_expr(out, a, fmt);
                let _ = write!(out, r", \texttt{{{shape}}})");
            } else {
                out.push_str("broadcast(");
                write_expr(out, a, fmt);
                let _ = write!(out, ", {shape})");
            }
        }
    }
}
