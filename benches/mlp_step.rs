//! `cargo bench --bench mlp_step`: the MLP 784-128-64-10 training step
//! (ReLU, softmax cross-entropy with one_hot labels, Adam) built in IR with
//! the Builder and autodiff, JIT-compiled, timed per batch size and thread
//! count; plus inference, compile time and the interpreter as a baseline in
//! the same process (so figures can be given as ratios).

mod common {
    pub mod mlp;
}

use common::mlp::{mlp_args, mlp_infer, mlp_step};
use nnc::codegen::{Compiled, Options};
use nnc::ir::Func;
use std::time::Instant;

const SIZES: [usize; 4] = [784, 128, 64, 10];

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn out_bufs(f: &Func) -> Vec<Vec<f32>> {
    f.results
        .iter()
        .map(|&r| vec![0.0; f.ty(r).shape.iter().map(|d| d.known().unwrap()).product()])
        .collect()
}

/// Median ms per call over `reps` timed batches of calls, after warm-up;
/// each batch runs long enough (~20 ms) to swamp timer noise.
fn time_ms(c: &mut Compiled, f: &Func, reps: usize) -> f64 {
    let args = mlp_args(f, SIZES[3]);
    let arg_refs: Vec<&[f32]> = args.iter().map(|v| v.as_slice()).collect();
    let mut outs = out_bufs(f);
    let mut run = |n: usize| {
        let mut out_refs: Vec<&mut [f32]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
        let t = Instant::now();
        for _ in 0..n {
            c.run(&arg_refs, &mut out_refs).unwrap();
        }
        t.elapsed().as_secs_f64() * 1e3 / n as f64
    };
    let one = run(3);
    let n = ((20.0 / one.max(1e-3)) as usize).clamp(1, 10_000);
    run(n);
    median((0..reps).map(|_| run(n)).collect())
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let reps = 7;
    println!("MLP 784-128-64-10, ReLU, softmax xent (one_hot), Adam; median of {reps} after warm-up");

    if std::env::var_os("NNC_DUMP").is_some() {
        let f = mlp_step(32, &SIZES);
        let c = Compiled::compile(&f, &Options::threads(1)).unwrap();
        println!("{}", nnc::ir::print_func(&f));
        println!("{}", c.kernels_text());
        println!("{}", c.clif_text());
        return;
    }
    if want("compile") {
        let f = mlp_step(128, &SIZES);
        let times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let c = Compiled::compile(&f, &Options::threads(1)).unwrap();
                let ms = t.elapsed().as_secs_f64() * 1e3;
                drop(c);
                ms
            })
            .collect();
        println!("compile (step, batch 128): {:.2} ms", median(times));
    }

    for threads in [1, 2] {
        for batch in [32, 128, 1024] {
            if !want(&format!("step{batch}t{threads}")) {
                continue;
            }
            let f = mlp_step(batch, &SIZES);
            let ms = time_inplace_ms(&f, threads, reps);
            let gflops = step_flops(batch) / ms / 1e6;
            println!("train step batch {batch:4} threads {threads}: {ms:.3} ms  ({gflops:.1} GFLOP/s)");
        }
    }

    if want("infer") {
        for threads in [1, 2] {
            let f = mlp_infer(1024, &SIZES);
            let mut c = Compiled::compile(&f, &Options::threads(threads)).unwrap();
            let ms = time_ms(&mut c, &f, reps);
            println!("inference batch 1024 threads {threads}: {ms:.3} ms");
        }
    }

    if want("interp") {
        let f = mlp_step(128, &SIZES);
        let args: Vec<ndarray::ArrayD<f64>> = mlp_args(&f, SIZES[3])
            .into_iter()
            .zip(&f.params)
            .map(|(v, &p)| {
                let dims: Vec<usize> = f.ty(p).shape.iter().map(|d| d.known().unwrap()).collect();
                ndarray::ArrayD::from_shape_vec(dims, v.into_iter().map(f64::from).collect()).unwrap()
            })
            .collect();
        nnc::ir::interp::run(&f, &args).unwrap();
        let times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                nnc::ir::interp::run(&f, &args).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let interp = median(times);
        let mut c = Compiled::compile(&f, &Options::threads(1)).unwrap();
        let jit = time_ms(&mut c, &f, reps);
        println!(
            "interpreter (f64) train step batch 128: {interp:.3} ms; JIT 1 thread {jit:.3} ms = {:.0}x faster",
            interp / jit
        );
    }
}

/// Multiply-adds x2 of the step: forward (3 products), backward (weight
/// gradients for all layers, input gradients for layers 2 and 3).
fn step_flops(batch: usize) -> f64 {
    let mut macs = 0;
    for (i, w) in SIZES.windows(2).enumerate() {
        let layer = batch * w[0] * w[1];
        macs += layer * 2; // forward + weight gradient
        if i > 0 {
            macs += layer; // input gradient
        }
    }
    2.0 * macs as f64
}

/// Like `time_ms`, with parameters and Adam moments updated in their own
/// buffers (`compile_inplace`, guarded by the loss), as `nnc run` runs the
/// step.
fn time_inplace_ms(f: &Func, threads: usize, reps: usize) -> f64 {
    let n_params = 2 * (SIZES.len() - 1);
    // Params: x, weights/biases, y, m..., v..., t; results: loss, new
    // weights/biases, new m, new v.
    let state_arg = |i: usize| if i < n_params { 1 + i } else { 2 + i };
    let pairs: Vec<(usize, usize)> = (0..3 * n_params).map(|i| (state_arg(i), 1 + i)).collect();
    let mut c = Compiled::compile_inplace(f, &Options::threads(threads), &pairs, Some(0)).unwrap();
    let mut args = mlp_args(f, SIZES[3]);
    let mut state: Vec<Vec<f32>> = pairs.iter().map(|&(p, _)| std::mem::take(&mut args[p])).collect();
    let inputs: Vec<Vec<f32>> = args
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !pairs.iter().any(|&(p, _)| p == *i))
        .map(|(_, v)| v)
        .collect();
    let in_refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
    let mut loss = vec![0.0f32];
    let mut run = |n: usize| {
        let mut st: Vec<&mut [f32]> = state.iter_mut().map(|v| v.as_mut_slice()).collect();
        let t = Instant::now();
        for _ in 0..n {
            c.run_inplace(&in_refs, &mut st, &mut [&mut loss]).unwrap();
        }
        t.elapsed().as_secs_f64() * 1e3 / n as f64
    };
    let one = run(3);
    let n = ((20.0 / one.max(1e-3)) as usize).clamp(1, 10_000);
    run(n);
    median((0..reps).map(|_| run(n)).collect())
}
