//! The IR text format, used by `nnc ir` and by snapshot tests.

use super::{Func, Op, Value};
use std::collections::HashMap;
use std::fmt::Write;

/// Attributes in `{k=v, ...}` form, or an empty string.
pub fn op_attrs(op: &Op) -> String {
    let attrs = op.attrs();
    if attrs.is_empty() {
        return String::new();
    }
    let items: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(" {{{}}}", items.join(", "))
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
    let mut printed: Vec<std::sync::Arc<super::scan::Scan>> = vec![];
    for inst in &f.insts {
        let args: Vec<String> = inst
            .args
            .iter()
            .map(|&a| names.get(&a).map_or_else(|| format!("?{a}"), |n| format!("v{n}")))
            .collect();
        let res = name(inst.result, &mut names);
        // A constant's value is written inline, not as an attribute.
        let body = if let Op::Const(x) = &inst.op {
            format!("const {x:?}")
        } else if args.is_empty() {
            inst.op.name().to_string()
        } else {
            format!("{} {}", inst.op.name(), args.join(", "))
        };
        let _ = writeln!(out, "    {res} = {body}{} : {}", op_attrs(&inst.op), f.ty(inst.result));
        // A scan's body follows the first instruction of its sibling group.
        if let Op::Scan { scan, .. } = &inst.op {
            if !printed.iter().any(|s| std::sync::Arc::ptr_eq(s, scan)) {
                printed.push(scan.clone());
                for line in print_func(&scan.body).lines() {
                    let _ = writeln!(out, "      | {line}");
                }
            }
        }
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
