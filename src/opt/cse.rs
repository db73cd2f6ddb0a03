//! Common subexpression elimination.
//!
//! Two instructions with the same op, attributes and operands compute the
//! same value (every op is pure; the random ops are functions of seed and
//! position), so the later one is replaced by the earlier. The IR has a
//! single block, so the earlier definition dominates every later use.

use super::Rebuild;
use crate::ir::{Func, Op, Value};
use std::collections::HashMap;

/// A hashable identity for an op. Constants compare by bits, so `0.0` and
/// `-0.0` stay apart (they differ under division) and NaNs with one bit
/// pattern merge; other ops have no floats, and their `Debug` text spells out
/// the op and every attribute.
#[derive(PartialEq, Eq, Hash)]
enum OpKey {
    Const(u64),
    Other(String),
}

fn op_key(op: &Op) -> OpKey {
    if let Op::Const(x) = op {
        return OpKey::Const(x.to_bits());
    }
    OpKey::Other(format!("{op:?}"))
}

pub fn cse(f: &Func) -> Func {
    let mut rb = Rebuild::new(f);
    let mut seen: HashMap<(OpKey, Vec<Value>), Value> = HashMap::new();
    for inst in &f.insts {
        let args = rb.args(&inst.args);
        let mut key_args = args.clone();
        if inst.op.is_commutative() {
            key_args.sort();
        }
        let key = (op_key(&inst.op), key_args);
        let v = match seen.get(&key) {
            Some(&v) => v,
            None => {
                // The operand order stays as written; only the key is sorted.
                let v = rb.b.push(inst.op.clone(), &args);
                seen.insert(key, v);
                v
            }
        };
        rb.map[inst.result.index()] = Some(v);
    }
    rb.finish(f, "cse")
}
