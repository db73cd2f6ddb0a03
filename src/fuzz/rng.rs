//! A small deterministic generator (SplitMix64): the fuzzers need
//! reproducible streams from a seed, not cryptographic randomness, and no
//! dependency for it.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6e6e_632d_6675_7a7a)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    /// A size biased towards small values, with occasional large ones:
    /// most bugs need small inputs, overflows need large ones.
    pub fn size(&mut self) -> u64 {
        match self.below(10) {
            0..=5 => self.range(1, 16) as u64,
            6 | 7 => self.range(1, 1024) as u64,
            8 => *self.pick(&[
                0,
                1 << 16,
                1 << 24,
                1 << 31,
                (1 << 31) - 1,
                1 << 32,
                1 << 40,
                1 << 62,
                i64::MAX as u64,
            ]),
            _ => self.next_u64() >> self.below(64),
        }
    }

    /// A seed for a sub-stream (one input), so any input can be
    /// regenerated from the campaign seed and its index alone.
    pub fn fork(seed: u64, index: u64) -> Rng {
        let mut r = Rng::new(seed);
        r.0 = r.0.wrapping_add(index.wrapping_mul(0xd1b5_4a32_d192_ed03));
        r.next_u64();
        r
    }
}
