//! Attention (`stdlib/attention.nn`): gradients against central differences
//! with masks, values against the textbook's formulas, the causal mask's
//! promise (a later token never changes an earlier output, bit for bit),
//! and the compiled code against the interpreter.

use crate::stdlib_grad::{check_src, data, f32t};
use ndarray::{ArrayD, IxDyn};
use nnc::driver::{self, lower_function};
use nnc::ir::interp::run;
use nnc::ir::{self, DType, Dim, Type};
use nnc::runtime::backend::{runner, BackendKind};

const JIT: BackendKind = BackendKind::Jit { threads: 1 };

fn i32t(dims: &[usize]) -> Type {
    Type {
        dtype: DType::I32,
        shape: dims.iter().map(|&d| Dim::Known(d)).collect(),
    }
}

/// Token ids with zeros (padding) at the end of each row.
fn ids(rows: usize, len: usize, real: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[rows, len]), |i| if i[1] < real[i[0]] { 1.0 + i[1] as f64 } else { 0.0 })
}

#[test]
fn attention_gradients_match_finite_differences_with_and_without_masks() {
    let (q, k, v) = (
        data(&[2, 4, 3], 1, -1.0, 1.0),
        data(&[2, 5, 3], 2, -1.0, 1.0),
        data(&[2, 5, 2], 3, -1.0, 1.0),
    );
    let types = [f32t(&[2, 4, 3]), f32t(&[2, 5, 3]), f32t(&[2, 5, 2])];
    check_src("", "attention", &types, vec![q.clone(), k.clone(), v.clone()]);
    // Causal: queries and keys of one length.
    let src = "fn causal(q: [b, t, d], k: [b, t, d], v: [b, t, e]) = attention(q, k, v, causal_mask(t))";
    let kc = data(&[2, 4, 3], 4, -1.0, 1.0);
    let vc = data(&[2, 4, 2], 5, -1.0, 1.0);
    check_src(
        src,
        "causal",
        &[f32t(&[2, 4, 3]), f32t(&[2, 4, 3]), f32t(&[2, 4, 2])],
        vec![q, kc, vc],
    );
    // Padding over heads: [n, heads, t, d] with a [n, 1, 1, s] mask; one
    // row has every key but the first masked.
    let src = "fn padded(q: [n, h, t, d], k: [n, h, s, d], v: [n, h, s, d], ids: i32[n, s]) = attention(q, k, v, padding_mask(ids))";
    let types = [f32t(&[2, 2, 3, 4]), f32t(&[2, 2, 5, 4]), f32t(&[2, 2, 5, 4]), i32t(&[2, 5])];
    let inputs = vec![
        data(&[2, 2, 3, 4], 6, -1.0, 1.0),
        data(&[2, 2, 5, 4], 7, -1.0, 1.0),
        data(&[2, 2, 5, 4], 8, -1.0, 1.0),
        ids(2, 5, &[3, 1]),
    ];
    check_src(src, "padded", &types, inputs);
}

#[test]
fn gelu_and_positions_gradients_match_finite_differences() {
    let x = data(&[3, 5], 9, -3.0, 3.0);
    check_src("", "gelu", &[f32t(&[3, 5])], vec![x.clone()]);
    check_src("", "gelu_tanh", &[f32t(&[3, 5])], vec![x]);
    check_src(
        "",
        "positional_encoding",
        &[f32t(&[2, 3, 6])],
        vec![data(&[2, 3, 6], 10, -1.0, 1.0)],
    );
    // Heads cut apart and joined again, around a nonlinearity so the
    // gradient's layout matters.
    let src = "fn heads(x: [n, t, d]) = merge_heads(tanh(split_heads(x, 3)) * split_heads(x, 3))";
    check_src(src, "heads", &[f32t(&[2, 4, 6])], vec![data(&[2, 4, 6], 11, -1.0, 1.0)]);
}

/// The function's first result on the f64 interpreter.
fn value(src: &str, name: &str, types: &[Type], inputs: &[ArrayD<f64>]) -> ArrayD<f64> {
    let f = lower_function(src, name, types).unwrap_or_else(|d| panic!("{name}: {d:?}"));
    ir::verify(&f).unwrap();
    run(&f, inputs).unwrap().remove(0)
}

#[test]
fn values_follow_the_textbook_formulas() {
    // GELU: x Φ(x); Φ(1) = 0.8413447460685429 (tables of the normal CDF).
    let x = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0, -1.0, 0.0]).unwrap();
    let g = value("", "gelu", &[f32t(&[3])], std::slice::from_ref(&x));
    for (got, want) in g.iter().zip([0.8413447460685429, -0.15865525393145707, 0.0]) {
        assert!((got - want).abs() < 1e-12, "gelu: {got} vs {want}");
    }
    let g = value("", "gelu_tanh", &[f32t(&[3])], &[x]);
    for (got, want) in g.iter().zip([0.8411919906082768, -0.15880800939172324, 0.0]) {
        assert!((got - want).abs() < 1e-12, "gelu_tanh: {got} vs {want}");
    }
    // PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...).
    let src = "fn table(x: [1]) = sinusoidal_positions(7, 6)";
    let pe = value(src, "table", &[f32t(&[1])], &[ArrayD::zeros(IxDyn(&[1]))]);
    assert_eq!(pe.shape(), &[7, 6]);
    for p in 0..7 {
        for j in 0..6 {
            let angle = p as f64 / 10000f64.powf((j / 2 * 2) as f64 / 6.0);
            let want = if j % 2 == 0 { angle.sin() } else { angle.cos() };
            assert!((pe[[p, j]] - want).abs() < 1e-12, "PE[{p}, {j}] = {} vs {want}", pe[[p, j]]);
        }
    }
    let src = "fn mask(x: [1]) = causal_mask(4)";
    let m = value(src, "mask", &[f32t(&[1])], &[ArrayD::zeros(IxDyn(&[1]))]);
    for i in 0..4 {
        for j in 0..4 {
            assert_eq!(m[[i, j]], f64::from(u8::from(j <= i)), "causal_mask(4)[{i}, {j}]");
        }
    }
    // A query equal to a strongly scaled key attends to that key's value
    // only; a masked key gets an exact 0 weight.
    let src = "fn pick_value(q: [1, 2, 2], k: [1, 2, 2], v: [1, 2, 3]) = attention(100 * q, k, v, causal_mask(2))";
    let q = ArrayD::from_shape_vec(IxDyn(&[1, 2, 2]), vec![0.0, 1.0, 1.0, 0.0]).unwrap();
    let k = ArrayD::from_shape_vec(IxDyn(&[1, 2, 2]), vec![1.0, 0.0, 0.0, 1.0]).unwrap();
    let v = ArrayD::from_shape_vec(IxDyn(&[1, 2, 3]), vec![1.0, 2.0, 3.0, 10.0, 20.0, 30.0]).unwrap();
    let types = [f32t(&[1, 2, 2]), f32t(&[1, 2, 2]), f32t(&[1, 2, 3])];
    let out = value(src, "pick_value", &types, &[q, k, v]);
    // Row 0 may only see key 0 (its best match, key 1, is in the future).
    assert_eq!(out.as_slice().unwrap()[..3], [1.0, 2.0, 3.0]);
    for (got, want) in out.as_slice().unwrap()[3..].iter().zip([1.0, 2.0, 3.0]) {
        assert!((got - want).abs() < 1e-9, "row 1 attends to key 0: {got} vs {want}");
    }
}

#[test]
fn heads_are_a_view_merge_inverts_split() {
    let src = "fn roundtrip(x: [n, t, d]) = merge_heads(split_heads(x, 4))";
    let x = data(&[2, 3, 8], 12, -1.0, 1.0);
    assert_eq!(value(src, "roundtrip", &[f32t(&[2, 3, 8])], std::slice::from_ref(&x)), x);
    // Head h of position p holds features h*dk .. (h+1)*dk of p.
    let src = "fn split(x: [n, t, d]) = split_heads(x, 4)";
    let h = value(src, "split", &[f32t(&[2, 3, 8])], std::slice::from_ref(&x));
    assert_eq!(h.shape(), &[2, 4, 3, 2]);
    assert_eq!(h[[1, 2, 0, 1]], x[[1, 0, 5]]);
    // No copies: only views (reshape, transpose) between input and output.
    let f = lower_function(src, "split", &[f32t(&[2, 3, 8])]).unwrap();
    for inst in &f.insts {
        assert!(matches!(inst.op.kind(), ir::OpKind::View), "split_heads emitted {}", inst.op.name());
    }
}

/// A small causal Transformer block over embeddings of 12 positions.
const CAUSAL: &str = "
model Causal(x: [batch, 12, 16]) -> [batch, 12, 16] {
    let mha = MultiHeadAttention(16, 4)
    let ff = FeedForward(16, 32, gelu)
    let h = positional_encoding(x)
    let a = h + mha(h, causal_mask(12))
    return a + ff(a)
}
";

#[test]
fn causal_mask_a_later_token_leaves_every_earlier_output_bit_identical() {
    let c = driver::compile("causal.nn", CAUSAL);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    let (_, f) = &c.analysis.model_funcs[0];
    let f = f.specialize(&|_| Some(3));
    let mut args: Vec<ArrayD<f32>> = f
        .params
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let dims: Vec<usize> = f.ty(p).shape.iter().map(|d| if let Dim::Known(k) = d { *k } else { 3 }).collect();
            data(&dims, 40 + i as u64, -1.0, 1.0).mapv(|v| v as f32)
        })
        .collect();
    let call = |args: &[ArrayD<f32>]| {
        let refs: Vec<&ArrayD<f32>> = args.iter().collect();
        runner(JIT, &f).call(&refs).unwrap().remove(0)
    };
    let before = call(&args);
    for changed in [11, 6, 1] {
        let mut x = args[0].clone();
        for b in 0..3 {
            for j in 0..16 {
                x[[b, changed, j]] = 5.0 - x[[b, changed, j]];
            }
        }
        args[0] = x;
        let after = call(&args);
        for b in 0..3 {
            for t in 0..12 {
                for j in 0..16 {
                    let (u, w) = (before[[b, t, j]], after[[b, t, j]]);
                    if t < changed {
                        assert_eq!(
                            u.to_bits(),
                            w.to_bits(),
                            "position {t} changed when token {changed} did: {u} vs {w}"
                        );
                    }
                }
            }
            // The changed position and the later ones do see it.
            assert_ne!(
                before[[b, changed, 0]],
                after[[b, changed, 0]],
                "position {changed} ignored its own token"
            );
        }
    }
    // Without the mask the first position sees the last token.
    let open = CAUSAL.replace("mha(h, causal_mask(12))", "mha(h)");
    let c = driver::compile("open.nn", &open);
    let (_, g) = &c.analysis.model_funcs[0];
    let g = g.specialize(&|_| Some(3));
    let mut args2 = args.clone();
    let refs: Vec<&ArrayD<f32>> = args2.iter().collect();
    let first = runner(JIT, &g).call(&refs).unwrap().remove(0);
    for j in 0..16 {
        args2[0][[0, 11, j]] = 5.0 - args2[0][[0, 11, j]];
    }
    let refs: Vec<&ArrayD<f32>> = args2.iter().collect();
    let second = runner(JIT, &g).call(&refs).unwrap().remove(0);
    let moved = (0..16).any(|j| first[[0, 0, j]] != second[[0, 0, j]]);
    assert!(moved, "unmasked attention should mix the last token into the first position");
}

#[test]
fn compiled_attention_agrees_with_the_interpreter() {
    // Scores of several heads, padded keys and a causal mask at once; odd
    // sizes so no dimension is a multiple of the vector width.
    let src = "fn both(x: [n, t, d], ids: i32[n, t]) = merge_heads(attention(split_heads(x, 3), split_heads(x, 3), split_heads(x, 3), padding_mask(ids) * causal_mask(t)))";
    for n in [1, 5] {
        let types = [f32t(&[n, 7, 9]), i32t(&[n, 7])];
        let f = lower_function(src, "both", &types).unwrap();
        let x = data(&[n, 7, 9], 13, -2.0, 2.0);
        let real: Vec<usize> = (0..n).map(|i| 7 - i % 7).collect();
        let m = ids(n, 7, &real);
        let want = run(&f, &[x.clone(), m.clone()]).unwrap().remove(0);
        let (xf, mf) = (x.mapv(|v| v as f32), m.mapv(|v| v as f32));
        let got = runner(JIT, &f).call(&[&xf, &mf]).unwrap().remove(0);
        for (w, g) in want.iter().zip(got.iter()) {
            assert!(
                (f64::from(*g) - w).abs() <= 1e-5 * 8.0 * w.abs().max(1.0),
                "compiled {g}, interpreter {w}"
            );
        }
    }
}

#[test]
fn repeat_builds_a_stack_of_distinct_layers_applied_in_turn() {
    let src = "
layer Block(d: int) {
    let fc = Dense(d -> d, tanh)
    fn forward(x: [n, d], scale = 1) -> [n, d] = x + scale * fc(x)
}
model Stacked(x: [batch, 4]) -> [batch, 4] {
    let blocks = repeat(3, Block(4))
    return blocks(x, 0.5)
}
model ByHand(x: [batch, 4]) -> [batch, 4] {
    let a = Block(4)
    let b = Block(4)
    let c = Block(4)
    return c(b(a(x, 0.5), 0.5), 0.5)
}
";
    let c = driver::compile("stack.nn", src);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    let funcs = &c.analysis.model_funcs;
    let (stacked, by_hand) = (&funcs[0].1, &funcs[1].1);
    assert_eq!(
        stacked.param_names[1..],
        [
            "blocks.0.fc.W",
            "blocks.0.fc.b",
            "blocks.1.fc.W",
            "blocks.1.fc.b",
            "blocks.2.fc.W",
            "blocks.2.fc.b"
        ]
        .map(String::from)
    );
    // The same weights give the same outputs as the layers written out.
    let (s, h) = (stacked.specialize(&|_| Some(2)), by_hand.specialize(&|_| Some(2)));
    let args: Vec<ArrayD<f64>> = s
        .params
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let dims: Vec<usize> = s.ty(p).shape.iter().map(|d| if let Dim::Known(k) = d { *k } else { 2 }).collect();
            data(&dims, 80 + i as u64, -1.0, 1.0)
        })
        .collect();
    assert_eq!(run(&s, &args).unwrap(), run(&h, &args).unwrap());
    // A count that is not a positive integer is an error at the count.
    let bad = driver::compile("bad.nn", "model M(x: [batch, 4]) -> [batch, 4] = repeat(0, Dense(4 -> 4))(x)");
    assert!(bad.diagnostics().iter().any(|d| d.code == "E0203"), "{:?}", bad.diagnostics());
}
