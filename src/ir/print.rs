//! The IR text format, used by `nnc ir` and by snapshot tests.

use super::{BinaryOp, CmpOp, Func, Op, UnaryOp, Value};
use std::collections::HashMap;
use std::fmt::Write;

pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Const(_) => "const",
        Op::Unary(u) => match u {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Abs => "abs",
            UnaryOp::Sign => "sign",
        },
        Op::Binary(b) => match b {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
        },
        Op::Compare(c) => match c {
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
        },
        Op::Select => "select",
        Op::Broadcast { .. } => "broadcast",
        Op::ReduceSum { .. } => "reduce_sum",
        Op::ReduceMax { .. } => "reduce_max",
        Op::Reshape { .. } => "reshape",
        Op::Transpose { .. } => "transpose",
        Op::MatMul => "matmul",
        Op::OneHot { .. } => "one_hot",
        Op::Cast { .. } => "cast",
        Op::RandomUniform { .. } => "random_uniform",
        Op::RandomNormal { .. } => "random_normal",
    }
}

fn list<T: std::fmt::Display>(xs: &[T]) -> String {
    let items: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(", "))
}

/// Attributes in `{k=v, ...}` form, or an empty string.
pub fn op_attrs(op: &Op) -> String {
    match op {
        Op::Broadcast { shape } | Op::Reshape { shape } => format!(" {{shape={}}}", list(shape)),
        Op::ReduceSum { axes, keep } | Op::ReduceMax { axes, keep } => format!(" {{axes={}, keep={keep}}}", list(axes)),
        Op::Transpose { perm } => format!(" {{perm={}}}", list(perm)),
        Op::OneHot { depth } => format!(" {{depth={depth}}}"),
        Op::Cast { to } => format!(" {{to={to}}}"),
        Op::RandomUniform { shape, seed } | Op::RandomNormal { shape, seed } => {
            format!(" {{shape={}, seed={seed}}}", list(shape))
        }
        _ => String::new(),
    }
}

/// Print `f`, renumbering values in definition order.
pub fn print_func(f: &Func) -> String {
    let mut names: HashMap<Value, usize> = HashMap::new();
    let mut next = 0;
    let mut name = |v: Value, names: &mut HashMap<Value, usize>| -> String {
        let n = *names.entry(v).or_insert_with(|| {
            next += 1;
            next - 1
        });
        format!("v{n}")
    };
    let mut out = String::new();
    let params: Vec<String> = f.params.iter().map(|&p| format!("{}: {}", name(p, &mut names), f.ty(p))).collect();
    let results: Vec<String> = f.results.iter().map(|&r| f.ty(r).to_string()).collect();
    let ret = if results.len() == 1 {
        results[0].clone()
    } else {
        format!("({})", results.join(", "))
    };
    let _ = writeln!(out, "func @{}({}) -> {} {{", f.name, params.join(", "), ret);
    for inst in &f.insts {
        let args: Vec<String> = inst
            .args
            .iter()
            .map(|&a| names.get(&a).map_or_else(|| format!("?{a}"), |n| format!("v{n}")))
            .collect();
        let res = name(inst.result, &mut names);
        let body = match &inst.op {
            Op::Const(x) => format!("const {x:?}"),
            op if args.is_empty() => op_name(op).to_string(),
            op => format!("{} {}", op_name(op), args.join(", ")),
        };
        let _ = writeln!(out, "    {res} = {body}{} : {}", op_attrs(&inst.op), f.ty(inst.result));
    }
    let rets: Vec<String> = f
        .results
        .iter()
        .map(|r| names.get(r).map_or_else(|| format!("?{r}"), |n| format!("v{n}")))
        .collect();
    let _ = writeln!(out, "    return {}", rets.join(", "));
    out.push_str("}\n");
    out
}
