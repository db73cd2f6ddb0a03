//! `nnc export --onnx`: every example's model, exported with perturbed
//! weights (non-zero biases) and, where it trains with `standardize`, its
//! feature statistics, passes `onnx.checker.check_model(full_check=True)`
//! and agrees with nnc's prediction in ONNX Runtime on random inputs and on
//! real samples (`tests/export/check_onnx.py`). Missing Python packages are
//! a failure with the install command, never a skip.

use ndarray::{ArrayD, Axis, IxDyn};
use nnc::runtime::backend::BackendKind;
use nnc::runtime::split::Standardizer;
use nnc::runtime::train::{self, Weights};
use nnc::runtime::{checkpoint, load};
use nnc::sema::TrainPlan;
use safetensors::tensor::{Dtype, TensorView};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Panics with the install command unless `python` imports all `modules`.
pub fn require_python(modules: &[&str]) {
    let py = python();
    let probe = Command::new(&py).args(["-c", &format!("import {}", modules.join(", "))]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "the export tests need the Python packages {}: install them with `{py} -m pip install onnx onnxruntime torch safetensors` \
             (CI's .ci/run does this), or set PYTHON to an interpreter that has them\n{}",
            modules.join(", "),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run {py}: {e}"),
    }
}

pub fn nnc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run nnc")
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-export-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

pub fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "nn"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

pub fn plans(file: &Path) -> Vec<TrainPlan> {
    let text = std::fs::read_to_string(file).expect("read example");
    let c = nnc::driver::compile(&file.display().to_string(), &text);
    assert!(!c.has_errors(), "{}: {:?}", file.display(), c.diagnostics());
    c.analysis.plans
}

/// Deterministic normal-ish noise (a sum of uniforms) for inputs and weights.
pub fn noise(shape: &[usize], seed: u64, scale: f32) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n as u64)
        .map(|i| {
            let s: f64 = (0..4).map(|k| nnc::ir::random_uniform(seed, i * 4 + k)).sum();
            ((s - 2.0) * scale as f64) as f32
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("shape")
}

/// The initial weights with noise added, so biases are not all zero.
pub fn perturbed_weights(plan: &TrainPlan) -> Weights {
    let mut w = train::initial_weights(plan).expect("init");
    for (i, p) in w.params.iter_mut().enumerate() {
        *p = &*p + &noise(p.shape(), 7 + i as u64, 0.1);
    }
    w
}

/// The first `n` raw (not standardized) samples of the plan's data, and
/// the standardizer a run would fit, if it standardizes.
pub fn real_samples(plan: &TrainPlan, file: &Path, n: usize) -> (ArrayD<f32>, Option<Standardizer>) {
    let data_dir = crate::common::data_dir("");
    let base = file.parent().expect("dir");
    let mut raw = plan.clone();
    raw.settings.standardize = false;
    let splits = load::load_splits(&raw, base, Some(&data_dir)).expect("load data");
    let x = splits.train.x;
    let rows: Vec<usize> = (0..n.min(x.shape()[0])).collect();
    let x = x.select(Axis(0), &rows);
    let st = plan.settings.standardize.then(|| {
        load::load_splits(plan, base, Some(&data_dir))
            .expect("load data")
            .standardizer
            .expect("fitted")
    });
    (x, st)
}

fn le(a: &ArrayD<f32>) -> Vec<u8> {
    a.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn write_tensors(path: &Path, tensors: &[(String, ArrayD<f32>)]) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors.iter().map(|(n, a)| (n.clone(), a.shape().to_vec(), le(a))).collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("view")))
        .collect();
    let out = safetensors::tensor::serialize(views, None).expect("serialize");
    std::fs::write(path, out).expect("write tensors");
}

/// What `nnc predict` computes: standardize, then the compiled model.
fn nnc_predict(plan: &TrainPlan, model: &str, w: &Weights, st: Option<&Standardizer>, x: &ArrayD<f32>) -> ArrayD<f32> {
    let mut x = x.clone();
    if let Some(st) = st {
        st.apply(&mut x).expect("standardize");
    }
    train::predict_with(plan, Some(model), BackendKind::Jit { threads: 1 }, w, &x).expect("predict")
}

#[test]
fn every_example_exports_to_onnx_and_agrees_with_onnx_runtime() {
    require_python(&["onnx", "onnxruntime", "numpy", "safetensors"]);
    let dir = scratch("onnx");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export/check_onnx.py");
    let mut checked = 0;
    for file in examples() {
        for plan in plans(&file) {
            let stem = format!("{}-{}", file.file_stem().unwrap().to_string_lossy(), plan.model);
            let w = perturbed_weights(&plan);
            let (real, st) = real_samples(&plan, &file, 64);
            let weights = dir.join(format!("{stem}.safetensors"));
            checkpoint::save(&weights, &plan, &w, st.as_ref()).expect("save weights");
            let onnx = dir.join(format!("{stem}.onnx"));
            let f = file.display().to_string();
            // A block of steps without a model of its own (the GAN)
            // exports the model `sample =` calls, its generator.
            let model = match &plan.eval {
                Some(_) => plan.model.clone(),
                None => plan.sample_model.clone().expect("a GAN example samples its generator"),
            };
            let out = nnc(&[
                "export",
                &f,
                "--onnx",
                onnx.to_str().unwrap(),
                "--weights",
                weights.to_str().unwrap(),
                "--model",
                &model,
            ]);
            assert!(
                out.status.success(),
                "{stem}: export failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );

            let predict = plan.predict_of(Some(&model)).expect("a predict function");
            let input = predict.ty(predict.params[0]);
            let mut shape = vec![5];
            shape.extend(input.shape[1..].iter().map(|d| d.known().expect("known sample dims")));
            let random = match &plan.data.source {
                // Token ids: random ones inside the vocabulary.
                nnc::plan::DataSource::Text { vocab, .. } => {
                    noise(&shape, 3, 1.0).mapv(|v| ((v + 1.0) * 0.5 * *vocab as f32).floor().clamp(0.0, *vocab as f32 - 1.0))
                }
                _ => noise(&shape, 3, 1.0),
            };
            // The generator reads noise, not the data.
            let real = if plan.eval.is_some() { real } else { noise(&shape, 4, 1.0) };
            let mut cases = vec![];
            for (name, x) in [("random", random), ("real", real)] {
                let want = nnc_predict(&plan, &model, &w, st.as_ref(), &x);
                cases.push((format!("{name}/x"), x));
                cases.push((format!("{name}/want"), want));
            }
            let cases_path = dir.join(format!("{stem}.cases.safetensors"));
            write_tensors(&cases_path, &cases);
            let run = Command::new(python())
                .arg(&script)
                .arg(&onnx)
                .arg(&cases_path)
                .output()
                .expect("run python");
            let stdout = String::from_utf8_lossy(&run.stdout);
            assert!(
                run.status.success(),
                "{stem}: ONNX Runtime disagrees with nnc:\n{stdout}\n{}",
                String::from_utf8_lossy(&run.stderr)
            );
            assert_eq!(stdout.matches(" ok").count(), 2, "{stem}: {stdout}");
            eprint!("{stem}: {stdout}");
            checked += 1;
        }
    }
    assert!(checked >= 7, "only {checked} models exported");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A GAN's generator exports alone: the discriminator's weights, which its
/// graph never reads, are not in the file.
#[test]
fn a_gan_generator_exports_only_its_own_weights() {
    require_python(&["onnx"]);
    let dir = scratch("gan-weights");
    let out = dir.join("g.onnx");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gan_mnist.nn");
    let r = nnc(&["export", file.to_str().unwrap(), "--onnx", out.to_str().unwrap(), "--model", "G"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let listing = Command::new(python())
        .args([
            "-c",
            "import onnx, sys; print('\\n'.join(i.name for i in onnx.load(sys.argv[1]).graph.initializer))",
        ])
        .arg(&out)
        .output()
        .expect("run python");
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(names.lines().any(|n| n == "G.dense1.W"), "{names}");
    assert!(!names.lines().any(|n| n.starts_with("D.")), "{names}");
    let _ = std::fs::remove_dir_all(&dir);
}
