
mod ir_passes;
