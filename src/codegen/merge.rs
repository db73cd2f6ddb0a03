//! Sibling merging: elementwise kernels over the same domain become one
//! multi-output loop, so values computed together are read once (e.g. an
//! Adam update of `m`, `v` and the parameter); and a row reduction joins the
//! elementwise kernel whose outputs it sums, so a row is written and reduced
//! in one pass (a softmax's `exp(x - max)` and its sum, a layer norm's
//! residual sum and its mean). Stores that no kernel reads any more after
//! merging then go.

use super::axes::{common_refinement, simplify, split_to};
use super::fuse::push_node;
use super::kernel::{Kernel, LoopKernel, Node, Program, SlotKind};

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

/// Merge each reduction over the innermost axis only (accumulated in
/// registers, stored once per row) into the nearest earlier elementwise
/// kernel over the same points when nothing in between produces its inputs
/// and it reads that kernel's outputs only at the same point: the merged
/// kernel stores the elementwise outputs and accumulates the reduction in the
/// same pass (its output 0; see [`LoopKernel`]). Runs on axis-simplified
/// kernels; the two domains are split to a common refinement first.
pub fn merge_reductions(p: &mut Program) {
    let mut j = 1;
    while j < p.kernels.len() {
        let Kernel::Loop(kj) = &p.kernels[j] else {
            j += 1;
            continue;
        };
        // Rows only: a reduction of a whole domain to one value would take
        // its elementwise partner off the threads (`fuse::parallel_ok`).
        if !kj.direct_reduce() || kj.dims.len() < 2 || kj.pinned || kj.outputs.len() != 1 {
            j += 1;
            continue;
        }
        let reads = p.kernels[j].reads();
        let mut merged = None;
        for i in (0..j).rev() {
            if let Kernel::Loop(ki) = &p.kernels[i] {
                // In-place results keep their plain store kernels
                // (`fuse::unsafe_inplace` reasons about those).
                let plain = ki
                    .outputs
                    .iter()
                    .all(|(_, o)| matches!(p.slots[o.slot].kind, SlotKind::Temp | SlotKind::Output(_)));
                if ki.reduce.is_none() && !ki.pinned && plain {
                    if let Some(k) = joined(ki, kj) {
                        merged = Some((i, k));
                        break;
                    }
                }
            }
            if p.kernels[i].writes().iter().any(|s| reads.contains(s)) {
                break;
            }
        }
        match merged {
            Some((i, k)) => {
                p.kernels.remove(j);
                p.kernels[i] = Kernel::Loop(k);
            }
            None => j += 1,
        }
    }
}

/// Elementwise `ki` and reduction `kj` as one kernel, when their domains
/// have a common refinement over which `kj` reads `ki`'s outputs at the same
/// point and the result still reduces its innermost axis only.
fn joined(ki: &LoopKernel, kj: &LoopKernel) -> Option<LoopKernel> {
    if ki.dims.iter().product::<usize>() != kj.dims.iter().product::<usize>() {
        return None;
    }
    let target = common_refinement(&ki.dims, &kj.dims)?;
    let (mut a, mut b) = (ki.clone(), kj.clone());
    if !split_to(&mut a, &target) || !split_to(&mut b, &target) || !compatible(&a, &b) {
        return None;
    }
    let reduce = b.reduce.clone();
    absorb(&mut a, b);
    // Output 0 is the reduction (absorbed last), then the elementwise stores.
    let reduction = a.outputs.pop().expect("the reduction's output");
    a.outputs.insert(0, reduction);
    a.reduce = reduce;
    let mut k = a;
    simplify(&mut k);
    k.direct_reduce().then_some(k)
}

/// Drop the stores of elementwise kernels into temporaries no kernel reads,
/// and kernels left with none. Merging leaves them behind: a value with
/// several readers was stored for them, and once they are all in its
/// kernel they take it from there (an LSTM step's backward loop stored nine
/// such gate values per element).
pub fn drop_dead_stores(p: &mut Program) {
    let read: std::collections::HashSet<_> = p.kernels.iter().flat_map(|k| k.reads()).collect();
    for k in &mut p.kernels {
        if let Kernel::Loop(l) = k {
            if l.reduce.is_none() {
                l.outputs
                    .retain(|(_, a)| read.contains(&a.slot) || p.slots[a.slot].kind != SlotKind::Temp);
            }
        }
    }
    p.kernels.retain(|k| !matches!(k, Kernel::Loop(l) if l.outputs.is_empty()));
}

/// `kj` reads `ki`'s outputs only where `ki` writes them for the same point.
fn compatible(ki: &LoopKernel, kj: &LoopKernel) -> bool {
    kj.nodes.iter().all(|n| match n {
        Node::Load(a) => ki
            .outputs
            .iter()
            .all(|(_, o)| o.slot != a.slot || (o.base, &o.strides) == (a.base, &a.strides)),
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
