//! Reference interpreter (ndarray, f64): the oracle for the JIT and for gradients.
