//! Mini-batches: rows of a dataset gathered into contiguous tensors, in an
//! epoch's shuffled order, one batch ahead on a second thread.
//!
//! A shuffled batch reads rows scattered over a dataset far larger than the
//! caches (MNIST's 60,000 images are 188 MB as f32). On the training thread
//! that wait was 12 % of an epoch: the step evicts everything the gather
//! could reuse. A loader thread gathers the next batches while the steps
//! run, as `tf.data`'s prefetch or a PyTorch `DataLoader` worker would.

use super::data::Dataset;
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};
use std::sync::mpsc::{channel, sync_channel};

/// Rows `idx` of `a`, copied row by row (ndarray's `select` concatenates
/// one view per row, several times slower).
pub fn rows(a: &ArrayD<f32>, idx: &[usize]) -> ArrayD<f32> {
    let mut out = ArrayD::zeros(IxDyn(&[0]));
    gather_rows(a, idx, &mut out);
    out
}

/// Rows `idx` of `a` into `out`, reusing its memory when it already has the
/// batch's shape (every full batch of an epoch).
///
/// # Panics
/// If an index is out of range (the caller's order is a permutation of the
/// dataset's rows).
pub fn gather_rows(a: &ArrayD<f32>, idx: &[usize], out: &mut ArrayD<f32>) {
    let mut shape = a.shape().to_vec();
    shape[0] = idx.len();
    if out.shape() != shape.as_slice() || !out.is_standard_layout() {
        *out = ArrayD::zeros(IxDyn(&shape));
    }
    let dst = out.as_slice_mut().expect("standard layout");
    let Some(flat) = a.as_slice() else {
        let picked = a.select(Axis(0), idx);
        dst.iter_mut().zip(picked.iter()).for_each(|(d, &s)| *d = s);
        return;
    };
    let width = a.shape()[1..].iter().product::<usize>();
    for (row, &i) in dst.chunks_exact_mut(width.max(1)).zip(idx) {
        row.copy_from_slice(&flat[i * width..(i + 1) * width]);
    }
}

/// What the consumer of a batch wants next.
pub enum Flow {
    Continue,
    Stop,
}

/// Batches gathered per hand-over between the threads: waking a thread
/// costs microseconds (more in a VM), so the loader hands over this many
/// batches at a time.
const CHUNK: usize = 16;

/// One hand-over: the rows of up to `CHUNK` consecutive batches, back to
/// back.
struct Chunk {
    x: ArrayD<f32>,
    y: ArrayD<f32>,
}

/// Calls `each(i, x, y)` for batch `i` = rows `batches[i]` of `data`, in
/// order, while a loader thread gathers the batches after it. Stops at the
/// first `Flow::Stop` or error (the loader then stops too).
pub fn for_each_batch(
    data: &Dataset,
    batches: &[&[usize]],
    mut each: impl FnMut(usize, ArrayViewD<'_, f32>, ArrayViewD<'_, f32>) -> Result<Flow, String>,
) -> Result<(), String> {
    let chunks: Vec<&[&[usize]]> = batches.chunks(CHUNK).collect();
    std::thread::scope(|scope| {
        // Three chunk buffers circulate: one trained on, one filled, one
        // ready. The channels live in this closure, so returning from it
        // (done, stopped or failed) closes them and ends the loader wherever
        // it waits; the scope then joins it.
        let (full_tx, full_rx) = sync_channel::<Chunk>(1);
        let (empty_tx, empty_rx) = channel::<Chunk>();
        for _ in 0..3 {
            let empty = ArrayD::zeros(IxDyn(&[0]));
            let _ = empty_tx.send(Chunk {
                x: empty.clone(),
                y: empty,
            });
        }
        let loader = &chunks;
        scope.spawn(move || {
            let mut rows: Vec<usize> = vec![];
            for chunk in loader {
                // Either channel closing means the consumer has stopped.
                let Ok(mut c) = empty_rx.recv() else { return };
                rows.clear();
                chunk.iter().for_each(|b| rows.extend_from_slice(b));
                gather_rows(&data.x, &rows, &mut c.x);
                gather_rows(&data.y, &rows, &mut c.y);
                if full_tx.send(c).is_err() {
                    return;
                }
            }
        });
        let mut i = 0;
        for chunk in &chunks {
            let c = full_rx.recv().map_err(|_| "the batch loader stopped unexpectedly".to_string())?;
            let mut start = 0;
            for b in chunk.iter() {
                let rows = Slice::from(start..start + b.len());
                start += b.len();
                let flow = each(i, c.x.slice_axis(Axis(0), rows), c.y.slice_axis(Axis(0), rows))?;
                i += 1;
                if let Flow::Stop = flow {
                    return Ok(());
                }
            }
            let _ = empty_tx.send(c);
        }
        Ok(())
    })
}
