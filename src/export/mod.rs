//! Export: a trained model leaves nnc as an ONNX file (for inference
//! engines) or as a PyTorch project (to train at scale elsewhere).
//!
//! Both are pure: they take a checked file's train plan and weights and
//! return bytes; `cli::export` writes them (all or nothing).

pub mod onnx;
pub mod proto;
pub mod pytorch;

/// A model this exporter cannot express: the op (an IR op name) and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsupported {
    pub message: String,
    /// The op or construct without an equivalent, when there is one to name.
    pub op: Option<String>,
}

impl Unsupported {
    pub fn new(message: String) -> Unsupported {
        Unsupported { message, op: None }
    }
    pub fn with_op(mut self, op: &str) -> Unsupported {
        self.op = Some(op.to_string());
        self
    }
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
