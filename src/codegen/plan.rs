//! Buffer planning: places every intermediate slot in one arena, letting
//! slots whose lifetimes (first write .. last read, in kernel order) do not
//! overlap share memory.

use super::kernel::{Program, SlotKind};

/// Offsets are rounded to 16 floats (64 bytes, a cache line) so vector loads
/// of different buffers never share a line.
const ALIGN: usize = 16;

pub struct ArenaPlan {
    /// Offset in f32 elements of each temp slot (`None` for params/outputs).
    pub offsets: Vec<Option<usize>>,
    /// Arena length in f32 elements.
    pub len: usize,
}

pub fn plan(p: &Program) -> ArenaPlan {
    let n = p.slots.len();
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    for (t, k) in p.kernels.iter().enumerate() {
        for s in k.writes().into_iter().chain(k.reads()) {
            first[s] = first[s].min(t);
            last[s] = last[s].max(t);
        }
    }
    // Largest first packs better; ties broken by first use for determinism.
    let mut order: Vec<usize> = (0..n)
        .filter(|&s| p.slots[s].kind == SlotKind::Temp && first[s] != usize::MAX)
        .collect();
    order.sort_by_key(|&s| (std::cmp::Reverse(p.slots[s].len), first[s], s));
    let mut placed: Vec<(usize, usize, usize, usize)> = Vec::new(); // (offset, len, first, last)
    let mut offsets = vec![None; n];
    let mut len = 0;
    for s in order {
        let size = p.slots[s].len.div_ceil(ALIGN).max(1) * ALIGN;
        // Busy address ranges among slots alive at the same time.
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&(_, _, f, l)| f <= last[s] && first[s] <= l)
            .map(|&(o, n, _, _)| (o, o + n))
            .collect();
        busy.sort();
        let mut off = 0;
        for (b0, b1) in busy {
            if off + size <= b0 {
                break;
            }
            off = off.max(b1);
        }
        placed.push((off, size, first[s], last[s]));
        offsets[s] = Some(off);
        len = len.max(off + size);
    }
    ArenaPlan { offsets, len }
}
