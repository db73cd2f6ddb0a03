//! Variable-length sequences: padded batches with `length_mask`, and the
//! masked recurrent layers against a hand-masked loop, the same layer run
//! unmasked on each sequence cut to its own length (in the f64
//! interpreter, on the same weights); a padded position's value never
//! reaches a state or the masked loss.

use ndarray::{ArrayD, IxDyn};
use nnc::driver;
use nnc::ir::interp;
use nnc::runtime::train::initial_weights;
use nnc::sema::TrainPlan;

const STEPS: usize = 6;
const LENGTHS: [usize; 4] = [6, 1, 4, 2];

fn plan(src: &str) -> TrainPlan {
    let c = driver::compile("masks.nn", src);
    assert!(!c.has_errors(), "{:?}\n{src}", c.diagnostics());
    c.analysis.plans[0].clone()
}

/// A model reading [batch, steps, 4]: three features and, last, the mask.
fn masked(layer: &str) -> String {
    format!(
        "model M(x: [batch, {STEPS}, 4]) -> [batch, 5] = {layer}(3 -> 5)(x[:, :, 0:3], x[:, :, 3:4]) |> last\n\
         train M {{ data = tensors(x: [[0]], y: [[0]]) loss = mse(model(x), 0) optimizer = sgd }}\n"
    )
}

/// The unmasked layer over a sequence of `len` steps.
fn plain(layer: &str, len: usize) -> String {
    format!(
        "model M(x: [batch, {len}, 3]) -> [batch, 5] = x |> {layer}(3 -> 5) |> last\n\
         train M {{ data = tensors(x: [[0]], y: [[0]]) loss = mse(model(x), 0) optimizer = sgd }}\n"
    )
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n as u64).map(|i| 2.0 * nnc::ir::random_uniform(seed, i) - 1.0).collect()
}

fn predict(plan: &TrainPlan, x: ArrayD<f64>, weights: &[ArrayD<f64>]) -> ArrayD<f64> {
    let mut args = vec![x];
    args.extend(weights.iter().cloned());
    interp::run(&plan.evaluation().unwrap().predict, &args).unwrap().remove(0)
}

fn check(masked_layer: &str, layer: &str) {
    let m = plan(&masked(masked_layer));
    let w: Vec<ArrayD<f64>> = initial_weights(&m).unwrap().params.iter().map(|p| p.mapv(f64::from)).collect();
    let feats = values(LENGTHS.len() * STEPS * 3, 5);
    let mut x = vec![];
    for (i, &len) in LENGTHS.iter().enumerate() {
        for t in 0..STEPS {
            // Padding holds large garbage: the mask must keep it out.
            let real = t < len;
            for j in 0..3 {
                x.push(if real { feats[(i * STEPS + t) * 3 + j] } else { 1e3 });
            }
            x.push(f64::from(u8::from(real)));
        }
    }
    let x = ArrayD::from_shape_vec(IxDyn(&[LENGTHS.len(), STEPS, 4]), x).unwrap();
    let got = predict(&m, x, &w);
    for (i, &len) in LENGTHS.iter().enumerate() {
        let p = plan(&plain(layer, len));
        // The same weights, matched by their names without the layer's.
        let pw: Vec<ArrayD<f64>> = p
            .params
            .iter()
            .map(|q| {
                let suffix = q.name.rsplit_once('.').unwrap().1;
                let k = m
                    .params
                    .iter()
                    .position(|r| r.name.ends_with(&format!(".{suffix}")) && !r.name.starts_with("dense"))
                    .unwrap();
                w[k].clone()
            })
            .collect();
        let xi: Vec<f64> = (0..len)
            .flat_map(|t| (0..3).map(move |j| (t, j)))
            .map(|(t, j)| feats[(i * STEPS + t) * 3 + j])
            .collect();
        let want = predict(&p, ArrayD::from_shape_vec(IxDyn(&[1, len, 3]), xi).unwrap(), &pw);
        for h in 0..5 {
            let (g, e) = (got[[i, h]], want[[0, h]]);
            assert!(
                (g - e).abs() <= 1e-12,
                "{masked_layer}: sequence {i} (length {len}), state {h}: masked {g}, cut to length {e}"
            );
        }
    }
}

#[test]
fn masked_layers_stop_at_each_sequences_last_real_step() {
    check("MaskedLstm", "Lstm");
    check("MaskedGru", "Gru");
    check("MaskedRnn", "Rnn");
}

#[test]
fn length_mask_marks_the_real_steps() {
    let f = driver::lower_function(
        "fn f(lengths: i32[3]) = length_mask(lengths, 4)",
        "f",
        &[nnc::ir::Type {
            dtype: nnc::ir::DType::I32,
            shape: vec![nnc::ir::Dim::Known(3)],
        }],
    )
    .unwrap();
    let lengths = ArrayD::from_shape_vec(IxDyn(&[3]), vec![4.0, 0.0, 2.0]).unwrap();
    let m = interp::run(&f, &[lengths]).unwrap().remove(0);
    assert_eq!(m.shape(), &[3, 4, 1]);
    let want = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
    assert_eq!(m.iter().copied().collect::<Vec<f64>>(), want);
}

#[test]
fn the_masked_loss_ignores_padded_positions() {
    // Logits [1, 3, 2], labels [1, 3], the last position padding: the loss
    // is the mean over the first two, whatever the third holds.
    let src = "fn f(logits: [1, 3, 2], labels: i32[1, 3], mask: [1, 3]) = masked_sequence_cross_entropy(logits, labels, mask)";
    let f32t = |s: &[usize]| nnc::ir::Type::f32(s.iter().map(|&d| nnc::ir::Dim::Known(d)).collect());
    let i32t = nnc::ir::Type {
        dtype: nnc::ir::DType::I32,
        shape: vec![nnc::ir::Dim::Known(1), nnc::ir::Dim::Known(3)],
    };
    let f = driver::lower_function(src, "f", &[f32t(&[1, 3, 2]), i32t, f32t(&[1, 3])]).unwrap();
    let run = |third: f64| {
        let logits = ArrayD::from_shape_vec(IxDyn(&[1, 3, 2]), vec![1.0, 0.0, 0.0, 2.0, third, -third]).unwrap();
        let labels = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![0.0, 1.0, 1.0]).unwrap();
        let mask = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![1.0, 1.0, 0.0]).unwrap();
        interp::run(&f, &[logits, labels, mask]).unwrap()[0].iter().next().copied().unwrap()
    };
    let nll = |a: f64, b: f64| (a.exp() + b.exp()).ln() - a;
    let want = (nll(1.0, 0.0) + nll(2.0, 0.0)) / 2.0;
    for third in [0.0, 50.0] {
        assert!((run(third) - want).abs() < 1e-12, "{} vs {want}", run(third));
    }
}
