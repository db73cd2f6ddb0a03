//! Cranelift module setup: the native ISA and the host symbols compiled
//! code may call.

use super::{gemm, parallel};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};

/// The host ISA with every feature the CPU has. The bare `x86-64-v3` preset
/// leaves `has_avx` off, which turns vector FMA into libcalls.
pub fn native_isa() -> Result<OwnedTargetIsa, String> {
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
    // Cranelift's IR verifier costs ~10% of compile time; tests (debug
    // builds) keep it as a check on the emitter.
    flags
        .set("enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" })
        .map_err(|e| e.to_string())?;
    // JIT code is never relocated after finalisation.
    flags.set("is_pic", "false").map_err(|e| e.to_string())?;
    let isa = cranelift_native::builder().map_err(|e| format!("codegen: host ISA unsupported: {e}"))?;
    isa.finish(settings::Flags::new(flags)).map_err(|e| e.to_string())
}

/// A JIT module that resolves the runtime helpers by name.
pub fn new_module(isa: OwnedTargetIsa) -> JITModule {
    let mut jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    jb.symbol(gemm::SYMBOL, gemm::nnc_gemm as *const u8);
    jb.symbol(parallel::SYMBOL, parallel::nnc_parallel_for as *const u8);
    jb.symbol(parallel::NORMAL_SYMBOL, parallel::nnc_random_normal as *const u8);
    jb.symbol(super::moves::SYMBOL, super::moves::nnc_move as *const u8);
    jb.symbol(super::window::SYMBOL, super::window::nnc_window as *const u8);
    jb.symbol(super::scan::SYMBOL, super::scan::nnc_scan as *const u8);
    JITModule::new(jb)
}
