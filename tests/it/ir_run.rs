//! Op tests as data: each `tests/ir/run/*.nnir` file is an IR function
//! that is run three ways —
//!
//! 1. on the reference interpreter (f64) and on the JIT (f32), every result
//!    compared;
//! 2. its gradient (`autodiff::grad_func` of `sum_r sum(result_r * w_r)`
//!    for fixed random weights `w_r`) against central finite differences in
//!    f64 for every element of every f32 parameter;
//! 3. that gradient function again on both backends.
//!
//! A new op's tests are one file. Header lines before `func` (all optional):
//!
//! ```text
//! // input p1: uniform 0.5 2      values in [0.5, 2) (or: normal, away_from_zero, labels LO HI)
//! // grad: p0                     check the gradient only for these params (default: every f32 param)
//! // tol: 8                       JIT tolerance factor, for long f32 sums
//! ```
//!
//! Inputs default to standard normal draws for f32 params and labels in
//! `0..4` for i32 params. Every op in `ir::Op::names()` must appear in some
//! file (`every_op_has_a_run_file`).

use ndarray::{ArrayD, IxDyn};
use nnc::autodiff::grad_func;
use nnc::codegen::{Compiled, Options};
use nnc::ir::interp::{run, Tensor};
use nnc::ir::{self, Builder, DType, Func, Op, Value};
use std::path::{Path, PathBuf};

/// |jit - interp| <= TOL * tol * max(1, |interp|), as in `jit.rs`.
const TOL: f64 = 1e-5;
const STEP: f64 = 1e-6;

fn files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ir/run");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/ir/run exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nnir"))
        .collect();
    out.sort();
    out
}

#[derive(Clone, Debug)]
enum Input {
    Normal,
    Uniform(f64, f64),
    AwayFromZero,
    Labels(i64, i64),
}

struct Case {
    name: String,
    func: Func,
    inputs: Vec<Input>,
    grad: Option<Vec<usize>>,
    tol: f64,
}

fn param_index(word: &str, what: &str) -> usize {
    word.strip_prefix('p')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{what}: expected a param `pN`, found `{word}`"))
}

fn parse_case(path: &Path) -> Case {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let func = ir::parse_func(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut inputs: Vec<Input> = func
        .params
        .iter()
        .map(|&p| match func.ty(p).dtype {
            DType::F32 => Input::Normal,
            DType::I32 => Input::Labels(0, 4),
        })
        .collect();
    let (mut grad, mut tol) = (None, 1.0);
    for line in text.lines().take_while(|l| !l.trim_start().starts_with("func")) {
        let Some(rest) = line.trim().strip_prefix("//") else {
            continue;
        };
        let Some((key, value)) = rest.split_once(':') else {
            continue;
        };
        let words: Vec<&str> = value.split_whitespace().collect();
        let num = |i: usize| -> f64 {
            words
                .get(i)
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("{name}: `{line}`: expected a number"))
        };
        match key.trim() {
            k if k.starts_with("input ") => {
                let p = param_index(k["input ".len()..].trim(), &name);
                assert!(p < inputs.len(), "{name}: no param p{p}");
                inputs[p] = match words.first().copied() {
                    Some("normal") => Input::Normal,
                    Some("uniform") => Input::Uniform(num(1), num(2)),
                    Some("away_from_zero") => Input::AwayFromZero,
                    Some("labels") => Input::Labels(num(1) as i64, num(2) as i64),
                    other => panic!("{name}: unknown input kind {other:?}"),
                };
            }
            "grad" => grad = Some(words.iter().map(|w| param_index(w.trim_end_matches(','), &name)).collect()),
            "tol" => tol = num(0),
            _ => {}
        }
    }
    Case {
        name,
        func,
        inputs,
        grad,
        tol,
    }
}

/// Deterministic arguments, rounded to f32 so both backends see the same
/// numbers.
fn arguments(case: &Case) -> Vec<Tensor> {
    let f = &case.func;
    f.params
        .iter()
        .zip(&case.inputs)
        .enumerate()
        .map(|(i, (&p, input))| {
            let dims: Vec<usize> = f
                .ty(p)
                .shape
                .iter()
                .map(|d| d.known().expect("run files use known sizes"))
                .collect();
            let n: usize = dims.iter().product();
            let seed = 17 + i as u64;
            let data = (0..n as u64)
                .map(|j| {
                    let x = match *input {
                        Input::Normal => ir::random_normal(seed, j),
                        Input::Uniform(lo, hi) => lo + (hi - lo) * ir::random_uniform(seed, j),
                        Input::AwayFromZero => {
                            let v = ir::random_normal(seed, j);
                            v + 0.2f64.copysign(v)
                        }
                        Input::Labels(lo, hi) => (lo + (ir::random_bits(seed, j) % (hi - lo) as u64) as i64) as f64,
                    };
                    x as f32 as f64
                })
                .collect();
            ArrayD::from_shape_vec(IxDyn(&dims), data).unwrap()
        })
        .collect()
}

fn run_jit(f: &Func, args: &[Tensor]) -> Vec<Vec<f32>> {
    let mut c = Compiled::compile(f, &Options::threads(1)).unwrap_or_else(|e| panic!("{e}\n{}", ir::print_func(f)));
    let a32: Vec<Vec<f32>> = args.iter().map(|t| t.iter().map(|&x| x as f32).collect()).collect();
    let arg_refs: Vec<&[f32]> = a32.iter().map(|v| v.as_slice()).collect();
    let mut outs: Vec<Vec<f32>> = f
        .results
        .iter()
        .map(|&r| vec![f32::NAN; f.ty(r).shape.iter().map(|d| d.known().unwrap()).product()])
        .collect();
    let mut out_refs: Vec<&mut [f32]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
    c.run(&arg_refs, &mut out_refs).unwrap();
    outs
}

/// Interpreter and JIT agree on every result of `f`.
fn same_on_both(case: &Case, f: &Func, args: &[Tensor], what: &str) {
    let want = run(f, args).unwrap_or_else(|e| panic!("{}: {what}: {e}", case.name));
    let got = run_jit(f, args);
    for (r, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w.len(), g.len(), "{}: {what}: result {r} length", case.name);
        for (i, (&w, &g)) in w.iter().zip(g).enumerate() {
            let (w, g) = (w as f32 as f64, g as f64);
            let same_special = (w.is_nan() && g.is_nan()) || (w.is_infinite() && w == g);
            assert!(
                same_special || (g - w).abs() <= TOL * case.tol * w.abs().max(1.0),
                "{}: {what}: result {r}[{i}]: jit {g}, interpreter {w}\n{}",
                case.name,
                ir::print_func(f)
            );
        }
    }
}

/// `sum_r sum(result_r * w_r)` over the f32 results, `w_r` fixed normal
/// draws: a scalar whose gradient reaches every result element.
fn scalarize_all(f: &Func) -> Func {
    let mut b = Builder::new(format!("{}_loss", f.name));
    let ps: Vec<Value> = f
        .params
        .iter()
        .zip(&f.param_names)
        .map(|(&p, n)| b.param(n.clone(), f.ty(p).clone()))
        .collect();
    let outs = b.inline(f, &ps);
    let mut total = b.constant(0.0);
    for (r, out) in outs.into_iter().enumerate() {
        if b.ty(out).dtype != DType::F32 {
            continue;
        }
        let shape = b.shape(out);
        let key = b.constant(0.0);
        let w = b.push(
            Op::RandomNormal {
                shape: shape.clone(),
                seed: 1000 + r as u64,
            },
            &[key],
        );
        let m = b.mul(out, w);
        let s = b.reduce_sum(m, (0..shape.len()).collect(), false);
        total = b.add(total, s);
    }
    b.finish(&[total])
}

fn scalar_of(f: &Func, args: &[Tensor]) -> f64 {
    run(f, args).unwrap()[0].iter().copied().next().unwrap()
}

fn check_gradient(case: &Case, args: &[Tensor]) {
    let f = &case.func;
    let wrt: Vec<usize> = match &case.grad {
        Some(ps) => ps.clone(),
        None => (0..f.params.len()).filter(|&i| f.ty(f.params[i]).dtype == DType::F32).collect(),
    };
    let loss = scalarize_all(f);
    let vjp = grad_func(&loss, &wrt);
    ir::verify(&vjp).unwrap_or_else(|e| panic!("{}: gradient: {e}", case.name));
    let out = run(&vjp, args).unwrap();
    for (slot, &p) in wrt.iter().enumerate() {
        let analytic = out[1 + slot].as_standard_layout();
        let mut shifted = args.to_vec();
        for idx in 0..args[p].len() {
            let x0 = args[p].as_slice().unwrap()[idx];
            shifted[p].as_slice_mut().unwrap()[idx] = x0 + STEP;
            let plus = scalar_of(&loss, &shifted);
            shifted[p].as_slice_mut().unwrap()[idx] = x0 - STEP;
            let minus = scalar_of(&loss, &shifted);
            shifted[p].as_slice_mut().unwrap()[idx] = x0;
            let numeric = (plus - minus) / (2.0 * STEP);
            let got = analytic.as_slice().unwrap()[idx];
            assert!(
                (got - numeric).abs() <= 1e-6 * numeric.abs().max(got.abs()).max(1.0),
                "{}: d loss / d p{p}[{idx}]: autodiff {got}, finite difference {numeric}\n{}",
                case.name,
                ir::print_func(&vjp)
            );
        }
    }
    same_on_both(case, &vjp, args, "gradient");
}

#[test]
fn run_files() {
    let files = files();
    assert!(!files.is_empty(), "no tests/ir/run/*.nnir files");
    for path in files {
        let case = parse_case(&path);
        let args = arguments(&case);
        same_on_both(&case, &case.func, &args, "forward");
        check_gradient(&case, &args);
    }
}

#[test]
fn every_op_has_a_run_file() {
    let mut seen: Vec<&str> = Vec::new();
    for path in files() {
        let case = parse_case(&path);
        seen.extend(case.func.insts.iter().map(|i| i.op.name()));
    }
    // IR text cannot spell a scan's body function; tests/it/seq.rs runs
    // scans on both backends and through finite differences instead.
    let missing: Vec<&str> = Op::names().into_iter().filter(|n| !seen.contains(n) && *n != "scan").collect();
    assert!(missing.is_empty(), "ops without a tests/ir/run file: {missing:?}");
}
