//! Code generation: fused loop nests in Cranelift, GEMM calls, the JIT module.
//!
//! - `fuse` forms kernels from the IR; `merge` joins sibling elementwise
//!   kernels, and a row reduction with the kernel writing its operand;
//!   `axes` flattens each loop nest to as few axes as possible;
//! - `plan` places intermediates in one arena (shared when lifetimes do not
//!   overlap);
//! - `emit` and `exp` generate loop bodies (`f32x4` with a scalar tail,
//!   polynomial exp/log/tanh); `gemm` calls the matrix-product routine;
//!   `parallel` splits large kernels across rayon's threads; `jit` sets up
//!   the native ISA and the host symbols; `text` prints the kernels
//!   (`nnc ir --stage fused`; `--stage clif` and `--stage asm` show the
//!   Cranelift IR and the machine code).
//!
//! The whole function becomes one compiled `step(ptrs)` that runs every
//! kernel in order over a table of buffer pointers, so `run` allocates
//! nothing. Loop kernels identical up to their slots (the layers of a stack)
//! are compiled once and called with a table of their own slots. Results are written straight into the caller's buffers, or,
//! with `compile_inplace`, over the buffers of the parameters they replace
//! (a training step's weights and optimizer states), optionally guarded by
//! a scalar result that must be finite before any of them is written.

mod axes;
mod emit;
mod exp;
mod fpenv;
mod fuse;
mod gemm;
mod jit;
pub mod kernel;
mod merge;
mod moves;
mod parallel;
mod plan;
mod scan;
mod text;
mod view;
mod window;

use crate::ir;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind, UserFuncName};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{Linkage, Module};
use kernel::{Kernel, Node, SlotKind};

#[derive(Clone, Debug)]
pub struct Options {
    /// Threads for large GEMMs and kernels (1 = everything on the caller).
    pub threads: usize,
    /// Keep the disassembled machine code of every kernel (`asm_text`).
    pub asm: bool,
    /// Keep the Cranelift IR and the kernel listing (`clif_text`,
    /// `kernels_text`). Printing them is part of the compile time, so the
    /// runtime turns it off.
    pub text: bool,
}

impl Options {
    pub fn threads(threads: usize) -> Options {
        Options {
            threads,
            asm: false,
            text: true,
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// A compiled function: machine code, its buffer plan and its arena.
pub struct Compiled {
    /// `Some` until dropped; `Drop` frees its code pages.
    module: Option<JITModule>,
    /// Address of `step(ptrs: *const usize)`.
    entry: usize,
    /// The pointer table: params and results are filled in by `run`,
    /// intermediates point into `arena`.
    table: Vec<usize>,
    /// Backing store of every intermediate (never resized, so the addresses
    /// in `table` stay valid).
    _arena: Vec<f32>,
    /// Read by the move kernels through addresses compiled into the code
    /// (never resized, so those addresses stay valid).
    _moves: Vec<moves::MoveKernel>,
    /// Read by the window kernels through addresses compiled into the code
    /// (never resized, so the addresses stay valid).
    _descriptors: Vec<window::Descriptor>,
    /// Run by the scan kernels through addresses compiled into the code
    /// (never resized, so the addresses stay valid; mutated only while
    /// `run` holds `&mut self`).
    _runners: Vec<std::cell::UnsafeCell<scan::ScanRunner>>,
    param_lens: Vec<usize>,
    result_lens: Vec<usize>,
    /// `(param, result)` pairs sharing one buffer (see `compile_inplace`).
    inplace: Vec<(usize, usize)>,
    clif: String,
    asm: String,
    kernels: String,
}

impl Compiled {
    /// `f` must have no symbolic dims (the caller specialises per batch size
    /// with `Func::specialize`).
    pub fn compile(f: &ir::Func, opts: &Options) -> Result<Compiled, String> {
        Compiled::compile_inplace(f, opts, &[], None)
    }

    /// Like `compile`, but each `(param, result)` pair in `inplace` makes
    /// that result overwrite that parameter's buffer (a training step's
    /// parameter and optimizer-state updates): no second buffer, no copy.
    /// Run it with [`Compiled::run_inplace`]. When a direct write would
    /// clobber a value still to be read, that pair is written by a copy at
    /// the end instead (still correct, one extra pass).
    ///
    /// With `guard: Some(r)`, scalar result `r` (a training step's loss) is
    /// checked as soon as it is computed: when it is NaN or infinite the
    /// function returns before any in-place buffer is written, so a step that
    /// diverges leaves the weights as they were. Err when some in-place
    /// write would have to happen before `r` is known.
    pub fn compile_inplace(f: &ir::Func, opts: &Options, inplace: &[(usize, usize)], guard: Option<usize>) -> Result<Compiled, String> {
        let threads = opts.threads.max(1);
        let mut direct = vec![true; inplace.len()];
        let prog = loop {
            let prog = fuse::form(f, threads, inplace, &direct)?;
            let bad = fuse::unsafe_inplace(&prog, inplace);
            if bad.is_empty() {
                break prog;
            }
            if bad.iter().any(|&j| !direct[j]) {
                return Err("internal error: an in-place copy still clobbers a parameter".into());
            }
            bad.iter().for_each(|&j| direct[j] = false);
        };
        let guard_after = match guard {
            Some(r) => Some(guard_position(&prog, r)?),
            None => None,
        };
        let plan = plan::plan(&prog);
        let kernels = if opts.text {
            text::program_text(&prog, &plan)
        } else {
            String::new()
        };

        let isa = jit::native_isa()?;
        let fma = isa.has_native_fma();
        let cc = isa.default_call_conv();
        let mut module = jit::new_module(isa);
        let err = |e: cranelift_module::ModuleError| format!("codegen: {e:?}");

        let mut ksig = Signature::new(cc);
        for _ in 0..3 {
            ksig.params.push(AbiParam::new(I64));
        }
        let gemm_id = module
            .declare_function(gemm::SYMBOL, Linkage::Import, &gemm::signature(cc))
            .map_err(err)?;
        let mut psig = Signature::new(cc);
        for _ in 0..4 {
            psig.params.push(AbiParam::new(I64));
        }
        let par_id = module.declare_function(parallel::SYMBOL, Linkage::Import, &psig).map_err(err)?;
        let move_id = module
            .declare_function(moves::SYMBOL, Linkage::Import, &moves::signature(cc))
            .map_err(err)?;
        // The move kernels, owned by the compiled function (their addresses
        // are constants in its code).
        let move_descs: Vec<moves::MoveKernel> = prog
            .kernels
            .iter()
            .filter_map(|k| match k {
                Kernel::Move(m) => Some(m.clone()),
                Kernel::Loop(_) | Kernel::Gemm(_) | Kernel::Window(_) | Kernel::Scan(_) => None,
            })
            .collect();
        let window_id = module
            .declare_function(window::SYMBOL, Linkage::Import, &window::signature(cc))
            .map_err(err)?;
        // The window calls' descriptors, owned by the compiled function
        // (their addresses are constants in its code).
        let descriptors: Vec<window::Descriptor> = prog
            .kernels
            .iter()
            .filter_map(|k| match k {
                Kernel::Window(w) => Some(w.desc.clone()),
                Kernel::Loop(_) | Kernel::Gemm(_) | Kernel::Move(_) | Kernel::Scan(_) => None,
            })
            .collect();
        let scan_id = module
            .declare_function(scan::SYMBOL, Linkage::Import, &scan::signature(cc))
            .map_err(err)?;
        // Each scan's body compiled once, owned by this function (the
        // runners' addresses are constants in its code).
        let mut runners: Vec<std::cell::UnsafeCell<scan::ScanRunner>> = vec![];
        for k in &prog.kernels {
            if let Kernel::Scan(sk) = k {
                runners.push(std::cell::UnsafeCell::new(scan::ScanRunner::new(sk, opts)?));
            }
        }
        let mut nsig = Signature::new(cc);
        nsig.params.push(AbiParam::new(I64));
        nsig.params.push(AbiParam::new(I64));
        nsig.returns.push(AbiParam::new(cranelift_codegen::ir::types::F32));
        let normal_id = module
            .declare_function(parallel::NORMAL_SYMBOL, Linkage::Import, &nsig)
            .map_err(err)?;

        let mut ctx = module.make_context();
        let mut fctx = FunctionBuilderContext::new();
        let mut clif = String::new();
        let mut asm = String::new();
        // Loop kernels that differ only in the slots they touch share one
        // function (the layers of a stack run the same code, so Cranelift
        // compiles each shape once): a kernel reads its pointers from a
        // table of its own slots, which the step fills before the call.
        let mut kernel_ids = Vec::new();
        let mut shared: std::collections::HashMap<String, (cranelift_module::FuncId, String)> = Default::default();
        for (i, k) in prog.kernels.iter().enumerate() {
            let Kernel::Loop(lk) = k else {
                kernel_ids.push(None);
                continue;
            };
            let (lk, slots) = local_slots(lk);
            let key = format!("{:?} {:?} {:?} {:?} {}", lk.dims, lk.nodes, lk.outputs, lk.reduce, lk.parallel);
            if let Some((id, first)) = shared.get(&key) {
                if opts.text {
                    clif.push_str(&format!("; k{i}: {}: the code of {first}\n\n", lk.label));
                }
                kernel_ids.push(Some((*id, slots)));
                continue;
            }
            let lk = &lk;
            let name = format!("k{i}");
            let id = module.declare_function(&name, Linkage::Local, &ksig).map_err(err)?;
            ctx.func.signature = ksig.clone();
            ctx.func.name = UserFuncName::user(0, id.as_u32());
            {
                let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
                let entry = b.create_block();
                b.append_block_params_for_function_params(entry);
                b.switch_to_block(entry);
                let p = b.block_params(entry).to_vec();
                let normal = lk
                    .nodes
                    .iter()
                    .any(|n| matches!(n, Node::Random { normal: true, .. }))
                    .then(|| module.declare_func_in_func(normal_id, b.func));
                emit::emit_kernel(&mut b, lk, [p[0], p[1], p[2]], fma, normal);
                b.seal_all_blocks();
                b.finalize(module.target_config());
            }
            if opts.text {
                clif.push_str(&format!("; {name}: {}\n{}\n", lk.label, ctx.func.display()));
            }
            ctx.set_disasm(opts.asm);
            module
                .define_function(id, &mut ctx)
                .map_err(|e| format!("codegen: kernel {name}: {e:?}"))?;
            if let Some(code) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
                asm.push_str(&format!("; {name}: {}\n{code}\n", lk.label));
            }
            module.clear_context(&mut ctx);
            shared.insert(key, (id, name));
            kernel_ids.push(Some((id, slots)));
        }
        let table_len = kernel_ids.iter().flatten().map(|(_, s)| s.len()).max().unwrap_or(0);

        // The step function: every kernel in order.
        let mut ssig = Signature::new(cc);
        ssig.params.push(AbiParam::new(I64));
        let step_id = module.declare_function("step", Linkage::Local, &ssig).map_err(err)?;
        ctx.func.signature = ssig;
        ctx.func.name = UserFuncName::user(0, step_id.as_u32());
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let ptrs = b.block_params(entry)[0];
            let gemm_ref = module.declare_func_in_func(gemm_id, b.func);
            let par_ref = module.declare_func_in_func(par_id, b.func);
            let move_ref = module.declare_func_in_func(move_id, b.func);
            let mut next_move = move_descs.iter();
            let window_ref = module.declare_func_in_func(window_id, b.func);
            let mut next_desc = descriptors.iter();
            let scan_ref = module.declare_func_in_func(scan_id, b.func);
            let mut next_runner = runners.iter();
            // The slot table of the loop kernel being called.
            let table = (table_len > 0).then(|| {
                let data = StackSlotData::new(StackSlotKind::ExplicitSlot, 8 * table_len as u32, 3);
                b.create_sized_stack_slot(data)
            });
            let mut refs: std::collections::HashMap<cranelift_module::FuncId, cranelift_codegen::ir::FuncRef> = Default::default();
            for (i, (k, id)) in prog.kernels.iter().zip(&kernel_ids).enumerate() {
                match k {
                    Kernel::Gemm(g) => gemm::emit_call(&mut b, g, ptrs, gemm_ref),
                    Kernel::Move(_) => {
                        let d = next_move.next().expect("one descriptor per move kernel");
                        moves::emit_call(&mut b, d as *const moves::MoveKernel as usize, ptrs, move_ref);
                    }
                    Kernel::Scan(_) => {
                        let r = next_runner.next().expect("one runner per scan kernel");
                        scan::emit_call(&mut b, r as *const std::cell::UnsafeCell<scan::ScanRunner> as usize, ptrs, scan_ref);
                    }
                    Kernel::Window(w) => {
                        let d = next_desc.next().expect("one descriptor per window kernel");
                        window::emit_call(&mut b, w, d as *const window::Descriptor as usize, ptrs, window_ref);
                    }
                    Kernel::Loop(lk) => {
                        let (fid, slots) = id.as_ref().expect("loop kernels are declared");
                        let fref = *refs.entry(*fid).or_insert_with(|| module.declare_func_in_func(*fid, b.func));
                        let flags = MemFlagsData::trusted().with_readonly();
                        let table = table.expect("a loop kernel touches a slot");
                        for (j, &s) in slots.iter().enumerate() {
                            let p = b.ins().load(I64, flags, ptrs, (s * 8) as i32);
                            b.ins().stack_store(I64, p, table, (j * 8) as i32);
                        }
                        let own = b.ins().stack_addr(I64, table, 0);
                        let n = b.ins().iconst(I64, lk.dims.first().copied().unwrap_or(1) as i64);
                        if lk.parallel {
                            let addr = b.ins().func_addr(I64, fref);
                            let t = b.ins().iconst(I64, threads as i64);
                            b.ins().call(par_ref, &[addr, own, n, t]);
                        } else {
                            let zero = b.ins().iconst(I64, 0);
                            b.ins().call(fref, &[own, zero, n]);
                        }
                    }
                }
                if let Some((_, slot)) = guard_after.filter(|&(after, _)| after == i) {
                    emit_finite_guard(&mut b, ptrs, slot);
                }
            }
            b.ins().return_(&[]);
            b.seal_all_blocks();
            b.finalize(module.target_config());
        }
        if opts.text {
            clif.push_str(&format!("; step\n{}\n", ctx.func.display()));
        }
        ctx.set_disasm(opts.asm);
        module
            .define_function(step_id, &mut ctx)
            .map_err(|e| format!("codegen: step: {e:?}"))?;
        if let Some(code) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
            asm.push_str(&format!("; step\n{code}\n"));
        }
        module.clear_context(&mut ctx);
        module.finalize_definitions().map_err(err)?;
        let mut kernels = kernels;
        for (i, r) in runners.iter_mut().enumerate() {
            let r = r.get_mut();
            clif.push_str(&format!("; scan body {i}\n{}", r.clif_text()));
            asm.push_str(&format!("; scan body {i}\n{}", r.asm_text()));
            kernels.push_str(&format!("scan body {i}:\n{}", r.kernels_text()));
        }
        let entry = module.get_finalized_function(step_id) as usize;

        // 64-byte aligned arena.
        let arena = vec![0f32; plan.len + 16];
        let skew = (64 - arena.as_ptr() as usize % 64) % 64 / 4;
        let arena_base = arena.as_ptr() as usize + skew * 4;
        let table = prog
            .slots
            .iter()
            .enumerate()
            .map(|(s, info)| match (info.kind, plan.offsets[s]) {
                (SlotKind::Temp, Some(o)) => arena_base + o * 4,
                _ => 0,
            })
            .collect();
        let lens = |v: &[ir::Value]| {
            v.iter()
                .map(|&x| f.ty(x).shape.iter().map(|d| d.known().unwrap_or(0)).product())
                .collect()
        };
        Ok(Compiled {
            module: Some(module),
            entry,
            table,
            _arena: arena,
            _moves: move_descs,
            _descriptors: descriptors,
            _runners: runners,
            param_lens: lens(&f.params),
            result_lens: lens(&f.results),
            inplace: inplace.to_vec(),
            clif,
            asm,
            kernels,
        })
    }

    /// Validates the count and the lengths of `args` and `outs` against the
    /// function's types (Err, never UB), then runs. All tensors are row-major
    /// f32 buffers; i32 values are passed as f32 holding integers.
    pub fn run(&mut self, args: &[&[f32]], outs: &mut [&mut [f32]]) -> Result<(), String> {
        if !self.inplace.is_empty() {
            return Err("compiled for in-place updates: call run_inplace".into());
        }
        self.run_inplace(args, &mut [], outs)
    }

    /// Run a function compiled with `compile_inplace`: `state[j]` is both
    /// the argument of param `inplace[j].0` and the buffer of result
    /// `inplace[j].1`; `args` holds the other params and `outs` the other
    /// results, each in order. Lengths are validated (Err, never UB).
    pub fn run_inplace(&mut self, args: &[&[f32]], state: &mut [&mut [f32]], outs: &mut [&mut [f32]]) -> Result<(), String> {
        let (np, nr, ns) = (self.param_lens.len(), self.result_lens.len(), self.inplace.len());
        if args.len() + ns != np || state.len() != ns || outs.len() + ns != nr {
            return Err(format!(
                "expected {} arguments, {ns} state buffers and {} result buffers, got {}, {} and {}",
                np - ns,
                nr - ns,
                args.len(),
                state.len(),
                outs.len()
            ));
        }
        let mut args = args.iter();
        for p in 0..np {
            let n = self.param_lens[p];
            let ptr = match self.inplace.iter().position(|&(ip, _)| ip == p) {
                Some(j) => {
                    check_len(&format!("state buffer {j}"), state[j].len(), n)?;
                    state[j].as_mut_ptr() as usize
                }
                None => {
                    let a = args.next().expect("count checked above");
                    check_len(&format!("argument {p}"), a.len(), n)?;
                    a.as_ptr() as usize
                }
            };
            self.table[p] = ptr;
        }
        let mut outs = outs.iter_mut();
        for r in 0..nr {
            self.table[np + r] = match self.inplace.iter().find(|&&(_, ir)| ir == r) {
                Some(&(p, _)) => self.table[p],
                None => {
                    let o = outs.next().expect("count checked above");
                    check_len(&format!("result buffer {r}"), o.len(), self.result_lens[r])?;
                    o.as_mut_ptr() as usize
                }
            };
        }
        // SAFETY: `entry` is the finalised `step` function of `self.module`
        // (alive while `self` is), with signature `extern "C" fn(*const
        // usize)`. Every slot in `table` points to memory of the length the
        // kernels were planned for: params, state and results were checked
        // above, intermediates point into `_arena`, sized by `plan`. Results
        // and state are `&mut` and so disjoint from the arguments and each
        // other; compiled code only reads argument slots, and writes a state
        // buffer only after its last read of the old value
        // (`fuse::unsafe_inplace` checked the kernel order).
        let _ftz = fpenv::FlushSubnormals::new();
        unsafe {
            let step: extern "C" fn(*const usize) = std::mem::transmute(self.entry);
            step(self.table.as_ptr());
        }
        Ok(())
    }

    /// Cranelift IR of every generated function (before optimisation).
    pub fn clif_text(&self) -> String {
        self.clif.clone()
    }

    /// Disassembled machine code of every loop kernel, when compiled with
    /// `Options::asm` (empty otherwise).
    pub fn asm_text(&self) -> String {
        self.asm.clone()
    }

    /// The fused kernels, slots and arena layout.
    pub fn kernels_text(&self) -> String {
        self.kernels.clone()
    }
}

impl Drop for Compiled {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: no compiled function is running (we hold `&mut self`)
            // and `entry` dies with `self`, so no pointer into the freed code
            // is used afterwards.
            unsafe { m.free_memory() };
        }
    }
}

/// `k` with its slots renumbered in order of first use (0, 1, ..), and the
/// program's slot behind each local one: the table the step passes to it.
fn local_slots(k: &kernel::LoopKernel) -> (kernel::LoopKernel, Vec<kernel::Slot>) {
    let mut slots: Vec<kernel::Slot> = Vec::new();
    let mut local = |s: kernel::Slot| match slots.iter().position(|&x| x == s) {
        Some(j) => j,
        None => {
            slots.push(s);
            slots.len() - 1
        }
    };
    let mut out = k.clone();
    for n in &mut out.nodes {
        if let Node::Load(a) = n {
            a.slot = local(a.slot);
        }
    }
    for (_, a) in &mut out.outputs {
        a.slot = local(a.slot);
    }
    (out, slots)
}

/// The kernel after which result `r` is final, and its slot; Err when an
/// earlier kernel already writes an in-place buffer (a guard there could
/// not keep the old weights).
fn guard_position(p: &kernel::Program, r: usize) -> Result<(usize, kernel::Slot), String> {
    let slot = p
        .slots
        .iter()
        .position(|s| s.kind == SlotKind::Output(r) && s.len == 1)
        .ok_or_else(|| format!("the guarded result {r} is not a scalar result"))?;
    let last = p
        .kernels
        .iter()
        .rposition(|k| k.writes().contains(&slot))
        .ok_or_else(|| format!("no kernel computes the guarded result {r}"))?;
    let early = p.kernels[..=last]
        .iter()
        .any(|k| k.writes().iter().any(|&s| matches!(p.slots[s].kind, SlotKind::Alias { .. })));
    if early {
        return Err(format!("an in-place update is written before result {r} is known"));
    }
    Ok((last, slot))
}

/// `if !(x - x == 0) { return }` for the scalar in `slot`: true exactly
/// when `x` is NaN or infinite.
fn emit_finite_guard(b: &mut FunctionBuilder, ptrs: cranelift_codegen::ir::Value, slot: kernel::Slot) {
    use cranelift_codegen::ir::condcodes::FloatCC;
    use cranelift_codegen::ir::types::F32;
    let flags = MemFlagsData::trusted();
    let addr = b.ins().load(I64, flags, ptrs, (slot * 8) as i32);
    let x = b.ins().load(F32, flags, addr, 0);
    let d = b.ins().fsub(x, x);
    let zero = b.ins().f32const(0.0);
    let finite = b.ins().fcmp(FloatCC::Equal, d, zero);
    let (cont, stop) = (b.create_block(), b.create_block());
    b.ins().brif(finite, cont, &[], stop, &[]);
    b.switch_to_block(stop);
    b.ins().return_(&[]);
    b.switch_to_block(cont);
}

fn check_len(what: &str, got: usize, want: usize) -> Result<(), String> {
    if got != want {
        return Err(format!("{what} has {got} elements, expected {want}"));
    }
    Ok(())
}
