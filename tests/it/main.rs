mod gradcheck;
mod ir_snap;
