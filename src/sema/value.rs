//! Values of the elaborator: compile-time numbers, functions and layers, and
//! tensors whose type is known and whose IR value is being built.

use crate::ir::{self, DType, Dim};
use crate::syntax::ast::{FnDecl, LayerDecl, ModelDecl, OptimizerDecl};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

/// A tensor's static type. `shape: None` means "unknown rank": a parameter
/// with no annotation while a definition is checked on its own. Unknown
/// shapes pass every check, so generic checking never reports false errors.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorTy {
    pub dtype: DType,
    pub shape: Option<Vec<Dim>>,
}

impl TensorTy {
    pub fn f32(shape: Vec<Dim>) -> TensorTy {
        TensorTy {
            dtype: DType::F32,
            shape: Some(shape),
        }
    }
    pub fn unknown() -> TensorTy {
        TensorTy {
            dtype: DType::F32,
            shape: None,
        }
    }
}

impl fmt::Display for TensorTy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dtype != DType::F32 {
            write!(f, "{}", self.dtype)?;
        }
        match &self.shape {
            Some(s) => f.write_str(&ir::shape_to_string(s)),
            None => f.write_str("[...]"),
        }
    }
}

/// A tensor: its type and, when every input is concrete, its IR value.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub ty: TensorTy,
    pub ir: Option<ir::Value>,
}

#[derive(Clone, Debug)]
pub enum Callable {
    /// A `fn` declaration; `env` holds the layer instance for methods.
    Decl { decl: Rc<FnDecl>, env: Option<Rc<Env>> },
    /// A primitive implemented by the compiler.
    Builtin(super::builtin_table::Builtin),
    /// A function with some arguments fixed (`leaky_relu(slope: 0.2)` used
    /// as an activation).
    Partial {
        base: Box<Callable>,
        args: Vec<(Option<String>, Val)>,
    },
}

/// A constructed layer: its arguments, parameters and sublayers.
#[derive(Debug)]
pub struct LayerInst {
    pub decl: Rc<LayerDecl>,
    /// Full name, the prefix of its parameters (`dense1`, `encoder.fc1`).
    pub name: String,
    pub env: Rc<Env>,
    /// Where it was constructed, and where each argument was written, so a
    /// shape error can suggest the arguments that would fit.
    pub call_span: crate::base::Span,
    pub arg_spans: HashMap<String, crate::base::Span>,
    /// Its entry in `Elab::layers`.
    pub record: usize,
}

/// A layer created while elaborating a model (for summaries and hover).
#[derive(Clone, Debug)]
pub struct LayerRecord {
    pub name: String,
    /// The layer's declaration (`Dense`).
    pub kind: String,
    pub span: crate::base::Span,
    /// Trainable parameters, then buffers (see `buffers`).
    pub params: Vec<(String, crate::ir::Type)>,
    /// The shape its first application returned (`[batch, 128]`), so a
    /// summary shows it even when functions sit between layers.
    pub output: Option<String>,
    /// Instruction ranges `start..end` of the model's IR built by each
    /// application of the layer, so `nnc summary` can give layers without
    /// parameters (pooling) their own row.
    pub applied: Vec<(usize, usize)>,
    /// How many of the last `params` are buffers (not trained).
    pub buffers: usize,
}

pub use crate::plan::CallRecord;

/// An optimizer with its hyperparameters bound.
#[derive(Debug)]
pub struct OptimizerInst {
    pub decl: Rc<OptimizerDecl>,
    pub args: Vec<(String, Val)>,
    /// Where each argument was written in the user's file (see `Env::origins`).
    pub origins: HashMap<String, crate::base::Span>,
}

#[derive(Clone, Debug)]
pub enum Val {
    Tensor(Tensor),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// A symbolic dimension used as a value (`batch`).
    Dim(String),
    List(Vec<Val>),
    Fn(Callable),
    LayerCtor(Rc<LayerDecl>),
    Layer(Rc<LayerInst>),
    Model(Rc<ModelDecl>),
    OptimizerCtor(Rc<OptimizerDecl>),
    Optimizer(Rc<OptimizerInst>),
    /// Unknown while checking a definition on its own; absorbs every check.
    Any,
    /// An error was already reported for this value; no further reports.
    Error,
}

impl Val {
    /// What kind of value this is, for messages.
    pub fn kind(&self) -> String {
        match self {
            Val::Tensor(t) => format!("a tensor {}", t.ty),
            Val::Int(i) => format!("the integer {i}"),
            Val::Float(x) => format!("the number {x}"),
            Val::Bool(b) => format!("the boolean {b}"),
            Val::Str(_) => "a string".into(),
            Val::Dim(d) => format!("the dimension {d}"),
            Val::List(_) => "a list".into(),
            Val::Fn(_) => "a function".into(),
            Val::LayerCtor(d) => format!("the layer {}", d.name.name),
            Val::Layer(l) => format!("the layer instance {}", l.name),
            Val::Model(m) => format!("the model {}", m.name.name),
            Val::OptimizerCtor(o) => format!("the optimizer {}", o.name.name),
            Val::Optimizer(o) => format!("the optimizer {}", o.decl.name.name),
            Val::Any | Val::Error => "a value".into(),
        }
    }
    pub fn is_poison(&self) -> bool {
        matches!(self, Val::Any | Val::Error)
    }
    /// Values held, counting through nested lists (a list counts itself).
    pub fn deep_len(&self) -> usize {
        match self {
            Val::List(items) => items.iter().map(Val::deep_len).fold(1, usize::saturating_add),
            _ => 1,
        }
    }
}

/// Variables of one scope; closures capture it by `Rc`.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub vars: HashMap<String, Val>,
    pub parent: Option<Rc<Env>>,
    /// Where in the user's file a variable's value was written, when it
    /// was bound from an argument there (`lr` of `adam(lr: "0.001")`):
    /// an error about the value inside the stdlib points at that text.
    pub origins: HashMap<String, crate::base::Span>,
    /// Which of `vars` are a layer's buffers (assignable in training mode).
    pub buffers: Vec<String>,
}

impl Env {
    /// A scope inside `parent`.
    pub fn child(parent: Rc<Env>) -> Env {
        Env {
            vars: HashMap::new(),
            parent: Some(parent),
            ..Default::default()
        }
    }
    /// Whether `name`, as seen from here, is a layer's buffer.
    pub fn is_buffer(&self, name: &str) -> bool {
        if self.vars.contains_key(name) {
            return self.buffers.iter().any(|b| b == name);
        }
        self.parent.as_ref().is_some_and(|p| p.is_buffer(name))
    }
    pub fn get(&self, name: &str) -> Option<&Val> {
        self.vars.get(name).or_else(|| self.parent.as_ref().and_then(|p| p.get(name)))
    }
    /// The user's text a variable's value came from (see `origins`).
    pub fn origin(&self, name: &str) -> Option<crate::base::Span> {
        if self.vars.contains_key(name) {
            return self.origins.get(name).copied();
        }
        self.parent.as_ref().and_then(|p| p.origin(name))
    }
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.vars.keys().cloned().collect();
        if let Some(p) = &self.parent {
            out.extend(p.names());
        }
        out
    }
}
