//! Sibling merging: elementwise kernels over the same domain become one
//! multi-output loop, so values computed together are read once (e.g. an
//! Adam update of `m`, `v` and the parameter).

use super::fuse::push_node;
use super::kernel::{Kernel, LoopKernel, Node, Program};

/// Merge each elementwise kernel into an earlier one over the same domain
/// when nothing in between produces its inputs and it reads the earlier
/// kernel's outputs only at the same index.
pub fn merge_siblings(p: &mut Program) {
    let mut j = 1;
    while j < p.kernels.len() {
        let Kernel::Loop(kj) = &p.kernels[j] else {
            j += 1;
            continue;
        };
        if kj.reduce.is_some() || kj.pinned {
            j += 1;
            continue;
        }
        let reads = p.kernels[j].reads();
        let mut target = None;
        for i in (0..j).rev() {
            let writes_i = p.kernels[i].writes();
            if let Kernel::Loop(ki) = &p.kernels[i] {
                if ki.reduce.is_none() && ki.dims == kj.dims && compatible(ki, kj) {
                    target = Some(i);
                    break;
                }
            }
            if writes_i.iter().any(|s| reads.contains(s)) {
                break;
            }
        }
        if let Some(i) = target {
            let Kernel::Loop(kj) = p.kernels.remove(j) else { unreachable!() };
            let Kernel::Loop(ki) = &mut p.kernels[i] else { unreachable!() };
            absorb(ki, kj);
        } else {
            j += 1;
        }
    }
}

/// `kj` reads `ki`'s outputs only where `ki` writes them for the same point.
fn compatible(ki: &LoopKernel, kj: &LoopKernel) -> bool {
    kj.nodes.iter().all(|n| match n {
        Node::Load(a) => ki.outputs.iter().all(|(_, o)| o.slot != a.slot || o.strides == a.strides),
        _ => true,
    })
}

fn absorb(ki: &mut LoopKernel, kj: LoopKernel) {
    let mut map = Vec::with_capacity(kj.nodes.len());
    for n in kj.nodes {
        let r = |x: usize| map[x];
        let idx = match n {
            Node::Load(a) => match ki.outputs.iter().find(|(_, o)| o.slot == a.slot) {
                Some((src, _)) => *src,
                None => push_node(&mut ki.nodes, Node::Load(a)),
            },
            Node::Unary(u, x) => push_node(&mut ki.nodes, Node::Unary(u, r(x))),
            Node::Binary(b, x, y) => push_node(&mut ki.nodes, Node::Binary(b, r(x), r(y))),
            Node::Compare(c, x, y) => push_node(&mut ki.nodes, Node::Compare(c, r(x), r(y))),
            Node::Select(c, x, y) => push_node(&mut ki.nodes, Node::Select(r(c), r(x), r(y))),
            Node::Trunc(x) => push_node(&mut ki.nodes, Node::Trunc(r(x))),
            // The key is an operand too: without renumbering, a draw merged
            // into another kernel read some other node as its key.
            Node::Random {
                seed,
                key,
                strides,
                normal,
            } => push_node(
                &mut ki.nodes,
                Node::Random {
                    seed,
                    key: key.map(r),
                    strides,
                    normal,
                },
            ),
            leaf @ (Node::Const(_) | Node::Index(_)) => push_node(&mut ki.nodes, leaf),
        };
        map.push(idx);
    }
    for (src, a) in kj.outputs {
        ki.outputs.push((map[src], a));
    }
    ki.label = format!("{}; {}", ki.label, kj.label);
}
