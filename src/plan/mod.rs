//! The training plan as data: what the checker (`sema::train`) produces
//! from a `train` block and the runtime consumes — settings, the data
//! source, and IR functions over one shared parameter store.
//!
//! A plan holds one or more steps. A `train` block with `loss =` and
//! `optimizer =` is one step; `step NAME with OPT on MODEL { ... }` adds
//! one step each (a GAN's discriminator and generator). Each step compiles
//! to its own native function; all of them read and write the same store
//! (`params`), and each owns its optimizer state.

use crate::base::Span;
use crate::ir::{self, Func};

/// Where the training data comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// The four MNIST IDX files in a directory.
    Mnist { dir: String },
    /// A CSV file: features and a label column, which holds class ids, or
    /// regression targets with `target:` (`regression`).
    Csv {
        path: String,
        label: CsvLabel,
        scale: Option<f64>,
        regression: bool,
    },
    /// An IDX image file and an IDX label file.
    Idx { images: String, labels: String },
    /// Small tensors written in the file (logic gates): one flat row per
    /// sample; `x_shape` is a sample's shape (`[2]` for `[[0, 1], ...]`,
    /// `[3, 2]` for a sequence of 3 steps of 2 features).
    Inline {
        x: Vec<Vec<f64>>,
        x_shape: Vec<usize>,
        y: Vec<Vec<f64>>,
    },
    /// A UTF-8 text file as windows of `steps` character ids (code points
    /// below `vocab`), each with the next character of every position as
    /// its targets: `x, y: i32[n, steps]` (see `runtime::text`).
    Text { path: String, steps: usize, vocab: usize },
}

/// The largest `vocab` of `text(...)`: code points from U+D800 on include
/// the surrogates, which are not characters, so a sampled id could not be
/// printed.
pub const MAX_VOCAB: usize = 0xD800;

/// The label column of a CSV file: `label: 64` (negative counts from the
/// end) or `label: "species"` (a header name).
#[derive(Clone, Debug, PartialEq)]
pub enum CsvLabel {
    Index(i64),
    Name(String),
}

#[derive(Clone, Debug)]
pub struct DataSpec {
    pub source: DataSource,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub epochs: usize,
    pub batch_size: usize,
    pub validation: f64,
    pub test: f64,
    pub metrics: Vec<String>,
    pub seed: u64,
    /// `early_stop = patience(3, monitor: val_loss)`.
    pub early_stop: Option<EarlyStop>,
    /// `schedule = cosine()`: how the learning rate changes over the run.
    pub schedule: Schedule,
    /// `warmup = 500`: steps of linear learning-rate warm-up before the schedule.
    pub warmup: usize,
    /// `standardize = true`: scale every feature to mean 0 and variance 1,
    /// with statistics of the training split.
    pub standardize: bool,
    /// `clip_norm = 1.0`: the default of every step's [`StepPlan::clip_norm`].
    pub clip_norm: Option<f64>,
}

/// Stop when `monitor` has not improved for `patience` epochs, and keep the
/// weights of the best epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStop {
    pub patience: usize,
    /// `val_loss`, `val_accuracy`, `loss`, `accuracy`, or another metric with
    /// an optional `val_` prefix. Losses and errors improve downwards.
    pub monitor: String,
}

/// A learning-rate schedule: the factor applied to the optimizer's `lr`.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// Multiply by `factor` every `every` epochs.
    StepDecay {
        every: usize,
        factor: f64,
    },
    /// Multiply by `rate` every epoch.
    Exponential {
        rate: f64,
    },
    /// Half a cosine from `lr` down to `min_lr` over the whole run.
    Cosine {
        min_lr: f64,
    },
    /// Triangle waves between `min_lr` and `lr`, `period` epochs each.
    Cyclic {
        min_lr: f64,
        period: usize,
    },
    /// Up from `lr / 25` to `max_lr` over the first 30 % of steps, then down
    /// to `lr / 1e4` (Smith's one-cycle policy).
    OneCycle {
        max_lr: f64,
    },
}

/// One call inlined while lowering (a function, builtin, layer or model),
/// so tools can regroup the flat IR into the calls the user wrote:
/// `nnc explain --grad` shows `relu(z¹)` instead of `max(z¹, 0)`.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRecord {
    /// `relu`, `tanh`, `cross_entropy`; for a layer its kind (`Dense`).
    pub callee: String,
    /// The applied layer instance (`fc1`), when the callee is a layer.
    pub layer: Option<String>,
    /// The IR value of each tensor argument, in order.
    pub args: Vec<ir::Value>,
    pub result: ir::Value,
    /// The instructions the call emitted: `insts[start..end]` of the function built.
    pub insts: std::ops::Range<usize>,
    /// Calls enclosing this one (0: written in the train block or model body).
    pub depth: usize,
}

/// One entry of the parameter store: trained by some step, or a buffer
/// (state such as batch norm's running mean, written by the steps in
/// training mode and read in evaluation mode).
#[derive(Clone, Debug)]
pub struct ParamMeta {
    pub name: String,
    pub ty: ir::Type,
    pub trainable: bool,
}

/// How one step changes one parameter: its optimizer update and states.
///
/// `func(param, grad, step, lr, states...) -> (param', states'...)`.
#[derive(Clone, Debug)]
pub struct Update {
    /// Index into `TrainPlan::params`.
    pub param: usize,
    /// Optimizer state names (`fc1.W/m`) and types, in `func` order.
    pub states: Vec<(String, ir::Type)>,
    pub func: Func,
}

/// One training step: a loss in training mode, the parameters it updates
/// and how, and the buffers it writes.
#[derive(Clone, Debug)]
pub struct StepPlan {
    /// `train` for a block's single `loss`, else the `step` name.
    pub name: String,
    /// `(x, y, key, params...) -> (loss, output, buffers'...)`, params in
    /// store order. `key` seeds this step's random draws (dropout, noise).
    pub loss: Func,
    /// The buffers the loss writes, as store indices, in the order of the
    /// loss's results after `output`.
    pub writes: Vec<usize>,
    /// The parameters this step trains, in store order.
    pub updates: Vec<Update>,
    pub optimizer: String,
    /// The optimizer's `lr`, a runtime input of the updates (so schedules
    /// can change it); `None` when the optimizer has no `lr`.
    pub lr: Option<f64>,
    /// Values of `loss` made by ops with a zero derivative, and where the
    /// user asked for them (so a parameter without gradient is reported
    /// at the threshold that blocks it).
    pub blockers: Vec<(ir::Value, Span)>,
    /// The step runs on every `every`-th batch (`every = 5`: one generator
    /// step per five discriminator steps).
    pub every: usize,
    /// `clip_norm = c`: before the update, every gradient of the step is
    /// scaled by `min(1, c / (‖g‖ + 1e-6))`, `‖g‖` the norm of all of them
    /// together (PyTorch's `clip_grad_norm_`).
    pub clip_norm: Option<f64>,
    pub span: Span,
}

/// What evaluation (validation, test, `nnc eval`, `nnc predict`) runs, in
/// evaluation mode.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// `(x, y, params...) -> (loss, output)`.
    pub loss: Func,
    /// `(x, params...) -> output`.
    pub predict: Func,
    /// The calls inlined into `loss` (layers, activations, the loss
    /// function), for tools that show it as written (`nnc explain --grad`).
    pub calls: Vec<CallRecord>,
    /// Values of `loss` the source names (`let q = ...`, a scan's
    /// `h = ...`), in the order they were computed: a name given to several
    /// values (a scan's steps) names each in turn.
    pub value_names: Vec<(ir::Value, String)>,
}

/// One model of a block of steps in evaluation mode.
#[derive(Clone, Debug)]
pub struct ModelPredict {
    pub name: String,
    /// `(input, params...) -> output`, params in store order.
    pub predict: Func,
}

/// Everything a run needs, as IR functions over named values.
///
/// - `init() -> (params..., states of step 0..., states of step 1...)`
/// - `steps[k]`: see [`StepPlan`]
/// - `eval`: see [`Evaluation`]; `None` for a multi-step block that names
///   no model (a GAN), which has no validation or test
/// - `sample() -> images` with `sample = G(noise([64, 64]))`: evaluation
///   mode, written as an image grid after every epoch
#[derive(Clone, Debug)]
pub struct TrainPlan {
    /// The trained model, or the run's name for a block of steps.
    pub model: String,
    pub data: DataSpec,
    pub settings: Settings,
    pub input: ir::Type,
    pub label: ir::Type,
    pub params: Vec<ParamMeta>,
    pub init: Func,
    pub steps: Vec<StepPlan>,
    pub eval: Option<Evaluation>,
    /// `(params...) -> images`.
    pub sample: Option<Func>,
    /// For a block of steps without `eval`: each model a step trains, alone
    /// in evaluation mode (what `nnc export --model G` writes).
    pub models: Vec<ModelPredict>,
    /// The model that `sample = G(...)` calls (a GAN's generator), exported
    /// when no model is named.
    pub sample_model: Option<String>,
    pub span: Span,
    /// Where the model's number of outputs is written (its declared result
    /// and its last layer), for fixes that change it.
    pub output_spans: Vec<Span>,
    /// The declared result of the model.
    pub output_decl: Option<Span>,
    /// The largest tensor of the training forward passes and losses written
    /// in the user's file: (elements per sample, where).
    pub largest_value: Option<(u128, Span)>,
}

impl TrainPlan {
    /// Every optimizer state name and type, in step order (as `init` returns them).
    pub fn state_names(&self) -> impl Iterator<Item = &(String, ir::Type)> {
        self.steps.iter().flat_map(|s| s.updates.iter().flat_map(|u| u.states.iter()))
    }

    /// The number of optimizer state tensors of each step, in step order.
    pub fn states_per_step(&self) -> Vec<usize> {
        self.steps.iter().map(|s| s.updates.iter().map(|u| u.states.len()).sum()).collect()
    }

    /// The evaluation functions, or why there are none.
    pub fn evaluation(&self) -> Result<&Evaluation, String> {
        self.eval
            .as_ref()
            .ok_or_else(|| format!("`train {}` names no model, so there is nothing to evaluate or predict", self.model))
    }

    /// The inference function of `model` (default: the block's own model,
    /// else the model `sample =` calls), or why there is none.
    pub fn predict_of(&self, model: Option<&str>) -> Result<&Func, String> {
        let own = model.is_none_or(|m| m == self.model);
        if let (true, Some(ev)) = (own, &self.eval) {
            return Ok(&ev.predict);
        }
        let wanted = model.filter(|m| *m != self.model).or(self.sample_model.as_deref());
        let names: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
        match wanted.and_then(|w| self.models.iter().find(|m| m.name == w)) {
            Some(m) => Ok(&m.predict),
            None if names.is_empty() => self.evaluation().map(|ev| &ev.predict),
            None => Err(format!(
                "`train {}` names no model of its own: choose one of its models with `--model {}`",
                self.model,
                names.join("` or `--model ")
            )),
        }
    }

    /// The first step's optimizer (the only one of a single-loss block).
    pub fn optimizer(&self) -> &str {
        self.steps.first().map_or("", |s| s.optimizer.as_str())
    }
}
