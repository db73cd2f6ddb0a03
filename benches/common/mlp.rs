//! The MLP training step and inference function built in IR with the
//! Builder and autodiff; shared by `benches/mlp_step.rs` and the JIT tests.

use nnc::autodiff::grad;
use nnc::ir::{BinaryOp, Builder, DType, Dim, Func, Op, Type, Value};

fn k(dims: &[usize]) -> Vec<Dim> {
    dims.iter().map(|&d| Dim::Known(d)).collect()
}

/// Forward pass of a ReLU MLP with layer sizes `sizes` (input first); returns
/// the logits and the weight/bias params in order.
fn forward(b: &mut Builder, batch: usize, sizes: &[usize]) -> (Value, Vec<Value>, Value) {
    let x = b.param("x", Type::f32(k(&[batch, sizes[0]])));
    let mut params = Vec::new();
    for (i, w) in sizes.windows(2).enumerate() {
        params.push(b.param(format!("w{i}"), Type::f32(k(&[w[0], w[1]]))));
        params.push(b.param(format!("b{i}"), Type::f32(k(&[w[1]]))));
    }
    let mut h = x;
    let layers = sizes.len() - 1;
    for i in 0..layers {
        let z = b.matmul(h, params[2 * i]);
        let shape = b.shape(z);
        let bias = b.broadcast(params[2 * i + 1], &shape);
        h = b.add(z, bias);
        if i + 1 < layers {
            let zero = b.fill(0.0, &shape);
            h = b.binary(BinaryOp::Max, h, zero);
        }
    }
    (h, params, x)
}

/// Params: x, labels (i32), weights and biases, Adam moments m and v for
/// each, and the step count t (f32[]). Results: loss, new params, new m,
/// new v.
pub fn mlp_step(batch: usize, sizes: &[usize]) -> Func {
    let mut b = Builder::new("mlp_step");
    let (logits, params, _x) = forward(&mut b, batch, sizes);
    let classes = *sizes.last().unwrap();
    let labels = b.param(
        "y",
        Type {
            dtype: DType::I32,
            shape: k(&[batch]),
        },
    );
    let tys: Vec<Type> = params.iter().map(|&p| b.ty(p).clone()).collect();
    let ms: Vec<Value> = tys.iter().enumerate().map(|(i, t)| b.param(format!("m{i}"), t.clone())).collect();
    let vs: Vec<Value> = tys.iter().enumerate().map(|(i, t)| b.param(format!("v{i}"), t.clone())).collect();
    let t = b.param("t", Type::scalar());

    // Softmax cross-entropy with integer labels via one_hot.
    let shape = b.shape(logits);
    let mx = b.reduce_max(logits, vec![1], true);
    let mxb = b.broadcast(mx, &shape);
    let z = b.sub(logits, mxb);
    let e = b.unary(nnc::ir::UnaryOp::Exp, z);
    let s = b.reduce_sum(e, vec![1], true);
    let lse = b.unary(nnc::ir::UnaryOp::Log, s);
    let lseb = b.broadcast(lse, &shape);
    let logp = b.sub(z, lseb);
    let oh = b.push(Op::OneHot { depth: classes }, &[labels]);
    let picked = b.mul(oh, logp);
    let total = b.reduce_sum(picked, vec![0, 1], false);
    let scale = b.constant(-1.0 / batch as f64);
    let loss = b.mul(total, scale);

    let grads = grad(&mut b, loss, &params);

    // Adam, bias-corrected with the step count t.
    let (lr, b1, b2, eps) = (1e-3, 0.9, 0.999, 1e-8);
    let b1c = b.constant(b1);
    let b2c = b.constant(b2);
    let p1 = b.binary(BinaryOp::Pow, b1c, t);
    let p2 = b.binary(BinaryOp::Pow, b2c, t);
    let one = b.constant(1.0);
    let c1 = b.sub(one, p1);
    let c2 = b.sub(one, p2);
    let mut new_p = Vec::new();
    let mut new_m = Vec::new();
    let mut new_v = Vec::new();
    for i in 0..params.len() {
        let (p, g, m, v) = (params[i], grads[i], ms[i], vs[i]);
        let sh = b.shape(p);
        let fb1 = b.fill(b1, &sh);
        let f1b1 = b.fill(1.0 - b1, &sh);
        let fb2 = b.fill(b2, &sh);
        let f1b2 = b.fill(1.0 - b2, &sh);
        let t1 = b.mul(fb1, m);
        let t2 = b.mul(f1b1, g);
        let m2 = b.add(t1, t2);
        let gg = b.mul(g, g);
        let t3 = b.mul(fb2, v);
        let t4 = b.mul(f1b2, gg);
        let v2 = b.add(t3, t4);
        let c1b = b.broadcast(c1, &sh);
        let c2b = b.broadcast(c2, &sh);
        let mhat = b.div(m2, c1b);
        let vhat = b.div(v2, c2b);
        let sq = b.unary(nnc::ir::UnaryOp::Sqrt, vhat);
        let fe = b.fill(eps, &sh);
        let den = b.add(sq, fe);
        let upd = b.div(mhat, den);
        let flr = b.fill(lr, &sh);
        let step = b.mul(flr, upd);
        new_p.push(b.sub(p, step));
        new_m.push(m2);
        new_v.push(v2);
    }
    let mut results = vec![loss];
    results.extend(new_p);
    results.extend(new_m);
    results.extend(new_v);
    b.finish(&results)
}

/// Inference: logits of the same MLP (params: x, weights and biases).
pub fn mlp_infer(batch: usize, sizes: &[usize]) -> Func {
    let mut b = Builder::new("mlp_infer");
    let (logits, _, _) = forward(&mut b, batch, sizes);
    b.finish(&[logits])
}

/// Deterministic data for every param of `f`: normal weights scaled by
/// 1/sqrt(fan-in), labels in 0..classes, zero moments, t = 1.
pub fn mlp_args(f: &Func, classes: usize) -> Vec<Vec<f32>> {
    f.params
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let ty = f.ty(p);
            let dims: Vec<usize> = ty.shape.iter().map(|d| d.known().unwrap()).collect();
            let n: usize = dims.iter().product();
            let name = &f.param_names[i];
            (0..n as u64)
                .map(|j| {
                    if ty.dtype == DType::I32 {
                        (nnc::ir::random_bits(i as u64, j) % classes as u64) as f32
                    } else if name == "t" {
                        1.0
                    } else if name.starts_with('m') || name.starts_with('v') {
                        0.0
                    } else {
                        let scale = if name.starts_with('w') {
                            1.0 / (dims[0] as f64).sqrt()
                        } else {
                            0.1
                        };
                        (nnc::ir::random_normal(100 + i as u64, j) * scale) as f32
                    }
                })
                .collect()
        })
        .collect()
}
