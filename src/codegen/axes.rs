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

/// The coarsest domain that both `a` and `b` (row-major domains of the
/// same number of points) split into: the union of their axis boundaries,
/// or None when those do not nest (`[6, 4]` against `[4, 6]`).
pub fn common_refinement(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    // Axis boundaries as the point counts of the outer axes before them.
    let bounds = |d: &[usize]| -> Vec<usize> {
        d.iter()
            .scan(1usize, |p, &n| {
                *p *= n;
                Some(*p)
            })
            .collect()
    };
    let (ba, bb) = (bounds(a), bounds(b));
    if ba.last().copied().unwrap_or(1) != bb.last().copied().unwrap_or(1) || a.contains(&0) || b.contains(&0) {
        return None;
    }
    let mut all: Vec<usize> = ba.into_iter().chain(bb).collect();
    all.sort_unstable();
    all.dedup();
    let mut out = Vec::with_capacity(all.len());
    let mut prev = 1;
    for x in all {
        if x % prev != 0 {
            return None;
        }
        out.push(x / prev);
        prev = x;
    }
    Some(out)
}

/// Split `k`'s axes into `target` (a refinement of `k.dims`, from
/// [`common_refinement`]): an axis of stride `s` cut into sizes
/// `(t_1, .., t_m)` walks sub-axis `r` with stride `s * t_{r+1} * .. * t_m`,
/// and keeps its reduction flag. False (and `k` unchanged) when `target`
/// does not refine `k.dims`.
pub fn split_to(k: &mut LoopKernel, target: &[usize]) -> bool {
    let mut groups = Vec::with_capacity(k.dims.len());
    let mut t = 0;
    for &n in &k.dims {
        let start = t;
        let mut p = 1;
        while p < n && t < target.len() {
            p *= target[t];
            t += 1;
        }
        if p != n {
            return false;
        }
        groups.push(start..t);
    }
    if t != target.len() {
        return false;
    }
    let split = |s: &[isize]| -> Vec<isize> {
        let mut out = Vec::with_capacity(target.len());
        for (g, &st) in groups.iter().zip(s) {
            let mut inner = 1isize;
            let mut sub: Vec<isize> = target[g.clone()]
                .iter()
                .rev()
                .map(|&n| {
                    let v = st * inner;
                    inner *= n as isize;
                    v
                })
                .collect();
            sub.reverse();
            out.extend(sub);
        }
        out
    };
    for s in stride_vecs(k) {
        *s = split(s);
    }
    if let Some((_, red)) = &mut k.reduce {
        *red = groups
            .iter()
            .zip(red.iter())
            .flat_map(|(g, &r)| std::iter::repeat_n(r, g.len()))
            .collect();
    }
    k.dims = target.to_vec();
    true
}
