//! Dead code elimination.
//!
//! Every op is pure (even the random ops are functions of their seed and
//! position), so an instruction is needed exactly when a result depends on
//! it; everything else goes.

use super::Rebuild;
use crate::ir::Func;

pub fn dce(f: &Func) -> Func {
    let mut live = vec![false; f.types.len()];
    for &r in &f.results {
        live[r.index()] = true;
    }
    // Operands precede their users, so one backward sweep finds every
    // transitively used instruction.
    for inst in f.insts.iter().rev() {
        if live[inst.result.index()] {
            for &a in &inst.args {
                live[a.index()] = true;
            }
        }
    }
    let mut rb = Rebuild::new(f);
    for inst in f.insts.iter().filter(|i| live[i.result.index()]) {
        let args = rb.args(&inst.args);
        rb.map[inst.result.index()] = Some(rb.b.push(inst.op.clone(), &args));
    }
    rb.finish(f, "dce")
}
