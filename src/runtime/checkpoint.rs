//! Weights on disk as safetensors: parameters under their readable names
//! (`fc1.W`), optimizer states under `optimizer/<param>/<state>`, and the
//! step and epoch in the header's metadata, so a run can resume exactly.

use super::split::Standardizer;
use super::train::Weights;
use crate::plan::TrainPlan;
use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

const STATE_PREFIX: &str = "optimizer/";

fn le_bytes(a: &ArrayD<f32>) -> Vec<u8> {
    a.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Feature statistics of `standardize = true`, stored beside the weights
/// because predictions on new samples need them.
const MEAN: &str = "data/mean";
const STD: &str = "data/std";

/// The safetensors bytes of `w`; `model` is recorded so a file is not
/// loaded into the wrong model by mistake.
pub fn to_bytes(model: &str, w: &Weights, st: Option<&Standardizer>) -> Result<Vec<u8>, String> {
    let mut params: Vec<(String, Vec<usize>, Vec<u8>)> = w
        .names
        .iter()
        .zip(&w.params)
        .chain(w.state_names.iter().zip(&w.states))
        .enumerate()
        .map(|(i, (n, a))| {
            let name = if i < w.names.len() {
                n.clone()
            } else {
                format!("{STATE_PREFIX}{n}")
            };
            (name, a.shape().to_vec(), le_bytes(a))
        })
        .collect();
    if let Some(st) = st {
        for (name, v) in [(MEAN, &st.mean), (STD, &st.std)] {
            params.push((name.to_string(), vec![v.len()], v.iter().flat_map(|x| x.to_le_bytes()).collect()));
        }
    }
    let views = params
        .iter()
        .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let meta = BTreeMap::from([
        ("format".to_string(), "nnc".to_string()),
        ("model".to_string(), model.to_string()),
        ("step".to_string(), w.step.to_string()),
        ("epoch".to_string(), w.epoch.to_string()),
    ]);
    let bytes = safetensors::tensor::serialize(views, None).map_err(|e| e.to_string())?;
    with_metadata(&bytes, &meta)
}

/// Insert `__metadata__` into the header of safetensors `bytes` that have
/// none, with its keys in sorted order. The crate serialises metadata from
/// a `HashMap`, in an order that differs between runs, so files holding
/// the same tensors differed byte for byte; tensors it already writes in a
/// fixed order (by dtype, then name).
fn with_metadata(bytes: &[u8], meta: &BTreeMap<String, String>) -> Result<Vec<u8>, String> {
    const LEN: usize = 8;
    let bad = || "internal error: unexpected safetensors header".to_string();
    let n = u64::from_le_bytes(bytes.get(..LEN).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
    let header = std::str::from_utf8(bytes.get(LEN..LEN + n).ok_or_else(bad)?).map_err(|_| bad())?;
    let rest = header.trim_end().strip_prefix('{').ok_or_else(bad)?;
    let meta_json = serde_json::to_string(meta).map_err(|e| e.to_string())?;
    let sep = if rest.trim_start().starts_with('}') { "" } else { "," };
    let mut new_header = format!("{{\"__metadata__\":{meta_json}{sep}{rest}").into_bytes();
    // The data that follows must start 8-byte aligned; pad with spaces as
    // the format allows.
    new_header.resize(new_header.len().next_multiple_of(LEN), b' ');
    let mut out = Vec::with_capacity(LEN + new_header.len() + bytes.len() - LEN - n);
    out.extend((new_header.len() as u64).to_le_bytes());
    out.extend(new_header);
    out.extend(&bytes[LEN + n..]);
    Ok(out)
}

/// Write `bytes` to `path` through a temporary file in the same directory
/// and a rename, so a crash mid-write never leaves a truncated file. A
/// failed write (a full disk) removes the temporary file: the old file, if
/// any, stays as it was and nothing partial is left behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        // Data on disk before the rename makes it visible.
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: cannot write: {e}", path.display()));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: cannot replace: {e}", path.display())
    })
}

pub fn save(path: &Path, plan: &TrainPlan, w: &Weights, st: Option<&Standardizer>) -> Result<(), String> {
    write_atomic(path, &to_bytes(&plan.model, w, st)?)
}

/// The feature statistics saved with the weights, if the run standardized.
pub fn load_standardizer(path: &Path) -> Result<Option<Standardizer>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format!("{}: not a safetensors file: {e}", path.display()))?;
    let get = |n: &str| {
        st.tensor(n).ok().map(|t| {
            t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<f32>>()
        })
    };
    Ok(match (get(MEAN), get(STD)) {
        (Some(mean), Some(std)) => {
            // New samples are divided by `std`: anything but positive finite
            // statistics of one length would feed NaN or inf to the model.
            if mean.len() != std.len() {
                return Err(format!("{}: `{MEAN}` and `{STD}` differ in length", path.display()));
            }
            if let Some(i) = mean.iter().position(|v| !v.is_finite()) {
                return Err(format!("{}: `{MEAN}` holds a non-finite value at index {i}", path.display()));
            }
            if let Some(i) = std.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(format!(
                    "{}: `{STD}` holds {} at index {i}; it must be positive",
                    path.display(),
                    std[i]
                ));
            }
            Some(Standardizer { mean, std })
        }
        _ => None,
    })
}

/// The name a PyTorch state dict written by `nnc export --pytorch` gives
/// the nnc parameter `name` of rank `rank` when its layer became a PyTorch
/// layer (`Dense` as `nn.Linear`): `fc1.W` is `fc1.weight`, stored
/// transposed (`true`), and `fc1.b` is `fc1.bias`. The one place this
/// naming is decided: the exporter writes with it, `load` reads with it.
pub fn pytorch_alias(name: &str, rank: usize) -> Option<(String, bool)> {
    let (layer, p) = name.rsplit_once('.')?;
    match (p, rank) {
        ("W", 2) => Some((format!("{layer}.weight"), true)),
        ("b", 1) => Some((format!("{layer}.bias"), false)),
        _ => None,
    }
}

/// How many mismatches a "does not fit" message lists.
const MISMATCHES_SHOWN: usize = 3;

/// Why a weights file cannot be used, with its diagnostic code: E0607 when
/// it cannot be read as safetensors, E0704 when it does not fit the model
/// (another model's, a tensor missing or of another shape, a non-finite
/// value). The message names the file, and for a shape both shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)
    }
}

impl LoadError {
    const UNREADABLE: &'static str = "E0607";
    const DOES_NOT_FIT: &'static str = "E0704";
}

/// Read weights saved for `plan`, by `nnc run` or as the state dict of a
/// module exported by `nnc export --pytorch` (names mapped with
/// [`pytorch_alias`], transposed weights transposed back). Every parameter
/// must be present with its declared shape, or the error lists the first
/// mismatches; optimizer states are optional (a weights-only file can still
/// be evaluated, and training from it starts the optimizer afresh).
pub fn load(path: &Path, plan: &TrainPlan, fresh: &Weights) -> Result<Weights, LoadError> {
    let fail = |code, m: String| LoadError {
        code,
        message: format!("{}: {m}", path.display()),
    };
    let unreadable = |m: String| fail(LoadError::UNREADABLE, m);
    let err = |m: String| fail(LoadError::DOES_NOT_FIT, m);
    let bytes = std::fs::read(path).map_err(|e| unreadable(format!("cannot read the weights file: {e}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| unreadable(format!("not a safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| unreadable(e.to_string()))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let owner = meta.get("model").or_else(|| meta.get("nnc_model"));
    if let Some(m) = owner.filter(|m| **m != plan.model) {
        return Err(err(format!("holds weights of model `{m}`, not `{}`", plan.model)));
    }
    // Ok(None): no tensor of that name; Err: present but unusable.
    let get = |name: &str, shape: &[usize]| -> Result<Option<ArrayD<f32>>, String> {
        let Ok(t) = st.tensor(name) else { return Ok(None) };
        if t.dtype() != Dtype::F32 {
            return Err(format!("`{name}` is {:?}, expected F32", t.dtype()));
        }
        if t.shape() != shape {
            return Err(format!(
                "`{name}` has shape {} in the file, but the model declares {}",
                shape_text(t.shape()),
                shape_text(shape)
            ));
        }
        let vals: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // nnc never saves a non-finite weight (a diverging step keeps the
        // last finite ones), so such a file is corrupt or foreign.
        if let Some(i) = vals.iter().position(|v| !v.is_finite()) {
            return Err(format!("`{name}` holds a non-finite value ({}) at index {i}", vals[i]));
        }
        Ok(Some(ArrayD::from_shape_vec(IxDyn(t.shape()), vals).map_err(|e| e.to_string())?))
    };
    let mut w = fresh.clone();
    let mut mismatches = vec![];
    for (name, p) in w.names.iter().zip(w.params.iter_mut()) {
        let found = match get(name, p.shape()) {
            Ok(None) => match pytorch_alias(name, p.ndim()) {
                Some((alias, transposed)) => {
                    let mut shape = p.shape().to_vec();
                    if transposed {
                        shape.reverse();
                    }
                    get(&alias, &shape).map(|a| a.map(|a| if transposed { a.t().as_standard_layout().into_owned() } else { a }))
                }
                None => Ok(None),
            },
            other => other,
        };
        match found {
            Ok(Some(a)) => *p = a,
            Ok(None) => mismatches.push(format!("no tensor `{name}` {}", shape_text(p.shape()))),
            Err(e) => mismatches.push(e),
        }
    }
    if !mismatches.is_empty() {
        let n = mismatches.len();
        let mut shown = mismatches[..n.min(MISMATCHES_SHOWN)].join("; ");
        if n > MISMATCHES_SHOWN {
            shown.push_str(&format!("; and {} more", n - MISMATCHES_SHOWN));
        }
        return Err(err(format!("does not fit model `{}`: {shown}", plan.model)));
    }
    let mut all_states = true;
    let mut states = vec![];
    for (name, s) in w.state_names.iter().zip(&w.states) {
        match get(&format!("{STATE_PREFIX}{name}"), s.shape()).map_err(&err)? {
            Some(v) => states.push(v),
            None => all_states = false,
        }
    }
    let num = |k: &str| meta.get(k).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    if all_states {
        w.states = states;
        w.step = num("step");
        w.epoch = num("epoch");
    }
    Ok(w)
}

/// A concrete shape as the language writes it: `[6, 1, 5, 5]`.
fn shape_text(dims: &[usize]) -> String {
    let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}
