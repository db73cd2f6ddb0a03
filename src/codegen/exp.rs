//! Elementary functions as inline Cranelift code, for one f32 or four lanes.
//!
//! A libm call per element costs a call, spills and no vectorisation; these
//! polynomials (Cephes single precision, ~1–2 ulp) run in the fused loop body.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{F32, F32X4, I32, I32X4};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// Emits float code either for one scalar (`vec == false`) or for `f32x4`.
/// Comparisons yield masks: `i8` for scalars, `i32x4` all-ones lanes for
/// vectors; [`Lanes::sel`] consumes them.
#[derive(Clone, Copy)]
pub struct Lanes {
    pub vec: bool,
    /// The ISA has fused multiply-add (otherwise Cranelift would turn `fma`
    /// into a libcall, so we multiply and add instead).
    pub fma: bool,
}

impl Lanes {
    pub fn fty(self) -> Type {
        if self.vec {
            F32X4
        } else {
            F32
        }
    }
    pub fn ity(self) -> Type {
        if self.vec {
            I32X4
        } else {
            I32
        }
    }
    pub fn f(self, b: &mut FunctionBuilder, x: f32) -> Value {
        let c = b.ins().f32const(x);
        if self.vec {
            b.ins().splat(F32X4, c)
        } else {
            c
        }
    }
    pub fn i(self, b: &mut FunctionBuilder, x: i32) -> Value {
        let c = b.ins().iconst(I32, x as i64);
        if self.vec {
            b.ins().splat(I32X4, c)
        } else {
            c
        }
    }
    /// `x * y + z`.
    pub fn mul_add(self, b: &mut FunctionBuilder, x: Value, y: Value, z: Value) -> Value {
        if self.fma {
            b.ins().fma(x, y, z)
        } else {
            let p = b.ins().fmul(x, y);
            b.ins().fadd(p, z)
        }
    }
    pub fn cmp(self, b: &mut FunctionBuilder, cc: FloatCC, x: Value, y: Value) -> Value {
        b.ins().fcmp(cc, x, y)
    }
    pub fn sel(self, b: &mut FunctionBuilder, mask: Value, x: Value, y: Value) -> Value {
        if self.vec {
            let m = b.ins().bitcast(F32X4, MemFlagsData::new(), mask);
            b.ins().bitselect(m, x, y)
        } else {
            b.ins().select(mask, x, y)
        }
    }
    pub fn to_bits(self, b: &mut FunctionBuilder, x: Value) -> Value {
        b.ins().bitcast(self.ity(), MemFlagsData::new(), x)
    }
    pub fn bits_to_float(self, b: &mut FunctionBuilder, x: Value) -> Value {
        b.ins().bitcast(self.fty(), MemFlagsData::new(), x)
    }
    fn poly(self, b: &mut FunctionBuilder, x: Value, coeffs: &[f32]) -> Value {
        let mut y = self.f(b, coeffs[0]);
        for &c in &coeffs[1..] {
            let cv = self.f(b, c);
            y = self.mul_add(b, y, x, cv);
        }
        y
    }
    /// 2^n for integer lanes `n` in [-126, 127].
    fn pow2i(self, b: &mut FunctionBuilder, n: Value) -> Value {
        let bias = self.i(b, 127);
        let e = b.ins().iadd(n, bias);
        let sh = b.ins().iconst(I32, 23);
        let e = b.ins().ishl(e, sh);
        self.bits_to_float(b, e)
    }
}

const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

pub fn exp(l: Lanes, b: &mut FunctionBuilder, x: Value) -> Value {
    // Beyond these bounds the result is 0 or inf anyway; clamping keeps the
    // exponent arithmetic in range. NaN passes through fmax/fmin.
    let lo = l.f(b, -104.0);
    let hi = l.f(b, 88.73);
    let x = b.ins().fmax(x, lo);
    let x = b.ins().fmin(x, hi);
    let log2e = l.f(b, std::f32::consts::LOG2_E);
    let t = b.ins().fmul(x, log2e);
    let n = b.ins().nearest(t);
    let c1 = l.f(b, -LN2_HI);
    let c2 = l.f(b, -LN2_LO);
    let r = l.mul_add(b, n, c1, x);
    let r = l.mul_add(b, n, c2, r);
    let p = l.poly(
        b,
        r,
        &[1.987_569_2e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5],
    );
    let r2 = b.ins().fmul(r, r);
    let one = l.f(b, 1.0);
    let rp1 = b.ins().fadd(r, one);
    let y = l.mul_add(b, p, r2, rp1);
    // Scale by 2^n in two halves so n in [-150, 128] never overflows the
    // exponent field of either factor.
    let ni = b.ins().fcvt_to_sint_sat(l.ity(), n);
    let one_i = b.ins().iconst(I32, 1);
    let n1 = b.ins().sshr(ni, one_i);
    let n2 = b.ins().isub(ni, n1);
    let s1 = l.pow2i(b, n1);
    let s2 = l.pow2i(b, n2);
    let y = b.ins().fmul(y, s1);
    b.ins().fmul(y, s2)
}

pub fn log(l: Lanes, b: &mut FunctionBuilder, x: Value) -> Value {
    let xi = l.to_bits(b, x);
    // Exponent e with x = m * 2^e, m in [0.5, 1).
    let sh = b.ins().iconst(I32, 23);
    let e = b.ins().ushr(xi, sh);
    let bias = l.i(b, -126);
    let e = b.ins().iadd(e, bias);
    let keep = l.i(b, 0x807f_ffff_u32 as i32);
    let m = b.ins().band(xi, keep);
    let half = l.i(b, 0x3f00_0000);
    let m = b.ins().bor(m, half);
    let m = l.bits_to_float(b, m);
    let ef = b.ins().fcvt_from_sint(l.fty(), e);
    // Shift m into [sqrt(1/2), sqrt(2)) so the polynomial argument is small.
    let sqrthf = l.f(b, std::f32::consts::FRAC_1_SQRT_2);
    let small = l.cmp(b, FloatCC::LessThan, m, sqrthf);
    let one = l.f(b, 1.0);
    let zero = l.f(b, 0.0);
    let dec = l.sel(b, small, one, zero);
    let ef = b.ins().fsub(ef, dec);
    let m2 = b.ins().fadd(m, m);
    let m = l.sel(b, small, m2, m);
    let m = b.ins().fsub(m, one);
    let z = b.ins().fmul(m, m);
    let p = l.poly(
        b,
        m,
        &[
            7.037_683_6e-2,
            -1.151_461e-1,
            1.167_699_9e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_8e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333e-1,
        ],
    );
    let y = b.ins().fmul(p, m);
    let y = b.ins().fmul(y, z);
    let c_lo = l.f(b, LN2_LO);
    let y = l.mul_add(b, ef, c_lo, y);
    let mhalf = l.f(b, -0.5);
    let y = l.mul_add(b, z, mhalf, y);
    let r = b.ins().fadd(m, y);
    let c_hi = l.f(b, LN2_HI);
    let r = l.mul_add(b, ef, c_hi, r);
    // log 0 = -inf, log of a negative or NaN = NaN, log inf = inf.
    let ninf = l.f(b, f32::NEG_INFINITY);
    let nan = l.f(b, f32::NAN);
    let inf = l.f(b, f32::INFINITY);
    let is_zero = l.cmp(b, FloatCC::Equal, x, zero);
    let special = l.sel(b, is_zero, ninf, nan);
    let pos = l.cmp(b, FloatCC::GreaterThan, x, zero);
    let r = l.sel(b, pos, r, special);
    let is_inf = l.cmp(b, FloatCC::Equal, x, inf);
    l.sel(b, is_inf, inf, r)
}

pub fn tanh(l: Lanes, b: &mut FunctionBuilder, x: Value) -> Value {
    // tanh|x| = (1 - e^{-2|x|}) / (1 + e^{-2|x|}): never overflows.
    let ax = b.ins().fabs(x);
    let m2 = l.f(b, -2.0);
    let t = b.ins().fmul(ax, m2);
    let t = exp(l, b, t);
    let one = l.f(b, 1.0);
    let num = b.ins().fsub(one, t);
    let den = b.ins().fadd(one, t);
    let r = b.ins().fdiv(num, den);
    // Put x's sign back.
    let sign_mask = l.i(b, i32::MIN);
    let xb = l.to_bits(b, x);
    let s = b.ins().band(xb, sign_mask);
    let rb = l.to_bits(b, r);
    let rb = b.ins().bor(rb, s);
    l.bits_to_float(b, rb)
}

/// `x^y` with the sign rules of `powf` for negative bases.
pub fn pow(l: Lanes, b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let ax = b.ins().fabs(x);
    let lg = log(l, b, ax);
    let t = b.ins().fmul(y, lg);
    let r = exp(l, b, t);
    let yt = b.ins().trunc(y);
    let half = l.f(b, 0.5);
    let yh = b.ins().fmul(y, half);
    let yht = b.ins().trunc(yh);
    let zero = l.f(b, 0.0);
    let neg = l.cmp(b, FloatCC::LessThan, x, zero);
    let y_int = l.cmp(b, FloatCC::Equal, yt, y);
    let y_half_frac = l.cmp(b, FloatCC::NotEqual, yht, yh);
    let y_odd = b.ins().band(y_int, y_half_frac);
    let flip = b.ins().band(neg, y_odd);
    let nr = b.ins().fneg(r);
    let r = l.sel(b, flip, nr, r);
    let y_frac = l.cmp(b, FloatCC::NotEqual, yt, y);
    let bad = b.ins().band(neg, y_frac);
    let nan = l.f(b, f32::NAN);
    let r = l.sel(b, bad, nan, r);
    let y0 = l.cmp(b, FloatCC::Equal, y, zero);
    let one = l.f(b, 1.0);
    l.sel(b, y0, one, r)
}

// Cephes sinf/cosf: reduce by multiples of pi/4 in three parts (exact for
// |x| up to about 8192), then a polynomial for sin or cos on [-pi/4, pi/4].
const FOUR_OVER_PI: f32 = 1.273_239_5;
const DP1: f32 = 0.785_156_25;
const DP2: f32 = 2.418_756_5e-4;
const DP3: f32 = 3.774_895e-8;
const SIN_POLY: [f32; 3] = [-1.951_529_6e-4, 8.332_161e-3, -1.666_665_5e-1];
const COS_POLY: [f32; 3] = [2.443_315_7e-5, -1.388_731_6e-3, 4.166_664_6e-2];

/// `|x|` reduced to `r` in [-pi/4, pi/4] and the even octant `j` (i32 lanes).
fn reduce_quarter_pi(l: Lanes, b: &mut FunctionBuilder, ax: Value) -> (Value, Value) {
    let fopi = l.f(b, FOUR_OVER_PI);
    let t = b.ins().fmul(ax, fopi);
    let j = b.ins().fcvt_to_sint_sat(l.ity(), t);
    // Round the octant up to even: (j + 1) & !1.
    let one = l.i(b, 1);
    let j = b.ins().iadd(j, one);
    let not_one = l.i(b, !1);
    let j = b.ins().band(j, not_one);
    let y = b.ins().fcvt_from_sint(l.fty(), j);
    let mut r = ax;
    for c in [DP1, DP2, DP3] {
        let nc = l.f(b, -c);
        r = l.mul_add(b, y, nc, r);
    }
    (r, j)
}

/// sin and cos polynomials of a reduced argument.
fn sin_cos_poly(l: Lanes, b: &mut FunctionBuilder, r: Value) -> (Value, Value) {
    let z = b.ins().fmul(r, r);
    // sin r = r + r z (s0 z^2 + s1 z + s2)
    let s = l.poly(b, z, &SIN_POLY);
    let rz = b.ins().fmul(r, z);
    let sin = l.mul_add(b, s, rz, r);
    // cos r = 1 - z/2 + z^2 (c0 z^2 + c1 z + c2)
    let c = l.poly(b, z, &COS_POLY);
    let z2 = b.ins().fmul(z, z);
    let half = l.f(b, -0.5);
    let one = l.f(b, 1.0);
    let base = l.mul_add(b, z, half, one);
    let cos = l.mul_add(b, c, z2, base);
    (sin, cos)
}

/// Lanes where `j & bit` is set, as a mask for [`Lanes::sel`].
fn bit_set(l: Lanes, b: &mut FunctionBuilder, j: Value, bit: i32) -> Value {
    use cranelift_codegen::ir::condcodes::IntCC;
    let m = l.i(b, bit);
    let v = b.ins().band(j, m);
    let zero = l.i(b, 0);
    b.ins().icmp(IntCC::NotEqual, v, zero)
}

pub fn sin(l: Lanes, b: &mut FunctionBuilder, x: Value) -> Value {
    let ax = b.ins().fabs(x);
    let (r, j) = reduce_quarter_pi(l, b, ax);
    let (s, c) = sin_cos_poly(l, b, r);
    let swap = bit_set(l, b, j, 2);
    let y = l.sel(b, swap, c, s);
    // Negative in octants 4..7, and sin is odd: flip for x < 0 too.
    let flip = bit_set(l, b, j, 4);
    let ny = b.ins().fneg(y);
    let y = l.sel(b, flip, ny, y);
    let sign_mask = l.i(b, i32::MIN);
    let xb = l.to_bits(b, x);
    let sx = b.ins().band(xb, sign_mask);
    let yb = l.to_bits(b, y);
    let yb = b.ins().bxor(yb, sx);
    l.bits_to_float(b, yb)
}

pub fn cos(l: Lanes, b: &mut FunctionBuilder, x: Value) -> Value {
    let ax = b.ins().fabs(x);
    let (r, j) = reduce_quarter_pi(l, b, ax);
    let (s, c) = sin_cos_poly(l, b, r);
    let swap = bit_set(l, b, j, 2);
    let y = l.sel(b, swap, s, c);
    // cos is negative in octants 2..5: bit 2 xor bit 4 of the even octant.
    let b2 = bit_set(l, b, j, 2);
    let b4 = bit_set(l, b, j, 4);
    let flip = b.ins().bxor(b2, b4);
    let ny = b.ins().fneg(y);
    l.sel(b, flip, ny, y)
}

/// erf: its Taylor series below |x| = 1 (x Σ cₙ x²ⁿ, terms to n = 10 are
/// below f32 precision there), above it 1 - erfc(|x|) with the Chebyshev
/// fit of Numerical Recipes' `erfcc` (fractional error below 1.2e-7).
pub fn erf(l: Lanes, b: &mut FunctionBuilder, x: Value) -> Value {
    // cₙ = 2/√π (-1)ⁿ / (n! (2n+1)), highest first for Horner.
    let mut taylor = [0f32; 11];
    let mut fact = 1f64;
    for n in 0..11 {
        if n > 0 {
            fact *= n as f64;
        }
        let c = std::f64::consts::FRAC_2_SQRT_PI * if n % 2 == 0 { 1.0 } else { -1.0 } / (fact * (2 * n + 1) as f64);
        taylor[10 - n] = c as f32;
    }
    let z = b.ins().fmul(x, x);
    let p = l.poly(b, z, &taylor);
    let small = b.ins().fmul(x, p);
    // Large |x|: erfc(a) = t exp(-a² + P(t)), t = 1 / (1 + a/2); a is
    // clamped so exp stays in range (erfc(10) is 0 in f32 anyway).
    let ax = b.ins().fabs(x);
    let ten = l.f(b, 10.0);
    let a = b.ins().fmin(ax, ten);
    let half = l.f(b, 0.5);
    let one = l.f(b, 1.0);
    let d = l.mul_add(b, a, half, one);
    let t = b.ins().fdiv(one, d);
    let q = l.poly(
        b,
        t,
        &[
            0.170_872_77,
            -0.822_152_23,
            1.488_515_9,
            -1.135_204,
            0.278_868_07,
            -0.186_288_06,
            0.096_784_18,
            0.374_091_96,
            1.000_023_7,
            -1.265_512_2,
        ],
    );
    let na = b.ins().fneg(a);
    let e = l.mul_add(b, na, a, q);
    let e = exp(l, b, e);
    let erfc = b.ins().fmul(t, e);
    let large = b.ins().fsub(one, erfc);
    // Odd: put x's sign on the large-|x| branch.
    let sign_mask = l.i(b, i32::MIN);
    let xb = l.to_bits(b, x);
    let sx = b.ins().band(xb, sign_mask);
    let lb = l.to_bits(b, large);
    let lb = b.ins().bor(lb, sx);
    let large = l.bits_to_float(b, lb);
    let is_small = l.cmp(b, FloatCC::LessThan, ax, one);
    l.sel(b, is_small, small, large)
}
