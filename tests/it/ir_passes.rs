//! IR pass tests as data: each `tests/ir/<pass>/*.nnir` file is an input
//! function whose first line names the pass (`// pass: cse`). The pass's
//! printed output is snapshotted as `ir_passes__<pass>__<file stem>`, so a
//! new case is a new file plus `cargo insta review`.
//!
//! Beyond the snapshot, every case checks what holds for every pass: the
//! input parses and verifies, the output verifies, keeps the signature
//! (name, param types, result types), and survives a text round trip.

use nnc::ir::{self, Func};
use std::path::{Path, PathBuf};

fn run_pass(pass: &str, f: &Func) -> Func {
    match pass {
        "cse" => nnc::opt::cse(f),
        "dce" => nnc::opt::dce(f),
        "simplify" => nnc::opt::simplify(f),
        "optimize" => nnc::opt::optimize(f),
        other => panic!("unknown pass `{other}`"),
    }
}

/// `(name, param types, result types)`: what no pass may change.
fn signature(f: &Func) -> (String, Vec<ir::Type>, Vec<ir::Type>) {
    let tys = |vs: &[ir::Value]| vs.iter().map(|&v| f.ty(v).clone()).collect();
    (f.name.clone(), tys(&f.params), tys(&f.results))
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ir");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("tests/ir exists") {
        let dir = dir.unwrap().path();
        // `tests/ir/run` holds op tests, run by `ir_run.rs`, not pass cases.
        if dir.ends_with("run") {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "nnir") {
                out.push(file);
            }
        }
    }
    // Sorted so failures and snapshot writes come in a stable order.
    out.sort();
    out
}

/// The pass named by the `// pass: NAME` header, which must agree with
/// the directory the file sits in (a misplaced file is a mistake).
fn header_pass(path: &Path, text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let pass = first
        .strip_prefix("// pass:")
        .unwrap_or_else(|| panic!("{}: first line must be `// pass: NAME`", path.display()))
        .trim()
        .to_string();
    let dir = path.parent().and_then(|d| d.file_name()).and_then(|d| d.to_str());
    assert_eq!(
        Some(pass.as_str()),
        dir,
        "{}: header names a different pass than its directory",
        path.display()
    );
    pass
}

#[test]
fn nnir_cases() {
    let cases = cases();
    // Each pass needs cases that fire and cases that must not.
    for pass in ["cse", "dce", "simplify", "optimize"] {
        let n = cases.iter().filter(|c| c.parent().unwrap().ends_with(pass)).count();
        assert!(n >= 4, "only {n} cases for {pass}");
    }
    for path in cases {
        let text = std::fs::read_to_string(&path).unwrap();
        let pass = header_pass(&path, &text);
        let shown = path.display();
        let input = ir::parse_func(&text).unwrap_or_else(|e| panic!("{shown}: {e}"));
        ir::verify(&input).unwrap_or_else(|e| panic!("{shown}: input does not verify: {e}"));
        let output = run_pass(&pass, &input);
        ir::verify(&output).unwrap_or_else(|e| panic!("{shown}: output does not verify: {e}"));
        assert_eq!(signature(&output), signature(&input), "{shown}: the pass changed the signature");
        let printed = ir::print_func(&output);
        let reparsed = ir::parse_func(&printed).unwrap_or_else(|e| panic!("{shown}: output does not parse: {e}"));
        assert_eq!(ir::print_func(&reparsed), printed, "{shown}: output does not round-trip");
        // DCE and CSE finish in one run, and optimize runs to a fixed point,
        // so running any of them again must change nothing.
        if pass != "simplify" {
            let again = ir::print_func(&run_pass(&pass, &output));
            assert_eq!(again, printed, "{shown}: {pass} is not idempotent");
        }
        let stem = path.file_stem().unwrap().to_str().unwrap();
        insta::with_settings!({ description => format!("tests/ir/{pass}/{stem}.nnir"), omit_expression => true }, {
            insta::assert_snapshot!(format!("{pass}__{stem}"), printed);
        });
    }
}

/// A small reference evaluator, here only to check that each pass keeps the
/// meaning of its test cases (the snapshot alone would accept a wrong
/// rewrite that was reviewed wrongly). Values are row-major `f32` buffers;
/// `i32` values are held as exact small integers in `f32`. Every op is
/// computed the same way on both sides, so the comparison is bitwise: the
/// passes promise exact results for every non-NaN input, signed zeros
/// included.
mod eval {
    use nnc::ir::{self, BinaryOp, CmpOp, DType, Func, Op};

    #[derive(Clone, Debug)]
    pub struct T {
        pub shape: Vec<usize>,
        pub data: Vec<f32>,
    }

    fn dims(t: &ir::Type) -> Vec<usize> {
        t.shape.iter().map(|d| d.known().expect("specialized")).collect()
    }

    fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
        let mut idx = vec![0; shape.len()];
        for (k, &n) in shape.iter().enumerate().rev() {
            idx[k] = i % n;
            i /= n;
        }
        idx
    }

    fn ravel(idx: &[usize], shape: &[usize]) -> usize {
        idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
    }

    fn map(t: &T, f: impl Fn(f32) -> f32) -> T {
        T {
            shape: t.shape.clone(),
            data: t.data.iter().map(|&x| f(x)).collect(),
        }
    }

    fn zip(a: &T, b: &T, f: impl Fn(f32, f32) -> f32) -> T {
        T {
            shape: a.shape.clone(),
            data: a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect(),
        }
    }

    /// Out index -> in element, for every element of `out_shape`.
    fn gather(out_shape: Vec<usize>, f: impl Fn(&[usize]) -> f32) -> T {
        let n = out_shape.iter().product();
        let data = (0..n).map(|i| f(&unravel(i, &out_shape))).collect();
        T { shape: out_shape, data }
    }

    fn apply(op: &Op, a: &[&T], out: Vec<usize>) -> T {
        match op {
            Op::Const(c) => T {
                shape: vec![],
                data: vec![*c as f32],
            },
            // The one definition of each op's value; the folds it must agree
            // with (neg, abs, sqrt, sign) are correctly rounded from f64.
            Op::Unary(u) => map(a[0], |x| ir::scalar::unary(*u, f64::from(x)) as f32),
            Op::Binary(b) => zip(a[0], a[1], |x, y| match b {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
                // In f64: exact for small integer powers, so pow(x, 2)
                // rounds like x * x (as a correctly rounded pow would).
                BinaryOp::Pow => (x as f64).powf(y as f64) as f32,
                BinaryOp::Max => x.max(y),
                BinaryOp::Min => x.min(y),
            }),
            Op::Compare(c) => zip(a[0], a[1], |x, y| {
                let r = match c {
                    CmpOp::Lt => x < y,
                    CmpOp::Le => x <= y,
                    CmpOp::Gt => x > y,
                    CmpOp::Ge => x >= y,
                    CmpOp::Eq => x == y,
                    CmpOp::Ne => x != y,
                };
                if r {
                    1.0
                } else {
                    0.0
                }
            }),
            Op::Select => T {
                shape: a[1].shape.clone(),
                data: (0..a[1].data.len())
                    .map(|i| if a[0].data[i] != 0.0 { a[1].data[i] } else { a[2].data[i] })
                    .collect(),
            },
            Op::Broadcast { .. } => {
                let src = &a[0].shape;
                let off = out.len() - src.len();
                gather(out, |o| {
                    let idx: Vec<usize> = (0..src.len()).map(|j| if src[j] == 1 { 0 } else { o[off + j] }).collect();
                    a[0].data[ravel(&idx, src)]
                })
            }
            Op::ReduceSum { axes, keep } | Op::ReduceMax { axes, keep } => {
                let sum = matches!(op, Op::ReduceSum { .. });
                let n: usize = out.iter().product();
                // Sums start from -0.0, IEEE's exact additive identity (-0 + x is x
                // for every x, while +0 + -0 is +0), so a sum of one element is
                // that element, as the no-axes rewrite assumes.
                let mut data = vec![if sum { -0.0 } else { f32::NEG_INFINITY }; n];
                for (i, &x) in a[0].data.iter().enumerate() {
                    let idx = unravel(i, &a[0].shape);
                    let kept: Vec<usize> = idx
                        .iter()
                        .enumerate()
                        .filter_map(|(k, &v)| match (axes.contains(&k), keep) {
                            (false, _) => Some(v),
                            (true, true) => Some(0),
                            (true, false) => None,
                        })
                        .collect();
                    let o = ravel(&kept, &out);
                    data[o] = if sum { data[o] + x } else { data[o].max(x) };
                }
                T { shape: out, data }
            }
            Op::Reshape { .. } => T {
                shape: out,
                data: a[0].data.clone(),
            },
            Op::Transpose { perm } => gather(out, |o| {
                let mut idx = vec![0; perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    idx[p] = o[i];
                }
                a[0].data[ravel(&idx, &a[0].shape)]
            }),
            Op::MatMul => {
                let (x, y) = (a[0], a[1]);
                let r = x.shape.len();
                let (m, k, n) = (x.shape[r - 2], x.shape[r - 1], y.shape[r - 1]);
                gather(out, |o| {
                    let batch = ravel(&o[..r - 2], &x.shape[..r - 2]);
                    let (i, j) = (o[r - 2], o[r - 1]);
                    (0..k).fold(0.0, |acc, p| {
                        acc + x.data[batch * m * k + i * k + p] * y.data[batch * k * n + p * n + j]
                    })
                })
            }
            Op::OneHot { depth } => gather(out, |o| {
                let label = a[0].data[ravel(&o[..o.len() - 1], &a[0].shape)];
                if label as usize == o[o.len() - 1] && *depth > 0 {
                    1.0
                } else {
                    0.0
                }
            }),
            Op::Cast { to: DType::I32 } => map(a[0], f32::trunc),
            Op::Cast { to: DType::F32 } => a[0].clone(),
            Op::RandomUniform { seed, .. } => gather(out.clone(), |o| ir::random_uniform(*seed, ravel(o, &out) as u64) as f32),
            Op::RandomNormal { seed, .. } => gather(out.clone(), |o| ir::random_normal(*seed, ravel(o, &out) as u64) as f32),
            Op::Slice { start, stride, .. } => gather(out, |o| {
                let idx: Vec<usize> = o.iter().enumerate().map(|(d, &i)| start[d] + stride[d] * i).collect();
                a[0].data[ravel(&idx, &a[0].shape)]
            }),
            Op::Pad { low, interior, .. } => gather(out, |o| {
                let mut idx = vec![];
                for (d, &i) in o.iter().enumerate() {
                    let step = interior[d] + 1;
                    match i.checked_sub(low[d]) {
                        Some(k) if k % step == 0 && k / step < a[0].shape[d] => idx.push(k / step),
                        _ => return 0.0,
                    }
                }
                a[0].data[ravel(&idx, &a[0].shape)]
            }),
            Op::Reverse { axes } => gather(out.clone(), |o| {
                let idx: Vec<usize> = o
                    .iter()
                    .enumerate()
                    .map(|(d, &i)| if axes.contains(&d) { out[d] - 1 - i } else { i })
                    .collect();
                a[0].data[ravel(&idx, &a[0].shape)]
            }),
            Op::Concat { axis } => gather(out, |o| {
                let n = a[0].shape[*axis];
                let mut idx = o.to_vec();
                if idx[*axis] < n {
                    a[0].data[ravel(&idx, &a[0].shape)]
                } else {
                    idx[*axis] -= n;
                    a[1].data[ravel(&idx, &a[1].shape)]
                }
            }),
            Op::Gather { axis } => gather(out, |o| {
                let r = a[1].shape.len();
                let id = a[1].data[ravel(&o[*axis..axis + r], &a[1].shape)];
                if id < 0.0 || id as usize >= a[0].shape[*axis] {
                    return f32::NAN;
                }
                let mut idx = o[..*axis].to_vec();
                idx.push(id as usize);
                idx.extend_from_slice(&o[axis + r..]);
                a[0].data[ravel(&idx, &a[0].shape)]
            }),
            Op::ScatterAdd { axis, .. } => {
                let r = a[0].shape.len();
                let mut data = vec![0.0f32; out.iter().product()];
                for (p, &u) in a[1].data.iter().enumerate() {
                    let pi = unravel(p, &a[1].shape);
                    let id = a[0].data[ravel(&pi[*axis..axis + r], &a[0].shape)];
                    if id >= 0.0 && (id as usize) < out[*axis] {
                        let mut idx = pi[..*axis].to_vec();
                        idx.push(id as usize);
                        idx.extend_from_slice(&pi[axis + r..]);
                        data[ravel(&idx, &out)] += u;
                    }
                }
                T { shape: out, data }
            }
            Op::Iota { axis, .. } => gather(out, |o| o[*axis] as f32),
            // The window ops run the shared loops (their own tests are in conv.rs).
            Op::Im2col { window } | Op::Col2im { window, .. } | Op::MaxPool { window } | Op::MaxPoolGrad { window } => {
                use nnc::ir::window as win;
                let img = if matches!(op, Op::Col2im { .. }) { &out } else { &a[0].shape };
                let c = if matches!(op, Op::Col2im { .. }) { a[0].shape[3] } else { img[1] };
                let g = win::Geometry::new(window, img[0], c, [img[2], img[3]]).unwrap();
                let mut data = vec![0.0f32; out.iter().product()];
                match op {
                    Op::Im2col { .. } => win::im2col(window, &g, &a[0].data, &mut data, 0, g.n),
                    Op::Col2im { .. } => win::col2im(window, &g, &a[0].data, &mut data, 0, g.n),
                    Op::MaxPool { .. } => win::max_pool(window, &g, &a[0].data, &mut data, 0, g.n * g.c),
                    _ => win::max_pool_grad(window, &g, &a[0].data, &a[1].data, &mut data, 0, g.n * g.c),
                }
                T { shape: out, data }
            }
            // IR text cannot spell a scan, so none reaches this oracle.
            Op::Scan { .. } => panic!("the f32 oracle runs no scans"),
        }
    }

    /// Run a function whose shapes are all known.
    pub fn run(f: &Func, args: &[T]) -> Vec<T> {
        let mut vals: Vec<Option<T>> = vec![None; f.types.len()];
        for (&p, a) in f.params.iter().zip(args) {
            vals[p.index()] = Some(a.clone());
        }
        for inst in &f.insts {
            let a: Vec<&T> = inst.args.iter().map(|v| vals[v.index()].as_ref().unwrap()).collect();
            vals[inst.result.index()] = Some(apply(&inst.op, &a, dims(f.ty(inst.result))));
        }
        f.results.iter().map(|r| vals[r.index()].clone().unwrap()).collect()
    }

    /// Deterministic arguments for `f`'s params. Floats mix ordinary values
    /// with the ones rewrites get wrong (±0, ±1, ±inf, NaN); integers are
    /// small labels.
    pub fn inputs(f: &Func, seed: u64) -> Vec<T> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const SPECIAL: [f32; 9] = [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        f.params
            .iter()
            .map(|&p| {
                let t = f.ty(p);
                let shape = dims(t);
                let data = (0..shape.iter().product())
                    .map(|_| {
                        let r = next();
                        match t.dtype {
                            DType::I32 => (r % 4) as f32,
                            DType::F32 if r % 3 == 0 => SPECIAL[(r >> 8) as usize % SPECIAL.len()],
                            DType::F32 => ((r >> 11) % 6001) as f32 / 1000.0 - 3.0,
                        }
                    })
                    .collect();
                T { shape, data }
            })
            .collect()
    }

    /// Bitwise equal, except that any NaN matches any NaN.
    pub fn same(a: &T, b: &T) -> bool {
        a.shape == b.shape
            && a.data
                .iter()
                .zip(&b.data)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }
}

/// Every case's output computes what its input computes, on inputs full of
/// signed zeros, infinities and NaNs, with symbolic dims bound to 2 and 3.
#[test]
fn passes_preserve_meaning() {
    for path in cases() {
        let text = std::fs::read_to_string(&path).unwrap();
        let pass = header_pass(&path, &text);
        let input = ir::parse_func(&text).unwrap();
        let output = run_pass(&pass, &input);
        for size in [2, 3] {
            let (fi, fo) = (input.specialize(&|_| Some(size)), output.specialize(&|_| Some(size)));
            for seed in 0..16 {
                let args = eval::inputs(&fi, seed);
                let (want, got) = (eval::run(&fi, &args), eval::run(&fo, &args));
                for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                    assert!(
                        eval::same(w, g),
                        "{}: result {i} differs (size {size}, seed {seed})\ninputs {args:?}\nwant {w:?}\ngot  {g:?}",
                        path.display()
                    );
                }
            }
        }
    }
}
