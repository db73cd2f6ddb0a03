//! Axis simplification of loop kernels: fewer, longer loops.

use super::kernel::{LoopKernel, Node};

/// Every stride vector of a kernel, for axis surgery.
fn stride_vecs(k: &mut LoopKernel) -> Vec<&mut Vec<isize>> {
    let mut out = Vec::new();
    for n in &mut k.nodes {
        match n {
            Node::Load(a) => out.push(&mut a.strides),
            Node::Index(s) | Node::Random { strides: s, .. } => out.push(s),
            _ => {}
        }
    }
    for (_, a) in &mut k.outputs {
        out.push(&mut a.strides);
    }
    out
}

/// Drop size-1 axes and merge adjacent axes that every access walks
/// contiguously, so most kernels become one long (vectorisable) loop.
pub fn simplify(k: &mut LoopKernel) {
    let keep: Vec<bool> = k.dims.iter().map(|&d| d != 1).collect();
    let filter = |v: &mut Vec<isize>| {
        let mut i = 0;
        v.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    };
    for s in stride_vecs(k) {
        filter(s);
    }
    if let Some((_, red)) = &mut k.reduce {
        let mut i = 0;
        red.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }
    k.dims.retain(|&d| d != 1);
    let mut a = k.dims.len();
    while a >= 2 {
        a -= 1;
        // Try to merge axis a-1 into axis a.
        let (outer, inner) = (a - 1, a);
        let dim_in = k.dims[inner] as isize;
        let red_ok = k.reduce.as_ref().is_none_or(|(_, r)| r[outer] == r[inner]);
        let mergeable = red_ok && stride_vecs(k).iter().all(|s| s[outer] == s[inner] * dim_in);
        if mergeable {
            k.dims[inner] *= k.dims[outer];
            k.dims.remove(outer);
            for s in stride_vecs(k) {
                s.remove(outer);
            }
            if let Some((_, r)) = &mut k.reduce {
                r.remove(outer);
            }
        }
    }
}
