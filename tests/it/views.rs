//! Views with a base offset (`codegen::view`): slices, reversals and the
//! reshapes over them are read where they lie. Their values are tested as
//! data (`tests/ir/run/slice_views.nnir`: interpreter against compiled code,
//! gradients by finite differences); this checks that the Transformer
//! encoder's Q, K and V, three slices of one `[b, t, 3d]` product, reach
//! their products without a copy, and their gradients are written by their
//! products straight into one `[b, t, 3d]` buffer.

use nnc::driver;

/// The kernels of `bench/encoder.nn`'s training step as `nnc ir --stage
/// fused` prints them, at batch 2.
fn encoder_kernels() -> String {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/encoder.nn")).unwrap();
    let c = driver::compile("encoder.nn", &src);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    let p = &c.analysis.plans[0];
    let (step, _) = driver::training_step(p);
    let f = nnc::opt::optimize(&nnc::opt::optimize(&step).specialize(&|_| Some(2)));
    let weights = p.params.len() + p.states_per_step()[0];
    let (code, _) = nnc::runtime::backend::compile_step(&f, weights, &nnc::codegen::Options::threads(1)).unwrap();
    code.kernels_text()
}

#[test]
fn encoder_qkv_slices_are_read_in_place_by_the_attention_products() {
    let k = encoder_kernels();
    // No kernel copies a slice out ...
    assert!(!k.contains("= slice"), "{k}");
    // ... and in each of the two layers the score product reads Q and K
    // (Kᵀ: unit row stride) and the value product reads V from one
    // buffer, at offsets 0, d_model and 2·d_model, with the row stride of
    // the whole [b·t, 3·d_model] product.
    let scores: Vec<&str> = k
        .lines()
        .filter(|l| l.contains("(rs=384, cs=1) @ s") && l.contains("+128 (rs=1, cs=384)"))
        .collect();
    assert_eq!(scores.len(), 2, "{k}");
    for line in scores {
        let q = line.split(" = ").nth(1).unwrap().split(' ').next().unwrap();
        assert!(!q.contains('+'), "{line}");
        let values = format!("@ {q}+256 (rs=384, cs=1)");
        assert!(k.contains(&values), "no product reads V as {values}:\n{k}");
        assert!(k.contains(&format!("@ {q}+128 (rs=1, cs=384)")), "{line}");
    }
}

#[test]
fn encoder_step_moves_nothing_between_its_products() {
    let k = encoder_kernels();
    // The gradients of Q, K and V are written into their blocks of one
    // buffer (no concat moves), and merged heads are written by the
    // attention product in the layout the output projection reads (no
    // contiguous copies).
    assert!(!k.contains(" move "), "{k}");
    assert!(!k.contains("contiguous copy"), "{k}");
    // Per layer: the value product writes the merged heads with the row
    // stride of [b·t, d_model]; the backward products write dQ, dKᵀ and dV
    // at offsets 0, d_model and 2·d_model of the [b·t, 3·d_model] gradient.
    let products: Vec<(String, String)> = k
        .lines()
        .filter_map(|l| l.trim().split_once(" = "))
        .filter(|(_, rhs)| rhs.contains(" @ "))
        .map(|(out, rhs)| (out.to_string(), rhs.to_string()))
        .collect();
    let count = |out: &dyn Fn(&str) -> bool, rhs: &dyn Fn(&str) -> bool| products.iter().filter(|(o, r)| out(o) && rhs(r)).count();
    let heads = count(&|o| o.ends_with("(rs=128, cs=1)"), &|r| r.ends_with("+256 (rs=384, cs=1)"));
    let dq = count(&|o| !o.contains('+') && o.ends_with("(rs=384, cs=1)"), &|r| {
        r.contains("(rs=64, cs=1) @")
    });
    let dk = count(&|o| o.ends_with("+128 (rs=1, cs=384)"), &|_| true);
    let dv = count(&|o| o.ends_with("+256 (rs=384, cs=1)"), &|_| true);
    assert_eq!((heads, dq, dk, dv), (2, 2, 2, 2), "{k}");
}
