//! The training loop's controls on small data: resuming from a checkpoint
//! continues bit-identically, early stopping keeps the best epoch, the
//! learning rate reaches the step as an input, checkpoints and histories
//! round-trip.

use nnc::driver;
use nnc::runtime::backend::BackendKind;
use nnc::runtime::checkpoint;
use nnc::runtime::history;
use nnc::runtime::load::load_splits;
use nnc::runtime::train::{initial_weights, train_with, EpochReport, Observer, Splits, TrainOptions, Weights};
use nnc::sema::TrainPlan;
use std::path::{Path, PathBuf};

const INTERP: BackendKind = BackendKind::Interp;

/// Keeps the weights at the end of every epoch.
#[derive(Default)]
struct Snapshots(Vec<Weights>);
impl Observer for Snapshots {
    fn epoch(&mut self, _r: &EpochReport, w: &Weights) -> Result<(), String> {
        self.0.push(w.clone());
        Ok(())
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The digits MLP with the `train` block's settings replaced by `settings`.
fn digits(settings: &str) -> (TrainPlan, Splits) {
    let src = format!(
        "model Digits(x: [batch, 64]) -> [batch, 10] = x |> Dense(64 -> 32, relu) |> Dense(32 -> 10)\n\
         train Digits {{\n data = csv(\"data/digits.csv\", label: 64, scale: 1/16)\n loss = cross_entropy(model(x), y)\n\
         validation = 0.2\n test = 0.2\n seed = 3\n {settings}\n}}\n"
    );
    let c = driver::compile("digits_test.nn", &src);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    let plan = c.analysis.plans[0].clone();
    let splits = load_splits(&plan, &root().join("examples"), None).unwrap();
    (plan, splits)
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-train-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn opts(epochs: usize) -> TrainOptions {
    let mut o = TrainOptions::new(INTERP);
    o.epochs = Some(epochs);
    o
}

#[test]
fn resuming_from_a_checkpoint_continues_bit_identically() {
    let (plan, s) = digits("optimizer = adam(lr: 0.01)\n batch_size = 64");
    let straight = train_with(&plan, &s, &opts(3), &mut Snapshots::default()).unwrap();
    // Stop after one epoch, save, load into fresh weights, continue.
    let first = train_with(&plan, &s, &opts(1), &mut Snapshots::default()).unwrap();
    let path = temp_dir("resume").join("weights.safetensors");
    checkpoint::save(&path, &plan, &first.weights, None).unwrap();
    let loaded = checkpoint::load(&path, &plan, &initial_weights(&plan).unwrap()).unwrap();
    assert_eq!(loaded, first.weights);
    let history = history::from_jsonl(&history::to_jsonl(&first.history)).unwrap();
    let mut o = opts(3);
    o.resume = Some((loaded, history));
    let resumed = train_with(&plan, &s, &o, &mut Snapshots::default()).unwrap();
    assert_eq!(resumed.weights, straight.weights);
    assert_eq!((resumed.weights.step, resumed.weights.epoch), (straight.weights.step, 3));
    let scores = |h: &[EpochReport]| {
        h.iter()
            .map(|r| (r.train.loss, r.validation.as_ref().map(|v| v.loss)))
            .collect::<Vec<_>>()
    };
    assert_eq!(scores(&resumed.history), scores(&straight.history));
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    // A rate this high overfits the small digits set quickly.
    let (plan, s) = digits("optimizer = adam(lr: 0.05)\n batch_size = 16\n early_stop = patience(2, monitor: val_loss)");
    let mut snaps = Snapshots::default();
    let o = train_with(&plan, &s, &opts(60), &mut snaps).unwrap();
    let msg = o.stopped_early.expect("stops before 60 epochs");
    let losses: Vec<f64> = o.history.iter().map(|r| r.validation.as_ref().unwrap().loss).collect();
    let best = (0..losses.len()).min_by(|&a, &b| losses[a].total_cmp(&losses[b])).unwrap();
    // Stopped exactly `patience` epochs after the best one, with its weights.
    assert_eq!(losses.len(), best + 1 + 2, "{losses:?}");
    assert_eq!(o.weights.params, snaps.0[best].params);
    assert!(msg.contains(&format!("epoch {}", best + 1)), "{msg}");
}

/// Keeps the weights early stopping reports as the best so far.
#[derive(Default)]
struct Best(Option<Weights>);
impl Observer for Best {
    fn best(&mut self, w: &Weights) -> Result<(), String> {
        self.0 = Some(w.clone());
        Ok(())
    }
}

/// A run resumed after its best epoch still ends on that epoch's weights
/// when they were saved, and says plainly when they were not.
#[test]
fn early_stopping_after_a_resume_keeps_the_best_epoch() {
    let (plan, s) = digits("optimizer = adam(lr: 0.05)\n batch_size = 16\n early_stop = patience(2, monitor: val_loss)");
    let straight = train_with(&plan, &s, &opts(60), &mut Snapshots::default()).unwrap();
    let stopped_at = straight.history.len();
    let best = stopped_at - 2;
    assert!(best >= 1, "the best epoch is {best}");
    // Stop one epoch after the best, then resume.
    let mut saved = Best::default();
    let first = train_with(&plan, &s, &opts(best + 1), &mut saved).unwrap();
    let saved = saved.0.expect("a best epoch was reported");
    assert_eq!(saved.epoch, best);
    let resume = |best_weights: Option<Weights>| {
        let mut o = opts(60);
        o.resume = Some((first.weights.clone(), first.history.clone()));
        o.resume_best = best_weights;
        train_with(&plan, &s, &o, &mut Snapshots::default()).unwrap()
    };
    let resumed = resume(Some(saved));
    assert_eq!(resumed.history.len(), stopped_at);
    assert_eq!(resumed.weights, straight.weights);
    let msg = resumed.stopped_early.unwrap();
    assert!(msg.contains(&format!("kept the weights of epoch {best}")), "{msg}");
    // Without the saved best, the last weights before the resume are kept,
    // and the message says which.
    let resumed = resume(None);
    assert_eq!(resumed.weights.params, first.weights.params);
    let msg = resumed.stopped_early.unwrap();
    assert!(
        msg.contains("were not saved") && msg.contains(&format!("kept those of epoch {}", best + 1)),
        "{msg}"
    );
}

#[test]
fn early_stopping_on_accuracy_waits_for_improvement() {
    let (plan, s) = digits("optimizer = adam(lr: 0.01)\n early_stop = patience(100, monitor: val_accuracy)");
    let o = train_with(&plan, &s, &opts(3), &mut Snapshots::default()).unwrap();
    assert!(o.stopped_early.is_none());
    assert_eq!(o.history.len(), 3);
}

#[test]
fn the_learning_rate_is_a_step_input_driven_by_the_schedule() {
    // After the first epoch the rate is 0: SGD must leave the weights alone.
    let (plan, s) = digits("optimizer = sgd(lr: 0.5)\n schedule = step_decay(every: 1, factor: 0)");
    let mut snaps = Snapshots::default();
    let o = train_with(&plan, &s, &opts(3), &mut snaps).unwrap();
    let lrs: Vec<f64> = o.history.iter().map(|r| r.lr).collect();
    assert_eq!(lrs, [0.5, 0.0, 0.0]);
    assert_ne!(snaps.0[0].params, initial_weights(&plan).unwrap().params);
    assert_eq!(snaps.0[0].params, snaps.0[2].params);
}

#[test]
fn warmup_scales_the_first_steps() {
    let (plan, _) = digits("optimizer = sgd(lr: 0.5)\n warmup = 10");
    assert_eq!(plan.settings.warmup, 10);
    assert_eq!(plan.steps[0].lr, Some(0.5));
    let (step, layout) = driver::training_step(&plan);
    assert_eq!(layout.inputs[..4], ["x", "y", "step", "lr"]);
    assert_eq!(step.params.len(), layout.inputs.len());
}

#[test]
fn a_schedule_needs_an_optimizer_with_lr() {
    let src = "model M(x: [batch, 2]) -> [batch, 1] = x |> Dense(2 -> 1)\n\
               optimizer fixed(step_size = 0.1) { param -= step_size * grad }\n\
               train M { data = tensors(x: [[0, 1]], y: [[1]])\n loss = mse(model(x), y)\n optimizer = fixed\n schedule = cosine() }\n";
    let c = driver::compile("no_lr.nn", src);
    let msgs: Vec<String> = c.diagnostics().iter().map(|d| format!("{} {}", d.code, d.message)).collect();
    assert!(msgs.iter().any(|m| m.starts_with("E0203") && m.contains("`lr`")), "{msgs:?}");
}

#[test]
fn checkpoints_use_readable_names_and_reject_other_models() {
    let (plan, _) = digits("optimizer = adam");
    let w = initial_weights(&plan).unwrap();
    let bytes = checkpoint::to_bytes(&plan.model, &w, None).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    assert!(names.contains(&"dense1.W") && names.contains(&"dense2.b"), "{names:?}");
    assert!(names.contains(&"optimizer/dense1.W/m"), "{names:?}");
    let dir = temp_dir("names");
    let path = dir.join("w.safetensors");
    checkpoint::save(&path, &plan, &w, None).unwrap();
    // Written through a temporary file that is renamed away.
    assert!(std::fs::read_dir(&dir)
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
    let mut other = plan.clone();
    other.model = "Other".into();
    let err = checkpoint::load(&path, &other, &w).unwrap_err().to_string();
    assert!(
        err.contains("error[E0704]") && err.contains("w.safetensors") && err.contains("Digits"),
        "{err}"
    );
    // A parameter of the wrong shape is named.
    let (wide, _) = digits("optimizer = adam");
    let mut bad = w.clone();
    bad.params[0] = ndarray::ArrayD::zeros(ndarray::IxDyn(&[3, 3]));
    checkpoint::save(&path, &wide, &bad, None).unwrap();
    let err = checkpoint::load(&path, &wide, &w).unwrap_err().to_string();
    assert!(
        err.contains("error[E0704]") && err.contains("dense1.W") && err.contains("[3, 3]"),
        "{err}"
    );
    let err = checkpoint::load(&dir.join("none.safetensors"), &plan, &w).unwrap_err().to_string();
    assert!(err.contains("error[E0607]") && err.contains("none.safetensors"), "{err}");
}

#[test]
fn history_round_trips_through_json_lines_and_csv() {
    let (plan, s) = digits("optimizer = adam(lr: 0.01)\n metrics = [accuracy, precision, f1]");
    let o = train_with(&plan, &s, &opts(2), &mut Snapshots::default()).unwrap();
    let back = history::from_jsonl(&history::to_jsonl(&o.history)).unwrap();
    for (a, b) in o.history.iter().zip(&back) {
        assert_eq!((a.epoch, a.lr, a.seconds), (b.epoch, b.lr, b.seconds));
        for (k, v) in a.train.all() {
            assert_eq!(b.train.get(&k), Some(v), "{k}");
        }
        let (va, vb) = (a.validation.as_ref().unwrap(), b.validation.as_ref().unwrap());
        for (k, v) in va.all() {
            assert_eq!(vb.get(&k), Some(v), "{k}");
        }
    }
    let csv = history::to_csv(&o.history);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,lr,seconds,train_loss,train_accuracy,train_precision,train_f1,val_loss,val_accuracy,val_precision,val_f1"
    );
    assert_eq!(lines.len(), 3);
    assert!(history::from_jsonl("{\"epoch\": 1,").is_err());
}

#[test]
fn a_csv_label_can_be_a_header_name() {
    let dir = temp_dir("named");
    let rows: String = (0..40)
        .map(|i| format!("{},{},{}\n", i % 2, f64::from(i) / 40.0, 1 - i % 2))
        .collect();
    std::fs::write(dir.join("named.csv"), format!("kind,size,other\n{rows}")).unwrap();
    let src = "model M(x: [batch, 2]) -> [batch, 2] = x |> Dense(2 -> 2)\n\
               train M { data = csv(\"named.csv\", label: \"kind\")\n loss = cross_entropy(model(x), y)\n optimizer = adam(lr: 0.1)\n epochs = 30 }\n";
    let c = driver::compile("named.nn", src);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    let plan = &c.analysis.plans[0];
    let s = load_splits(plan, &dir, None).unwrap();
    // The label column is `kind`, so the features are `size` and `other`,
    // and `other` (1 - kind) predicts it exactly.
    assert_eq!(s.train.x.shape(), [40, 2]);
    let o = train_with(plan, &s, &TrainOptions::new(INTERP), &mut Snapshots::default()).unwrap();
    assert_eq!(o.history.last().unwrap().train.accuracy, Some(1.0));
}

#[test]
fn standardize_uses_training_statistics_and_saves_them_with_the_weights() {
    let (plan, s) = digits("optimizer = adam(lr: 0.01)\n standardize = true");
    let st = s.standardizer.clone().expect("standardized");
    // Training features now have mean 0 (constant pixels stay 0).
    let n = s.train.len() as f32;
    for j in 0..64 {
        let mean: f32 = s.train.x.index_axis(ndarray::Axis(1), j).sum() / n;
        assert!(mean.abs() < 1e-4, "feature {j}: mean {mean}");
    }
    // Validation and test got the training statistics, not their own.
    let (_, raw) = digits("optimizer = adam(lr: 0.01)");
    let v0 = (raw.validation.as_ref().unwrap().x[[0, 10]] - st.mean[10]) / st.std[10];
    assert_eq!(s.validation.as_ref().unwrap().x[[0, 10]], v0);
    let path = temp_dir("standardize").join("w.safetensors");
    checkpoint::save(&path, &plan, &initial_weights(&plan).unwrap(), Some(&st)).unwrap();
    assert_eq!(checkpoint::load_standardizer(&path).unwrap(), Some(st));
    let o = train_with(&plan, &s, &opts(3), &mut Snapshots::default()).unwrap();
    assert!(o.history[2].validation.as_ref().unwrap().accuracy.unwrap() > 0.9);
}

/// A loss that becomes infinite or NaN stops training with a message naming
/// the epoch and step, and keeps the weights from before the step that
/// diverged: finite, on both backends (the compiled step updates weights in
/// place, so it must return before writing when its loss is not finite).
#[test]
fn divergence_stops_and_keeps_the_last_finite_weights() {
    let (plan, s) = digits("optimizer = sgd(lr: 1e30)\n batch_size = 32");
    let mut steps = vec![];
    for backend in [INTERP, BackendKind::Jit { threads: 1 }] {
        let mut o = opts(3);
        o.backend = backend;
        let out = train_with(&plan, &s, &o, &mut Snapshots::default()).unwrap();
        let msg = out
            .diverged
            .unwrap_or_else(|| panic!("{backend:?}: a learning rate of 1e30 must diverge"));
        assert!(
            msg.contains("at epoch 1, step ") && msg.contains("last finite weights are kept"),
            "{msg}"
        );
        let w = &out.weights;
        assert!(w.step >= 1, "{msg}");
        for t in w.params.iter().chain(&w.states) {
            assert!(t.iter().all(|v| v.is_finite()), "{backend:?}: {msg}");
        }
        steps.push(w.step);
    }
    assert_eq!(steps[0], steps[1], "both backends diverge at the same step");
}
