//! A recurrence's per-step equations written once, for a generic step `t`.
//!
//! An unrolled recurrence derives one equation per step (`z₂₇ = x[:, 26, :] ·
//! Wx + h₂₆ · Wh + b`). Each is rewritten relative to its own step `k` (the
//! subscript of its left-hand side): a name of step `j` becomes `t + (j -
//! k)`, a slice index `n` of the steps axis `t + (n - k)`. Equations whose
//! rewritten forms are identical, over a run of consecutive steps, are one
//! equation of step `t`, printed once with the run (`t = 2…28`); the steps
//! whose equation differs (the first step reads the initial state) stay as
//! they are. A sum over the steps (a weight's gradient) folds the same way
//! into `Σ_t`. Nothing is assumed about the layer: equations fold only where
//! the derivation itself repeats, so every folded line stands for exactly
//! the lines it replaces.

use super::backward::{Equation, Section};
use super::notation::{step_text, Expr, Name};

/// Steps a run needs before it is folded.
const MIN_RUN: usize = 3;

/// The equations with each run of per-step equations folded.
pub fn fold(eqs: Vec<(Section, Equation)>) -> Vec<(Section, Equation)> {
    let eqs: Vec<(Section, Equation)> = eqs
        .into_iter()
        .map(|(s, e)| {
            let rhs = fold_sums(e.rhs.clone());
            (s, Equation { rhs, ..e })
        })
        .collect();
    // Each equation's template relative to its step.
    let shapes: Vec<Option<(Section, Template)>> = eqs
        .iter()
        .map(|(s, e)| {
            step_of_lhs(&e.lhs)?;
            let t = template(&Expr::Sum(vec![e.lhs.clone(), e.rhs.clone()]));
            Some((
                *s,
                Template {
                    shape: e.shape.clone(),
                    ..t
                },
            ))
        })
        .collect();
    // (where it is printed, the equation): a folded equation where its
    // member of a middle step stands, so the folded equations keep the
    // order of one step's (`zₜ` before `hₜ = tanh(zₜ)`, `∂L/∂hₜ` before
    // `δₜ`) whatever their runs, and the first and last steps' own
    // equations stay before and after them.
    let all_steps: Vec<usize> = eqs.iter().filter_map(|(_, e)| step_of_lhs(&e.lhs)).collect();
    let middle = (all_steps.iter().min().copied().unwrap_or(0) + all_steps.iter().max().copied().unwrap_or(0)) / 2;
    let mut out: Vec<(usize, (Section, Equation))> = vec![];
    let mut done = vec![false; eqs.len()];
    for i in 0..eqs.len() {
        if done[i] {
            continue;
        }
        let Some((section, t)) = &shapes[i] else {
            out.push((i, eqs[i].clone()));
            continue;
        };
        // Every equation of the same form, in order.
        let members: Vec<usize> = (i..eqs.len())
            .filter(|&j| {
                !done[j]
                    && shapes[j]
                        .as_ref()
                        .is_some_and(|(s, u)| s == section && u.key == t.key && u.shape == t.shape)
            })
            .collect();
        let steps: Vec<usize> = members.iter().map(|&j| step_of_lhs(&eqs[j].1.lhs).unwrap_or(0)).collect();
        let folded = (members.len() >= MIN_RUN && consecutive(&steps))
            .then(|| generic(&eqs[i].1, &members.iter().map(|&j| &eqs[j].1).collect::<Vec<_>>(), &steps))
            .flatten();
        match folded {
            Some(e) => {
                for &j in &members {
                    done[j] = true;
                }
                let lo = steps.iter().min().copied().unwrap_or(0);
                let hi = steps.iter().max().copied().unwrap_or(0);
                let reference = middle.clamp(lo, hi);
                let at = members.iter().zip(&steps).find(|(_, &k)| k == reference).map_or(i, |(&j, _)| j);
                out.push((at, (*section, e)));
            }
            None => {
                done[i] = true;
                out.push((i, eqs[i].clone()));
            }
        }
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, e)| e).collect()
}

fn consecutive(steps: &[usize]) -> bool {
    let mut sorted = steps.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.len() == steps.len() && sorted.windows(2).all(|w| w[1] == w[0] + 1)
}

fn range_text(steps: &[usize]) -> String {
    let (lo, hi) = (steps.iter().min().copied().unwrap_or(0), steps.iter().max().copied().unwrap_or(0));
    format!("t={lo}…{hi}")
}

/// The step of an equation: the subscript of what it defines.
fn step_of_lhs(lhs: &Expr) -> Option<usize> {
    match lhs {
        Expr::Var(n) | Expr::Adj(n) if n.step.is_none() => n.index,
        _ => None,
    }
}

/// An expression with its step subscripts and slice indices taken out.
#[derive(Clone, Debug, PartialEq)]
struct Template {
    /// The expression printed with every number that may depend on the
    /// step replaced by `#`.
    key: String,
    /// Those numbers, in order: subscripts of step names, then slice indices.
    numbers: Vec<i64>,
    shape: String,
}

/// Names with a subscript are steps (`h₂₇`); numbers inside a slice's
/// ranges (`x[:, 26, :]`, `pad(g, [:, 26, :])`) may be.
fn template(e: &Expr) -> Template {
    let mut numbers = vec![];
    let blanked = map_numbers(e, &mut |n, _| {
        numbers.push(n);
        Slot::Blank
    });
    Template {
        key: format!("{blanked:?}"),
        numbers,
        shape: String::new(),
    }
}

enum Slot {
    Blank,
    /// `a·t + d`.
    Step((i64, i64)),
    Literal(i64),
}

/// `e` with each step-like number replaced as `f` says.
fn map_numbers(e: &Expr, f: &mut dyn FnMut(i64, bool) -> Slot) -> Expr {
    let name = |n: &Name, f: &mut dyn FnMut(i64, bool) -> Slot| -> Name {
        match n.index {
            Some(i) if n.step.is_none() => match f(i as i64, true) {
                Slot::Blank => Name {
                    index: Some(0),
                    ..n.clone()
                },
                Slot::Step(d) => Name {
                    index: None,
                    step: Some(d),
                    ..n.clone()
                },
                Slot::Literal(i) => Name {
                    index: Some(i as usize),
                    ..n.clone()
                },
            },
            _ => n.clone(),
        }
    };
    let bx = |e: Expr| Box::new(e);
    let go = |x: &Expr, f: &mut dyn FnMut(i64, bool) -> Slot| map_numbers(x, f);
    match e {
        Expr::Var(n) if n.base.starts_with('[') => Expr::Var(Name::plain(map_ranges(&n.base, f))),
        Expr::Var(n) => Expr::Var(name(n, f)),
        Expr::Adj(n) => Expr::Adj(name(n, f)),
        Expr::Num(x) => Expr::Num(*x),
        Expr::Apply(g, list) => Expr::Apply(g.clone(), list.iter().map(|x| go(x, f)).collect()),
        Expr::Sum(list) => Expr::Sum(list.iter().map(|x| go(x, f)).collect()),
        Expr::Deriv(g, a) => Expr::Deriv(g.clone(), bx(go(a, f))),
        Expr::Partial(a, b) => {
            let a = go(a, f);
            Expr::Partial(bx(a), bx(go(b, f)))
        }
        Expr::JacT { f: func, wrt, g } => {
            let func = go(func, f);
            let wrt = go(wrt, f);
            Expr::JacT {
                f: bx(func),
                wrt: bx(wrt),
                g: bx(go(g, f)),
            }
        }
        Expr::MatMul(a, b) => {
            let a = go(a, f);
            Expr::MatMul(bx(a), bx(go(b, f)))
        }
        Expr::Hadamard(a, b) => {
            let a = go(a, f);
            Expr::Hadamard(bx(a), bx(go(b, f)))
        }
        Expr::Div(a, b) => {
            let a = go(a, f);
            Expr::Div(bx(a), bx(go(b, f)))
        }
        Expr::Pow(a, b) => {
            let a = go(a, f);
            Expr::Pow(bx(a), bx(go(b, f)))
        }
        Expr::Sub(a, b) => {
            let a = go(a, f);
            Expr::Sub(bx(a), bx(go(b, f)))
        }
        Expr::Correlate(a, b) => {
            let a = go(a, f);
            Expr::Correlate(bx(a), bx(go(b, f)))
        }
        Expr::Convolve(a, b) => {
            let a = go(a, f);
            Expr::Convolve(bx(a), bx(go(b, f)))
        }
        Expr::Transpose(a) => Expr::Transpose(bx(go(a, f))),
        Expr::Neg(a) => Expr::Neg(bx(go(a, f))),
        Expr::Rot180(a) => Expr::Rot180(bx(go(a, f))),
        Expr::SumOver(axes, a) => Expr::SumOver(axes.clone(), bx(go(a, f))),
        Expr::Spread(a, shape) => Expr::Spread(bx(go(a, f)), shape.clone()),
        Expr::Index(a, ranges) => {
            let a = go(a, f);
            Expr::Index(bx(a), map_ranges(ranges, f))
        }
    }
}

/// The single-index entries of a slice's ranges (`26` of `:, 26, :`).
fn map_ranges(ranges: &str, f: &mut dyn FnMut(i64, bool) -> Slot) -> String {
    let (open, body, close) = match ranges.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        Some(inner) => ("[", inner, "]"),
        None => ("", ranges, ""),
    };
    let parts: Vec<String> = body
        .split(", ")
        .map(|p| match p.parse::<i64>() {
            Ok(n) => match f(n, false) {
                Slot::Blank => "#".to_string(),
                Slot::Step(d) => step_text(d),
                Slot::Literal(i) => i.to_string(),
            },
            Err(_) => p.to_string(),
        })
        .collect();
    format!("{open}{}{close}", parts.join(", "))
}

/// The equation of step `t` for `members` (of `steps`), if every number
/// is either the same in all of them or moves with the step.
fn generic(first: &Equation, members: &[&Equation], steps: &[usize]) -> Option<Equation> {
    let lhs_rhs = |e: &Equation| Expr::Sum(vec![e.lhs.clone(), e.rhs.clone()]);
    let numbers: Vec<Vec<i64>> = members.iter().map(|e| template(&lhs_rhs(e)).numbers).collect();
    let slots = classify(&numbers, steps)?;
    let mut at = 0;
    let mut rewrite = |e: &Expr| {
        map_numbers(e, &mut |_, _| {
            let s = match slots[at] {
                Class::Step(d) => Slot::Step(d),
                Class::Literal(v) => Slot::Literal(v),
            };
            at += 1;
            s
        })
    };
    let lhs = rewrite(&first.lhs);
    let rhs = rewrite(&first.rhs);
    Some(Equation {
        lhs,
        rhs,
        shape: format!("{}  ({})", first.shape, range_text(steps)),
        unused: first.unused,
    })
}

#[derive(Clone, Copy)]
enum Class {
    Step((i64, i64)),
    Literal(i64),
}

/// Each number position: the same in every member, or `a·k + d` of the
/// member's step `k` (`a` > 1 where a layer numbers several unnamed values
/// a step). Step subscripts are 1-based and slice indices 0-based, so
/// `x[:, 26, :]` of step 27 is `t-1` like `h₂₆`.
fn classify(numbers: &[Vec<i64>], steps: &[usize]) -> Option<Vec<Class>> {
    let n = numbers.first()?.len();
    if numbers.iter().any(|v| v.len() != n) || steps.len() < 2 {
        return None;
    }
    let (k0, k1) = (steps[0] as i64, steps[1] as i64);
    (0..n)
        .map(|p| {
            let first = numbers[0][p];
            if numbers.iter().all(|v| v[p] == first) {
                return Some(Class::Literal(first));
            }
            let rise = numbers[1][p] - first;
            let run = k1 - k0;
            if run == 0 || rise % run != 0 || rise / run < 1 {
                return None;
            }
            let a = rise / run;
            let d = first - a * k0;
            numbers
                .iter()
                .zip(steps)
                .all(|(v, &k)| v[p] == a * k as i64 + d)
                .then_some(Class::Step((a, d)))
        })
        .collect()
}

/// A sum of per-step terms (`h₂₇ᵀ · δ₂₈ + … + h₁ᵀ · δ₂`) as `Σ_t=2…28 hₜ₋₁ᵀ · δₜ`,
/// each term's step the largest subscript in it.
fn fold_sums(e: Expr) -> Expr {
    let terms = match e {
        Expr::Apply(f, args) if f == "concat" => return Expr::Apply(f, elide_steps(args)),
        Expr::Sum(terms) => terms,
        other => return other,
    };
    // Only names carry a term's step; a slice alone does not make it per-step.
    let step_of = |t: &Expr| -> Option<usize> {
        let mut most: Option<i64> = None;
        map_numbers(t, &mut |n, is_name| {
            if is_name {
                most = Some(most.map_or(n, |m| m.max(n)));
            }
            Slot::Blank
        });
        most.and_then(|m| usize::try_from(m).ok())
    };
    let keys: Vec<Option<(String, usize)>> = terms.iter().map(|t| Some((template(t).key, step_of(t)?))).collect();
    let mut out = vec![];
    let mut done = vec![false; terms.len()];
    for i in 0..terms.len() {
        if done[i] {
            continue;
        }
        let Some((key, _)) = &keys[i] else {
            out.push(terms[i].clone());
            continue;
        };
        let members: Vec<usize> = (i..terms.len())
            .filter(|&j| !done[j] && keys[j].as_ref().is_some_and(|(k, _)| k == key))
            .collect();
        let steps: Vec<usize> = members.iter().map(|&j| keys[j].as_ref().map_or(0, |k| k.1)).collect();
        let folded = (members.len() >= MIN_RUN && consecutive(&steps))
            .then(|| {
                let numbers: Vec<Vec<i64>> = members.iter().map(|&j| template(&terms[j]).numbers).collect();
                let slots = classify(&numbers, &steps)?;
                let mut at = 0;
                let e = map_numbers(&terms[i], &mut |_, _| {
                    let s = match slots[at] {
                        Class::Step(d) => Slot::Step(d),
                        Class::Literal(v) => Slot::Literal(v),
                    };
                    at += 1;
                    s
                });
                Some(Expr::SumOver(vec![range_text(&steps)], Box::new(e)))
            })
            .flatten();
        match folded {
            Some(e) => {
                for &j in &members {
                    done[j] = true;
                }
                out.push(e);
            }
            None => {
                done[i] = true;
                out.push(terms[i].clone());
            }
        }
    }
    if out.len() == 1 {
        out.remove(0)
    } else {
        Expr::Sum(out)
    }
}

/// `concat(h₁, h₂, …, h₂₈)`: a run of one name at consecutive steps as its
/// first, `…` and its last.
fn elide_steps(args: Vec<Expr>) -> Vec<Expr> {
    let step = |e: &Expr| match e {
        Expr::Var(n) if n.step.is_none() => n.index.map(|i| (Name { index: None, ..n.clone() }, i)),
        _ => None,
    };
    let mut out = vec![];
    let mut i = 0;
    while i < args.len() {
        let mut j = i + 1;
        if let Some((base, k)) = step(&args[i]) {
            while j < args.len() && step(&args[j]) == Some((base.clone(), k + (j - i))) {
                j += 1;
            }
        }
        if j - i >= MIN_RUN {
            out.extend([args[i].clone(), Expr::Var(Name::plain("…")), args[j - 1].clone()]);
        } else {
            out.extend(args[i..j].iter().cloned());
        }
        i = j;
    }
    out
}
