//! ONNX from the IR: the `predict` function of a train plan (the model in
//! evaluation mode), its weights as initializers, opset 17.
//!
//! The exporter walks the IR, not the syntax tree: every `.nn` model,
//! whatever stdlib or user code it calls, is lowered to the same few
//! primitive ops, so one exhaustive match over [`Op`] covers every model,
//! and a new op cannot be forgotten here (the match stops compiling).
//! The graph keeps the model's symbolic batch dimension: shapes that
//! mention it (`broadcast`, `reshape`) are assembled at run time from the
//! input's `Shape`.

use super::proto::Message;
use super::Unsupported;
use crate::ir::{self, BinaryOp, CmpOp, DType, Dim, Op, UnaryOp, Value};
use crate::runtime::split::Standardizer;
use crate::runtime::train::Weights;
use crate::sema::TrainPlan;
use ndarray::ArrayD;
use std::collections::HashMap;

/// The operator set written. 17 is the newest whose `ReduceMax` still takes
/// `axes` as an attribute, and ONNX Runtime has supported it since 1.13.
pub const OPSET: i64 = 17;
/// The ONNX IR version that goes with opset 17.
const IR_VERSION: i64 = 8;

/// `TensorProto.DataType` codes.
const FLOAT: i64 = 1;
const INT32: i64 = 6;
const INT64: i64 = 7;
const BOOL: i64 = 9;

/// `AttributeProto.AttributeType` codes.
const ATTR_INT: i64 = 2;
const ATTR_TENSOR: i64 = 4;
const ATTR_INTS: i64 = 7;

/// The name of the graph's output.
pub const OUTPUT: &str = "output";

/// An attribute of a node.
enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Tensor(Message),
}

fn attribute(name: &str, a: &Attr) -> Message {
    // AttributeProto: name 1, i 3, t 5, ints 8, type 20.
    let mut m = Message::new();
    m.string(1, name);
    match a {
        Attr::Int(v) => m.int(3, *v).int(20, ATTR_INT),
        Attr::Ints(vs) => m.ints(8, vs).int(20, ATTR_INTS),
        Attr::Tensor(t) => m.message(5, t).int(20, ATTR_TENSOR),
    };
    m
}

/// A TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian).
fn tensor(name: &str, dims: &[i64], dtype: i64, raw: &[u8]) -> Message {
    let mut m = Message::new();
    m.ints(1, dims).int(2, dtype).string(8, name).bytes(9, raw);
    m
}

fn f32_tensor(name: &str, a: &ArrayD<f32>) -> Message {
    let dims: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    let raw: Vec<u8> = a.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor(name, &dims, FLOAT, &raw)
}

fn i64_tensor(name: &str, vs: &[i64]) -> Message {
    let raw: Vec<u8> = vs.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor(name, &[vs.len() as i64], INT64, &raw)
}

fn elem_type(d: DType) -> i64 {
    match d {
        DType::F32 => FLOAT,
        DType::I32 => INT32,
    }
}

/// A ValueInfoProto (name 1, type 2) of a tensor type: TypeProto.tensor_type 1
/// { elem_type 1, shape 2 { dim 1 { dim_value 1 | dim_param 2 } } }.
fn value_info(name: &str, ty: &ir::Type) -> Message {
    let mut shape = Message::new();
    for d in &ty.shape {
        let mut dim = Message::new();
        match d {
            Dim::Known(n) => dim.int(1, *n as i64),
            Dim::Sym(s) => dim.string(2, s),
        };
        shape.message(1, &dim);
    }
    let mut tt = Message::new();
    tt.int(1, elem_type(ty.dtype)).message(2, &shape);
    let mut tp = Message::new();
    tp.message(1, &tt);
    let mut m = Message::new();
    m.string(1, name).message(2, &tp);
    m
}

/// The graph under construction: nodes in order, initializers, and where
/// each symbolic dim can be read from at run time.
struct Graph {
    nodes: Vec<Message>,
    inits: Vec<Message>,
    fresh: usize,
    /// Symbol -> (input name, axis) of a graph input that has it.
    sym_source: HashMap<String, (String, usize)>,
    /// Symbol -> the name of an int64[1] tensor holding its size.
    sym_size: HashMap<String, String>,
}

impl Graph {
    fn name(&mut self, hint: &str) -> String {
        self.fresh += 1;
        format!("{hint}_{}", self.fresh)
    }

    /// Add a node with one output, named after `hint`.
    fn node(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)], hint: &str) -> String {
        let out = self.name(hint);
        self.node_to(op, inputs, attrs, &out);
        out
    }

    /// Add a node writing `out` (NodeProto: input 1, output 2, name 3,
    /// op_type 4, attribute 5).
    fn node_to(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)], out: &str) {
        let mut m = Message::new();
        for i in inputs {
            m.string(1, i);
        }
        m.string(2, out);
        m.string(3, &format!("{op}_{}", self.nodes.len()));
        m.string(4, op);
        for (n, a) in attrs {
            m.message(5, &attribute(n, a));
        }
        self.nodes.push(m);
    }

    fn const_i64(&mut self, vs: &[i64], hint: &str) -> String {
        let name = self.name(hint);
        self.inits.push(i64_tensor(&name, vs));
        name
    }

    /// An int64[rank] tensor holding `shape`, with symbolic dims read from
    /// the inputs' shapes at run time.
    fn shape_tensor(&mut self, shape: &[Dim]) -> Result<String, Unsupported> {
        if shape.iter().all(|d| d.known().is_some()) {
            let dims: Vec<i64> = shape.iter().map(|d| d.known().unwrap_or(0) as i64).collect();
            return Ok(self.const_i64(&dims, "shape"));
        }
        let mut parts = vec![];
        let mut known = vec![];
        for d in shape {
            match d {
                Dim::Known(n) => known.push(*n as i64),
                Dim::Sym(s) => {
                    if !known.is_empty() {
                        parts.push(self.const_i64(&std::mem::take(&mut known), "dims"));
                    }
                    parts.push(self.sym_size(s)?);
                }
            }
        }
        if !known.is_empty() {
            parts.push(self.const_i64(&known, "dims"));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        Ok(self.node("Concat", &refs, &[("axis", Attr::Int(0))], "shape"))
    }

    fn sym_size(&mut self, s: &str) -> Result<String, Unsupported> {
        if let Some(n) = self.sym_size.get(s) {
            return Ok(n.clone());
        }
        let Some((input, axis)) = self.sym_source.get(s).cloned() else {
            return Err(Unsupported::new(format!(
                "the dimension `{s}` is not a dimension of the model's input"
            )));
        };
        let axis = axis as i64;
        let n = self.node(
            "Shape",
            &[&input],
            &[("start", Attr::Int(axis)), ("end", Attr::Int(axis + 1))],
            &format!("size_{s}"),
        );
        self.sym_size.insert(s.to_string(), n.clone());
        Ok(n)
    }
}

/// Serialise the model of `plan` with weights `w` (and the feature
/// statistics of `standardize = true`, applied to the input first, as
/// `nnc predict` does) as an ONNX `ModelProto`.
pub fn export(plan: &TrainPlan, model: Option<&str>, w: &Weights, st: Option<&Standardizer>) -> Result<Vec<u8>, Unsupported> {
    // ONNX gets the scans unrolled: a graph of plain operators that every
    // runtime runs and optimises, where `Loop`/`Scan` take subgraphs that
    // several runtimes execute node by node (see the crate doc).
    let predict = plan.predict_of(model).map_err(Unsupported::new)?;
    let f = crate::opt::optimize(&ir::scan::unroll(predict));
    let mut g = Graph {
        nodes: vec![],
        inits: vec![],
        fresh: 0,
        sym_source: HashMap::new(),
        sym_size: HashMap::new(),
    };
    let mut names: HashMap<Value, String> = HashMap::new();
    let mut inputs = vec![];
    let input_name = f.param_names[0].clone();
    let x = f.params[0];
    for (axis, d) in f.ty(x).shape.iter().enumerate() {
        if let Dim::Sym(s) = d {
            g.sym_source.entry(s.clone()).or_insert((input_name.clone(), axis));
        }
    }
    inputs.push(value_info(&input_name, f.ty(x)));
    names.insert(x, input_name.clone());
    if let Some(st) = st {
        // (x - mean) / std with the statistics shaped like one sample.
        let sample: Vec<usize> = f.ty(x).shape[1..].iter().map(|d| d.known().unwrap_or(1)).collect();
        let as_sample = |v: &[f32]| ArrayD::from_shape_vec(sample.clone(), v.to_vec());
        let (Ok(mean), Ok(std)) = (as_sample(&st.mean), as_sample(&st.std)) else {
            return Err(Unsupported::new(
                "the weights' feature statistics do not fit the model's input".into(),
            ));
        };
        g.inits.push(f32_tensor("data/mean", &mean));
        g.inits.push(f32_tensor("data/std", &std));
        let centred = g.node("Sub", &[&input_name, "data/mean"], &[], "centred");
        let scaled = g.node("Div", &[&centred, "data/std"], &[], "standardized");
        names.insert(x, scaled);
    }
    // The remaining parameters are the weights, in plan order; those the
    // graph never reads (the discriminator's, in a GAN's generator) stay out.
    let read: std::collections::HashSet<Value> = f
        .insts
        .iter()
        .flat_map(|i| i.args.iter().copied())
        .chain(f.results.iter().copied())
        .collect();
    for (i, &p) in f.params.iter().enumerate().skip(1) {
        if !read.contains(&p) {
            continue;
        }
        let name = &f.param_names[i];
        let Some(k) = w.names.iter().position(|n| n == name) else {
            return Err(Unsupported::new(format!("the weights have no tensor `{name}`")));
        };
        g.inits.push(f32_tensor(name, &w.params[k]));
        names.insert(p, name.clone());
    }
    for inst in &f.insts {
        let args: Vec<String> = inst.args.iter().map(|a| names[a].clone()).collect();
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = lower(&mut g, &f, inst, &a)?;
        names.insert(inst.result, out);
    }
    let result = f.results[0];
    g.node_to("Identity", &[&names[&result]], &[], OUTPUT);

    let mut graph = Message::new();
    for n in &g.nodes {
        graph.message(1, n);
    }
    graph.string(2, &plan.model);
    for t in &g.inits {
        graph.message(5, t);
    }
    for i in &inputs {
        graph.message(11, i);
    }
    graph.message(12, &value_info(OUTPUT, f.ty(result)));

    let mut opset = Message::new();
    opset.string(1, "").int(2, OPSET);
    let mut model = Message::new();
    model
        .int(1, IR_VERSION)
        .string(2, "nnc")
        .string(3, env!("CARGO_PKG_VERSION"))
        .string(6, &format!("model {} exported by nnc in evaluation mode", plan.model))
        .message(7, &graph)
        .message(8, &opset);
    Ok(model.finish())
}

/// The ONNX nodes of one instruction; returns the name of its result.
fn lower(g: &mut Graph, f: &ir::Func, inst: &ir::Inst, a: &[&str]) -> Result<String, Unsupported> {
    let hint = format!("v{}", inst.result.0);
    let simple = |g: &mut Graph, op: &str| g.node(op, a, &[], &hint);
    Ok(match &inst.op {
        Op::Const(c) => {
            let t = tensor("value", &[], FLOAT, &(*c as f32).to_le_bytes());
            g.node("Constant", &[], &[("value", Attr::Tensor(t))], &hint)
        }
        Op::Unary(u) => simple(
            g,
            match u {
                UnaryOp::Neg => "Neg",
                UnaryOp::Exp => "Exp",
                UnaryOp::Log => "Log",
                UnaryOp::Sqrt => "Sqrt",
                UnaryOp::Tanh => "Tanh",
                UnaryOp::Abs => "Abs",
                UnaryOp::Sign => "Sign",
                UnaryOp::Sin => "Sin",
                UnaryOp::Cos => "Cos",
                UnaryOp::Erf => "Erf",
                // Inference has no gradient to stop.
                UnaryOp::StopGradient => "Identity",
            },
        ),
        Op::Binary(b) => simple(
            g,
            match b {
                BinaryOp::Add => "Add",
                BinaryOp::Sub => "Sub",
                BinaryOp::Mul => "Mul",
                BinaryOp::Div => "Div",
                BinaryOp::Pow => "Pow",
                BinaryOp::Max => "Max",
                BinaryOp::Min => "Min",
            },
        ),
        Op::Compare(c) => {
            // ONNX comparisons give booleans; nnc's give 0.0/1.0.
            let b = match c {
                CmpOp::Lt => g.node("Less", a, &[], "cmp"),
                CmpOp::Le => g.node("LessOrEqual", a, &[], "cmp"),
                CmpOp::Gt => g.node("Greater", a, &[], "cmp"),
                CmpOp::Ge => g.node("GreaterOrEqual", a, &[], "cmp"),
                CmpOp::Eq => g.node("Equal", a, &[], "cmp"),
                CmpOp::Ne => {
                    let eq = g.node("Equal", a, &[], "cmp");
                    g.node("Not", &[&eq], &[], "cmp")
                }
            };
            g.node("Cast", &[&b], &[("to", Attr::Int(FLOAT))], &hint)
        }
        Op::Select => {
            // Any non-zero condition selects the first operand, as Cast to bool does.
            let c = g.node("Cast", &[a[0]], &[("to", Attr::Int(BOOL))], "cond");
            g.node("Where", &[&c, a[1], a[2]], &[], &hint)
        }
        Op::Broadcast { shape } => {
            let s = g.shape_tensor(shape)?;
            g.node("Expand", &[a[0], &s], &[], &hint)
        }
        Op::Reshape { shape } => {
            let s = g.shape_tensor(shape)?;
            g.node("Reshape", &[a[0], &s], &[], &hint)
        }
        Op::ReduceSum { axes, .. } | Op::ReduceMax { axes, .. } if axes.is_empty() => {
            // ONNX reduces every axis when given none; nnc reduces none.
            g.node("Identity", a, &[], &hint)
        }
        Op::ReduceSum { axes, keep } => {
            let ax: Vec<i64> = axes.iter().map(|&x| x as i64).collect();
            let axes_t = g.const_i64(&ax, "axes");
            g.node("ReduceSum", &[a[0], &axes_t], &[("keepdims", Attr::Int(i64::from(*keep)))], &hint)
        }
        Op::ReduceMax { axes, keep } => {
            let ax: Vec<i64> = axes.iter().map(|&x| x as i64).collect();
            g.node(
                "ReduceMax",
                a,
                &[("axes", Attr::Ints(ax)), ("keepdims", Attr::Int(i64::from(*keep)))],
                &hint,
            )
        }
        Op::Transpose { perm } => {
            let p: Vec<i64> = perm.iter().map(|&x| x as i64).collect();
            g.node("Transpose", a, &[("perm", Attr::Ints(p))], &hint)
        }
        Op::MatMul => simple(g, "MatMul"),
        Op::OneHot { depth } => {
            let d = g.const_i64(&[*depth as i64], "depth");
            let values = g.name("off_on");
            g.inits.push(f32_tensor(
                &values,
                &ArrayD::from_shape_vec(vec![2], vec![0.0, 1.0]).expect("two values"),
            ));
            g.node("OneHot", &[a[0], &d, &values], &[("axis", Attr::Int(-1))], &hint)
        }
        Op::Cast { to } => g.node("Cast", a, &[("to", Attr::Int(elem_type(*to)))], &hint),
        Op::Slice { start, stride, shape } => {
            // A dim known only at run time is taken whole.
            let (mut starts, mut ends, mut steps) = (vec![], vec![], vec![]);
            for ((&s, &k), d) in start.iter().zip(stride).zip(shape) {
                match d.known() {
                    Some(n) => {
                        starts.push(s as i64);
                        ends.push((s + k * (n - 1) + 1) as i64);
                        steps.push(k as i64);
                    }
                    None => {
                        starts.push(0);
                        ends.push(i64::MAX);
                        steps.push(1);
                    }
                }
            }
            let axes: Vec<i64> = (0..shape.len() as i64).collect();
            let ins = [
                g.const_i64(&starts, "starts"),
                g.const_i64(&ends, "ends"),
                g.const_i64(&axes, "axes"),
                g.const_i64(&steps, "steps"),
            ];
            g.node("Slice", &[a[0], &ins[0], &ins[1], &ins[2], &ins[3]], &[], &hint)
        }
        Op::Reverse { axes } => {
            // A slice backwards from the last element through the first.
            let n = axes.len();
            let ins = [
                g.const_i64(&vec![-1; n], "starts"),
                g.const_i64(&vec![i64::MIN; n], "ends"),
                g.const_i64(&axes.iter().map(|&x| x as i64).collect::<Vec<_>>(), "axes"),
                g.const_i64(&vec![-1; n], "steps"),
            ];
            g.node("Slice", &[a[0], &ins[0], &ins[1], &ins[2], &ins[3]], &[], &hint)
        }
        Op::Concat { axis } => g.node("Concat", a, &[("axis", Attr::Int(*axis as i64))], &hint),
        // ONNX Gather refuses an id outside the axis where nnc reads NaN:
        // both stop on bad data, neither silently.
        Op::Gather { axis } => g.node("Gather", a, &[("axis", Attr::Int(*axis as i64))], &hint),
        // Not lowered to ONNX yet (Pad/ScatterElements exist there; an
        // inference graph rarely has them): an E0701 naming the op instead
        // of a wrong model.
        Op::Iota { shape, axis } => {
            // A table of positions known when compiling: a constant.
            let Some(dims) = shape.iter().map(|d| d.known()).collect::<Option<Vec<usize>>>() else {
                return Err(
                    Unsupported::new("`iota` over a dimension known only at run time is not exported to ONNX yet".into()).with_op("iota"),
                );
            };
            let table = ArrayD::from_shape_fn(dims, |i| i[*axis] as f32);
            let name = g.name("iota");
            g.inits.push(f32_tensor(&name, &table));
            name
        }
        Op::Pad { .. } | Op::ScatterAdd { .. } => {
            return Err(Unsupported::new(format!("`{}` is not exported to ONNX yet", inst.op.name())).with_op(inst.op.name()));
        }
        Op::RandomUniform { .. } | Op::RandomNormal { .. } => {
            return Err(Unsupported::new(format!(
                "`{}` has no ONNX equivalent: nnc's counter-based random stream cannot be reproduced by ONNX's random ops",
                inst.op.name()
            ))
            .with_op(inst.op.name()));
        }
        Op::Im2col { window } => im2col(g, window, &f.ty(inst.args[0]).shape, a[0], &hint)?,
        // Padding never wins in nnc's max pooling, nor in ONNX's.
        Op::MaxPool { window } => g.node("MaxPool", a, &window_attrs(window), &hint),
        // Gradients: only the backward pass has them, and it is not exported.
        Op::Col2im { .. } | Op::MaxPoolGrad { .. } => {
            return Err(Unsupported::new(format!("`{}` (a gradient) is not exported to ONNX", inst.op.name())).with_op(inst.op.name()));
        }
        Op::Scan { .. } => {
            return Err(Unsupported::new("internal error: a scan left after unrolling".into()).with_op(inst.op.name()));
        }
    })
}

/// ONNX's `kernel_shape`, `strides`, `pads` (all starts, then all ends) and
/// `dilations` of a window.
fn window_attrs(w: &ir::Window) -> Vec<(&'static str, Attr)> {
    let ints = |v: [usize; 2]| Attr::Ints(v.iter().map(|&x| x as i64).collect());
    let pads = [w.pad_lo, w.pad_hi].iter().flatten().map(|&x| x as i64).collect();
    vec![
        ("kernel_shape", ints(w.kernel)),
        ("strides", ints(w.stride)),
        ("pads", Attr::Ints(pads)),
        ("dilations", ints(w.dilation)),
    ]
}

/// `im2col` has no ONNX op, but it is a depthwise convolution whose
/// `c·kh·kw` one-hot filters each pick one offset of the window: output
/// channel `(ci, ky, kx)` is input channel `ci` read at `(ky, kx)`. The
/// result `[n, c·kh·kw, oh, ow]` is then viewed as `[n, c, kh, kw, oh, ow]`
/// and transposed to nnc's `[n, oh, ow, c, kh, kw]`. Multiplying by one and
/// adding zeros is exact, so ONNX Runtime reproduces the copy.
fn im2col(g: &mut Graph, w: &ir::Window, image: &[Dim], x: &str, hint: &str) -> Result<String, Unsupported> {
    let Some(c) = image.get(1).and_then(Dim::known) else {
        return Err(Unsupported::new("an image whose channel count is known only at run time".into()));
    };
    let [kh, kw] = w.kernel;
    let per = kh * kw;
    let mut pick = ArrayD::<f32>::zeros(vec![c * per, 1, kh, kw]);
    for ci in 0..c {
        for ky in 0..kh {
            for kx in 0..kw {
                pick[[ci * per + ky * kw + kx, 0, ky, kx]] = 1.0;
            }
        }
    }
    let filters = g.name("im2col_filters");
    g.inits.push(f32_tensor(&filters, &pick));
    let mut attrs = window_attrs(w);
    attrs.push(("group", Attr::Int(c as i64)));
    let cols = g.node("Conv", &[x, &filters], &attrs, "windows");
    let out = w.out_hw([0, 1].map(|i| image.get(2 + i).and_then(Dim::known).unwrap_or(0)));
    let Some([oh, ow]) = out else {
        return Err(Unsupported::new("a window that does not fit its image".into()));
    };
    // Reshape's 0 copies the (symbolic) batch dim from the input.
    let split = g.const_i64(&[0, c as i64, kh as i64, kw as i64, oh as i64, ow as i64], "shape");
    let viewed = g.node("Reshape", &[&cols, &split], &[], "windows");
    Ok(g.node("Transpose", &[&viewed], &[("perm", Attr::Ints(vec![0, 4, 5, 1, 2, 3]))], hint))
}
