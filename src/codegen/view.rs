//! Views as stride arithmetic: the access of a view op's result, given the
//! access of its operand, so the op moves no element.
//!
//! Each function maps where element `i` of the operand lies (`base + Σ
//! strides·i`) to where element `j` of the result lies. Broadcast,
//! transpose and slice always have one; reverse has one with negative
//! strides; reshape has one when the axes it merges are laid out one inside
//! the other (always over contiguous data, and over a slice of the last axis
//! when only that axis is split: `[B, T, 3D]` sliced to `[B, T, D]` and split
//! into heads `[B, T, H, D/H]`).

use super::kernel::Access;

/// Broadcast from `from` to `to` (NumPy alignment: trailing axes match,
/// size-1 axes are repeated by a zero stride).
pub fn broadcast(a: &Access, from: &[usize], to: &[usize]) -> Access {
    let off = to.len() - from.len();
    let strides = (0..to.len())
        .map(|i| {
            if i < off || (from[i - off] == 1 && to[i] != 1) {
                0
            } else {
                a.strides[i - off]
            }
        })
        .collect();
    Access { strides, ..a.clone() }
}

/// Axis `d` of the result is axis `perm[d]` of the operand.
pub fn transpose(a: &Access, perm: &[usize]) -> Access {
    Access {
        strides: perm.iter().map(|&p| a.strides[p]).collect(),
        ..a.clone()
    }
}

/// Every `stride[d]`-th element from `start[d]` along each axis.
pub fn slice(a: &Access, start: &[usize], stride: &[usize]) -> Access {
    Access {
        slot: a.slot,
        base: a.base + offset(start, &a.strides),
        strides: a.strides.iter().zip(stride).map(|(&s, &k)| s * k as isize).collect(),
    }
}

/// The axes `axes` of an operand of shape `dims` read backwards.
pub fn reverse(a: &Access, dims: &[usize], axes: &[usize]) -> Access {
    let mut out = a.clone();
    for &ax in axes {
        out.base += (dims[ax] as isize - 1) * a.strides[ax];
        out.strides[ax] = -a.strides[ax];
    }
    out
}

/// The operand of shape `from` read row-major as shape `to`, when some
/// strides do that: each group of operand axes that becomes a group of
/// result axes (their sizes having equal products) must be nested, axis
/// `k`'s stride being axis `k+1`'s times its size. None when the data would
/// have to move (a transposed pair of axes merged into one).
pub fn reshape(a: &Access, from: &[usize], to: &[usize]) -> Option<Access> {
    if from.contains(&0) || to.contains(&0) {
        return Some(Access::contiguous(a.slot, to));
    }
    // Size-1 axes are never stepped along: drop them from the operand.
    let (od, os): (Vec<usize>, Vec<isize>) = from.iter().zip(&a.strides).filter(|(&n, _)| n != 1).map(|(&n, &s)| (n, s)).unzip();
    let mut strides = vec![0isize; to.len()];
    let (mut oi, mut ni) = (0, 0);
    while oi < od.len() && ni < to.len() {
        // The smallest groups `od[oi..oj]` and `to[ni..nj]` of equal size.
        let (mut oj, mut nj) = (oi + 1, ni + 1);
        let (mut op, mut np) = (od[oi], to[ni]);
        while op != np {
            if np < op {
                np *= to[nj];
                nj += 1;
            } else {
                op *= od[oj];
                oj += 1;
            }
        }
        if (oi..oj - 1).any(|k| os[k] != os[k + 1] * od[k + 1] as isize) {
            return None;
        }
        // The group is one axis of stride `os[oj-1]` split row-major.
        strides[nj - 1] = os[oj - 1];
        for k in (ni..nj - 1).rev() {
            strides[k] = strides[k + 1] * to[k + 1] as isize;
        }
        (oi, ni) = (oj, nj);
    }
    // Trailing size-1 result axes keep stride 0.
    Some(Access {
        slot: a.slot,
        base: a.base,
        strides,
    })
}

/// `Σ index[d] * strides[d]`: where a multi-index lies.
pub fn offset(index: &[usize], strides: &[isize]) -> isize {
    index.iter().zip(strides).map(|(&i, &s)| i as isize * s).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: isize, strides: &[isize]) -> Access {
        Access {
            slot: 0,
            base,
            strides: strides.to_vec(),
        }
    }

    #[test]
    fn heads_of_a_qkv_slice_are_strides() {
        // k of qkv: [32, 64, 384] sliced to [32, 64, 128] at 128.
        let qkv = Access::contiguous(0, &[32, 64, 384]);
        let k = slice(&qkv, &[0, 0, 128], &[1, 1, 1]);
        assert_eq!(k, at(128, &[24576, 384, 1]));
        let heads = reshape(&k, &[32, 64, 128], &[32, 64, 4, 32]).unwrap();
        assert_eq!(heads, at(128, &[24576, 384, 32, 1]));
        // Merging the batch and time axes of the slice is still a view.
        assert_eq!(reshape(&k, &[32, 64, 128], &[2048, 128]), Some(at(128, &[384, 1])));
    }

    #[test]
    fn merging_transposed_axes_needs_a_copy() {
        let t = transpose(&Access::contiguous(0, &[32, 4, 64, 32]), &[0, 2, 1, 3]);
        assert_eq!(reshape(&t, &[32, 64, 4, 32], &[32, 64, 128]), None);
        // ... and merging a slice's sliced axis with the one outside it too.
        let k = slice(&Access::contiguous(0, &[8, 6]), &[0, 2], &[1, 1]);
        assert_eq!(reshape(&k, &[8, 4], &[32]), None);
    }

    #[test]
    fn reshape_over_contiguous_data_is_row_major() {
        let a = Access::contiguous(3, &[6, 4]);
        let r = reshape(&a, &[6, 4], &[2, 3, 1, 4]).unwrap();
        assert_eq!(r.strides[..2], [12, 4]);
        assert_eq!(r.strides[3], 1);
        let r = reshape(&a, &[6, 4], &[24, 1]).unwrap();
        assert_eq!(r.strides[0], 1);
    }

    #[test]
    fn reverse_starts_at_the_last_element() {
        let a = Access::contiguous(0, &[3, 5]);
        assert_eq!(reverse(&a, &[3, 5], &[1]), at(4, &[5, -1]));
        assert_eq!(reverse(&a, &[3, 5], &[0, 1]), at(14, &[-5, -1]));
    }
}
