//! Training and evaluation modes, buffers and fresh randomness: dropout,
//! batch norm and layer norm checked against finite differences in
//! training mode and between the interpreter and compiled code; the
//! evaluation mode of a batch equals its samples one by one; masks are
//! fresh every step yet identical on a rerun and across a resume.

use crate::common::scalarize;
use ndarray::{ArrayD, Axis, IxDyn};
use nnc::autodiff::grad_func;
use nnc::driver;
use nnc::ir::{self, Func};
use nnc::plan::TrainPlan;
use nnc::runtime::backend::{runner, step_runner, BackendKind};
use nnc::runtime::load::load_splits;
use nnc::runtime::train::{initial_weights, train_with, EpochReport, Observer, TrainOptions, Weights};
use std::path::Path;

const INTERP: BackendKind = BackendKind::Interp;
const JIT: BackendKind = BackendKind::Jit { threads: 1 };

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn plans(name: &str, src: &str) -> Vec<TrainPlan> {
    let c = driver::compile(name, src);
    let msgs: Vec<String> = c.diagnostics().iter().map(|d| format!("{} {}", d.code, d.message)).collect();
    assert!(msgs.is_empty(), "{name}: {msgs:?}");
    c.analysis.plans.clone()
}

/// A model on the 8×8 digits with every layer this module is about.
const LAYERS: &str = "
model Net(x: [batch, 64]) -> [batch, 10] {
    let fc1 = Dense(64 -> 12)
    let bn = BatchNorm(12)
    let fc2 = Dense(12 -> 10)
    let ln = LayerNorm(10)
    return x |> fc1 |> bn |> tanh |> dropout(0.3) |> fc2 |> ln
}
train Net {
    data = csv(\"data/digits.csv\", label: 64, scale: 1/16)
    loss = cross_entropy(model(x), y)
    optimizer = adam(lr: 0.01)
    batch_size = 16
    validation = 0.2
    seed = 5
}
";

fn uniform(shape: &[usize], seed: u64, lo: f64, hi: f64) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(
        IxDyn(shape),
        (0..n as u64)
            .map(|i| (lo + (hi - lo) * ir::random_uniform(seed, i)) as f32)
            .collect(),
    )
    .unwrap()
}

fn batch(b: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    let x = uniform(&[b, 64], seed, 0.0, 1.0);
    let y = ArrayD::from_shape_vec(IxDyn(&[b]), (0..b).map(|i| ((i * 7 + 3) % 10) as f32).collect()).unwrap();
    (x, y)
}

fn scalar(v: f32) -> ArrayD<f32> {
    ArrayD::from_elem(IxDyn(&[]), v)
}

fn call(kind: BackendKind, f: &Func, args: &[&ArrayD<f32>]) -> Vec<ArrayD<f32>> {
    runner(kind, f).call(args).unwrap()
}

fn close(what: &str, a: &ArrayD<f32>, b: &ArrayD<f32>, tol: f32) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + x.abs()), "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn training_mode_gradients_match_finite_differences() {
    let plan = &plans("layers.nn", LAYERS)[0];
    let step = &plan.steps[0];
    assert_eq!(
        plan.params.iter().filter(|p| !p.trainable).count(),
        2,
        "BatchNorm's running mean and variance"
    );
    let b = 4;
    let f = step.loss.specialize(&|_| Some(b));
    // The loss alone, as a function of (x, y, key, params...).
    let loss = {
        let mut bld = ir::Builder::new("loss_only");
        let ps: Vec<_> = f.params.iter().map(|&p| bld.param("p", f.ty(p).clone())).collect();
        let l = bld.inline(&f, &ps)[0];
        bld.finish(&[l])
    };
    let w = initial_weights(plan).unwrap();
    let (x, y) = batch(b, 1);
    let mut args: Vec<ArrayD<f64>> = vec![x.mapv(f64::from), y.mapv(f64::from), ArrayD::from_elem(IxDyn(&[]), 3.0)];
    // Weights away from their initial zeros and ones, so every term matters.
    for (i, p) in w.params.iter().enumerate() {
        args.push(uniform(p.shape(), 40 + i as u64, -0.5, 0.5).mapv(f64::from) + p.mapv(f64::from));
    }
    let wrt: Vec<usize> = (3..loss.params.len()).filter(|&i| plan.params[i - 3].trainable).collect();
    let g = grad_func(&scalarize(&loss), &wrt);
    let sl = scalarize(&loss);
    let out = ir::interp::run(&g, &args).unwrap();
    let h = 1e-6;
    for (k, &i) in wrt.iter().enumerate() {
        for j in 0..args[i].len() {
            let mut plus = args.clone();
            let mut minus = args.clone();
            plus[i].as_slice_mut().unwrap()[j] += h;
            minus[i].as_slice_mut().unwrap()[j] -= h;
            let fp = ir::interp::run(&sl, &plus).unwrap()[0].iter().next().copied().unwrap();
            let fm = ir::interp::run(&sl, &minus).unwrap()[0].iter().next().copied().unwrap();
            let numeric = (fp - fm) / (2.0 * h);
            let a = out[1 + k].as_slice().unwrap()[j];
            assert!(
                (a - numeric).abs() <= 1e-5 * (1.0 + numeric.abs()),
                "d loss / d {}[{j}]: analytic {a} vs numeric {numeric}",
                plan.params[i - 3].name
            );
        }
    }
}

#[test]
fn the_interpreter_and_compiled_code_agree_in_both_modes() {
    let plan = &plans("layers.nn", LAYERS)[0];
    let w = initial_weights(plan).unwrap();
    let ev = plan.evaluation().unwrap();
    for b in [1, 5, 16] {
        let (x, y) = batch(b, 10 + b as u64);
        let key = scalar(7.0);
        let mut args = vec![&x, &y, &key];
        args.extend(w.params.iter());
        // Loss, output and the running statistics' new values: the same
        // dropout mask on both backends.
        let (want, got) = (call(INTERP, &plan.steps[0].loss, &args), call(JIT, &plan.steps[0].loss, &args));
        assert_eq!(want.len(), 4, "loss, output and two buffer writes");
        for (r, (a, b2)) in want.iter().zip(&got).enumerate() {
            close(&format!("training result {r}, batch {b}"), a, b2, 1e-4);
        }
        args.remove(2);
        let (want, got) = (call(INTERP, &ev.loss, &args), call(JIT, &ev.loss, &args));
        for (r, (a, b2)) in want.iter().zip(&got).enumerate() {
            close(&format!("evaluation result {r}, batch {b}"), a, b2, 1e-4);
        }
    }
}

/// Trains `steps` batches on the interpreter and returns the weights.
fn trained(plan: &TrainPlan, steps: usize) -> Weights {
    let splits = load_splits(plan, &root().join("examples"), None).unwrap();
    let mut o = TrainOptions::new(JIT);
    o.epochs = Some(1);
    o.limit = Some(steps * plan.settings.batch_size);
    train_with(plan, &splits, &o, &mut Quiet).unwrap().weights
}

struct Quiet;
impl Observer for Quiet {}

#[test]
fn evaluation_of_a_batch_equals_its_samples_one_by_one() {
    let plan = &plans("layers.nn", LAYERS)[0];
    let w = trained(plan, 20);
    // The running statistics moved away from their initial zeros and ones.
    let mean = &w.params[w.names.iter().position(|n| n == "bn.running_mean").unwrap()];
    assert!(mean.iter().any(|v| v.abs() > 1e-3), "running mean still zero: {mean:?}");
    let (x, _) = batch(8, 99);
    let predict = &plan.evaluation().unwrap().predict;
    let mut args = vec![&x];
    args.extend(w.params.iter());
    let whole = call(JIT, predict, &args).remove(0);
    for (i, row) in x.axis_iter(Axis(0)).enumerate() {
        let one = row.to_owned().insert_axis(Axis(0)).into_dyn();
        let mut args = vec![&one];
        args.extend(w.params.iter());
        let alone = call(JIT, predict, &args).remove(0);
        close(
            &format!("sample {i}"),
            &whole.index_axis(Axis(0), i).to_owned().insert_axis(Axis(0)).into_dyn(),
            &alone,
            1e-5,
        );
    }
}

#[test]
fn dropout_is_fresh_every_step_identical_on_reruns_and_absent_in_evaluation() {
    let src = |rate: &str| {
        format!(
            "model M(x: [batch, 64]) -> [batch, 10] {{\n let fc1 = Dense(64 -> 32, relu)\n let fc2 = Dense(32 -> 10)\n return x |> fc1 |> dropout({rate}) |> fc2\n}}\n\
             train M {{ data = csv(\"data/digits.csv\", label: 64, scale: 1/16)\n loss = cross_entropy(model(x), y)\n optimizer = sgd(lr: 0.1)\n seed = 2 }}\n"
        )
    };
    let with = &plans("dropout.nn", &src("0.5"))[0];
    let without = &plans("plain.nn", &src("0.0"))[0];
    let w = initial_weights(with).unwrap();
    let (x, y) = batch(6, 3);
    let out = |key: f32| {
        let k = scalar(key);
        let mut args = vec![&x, &y, &k];
        args.extend(w.params.iter());
        call(JIT, &with.steps[0].loss, &args).remove(1)
    };
    assert_eq!(out(1.0), out(1.0), "the same step draws the same mask");
    assert_ne!(out(1.0), out(2.0), "the next step draws another mask");
    // Evaluation is the identity: the same as a model without dropout.
    let mut args = vec![&x];
    args.extend(w.params.iter());
    let a = call(JIT, &with.evaluation().unwrap().predict, &args).remove(0);
    let b = call(JIT, &without.evaluation().unwrap().predict, &args).remove(0);
    assert_eq!(a, b);
    // Two runs with the same seed are bit-identical, dropout and all.
    assert_eq!(trained(with, 12), trained(with, 12));
}

/// Stops training (as Ctrl-C does) after `at` batches.
struct StopAt {
    at: usize,
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: usize,
}
impl Observer for StopAt {
    fn batch(&mut self, _p: &nnc::runtime::train::BatchProgress) {
        self.seen += 1;
        if self.seen == self.at {
            self.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    fn epoch(&mut self, _r: &EpochReport, _w: &Weights) -> Result<(), String> {
        Ok(())
    }
}

#[test]
fn a_run_interrupted_mid_epoch_resumes_bit_identically_with_its_buffers() {
    let plan = &plans("layers.nn", LAYERS)[0];
    let splits = load_splits(plan, &root().join("examples"), None).unwrap();
    let mut o = TrainOptions::new(JIT);
    o.epochs = Some(2);
    o.limit = Some(400);
    let straight = train_with(plan, &splits, &o, &mut Quiet).unwrap();
    assert!(!straight.interrupted);
    // 25 batches per epoch: stop in the middle of the second epoch.
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut stopped = o.clone();
    stopped.stop = Some(flag.clone());
    let first = train_with(plan, &splits, &stopped, &mut StopAt { at: 37, flag, seen: 0 }).unwrap();
    assert!(first.interrupted);
    assert_eq!((first.weights.step, first.weights.epoch), (37, 1));
    // Through the checkpoint file, as `--resume` reads it.
    let dir = std::env::temp_dir().join(format!("nnc-modes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("weights.safetensors");
    nnc::runtime::checkpoint::save(&path, plan, &first.weights, None).unwrap();
    let loaded = nnc::runtime::checkpoint::load(&path, plan, &initial_weights(plan).unwrap()).unwrap();
    assert_eq!(loaded, first.weights, "buffers and step survive the file");
    let mut resumed = o.clone();
    resumed.resume = Some((loaded, first.history.clone()));
    let end = train_with(plan, &splits, &resumed, &mut Quiet).unwrap();
    assert_eq!(end.weights, straight.weights, "weights, optimizer state and running statistics");
    std::fs::remove_dir_all(&dir).ok();
}

/// A tiny GAN on the 8×8 digits (as inline-shaped rows): two steps, each
/// training one model.
const GAN: &str = "
model G(z: [batch, 8]) -> [batch, 64] = z |> Dense(8 -> 32, relu) |> Dense(32 -> 64, sigmoid)
model D(x: [batch, 64]) -> [batch, 1] = x |> Dense(64 -> 16, relu) |> dropout(0.2) |> Dense(16 -> 1, sigmoid)
model Real(x: [batch, 64]) -> [batch, 1] = D(x)
train Real {
    data = csv(\"data/digits.csv\", label: 64, scale: 1/16)
    batch_size = 32
    seed = 1
    sample = G(noise([16, 8]))
    step discriminator with adam(lr: 2e-4, beta1: 0.5) on D {
        let fake = G(noise([batch, 8]))
        loss = binary_cross_entropy(D(x), 1) + binary_cross_entropy(D(fake), 0)
    }
    step generator with adam(lr: 2e-4, beta1: 0.5) on G {
        loss = binary_cross_entropy(D(G(noise([batch, 8]))), 1)
        every = 2
    }
}
";

#[test]
fn each_gan_step_updates_only_its_model() {
    let plan = &plans("gan.nn", GAN)[0];
    assert_eq!(plan.steps.len(), 2);
    assert_eq!(plan.steps[1].every, 2);
    let owner = |i: usize| plan.params[i].name.split('.').next().unwrap().to_string();
    for (k, model) in [(0, "D"), (1, "G")] {
        let trained: Vec<String> = plan.steps[k].updates.iter().map(|u| owner(u.param)).collect();
        assert!(
            !trained.is_empty() && trained.iter().all(|m| m == model),
            "step {k} trains {trained:?}"
        );
    }
    let w = initial_weights(plan).unwrap();
    let per = plan.states_per_step();
    let (x, y) = batch(32, 4);
    for backend in [INTERP, JIT] {
        for k in 0..2 {
            let f = nnc::runtime::step::step_function(plan, k).0;
            let mut weights = w.params.clone();
            let start: usize = per[..k].iter().sum();
            weights.extend(w.states[start..start + per[k]].iter().cloned());
            let before = weights.clone();
            let (loss, _) = step_runner(backend, &f)
                .step([x.view(), y.view(), scalar(1.0).view(), scalar(2e-4).view()], &mut weights)
                .unwrap();
            assert!(loss.is_finite());
            let model = if k == 0 { "D" } else { "G" };
            for (i, p) in plan.params.iter().enumerate() {
                if owner(i) == model {
                    assert_ne!(weights[i], before[i], "{backend:?}: step {k} left {} unchanged", p.name);
                } else {
                    assert_eq!(weights[i], before[i], "{backend:?}: step {k} changed {}", p.name);
                }
            }
        }
    }
    // A short run: a loss per step every epoch, samples from G.
    let splits = load_splits(plan, &root().join("examples"), None).unwrap();
    let mut o = TrainOptions::new(JIT);
    o.epochs = Some(2);
    let out = train_with(plan, &splits, &o, &mut Quiet).unwrap();
    let r = &out.history[1].train;
    assert!(r.get("discriminator_loss").is_some_and(f64::is_finite) && r.get("generator_loss").is_some_and(f64::is_finite));
    let samples = nnc::runtime::train::sample(plan, JIT, &out.weights).unwrap().unwrap();
    assert_eq!(samples.shape(), &[16, 64]);
    assert!(samples.iter().all(|v| (0.0..=1.0).contains(v)));
}

/// Regression: a dropout mask whose kernel is merged with another (relu's
/// backward pass reads the mask) must keep reading the step's key, so the
/// compiled step draws the interpreter's mask.
#[test]
fn a_merged_dropout_kernel_draws_the_interpreters_mask() {
    let src = "
model D(x: [batch, 3]) -> [batch, 5] = x |> Dense(3 -> 5) |> relu |> dropout(0.3)
train D {
    data = tensors(x: [[0, 1, 2], [1, 0, 1]], y: [[0, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    loss = mse(model(x), y)
    optimizer = sgd(lr: 0.1)
}
";
    let plan = &plans("merged.nn", src)[0];
    let w = initial_weights(plan).unwrap();
    let step_fn = nnc::runtime::step::step_function(plan, 0).0;
    let x = uniform(&[2, 3], 1, -1.0, 1.0);
    let y = uniform(&[2, 5], 2, 0.0, 1.0);
    let lr = ArrayD::from_elem(IxDyn(&[]), 0.1f32);
    for t in 1..=4 {
        let stepv = ArrayD::from_elem(IxDyn(&[]), t as f32);
        let mut ws = [w.params.clone(), w.params.clone()];
        let mut outs = vec![];
        for (kind, ws) in [INTERP, JIT].into_iter().zip(ws.iter_mut()) {
            outs.push(
                step_runner(kind, &step_fn)
                    .step([x.view(), y.view(), stepv.view(), lr.view()], ws)
                    .unwrap(),
            );
        }
        assert!(
            (outs[0].0 - outs[1].0).abs() <= 1e-6 * outs[0].0.abs().max(1.0),
            "step {t}: loss {} vs {}",
            outs[0].0,
            outs[1].0
        );
        // The same units dropped: zeros of the output in the same places.
        let zeros = |a: &ArrayD<f32>| a.iter().map(|v| *v == 0.0).collect::<Vec<_>>();
        assert_eq!(zeros(&outs[0].1), zeros(&outs[1].1), "step {t}: masks differ");
        for (a, b) in ws[0].iter().zip(&ws[1]) {
            assert!(a.iter().zip(b).all(|(p, q)| (p - q).abs() <= 1e-5), "step {t}: weights differ");
        }
    }
}
