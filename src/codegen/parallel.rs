//! Splitting a kernel's outermost axis across threads (rayon's pool, so no
//! thread is spawned per step).

/// Symbol name under which [`nnc_parallel_for`] is registered with the JIT.
pub const SYMBOL: &str = "nnc_parallel_for";

/// Run the kernel at address `f` over `0..n` in `threads` contiguous chunks.
/// Chunks are multiples of 16 points so 1-D kernels keep aligned vectors.
pub(super) extern "C" fn nnc_parallel_for(f: usize, ptrs: usize, n: i64, threads: i64) {
    let t = threads.clamp(1, n.max(1));
    let chunk = ((n + t - 1) / t + 15) / 16 * 16;
    let run = move |c: i64| {
        let lo = (c * chunk).min(n);
        let hi = ((c + 1) * chunk).min(n);
        if lo < hi {
            // Worker threads run with the caller's floating-point mode.
            let _ftz = super::fpenv::FlushSubnormals::new();
            // SAFETY: `f` is a kernel function compiled by this module with
            // the signature (ptrs, lo, hi); chunks are disjoint ranges of
            // the outermost axis, which `fuse` only parallelises when
            // different outer indices write disjoint output elements.
            let k: extern "C" fn(usize, i64, i64) = unsafe { std::mem::transmute(f) };
            k(ptrs, lo, hi);
        }
    };
    rayon::scope(|s| {
        for c in 1..t {
            s.spawn(move |_| run(c));
        }
        run(0);
    });
}

/// Symbol name under which [`nnc_random_normal`] is registered.
pub const NORMAL_SYMBOL: &str = "nnc_random_normal";

/// A standard normal draw, computed by the same f64 code as the interpreter
/// so both backends agree (normals are only drawn at initialisation).
pub(super) extern "C" fn nnc_random_normal(seed: u64, index: u64) -> f32 {
    crate::ir::random_normal(seed, index) as f32
}
