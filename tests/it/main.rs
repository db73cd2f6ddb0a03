mod gradcheck;
mod ir_snap;
mod jit;
