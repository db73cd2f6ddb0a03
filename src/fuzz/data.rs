//! The `data` target: IDX, CSV and safetensors files — valid ones made
//! here, then truncated, corrupted, given extreme header values or extreme
//! numbers — through the loaders. A loader must return a dataset or an
//! error, never panic; and a dataset it returns must hold only values
//! compiled code may see: finite features, class ids in range, as many
//! labels as samples.

use super::rng::Rng;
use super::runner::Target;
use crate::runtime::{checkpoint, data, train};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

pub struct Data;

const IDX: u8 = 0;
const IDX_PAIR: u8 = 1;
const CSV: u8 = 2;
const SAFETENSORS: u8 = 3;

/// A small model whose weights files the safetensors inputs are.
const MODEL: &str = "model M(x: [batch, 3]) -> [batch, 2] = x |> Dense(3 -> 4, relu) |> Dense(4 -> 2)
train M {
    data = tensors(x: [[1, 2, 3]], y: [[0, 1]])
    loss = mse(model(x), y)
    optimizer = adam()
    standardize = true
}
";

fn plan() -> &'static (crate::sema::TrainPlan, train::Weights) {
    static PLAN: OnceLock<(crate::sema::TrainPlan, train::Weights)> = OnceLock::new();
    PLAN.get_or_init(|| {
        let c = crate::driver::compile("fuzz-data.nn", MODEL);
        let p = c.analysis.plans.into_iter().next().expect("the fuzz model checks");
        let w = train::initial_weights(&p).expect("initial weights");
        (p, w)
    })
}

fn idx(rng: &mut Rng, dims: &[u32]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    let n: u32 = dims.iter().product();
    b.extend((0..n.min(1 << 16)).map(|_| rng.below(256) as u8));
    b
}

const CSV_FIELDS: &[&str] = &[
    "0",
    "1",
    "2",
    "0.5",
    "-3",
    "1e38",
    "3e38",
    "1e39",
    "-1e39",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "16777216",
    "16777217",
    "65535",
    "65536",
    "4294967296",
    "-0",
    "1.5",
    "",
    " ",
    "x",
    "\"a\"",
    "1e-46",
    "0x10",
    "١",
];

fn csv(rng: &mut Rng) -> Vec<u8> {
    let cols = rng.range(1, 6);
    let rows = rng.range(0, 8);
    let mut s = String::new();
    if rng.one_in(3) {
        s.push_str(&(0..cols).map(|c| format!("c{c}")).collect::<Vec<_>>().join(","));
        s.push('\n');
    }
    for _ in 0..rows {
        let n = if rng.one_in(10) { rng.range(1, 7) } else { cols };
        let fields: Vec<String> = (0..n)
            .map(|_| {
                if rng.one_in(6) {
                    rng.pick(CSV_FIELDS).to_string()
                } else {
                    rng.below(4).to_string()
                }
            })
            .collect();
        s.push_str(&fields.join(","));
        s.push_str(if rng.one_in(8) { "\r\n" } else { "\n" });
    }
    s.into_bytes()
}

fn safetensors(rng: &mut Rng) -> Vec<u8> {
    let (p, w) = plan();
    let mut w = w.clone();
    if rng.one_in(4) {
        // Values a corrupt or foreign file might hold.
        let v = *rng.pick(&[f32::NAN, f32::INFINITY, f32::MAX, -0.0, 1e-45]);
        if let Some(a) = w.params.first_mut() {
            if let Some(x) = a.iter_mut().next() {
                *x = v;
            }
        }
    }
    let st = crate::runtime::split::Standardizer {
        mean: vec![0.0, 1.0, f32::from(rng.one_in(5)) * f32::NAN],
        std: vec![1.0, if rng.one_in(5) { 0.0 } else { 2.0 }, 1.0],
    };
    checkpoint::to_bytes(&p.model, &w, Some(&st)).expect("serialise")
}

/// Corrupt `b`: truncate, flip bytes, overwrite a header word with an
/// extreme value, append garbage, or gzip it.
fn corrupt(rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.below(3) {
        let n = b.len();
        match rng.below(6) {
            0 => b.truncate(rng.below(n + 1)),
            1 if n > 0 => {
                let i = rng.below(n.min(64));
                b[i] = rng.below(256) as u8;
            }
            2 if n >= 8 => {
                let i = rng.below((n - 4).min(40));
                let v = *rng.pick(&[0u32, 1, 0xFFFF_FFFF, 0x8000_0000, 1 << 24, 60000]);
                b[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            3 => b.extend((0..rng.range(1, 64)).map(|_| rng.below(256) as u8)),
            4 if n > 0 => {
                let i = rng.below(n);
                b.insert(i, *rng.pick(&[b'\n', b',', 0xff, 0, b'"', b'-']));
            }
            _ => {}
        }
    }
    if rng.one_in(6) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(&b);
        b = gz.finish().unwrap_or_default();
        if rng.one_in(3) {
            let keep = rng.below(b.len() + 1);
            b.truncate(keep);
        }
    }
    b
}

impl Target for Data {
    fn name(&self) -> &'static str {
        "data"
    }
    fn extension(&self, _: &[u8]) -> &'static str {
        "data"
    }
    fn generate(&self, rng: &mut Rng, _index: u64) -> Vec<u8> {
        let kind = rng.below(4) as u8;
        let mut out = vec![kind];
        match kind {
            IDX => {
                let dims: Vec<u32> = (0..rng.range(1, 3)).map(|_| rng.range(0, 6) as u32).collect();
                let b = idx(rng, &dims);
                out.extend(corrupt(rng, b));
            }
            IDX_PAIR => {
                let n = rng.range(0, 5) as u32;
                let images = idx(rng, &[n, 2, 2]);
                let images = corrupt(rng, images);
                let labels = idx(rng, &[n]);
                let labels = corrupt(rng, labels);
                out.extend((images.len() as u32).to_le_bytes());
                out.extend(images);
                out.extend(labels);
            }
            CSV => {
                let b = csv(rng);
                out.extend(corrupt(rng, b));
            }
            SAFETENSORS.. => {
                let b = safetensors(rng);
                out.extend(corrupt(rng, b));
            }
        }
        out
    }
    fn check(&self, input: &[u8]) {
        let Some((&kind, body)) = input.split_first() else { return };
        let dir = scratch();
        let file = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).expect("write a scratch file");
            p
        };
        match kind {
            IDX => {
                if let Ok(a) = data::read_idx(&file("a.idx", body)) {
                    assert!(a.ndim() >= 1);
                }
            }
            IDX_PAIR => {
                let n = body.get(..4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
                let rest = body.get(4..).unwrap_or(&[]);
                let (images, labels) = rest.split_at(n.min(rest.len()));
                let (pi, pl) = (file("images.idx", images), file("labels.idx", labels));
                if let Ok(ds) = data::load_idx_pair(&pi, &pl) {
                    check_dataset(&ds);
                }
                let _ = data::idx_header(&pi);
            }
            CSV => {
                let p = file("data.csv", body);
                let opts = data::CsvOptions {
                    scale: Some(10.0),
                    ..Default::default()
                };
                for o in [data::CsvOptions::default(), opts] {
                    if let Ok(ds) = data::load_csv(&p, &o) {
                        check_dataset(&ds);
                        let cols = data::csv_feature_count(&p, &o).expect("the header of a file that loads reads");
                        assert_eq!(cols, ds.feature_len(), "feature count from the first row");
                    }
                }
            }
            _ => {
                let p = file("weights.safetensors", body);
                let (plan, fresh) = plan();
                if let Ok(w) = checkpoint::load(&p, plan, fresh) {
                    for (n, a) in w.names.iter().zip(&w.params) {
                        assert!(a.iter().all(|v| v.is_finite()), "weights `{n}` loaded with a non-finite value");
                    }
                }
                if let Ok(Some(st)) = checkpoint::load_standardizer(&p) {
                    assert!(st.mean.iter().all(|v| v.is_finite()), "a non-finite mean was loaded");
                    assert!(
                        st.std.iter().all(|v| v.is_finite() && *v > 0.0),
                        "a standard deviation <= 0 was loaded"
                    );
                }
            }
        }
    }
}

/// What compiled code may assume of a loaded dataset.
fn check_dataset(ds: &data::Dataset) {
    assert_eq!(ds.x.shape()[0], ds.y.shape()[0], "as many labels as samples");
    assert!(ds.x.iter().all(|v| v.is_finite()), "a non-finite feature was loaded");
    if ds.y_is_class {
        for &l in ds.y.iter() {
            assert!(
                l >= 0.0 && l.fract() == 0.0 && l <= data::MAX_CLASS_ID as f32,
                "label {l} is not a class id"
            );
        }
        let k = ds.num_classes.unwrap_or(0);
        assert!(ds.y.iter().all(|&l| (l as usize) < k), "a label at or above num_classes {k}");
    }
}

/// A directory for this thread's scratch files.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-fuzz-data-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}
