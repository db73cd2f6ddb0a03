//! A PyTorch project from a `.nn` file: `model.py` (the model as an
//! `nn.Module`, translated from the syntax tree by `model`), `train.py`
//! (the `train` block: data, splits, loss, optimizer, schedule, metrics,
//! DistributedDataParallel under torchrun), two fixed helper modules
//! (`nnc_ops.py`: the primitives; `nnc_data.py`: nnc's data handling and
//! seeded splits), and the weights as a safetensors state dict.

pub mod model;

use super::Unsupported;
use crate::base::Span;
use crate::ir::DType;
use crate::runtime::checkpoint;
use crate::runtime::split::Standardizer;
use crate::runtime::train::Weights;
use crate::sema::scope::{Global, Globals};
use crate::sema::value::LayerRecord;
use crate::sema::{CsvLabel, DataSource, EarlyStop, Schedule, TrainPlan};
use crate::syntax::ast::{Expr, ExprKind, TrainDecl};
use model::{py_name, Translator};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::fmt::Write;

pub const NNC_OPS: &str = include_str!("nnc_ops.py");
pub const NNC_DATA: &str = include_str!("nnc_data.py");
const TRAIN_MAIN: &str = include_str!("train_main.py");
/// `start_processes()`, shared by both training loops.
const TRAIN_PROCESSES: &str = include_str!("train_processes.py");

/// What the exporter needs from a checked file.
pub struct Source<'a> {
    pub globals: &'a Globals,
    /// The layers nnc built for the exported model (names and call spans).
    pub layers: &'a [LayerRecord],
    /// Whether a declaration's span is in the stdlib.
    pub is_stdlib: &'a dyn Fn(Span) -> bool,
    /// The `.nn` file's name, for comments.
    pub file_name: String,
    /// The directory relative dataset paths are looked up in first.
    pub source_dir: String,
}

/// The files of the project: (file name, contents).
pub type Files = Vec<(String, Vec<u8>)>;

/// The stdlib optimizers and their `torch.optim` equivalents (the same
/// update rule): the constructor, with `{name}` standing for the value of
/// the `.nn` hyperparameter `name`.
const OPTIMIZERS: &[(&str, &str)] = &[
    ("sgd", "torch.optim.SGD(params, lr=LR)"),
    ("sgd_momentum", "torch.optim.SGD(params, lr=LR, momentum={momentum})"),
    ("nesterov", "torch.optim.SGD(params, lr=LR, momentum={momentum}, nesterov=True)"),
    ("adagrad", "torch.optim.Adagrad(params, lr=LR, eps={eps})"),
    ("rmsprop", "torch.optim.RMSprop(params, lr=LR, alpha={rho}, eps={eps})"),
    ("adam", "torch.optim.Adam(params, lr=LR, betas=({beta1}, {beta2}), eps={eps})"),
    (
        "adamw",
        "torch.optim.AdamW(params, lr=LR, betas=({beta1}, {beta2}), eps={eps}, weight_decay={weight_decay})",
    ),
];

fn field<'t>(t: &'t TrainDecl, name: &str) -> Option<&'t Expr> {
    t.fields.iter().find(|f| f.name.name == name).map(|f| &f.value)
}

/// `make_optimizer(params)`: the train block's optimizer as `torch.optim`.
fn optimizer(src: &Source, tr: &mut Translator, call: &Expr, def: &str) -> Result<String, Unsupported> {
    let (name, args) = match &call.kind {
        ExprKind::Call { callee, args } => match &callee.kind {
            ExprKind::Name(id) => (id.name.clone(), args.as_slice()),
            _ => return Err(Unsupported::new("an optimizer that is not a named call".into())),
        },
        ExprKind::Name(id) => (id.name.clone(), &[][..]),
        _ => return Err(Unsupported::new("an optimizer that is not a named call".into())),
    };
    let Some(Global::Optimizer(decl)) = src.globals.get(&name) else {
        return Err(Unsupported::new(format!("the optimizer `{name}`")));
    };
    let template = OPTIMIZERS
        .iter()
        .find(|(n, _)| *n == name)
        .filter(|_| src.globals.def_span(&name).is_some_and(|s| (src.is_stdlib)(s)))
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            Unsupported::new(format!(
                "the user-defined optimizer `{name}` (the stdlib's {} are translated)",
                OPTIMIZERS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ))
            .with_op(&name)
        })?;
    // Hyperparameters: the declaration's defaults, then the call's arguments.
    let mut values: HashMap<String, String> = HashMap::new();
    let empty = Translator::new(src.globals, &[], src.is_stdlib);
    let mut empty = empty;
    for p in &decl.params {
        if let Some(d) = &p.default {
            values.insert(p.name.name.clone(), model::loss_expr(&mut empty, d)?);
        }
    }
    for (i, a) in args.iter().enumerate() {
        let key = match &a.name {
            Some(n) => n.name.clone(),
            None => decl.params.get(i).map(|p| p.name.name.clone()).unwrap_or_default(),
        };
        values.insert(key, model::loss_expr(tr, &a.value)?);
    }
    let mut text = template.to_string();
    for (k, v) in &values {
        text = text.replace(&format!("{{{k}}}"), v);
    }
    Ok(format!(
        "def {def}(params):\n    \"\"\"optimizer = {name}(...): the same update rule as nnc's stdlib `{name}`.\"\"\"\n    return {text}\n"
    ))
}

fn py_str(s: &str) -> String {
    format!("{s:?}")
}

/// `load_data(data_dir)`: the data source and nnc's splits.
fn load_data(plan: &TrainPlan) -> String {
    let resolve = |p: &str| format!("nnc_data.resolve({}, SOURCE_DIR, data_dir)", py_str(p));
    let (read, test) = match &plan.data.source {
        DataSource::Mnist { dir } => (format!("all_xy, test_xy = nnc_data.mnist({})", resolve(dir)), ""),
        DataSource::Csv { path, label, scale, .. } => {
            let label = match label {
                CsvLabel::Index(i) => i.to_string(),
                CsvLabel::Name(n) => py_str(n),
            };
            let scale = scale.map_or("None".to_string(), |s| format!("{s:?}"));
            (
                format!("all_xy = nnc_data.csv({}, label={label}, scale={scale})", resolve(path)),
                "test_xy = None\n    ",
            )
        }
        DataSource::Idx { images, labels } => (
            format!("all_xy = nnc_data.idx_pair({}, {})", resolve(images), resolve(labels)),
            "test_xy = None\n    ",
        ),
        DataSource::Text { path, steps, vocab } => (
            format!("all_xy = nnc_data.text({}, {steps}, {vocab})", resolve(path)),
            "test_xy = None\n    ",
        ),
        DataSource::Inline { x, x_shape, y } => {
            let rows = |m: &Vec<Vec<f64>>| {
                let r: Vec<String> = m
                    .iter()
                    .map(|row| format!("[{}]", row.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")))
                    .collect();
                format!("[{}]", r.join(", "))
            };
            (
                format!(
                    "all_xy = (np.array({}, dtype=np.float32).reshape(-1, {}), np.array({}, dtype=np.float32))",
                    rows(x),
                    x_shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
                    rows(y)
                ),
                "test_xy = None\n    ",
            )
        }
    };
    format!(
        "def load_data(data_dir):\n    \"\"\"The training, validation and test splits, as `nnc run` makes them.\"\"\"\n    {read}\n    {test}return nnc_data.splits(all_xy, test_xy, INPUT_SHAPE, VALIDATION, TEST, SEED, STANDARDIZE)\n"
    )
}

fn schedule(s: &Schedule) -> String {
    match s {
        Schedule::Constant => "{\"kind\": \"constant\"}".into(),
        Schedule::StepDecay { every, factor } => format!("{{\"kind\": \"step_decay\", \"every\": {every}, \"factor\": {factor:?}}}"),
        Schedule::Exponential { rate } => format!("{{\"kind\": \"exponential\", \"rate\": {rate:?}}}"),
        Schedule::Cosine { min_lr } => format!("{{\"kind\": \"cosine\", \"min_lr\": {min_lr:?}}}"),
        Schedule::Cyclic { min_lr, period } => format!("{{\"kind\": \"cyclic\", \"min_lr\": {min_lr:?}, \"period\": {period}}}"),
        Schedule::OneCycle { max_lr } => format!("{{\"kind\": \"one_cycle\", \"max_lr\": {max_lr:?}}}"),
    }
}

fn early_stop(e: &Option<EarlyStop>) -> String {
    match e {
        Some(e) => format!("{{\"monitor\": {}, \"patience\": {}}}", py_str(&e.monitor), e.patience),
        None => "None".into(),
    }
}

/// The layers exported as PyTorch layers (whose `W` is `weight`,
/// transposed): every instance of a stdlib layer in `TORCH_LAYERS`, however
/// deeply nested (`encoder.blocks.0.ff.fc1`).
fn torch_layers(src: &Source, tr: &Translator) -> Vec<String> {
    let std_torch = |kind: &str| model::is_torch_layer(kind) && src.globals.def_span(kind).is_some_and(|s| (src.is_stdlib)(s));
    let mut names: Vec<String> = src.layers.iter().filter(|r| std_torch(&r.kind)).map(|r| r.name.clone()).collect();
    names.extend(tr.torch_layers.iter().cloned());
    names
}

/// The PyTorch name of each nnc parameter, and whether its tensor is
/// transposed: a stdlib layer exported as a PyTorch layer uses PyTorch's
/// names (`fc1.weight`), every other parameter keeps its own.
pub fn torch_names(plan: &TrainPlan, torch_layers: &[String]) -> Vec<(String, String, bool)> {
    plan.params
        .iter()
        .map(|p| {
            let layer = p.name.rsplit_once('.').map_or("", |(l, _)| l);
            let alias = torch_layers
                .iter()
                .any(|l| l == layer)
                .then(|| checkpoint::pytorch_alias(&p.name, p.ty.rank()))
                .flatten();
            match alias {
                Some((t, transposed)) => (p.name.clone(), t, transposed),
                None => (p.name.clone(), p.name.clone(), false),
            }
        })
        .collect()
}

/// The weights as the state dict of the exported module, in safetensors.
fn state_dict(plan: &TrainPlan, names: &[(String, String, bool)], w: &Weights, st: Option<&Standardizer>) -> Result<Vec<u8>, Unsupported> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
    for (nnc, torch, transposed) in names {
        let Some(k) = w.names.iter().position(|n| n == nnc) else {
            return Err(Unsupported::new(format!("the weights have no tensor `{nnc}`")));
        };
        let a = &w.params[k];
        let a = if *transposed {
            a.t().as_standard_layout().into_owned()
        } else {
            a.as_standard_layout().into_owned()
        };
        tensors.push((torch.clone(), a.shape().to_vec(), a.iter().flat_map(|v| v.to_le_bytes()).collect()));
    }
    if let Some(st) = st {
        for (n, v) in [("data/mean", &st.mean), ("data/std", &st.std)] {
            tensors.push((n.into(), vec![v.len()], v.iter().flat_map(|x| x.to_le_bytes()).collect()));
        }
    }
    let views = tensors
        .iter()
        .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Unsupported::new(e.to_string()))?;
    let meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("nnc_model".to_string(), plan.model.clone()),
    ]);
    safetensors::tensor::serialize(views, Some(meta)).map_err(|e| Unsupported::new(e.to_string()))
}

const MODEL_HEADER: &str = "import torch
import torch.nn.functional as F
from torch import nn

import nnc_ops as ops
";

/// The `train` block's settings that every exported `train.py` starts with.
fn train_settings(src: &Source, plan: &TrainPlan, input_shape: &[String], lr: f64) -> String {
    let s = &plan.settings;
    let metrics: Vec<String> = s.metrics.iter().map(|m| py_str(m)).collect();
    format!(
        r#"MODEL = {model_str}
SOURCE_DIR = {source_dir}
EPOCHS = {epochs}
BATCH_SIZE = {batch}
VALIDATION = {validation:?}
TEST = {test:?}
SEED = {seed}
STANDARDIZE = {standardize}
METRICS = [{metrics}]
LR = {lr:?}
SCHEDULE = {schedule}
WARMUP = {warmup}
CLIP_NORM = {clip_norm}
EARLY_STOP = {early}
INPUT_SHAPE = [{input_shape}]
CLASS_LABELS = {class_labels}
STATS = None
"#,
        model_str = py_str(&plan.model),
        source_dir = py_str(&src.source_dir),
        epochs = s.epochs,
        batch = s.batch_size.max(1),
        validation = s.validation,
        test = s.test,
        seed = s.seed,
        standardize = if s.standardize { "True" } else { "False" },
        metrics = metrics.join(", "),
        schedule = schedule(&s.schedule),
        warmup = s.warmup,
        clip_norm = plan
            .steps
            .first()
            .and_then(|st| st.clip_norm)
            .map_or("None".to_string(), |c| format!("{c:?}")),
        early = early_stop(&s.early_stop),
        input_shape = input_shape.join(", "),
        class_labels = if plan.label.dtype == DType::I32 { "True" } else { "False" },
    )
}

fn find_train<'g>(src: &Source<'g>, plan: &TrainPlan) -> Result<&'g TrainDecl, Unsupported> {
    src.globals
        .trains
        .iter()
        .find(|t| t.span == plan.span)
        .or_else(|| src.globals.trains.iter().find(|t| t.model.name == plan.model))
        .map(|t| &**t)
        .ok_or_else(|| Unsupported::new(format!("no `train` block for `{}`", plan.model)))
}

fn input_shape(plan: &TrainPlan) -> Vec<String> {
    plan.input.shape[1..]
        .iter()
        .map(|d| d.known().map_or("-1".into(), |n| n.to_string()))
        .collect()
}

const STEPS_MAIN: &str = include_str!("train_steps_main.py");

/// The project for a block of steps (a GAN): model.py holds each model and
/// a module named after the block that holds them all (so its state dict
/// names are nnc's, `G.dense1.weight`), whose forward is the model that
/// `sample =` calls; train.py has one loss function and one optimizer per
/// step, each over its own model's parameters, run every `every` batches.
fn export_steps(src: &Source, plan: &TrainPlan, t: &TrainDecl, w: &Weights) -> Result<Files, Unsupported> {
    let mut tr = Translator::new(src.globals, src.layers, src.is_stdlib);
    let mut models: Vec<String> = vec![];
    for st in &t.steps {
        if !models.contains(&st.model.name) {
            models.push(st.model.name.clone());
        }
    }
    let mut classes = vec![];
    for m in &models {
        let Some(Global::Model(decl)) = src.globals.get(m) else {
            return Err(Unsupported::new(format!("`{m}` is not a model")));
        };
        tr.layer_prefix = format!("{m}.");
        classes.push(tr.model(decl)?);
    }
    tr.layer_prefix.clear();
    let model_defs = tr.defs().len();
    let forward = plan.sample_model.clone().unwrap_or_else(|| models[0].clone());
    let block = py_name(&plan.model);
    let mut container = format!(
        "class {block}(nn.Module):\n    \"\"\"The models of `train {}`; its forward is `{forward}`'s (the one `sample =` calls).\"\"\"\n\n    def __init__(self):\n        super().__init__()\n",
        plan.model
    );
    for m in &models {
        let _ = writeln!(container, "        self.{} = {}()", py_name(m), py_name(m));
    }
    let _ = write!(
        container,
        "\n    def forward(self, x):\n        return self.{}(x)\n",
        py_name(&forward)
    );

    let mut step_defs = String::new();
    let mut table = String::new();
    for (st, sp) in t.steps.iter().zip(&plan.steps) {
        let py = py_name(&st.name.name);
        let loss = model::step_loss(&mut tr, &st.name.name, &st.body, &models)?;
        let opt = optimizer(src, &mut tr, &st.optimizer, &format!("make_{py}_optimizer"))?;
        let _ = write!(step_defs, "\n\n{loss}\n\n{opt}");
        let _ = writeln!(
            table,
            "    ({name}, {py}_loss, {model}, make_{py}_optimizer, {lr:?}, {every}),",
            name = py_str(&st.name.name),
            model = py_str(&py_name(&st.model.name)),
            lr = sp.lr.unwrap_or(0.0),
            every = sp.every,
        );
    }

    let mut model_py = format!(
        "\"\"\"The models of `train {}` in {}, translated to PyTorch by `nnc export --pytorch`.\n\nFunctions, layers and parameter names follow the .nn file; nnc's primitives\nare in nnc_ops.py.\n\"\"\"\n\n{MODEL_HEADER}",
        plan.model, src.file_name
    );
    for (_, d) in tr.defs() {
        let _ = write!(model_py, "\n\n{d}");
    }
    for c in &classes {
        let _ = write!(model_py, "\n\n{c}");
    }
    let _ = write!(model_py, "\n\n{container}");
    let mut imports = vec![format!("{block} as MODEL_CLASS")];
    imports.extend(tr.defs()[model_defs..].iter().map(|(n, _)| n.clone()));

    let mut train_py = format!(
        r#""""Train the models of `train {model}` in {file} as nnc does, with PyTorch.

    python train.py

Written by `nnc export --pytorch`: the same data, batches and order, and
for every batch each `step` in turn (on every `every`-th batch), each
minimising its own loss with its own optimizer over its own model's
parameters (the other models' weights stay as they are). It starts from
weights.safetensors and writes trained.safetensors after every epoch.
Under `torchrun --nproc_per_node=N train.py` the processes share each
batch and average their gradients (gloo on CPU, NCCL with CUDA).
"""

import argparse
import os
import time

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

import nnc_data
import nnc_ops as ops
from model import {imports}

# ---- the train block --------------------------------------------------------

{settings}

"#,
        model = plan.model,
        file = src.file_name,
        imports = imports.join(", "),
        settings = train_settings(
            src,
            plan,
            &input_shape(plan),
            plan.steps.first().and_then(|st| st.lr).unwrap_or(0.0)
        ),
    );
    train_py.push_str(&load_data(plan));
    train_py.push_str(&step_defs);
    let _ = write!(
        train_py,
        "\n\n# (name, loss function, the model it trains, optimizer, lr, every)\nSTEPS = [\n{table}]\n\n\n"
    );
    train_py.push_str(TRAIN_PROCESSES);
    train_py.push_str(STEPS_MAIN);

    let names = torch_names(plan, &torch_layers(src, &tr));
    let weights = state_dict(plan, &names, w, None)?;
    Ok(vec![
        ("model.py".into(), model_py.into_bytes()),
        ("train.py".into(), train_py.into_bytes()),
        ("nnc_ops.py".into(), NNC_OPS.as_bytes().to_vec()),
        ("nnc_data.py".into(), NNC_DATA.as_bytes().to_vec()),
        ("weights.safetensors".into(), weights),
    ])
}

/// The project for `plan`, with weights `w`.
pub fn export(src: &Source, plan: &TrainPlan, w: &Weights, st: Option<&Standardizer>) -> Result<Files, Unsupported> {
    let t = find_train(src, plan)?;
    if plan.eval.is_none() && !t.steps.is_empty() {
        return export_steps(src, plan, t, w);
    }
    let Some(Global::Model(m)) = src.globals.get(&plan.model) else {
        return Err(Unsupported::new(format!("`{}` is not a model", plan.model)));
    };
    let mut tr = Translator::new(src.globals, src.layers, src.is_stdlib);
    let class = tr.model(m)?;
    let model_defs = tr.defs().len();
    let loss_field = field(t, "loss").ok_or_else(|| Unsupported::new("a train block without `loss`".into()))?;
    let loss = model::loss_expr(&mut tr, loss_field)?;
    let opt_field = field(t, "optimizer").ok_or_else(|| Unsupported::new("a train block without `optimizer`".into()))?;
    let make_optimizer = optimizer(src, &mut tr, opt_field, "make_optimizer")?;

    let mut model_py = format!(
        "\"\"\"The model `{}` of {}, translated to PyTorch by `nnc export --pytorch`.\n\nFunctions, layers and parameter names follow the .nn file; nnc's primitives\nare in nnc_ops.py.\n\"\"\"\n\n{MODEL_HEADER}",
        plan.model, src.file_name
    );
    for (_, d) in tr.defs() {
        let _ = write!(model_py, "\n\n{d}");
    }
    // What the loss and optimizer use beyond the model, imported by train.py.
    let mut imports = vec![format!("{} as MODEL_CLASS", py_name(&plan.model))];
    imports.extend(tr.defs()[model_defs..].iter().map(|(n, _)| n.clone()));
    let _ = write!(model_py, "\n\n{class}");

    let mut train_py = String::new();
    let _ = write!(
        train_py,
        r#""""Train `{model}` as the `train {model}` block of {file} does, with PyTorch.

    python train.py                          # one process (CUDA when present, else CPU)
    torchrun --nproc_per_node=N train.py     # DistributedDataParallel: NCCL on CUDA, gloo on CPU

Written by `nnc export --pytorch`: the same data source, scaling and seeded
splits and shuffles (nnc_data.py), loss, optimizer and hyperparameters,
learning-rate schedule, batch size, epochs and metrics as the .nn file. It
starts from weights.safetensors (the weights exported with it) and writes
trained.safetensors after every epoch, a state dict that
`nnc eval {file} --weights trained.safetensors` reads back.
"""

import argparse
import math
import os
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import nnc_data
import nnc_ops as ops
from model import {imports}

# ---- the train block --------------------------------------------------------

{settings}

"#,
        model = plan.model,
        file = src.file_name,
        imports = imports.join(", "),
        settings = train_settings(
            src,
            plan,
            &input_shape(plan),
            plan.steps.first().and_then(|st| st.lr).unwrap_or(0.0)
        ),
    );
    train_py.push_str(&load_data(plan));
    let _ = write!(
        train_py,
        "\n\ndef loss_fn(model, x, y):\n    \"\"\"The train block's `loss`, with `model` the module being trained.\"\"\"\n    return {loss}\n\n\n{make_optimizer}"
    );
    train_py.push_str(TRAIN_PROCESSES);
    train_py.push_str(TRAIN_MAIN);

    let names = torch_names(plan, &torch_layers(src, &tr));
    let weights = state_dict(plan, &names, w, st)?;
    Ok(vec![
        ("model.py".into(), model_py.into_bytes()),
        ("train.py".into(), train_py.into_bytes()),
        ("nnc_ops.py".into(), NNC_OPS.as_bytes().to_vec()),
        ("nnc_data.py".into(), NNC_DATA.as_bytes().to_vec()),
        ("weights.safetensors".into(), weights),
    ])
}
