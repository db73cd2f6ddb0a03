//! nnc: a compiler for neural networks written as `.nn` files.
//!
//! # Architecture
//!
//! ```text
//! .nn text ─syntax─▶ AST ─sema (elaborate)─▶ IR: loss, predict, init, updates
//!   ─runtime::step─▶ one training-step function (forward, loss, backward via
//!   autodiff, optimizer update) ─backend─▶ interpreter (oracle) or JIT
//! ```
//!
//! One crate, one top-level module per stage; dependencies point one way
//! (`tests/it/tidy.rs` enforces the table):
//!
//! | module | owns | may use |
//! |---|---|---|
//! | `base` | spans, the source database | — |
//! | `diag` | diagnostics as data, the code registry, rendering (the only miette use) | base |
//! | `syntax` | the pest grammar binding, AST, error recovery by declaration | base, diag |
//! | `ir` | op set, builder, verifier, printer, reference interpreter | base, diag |
//! | `autodiff` | one vector-Jacobian rule per primitive op | base, diag, ir |
//! | `opt` | simplification, CSE, DCE | base, diag, ir |
//! | `codegen` | fused loops in Cranelift, GEMM calls, the JIT module | base, diag, ir, opt |
//! | `plan` | the training plan as data: settings, data source, steps of IR functions over one parameter store | base, ir |
//! | `sema` | names, stdlib, dtypes, symbolic shapes — and lowering | base, diag, syntax, ir, plan |
//! | `runtime` | data, splits, metrics, the training step and loop, schedules, checkpoints, histories, curves, summaries, backends | everything above |
//! | `teach` | tools for learners: the derived backward pass in textbook notation, traced steps, function samples, search spaces | everything above but `driver` |
//! | `export` | ONNX (from the IR, a hand-written protobuf encoder) and PyTorch projects | base, diag, syntax, ir, plan, sema, opt, runtime |
//! | `driver` | the pure façade: source in, diagnostics and IR out | everything above |
//! | `cli`, `lsp` | commands, files, printing, the language server | anything |
//! | `fuzz` | input generators and mutators, the panic-catching fuzz runner | anything |
//!
//! ## Where this departs from the starting sketch
//!
//! Checking and lowering are one pass. `sema::elab` is a staged
//! interpreter over the AST: compile-time values (sizes, hyperparameters,
//! activation functions, layers) are evaluated, and tensor operations are
//! shape-checked and emitted as IR at once. Calls are inlined, so
//! `Dense(784 -> 128)` is checked with its arguments substituted, and
//! stdlib layers, losses and optimizers need no special support in the
//! compiler. A separate typed HIR would only repeat this walk.
//!
//! Errors follow the ARCHITECTURE invariants: a failing value becomes
//! `Val::Error`, which every later check accepts silently; definitions that
//! are checked on their own (not reached from a model) use unknown shapes,
//! which pass every check, so generic checking never reports false errors.
//! An error inside an inlined stdlib body is reported at the user's text
//! that caused it: every variable bound from an argument remembers where
//! the user wrote it (`Env::origins`), so `adam(lr: "0.001")` failing at
//! `lr * ...` points at the string; otherwise at a function the user passed
//! in that is running (`step` of `Dense(2 -> 4, step)`), else at the
//! innermost call in the user's file. The stdlib place becomes a note.
//!
//! A fix is data (`diag::Fix`: edits anywhere in the file), proposed by
//! the check that found the mistake and offered only after
//! `driver::verify_fixes` has compiled the fixed text and found the error
//! gone with no new kind of error; the language server, `nnc check` (text
//! and `--format json`) and the UI snapshots all go through it. Checks that
//! need a finished training plan or the data run in `driver` after
//! `sema`: the gradient check (E0403) uses the op table's list of
//! differentiable operands, so it cannot disagree with the backward pass;
//! the label check (E0602) and the memory estimate (W0001) read the label
//! column and the machine, which `sema` never does.
//!
//! Regression targets are declared, not guessed: `csv(..., target: "price")`
//! gives `y: [batch]` of f32, so a file's types never depend on its
//! contents; a `label:` column that holds non-integers is E0602 with the
//! fix `target:`. `[batch, 1]` predictions against such targets are E0313
//! rather than a silent `[batch, batch]` broadcast.
//!
//! The optimizer is elaborated once per parameter into a small update
//! function; `runtime::step` composes loss, `autodiff::grad` and the
//! updates into a single step function, which the runtime calls with the
//! parameters and optimizer state as inputs and outputs. The optimizer's
//! `lr` is a scalar input of the step like `step`, not a folded constant,
//! so learning-rate schedules (`runtime::schedule`) need no recompilation.
//!
//! ## One place per op
//!
//! Every fact about an IR op is an exhaustive method of `ir::Op` in
//! `ir/op.rs`: its name and the parser's inverse (`Op::from_name`), arity,
//! kind (source, elementwise, view, reduction, contraction, index),
//! attributes as printed, attribute shapes, differentiable operands and
//! commutativity. The value of each elementwise op on one number is
//! `ir::scalar`, which the interpreter computes with, `opt::simplify` folds
//! with (only where every backend is bit-exact) and `sema` evaluates
//! compile-time numbers with; the JIT is tested against it. Type rules are
//! `ir::verify::infer`, one arm per op.
//!
//! The passes in `ir`, `autodiff`, `opt`, `codegen` and `runtime` match ops without
//! wildcard arms, so a new op is a compile error at every place that must
//! decide something about it. `tests/it/tidy.rs` keeps it so: it refuses a
//! `_`/binding arm in a match whose arms name ops, and `matches!` over a
//! list of ops. Clippy's `wildcard_enum_match_arm` was the alternative, but
//! it fires on every enum (`Option`, `Dim`, kernel nodes), is not run by
//! `cargo test` in CI, and does not see `matches!`, where the old code hid
//! most of its silent choices; asking about one op (`if let`, a
//! single-variant `matches!`) stays allowed.
//!
//! The language's primitives are likewise one enum, `sema::builtin_table::
//! Builtin`, with a table entry each (name, parameters, description, shape
//! rule): name lookup, keyword binding, hover, completion, signature help
//! and the primitives table of `docs/reference.md` are all derived from it,
//! and `builtins::call` matches on the enum without a fallback arm.
//!
//! Elaboration always ends (`sema::guard`). Calls are inlined and the only
//! compile-time conditional (`if training`) is constant within a compile, so re-entering a declaration that is being
//! inlined is recursion (E0115); methods are keyed by their layer instance
//! too, so nesting instances of one layer is allowed. Since a call tree
//! that doubles per level is exponential long before any depth limit, a
//! budget of evaluation steps, IR instructions and list values, shared by
//! all elaborators of one compile through `Globals`, ends the compile with
//! E0502. Tensors above 2^31 elements are refused at `check` (E0503), so
//! element counts downstream cannot overflow.
//!
//! ## The language's compile-time numbers and indexing
//!
//! Compile-time arithmetic is exact: integers are i64 and an overflow or a
//! division by zero is an error at the expression (E0204), never a silent
//! float. `/` of two integers is an integer when it divides and a float
//! otherwise (so `1/16` stays 0.0625); rounding is spelled `floor(a / b)` as
//! in the textbook's size formula, because `//` is a comment. Inside a shape
//! annotation every dim is whole, so `/` rounds down there.
//!
//! Indexing follows NumPy's basic indexing, except that a bound outside the
//! axis and an empty slice are errors instead of being clamped, and only `:`
//! may index a symbolic (batch) dim: with every size known, a clamped bound is
//! a bug. It lowers to `slice` (start, stride, shape per axis), `reverse` and
//! a `reshape` dropping indexed axes; `split`/`chunk` are slices, `stack` is a
//! reshape and a binary `concat`. `gather` reads NaN for an id outside its
//! axis (JAX's `take`), so a bad id stops training with a non-finite loss; its
//! adjoint `scatter_add` drops such ids. In compiled code slices and
//! reversals are views (a base offset and strides, see Code generation);
//! pad, gather, scatter-add and the concats that placement cannot avoid run
//! as calls to one host function (`codegen::moves`) over strided slots.
//! ## Training plans, modes, buffers and steps
//!
//! A `train` block becomes a [`plan::TrainPlan`]: data that `sema::train`
//! produces and `runtime` consumes, so neither reaches into the other.
//! It holds one or more steps (a block's `loss =` is one step; each
//! `step NAME with OPT on MODEL { ... }` is another), each a loss in
//! training mode over one shared parameter store, with the parameters it
//! trains, their optimizer updates and the buffers it writes. Every step
//! compiles to its own native function; `step` (this step's count) is its
//! Adam counter and the key of its random draws. The store is the union of
//! what the functions use, in first-use order, so a single-loss block's
//! parameters keep their names and order; a model other than the block's
//! own prefixes its name (`G.dense1.W`), and layers are named within their
//! model, so every step names them alike.
//!
//! Modes are elaboration-time: every model is elaborated in training mode
//! for the steps and in evaluation mode for validation, test, `nnc eval`
//! and `nnc predict`, with `training` a compile-time boolean that `if
//! training { ... } else { ... }` branches on (both modes are checked; a
//! definition checked alone checks both branches). A layer's `buffer` is a
//! store entry that no optimizer touches: assigning it in a method is a
//! write recorded in training mode (the step returns the new value; reads
//! in that step still see the old one) and an error (E0111) in evaluation
//! mode. Buffers are saved in the weights file by name like parameters.
//!
//! Random draws are counter-based: element `i` of a draw is a hash of the
//! draw's compile-time seed (distinct per draw site, per step and per run
//! seed) mixed with a runtime key, and `i`. Inside a step the key is the
//! step's count, so masks and noise are fresh every step, identical on the
//! interpreter and compiled code, and a rerun or a `--resume` (which
//! restores the count) draws the same. Initialisation and evaluation use
//! key 0, which leaves the seed unmixed.
//!
//! `sigmoid` is written `0.5 * tanh(0.5 * x) + 0.5` rather than
//! `1 / (1 + exp(-x))`: the same function, but the textbook form's
//! gradient is `0 · ∞ = NaN` once `exp(-x)` overflows (x < -88 in f32),
//! which a confident GAN discriminator reached. The stable BCE is
//! `binary_cross_entropy_with_logits` (softplus with `|x|`, whose kink
//! cancels so the slope at 0 is exact): on probabilities, `eps` flattens
//! the generator's gradient exactly when D rejects its samples.
//!
//! ## Sequences: `scan`, a loop in the IR or unrolled
//!
//! `scan x in xs along 1 from h = h0 { h = tanh(x @ Wx + h @ Wh + b) }` is
//! the one loop of the language: an expression whose value is the carried
//! variable after every step, stacked along the axis. `sema::scan` checks
//! it (each carried variable keeps its shape, E0325) and lowers it one of
//! two ways.
//!
//! A scan of more than `sema::scan::UNROLL_MAX_STEPS` (32) steps becomes
//! one `scan` op of the IR (`ir::scan`): the body is elaborated once, on
//! fresh stand-in values for a step's elements and carries, and the
//! instructions that depend on them are cut out as the op's body function;
//! what the body computed from outer values alone (weights, their
//! products) stays outside, computed once, and enters as an invariant
//! operand, while constants and views are copied into the body, where they
//! are free. The IR keeps one result per instruction, so a scan's outputs
//! (final carries, stacked per-step outputs) are sibling instructions that
//! share the op and its operands; the interpreter and the JIT run a sibling
//! group once. A body that draws random numbers is unrolled instead (one
//! draw for every step would be a different model).
//!
//! Its backward pass (`autodiff::scan`) is JAX's scan transpose: a reverse
//! scan whose body is the forward body followed by its own vector-Jacobian
//! product (`autodiff::vjp`). The forward scan stores every step's carries
//! (its stacked outputs) and, as residuals, the step's products that
//! depend on a carry (`h @ Wh`); the backward body reads those instead of
//! recomputing them and recomputes only the elementwise gate math, which
//! fuses with its adjoint. It carries the carries' adjoints and an
//! accumulator per invariant that is not only a product's right factor
//! (the bias); a weight read as `a @ W` gets its gradient outside the loop
//! as one product over the stacked per-step `a` and adjoints. Outside the
//! loop too: the input projection `x_t @ Wx` of every step as one product
//! (`ir::scan::hoist_projections`), and `transpose(Wh)` for the backward
//! product, materialised once so gemm reads it contiguous (through a
//! column stride, the 64 × 128 × 512 product took 2.6 times as long). The
//! adjoint of the gates' `chunk` is one concat rather than four zero-padded
//! copies summed. The interpreter runs a scan as a loop over its body; the
//! JIT compiles the body once as a function of its own, and a host loop
//! (`codegen::scan`) points its parameter and result slots at the step's
//! slices of the sequences and outputs and at two alternating buffers per
//! carry, so nothing is copied. Exporters unroll (`ir::scan::unroll`):
//! ONNX gets plain operators rather than `Loop`/`Scan` subgraphs, which
//! several runtimes execute node by node.
//!
//! Measured (release build, `nnc ir FILE --stage clif`, user CPU on a
//! loaded 2-core VM, 2 December 2026), `examples/lstm_mnist.nn` with the
//! steps changed (`NNC_UNROLL_STEPS=N` overrides the bound, to compare):
//!
//! | steps | loop: CPU, CLIF bytes | unrolled: CPU, CLIF bytes |
//! |---|---|---|
//! | 28 | 0.05 s, 210 KB | 0.34 s, 1.68 MB |
//! | 100 | 0.04 s, 210 KB | 1.28 s, 5.75 MB |
//! | 400 | 0.03 s, 210 KB | (7.8 s, 470K lines of machine code, before) |
//! | 1000 | 0.04 s, 210 KB | — |
//!
//! The loop's code is the same for every length (a test compares 40 and
//! 1000 steps) and its compile time is flat. Its training step at 28
//! steps, batch 64, one thread, is now as fast as the unrolled one: user
//! CPU per step over a 12,800-sample `nnc bench --samples` epoch (less
//! sensitive to the machine's load than wall time; two runs each on a
//! loaded VM, `NNC_UNROLL_STEPS=0` and `=32`) went from 29.8 / 29.7 ms
//! for the loop (recomputing the forward step, reading `Wh` transposed
//! through strides) to 21.2 / 21.2 ms, against 20.7 / 20.7 ms unrolled
//! (whose backward products still read `Wh` through strides). So scans of
//! up to 32 steps (MNIST rows) are still unrolled: the step is no faster
//! looped, and `nnc explain --grad` shows a recurrence step by step from
//! the unrolled graph (`hₜ`, `δₜ`); the loop compiles in 20–40 ms against
//! 120–250 ms unrolled, so lowering the bound below 28 is the next step
//! once the explanation reads loops. Longer scans loop, where unrolling's
//! compile time and code grow without bound.
//!
//! Unrolled, the body is elaborated once per step with `x` bound to that
//! step's slice, so backpropagation through time is the ordinary backward
//! pass of the unrolled graph. Three rewrites keep that graph linear in
//! the steps: the states are stacked by a balanced tree of binary concats;
//! a slice of a concat that lies inside one operand is a slice of that
//! operand, so `last(hs)` takes the state itself; and `runtime::step`
//! simplifies the loss before differentiating it. `Rnn`, `Lstm`, `Gru`,
//! `Bidirectional` and `Embedding` are `.nn` code in
//! `stdlib/recurrent.nn`; `orthogonal` is the polar factor of a Gaussian
//! matrix by 40 Newton–Schulz iterations, itself a `scan` (a loop).
//! ## Text, character models and gradient clipping
//!
//! `text(path, steps: 64, vocab: 128)` reads a UTF-8 file as windows of
//! `steps` character ids, each with the next character of every position
//! as its targets (`y: i32[n, steps]`). A character's id is its code point,
//! bounded by `vocab`, rather than its rank in the file's alphabet: the
//! model's sizes then follow from the `data =` line alone (types never
//! depend on a file's contents, as with `target:`), and `nnc sample` maps
//! ids back to characters without a vocabulary saved beside the weights. A
//! character outside the vocabulary is E0605 and a file that is not UTF-8
//! E0606, both with the line and column, at `nnc check` and at load.
//! `sequence_cross_entropy` is the mean over every position; the
//! `perplexity` metric is the exponential of the loss. `nnc sample`
//! (`runtime::generate`) feeds the model's fixed window with the last
//! `steps` characters at its start and reads the logits at the context's
//! last position: exact for causal models (an LSTM, or attention with
//! `causal_mask`), which never look at the filler after it, and the same
//! fresh-state-per-window view the model was trained on. Draws are
//! counter-based, so a seed always gives the same text.
//!
//! `clip_norm = c` (a block setting, or per `step`) is applied in
//! `runtime::step` to the gradients autodiff returns, before any optimizer
//! update: each is multiplied by `min(1, c / (‖g‖ + 1e-6))`, `‖g‖` the norm
//! of all of them together, as PyTorch's `clip_grad_norm_`. Being IR in
//! the step, it runs identically in the interpreter and compiled code, and
//! `nnc trace` and the PyTorch export apply it too.
//! ## Attention
//!
//! The Transformer is stdlib code (`stdlib/attention.nn`); the compiler adds
//! three primitives for it, chosen for their checks rather than for speed:
//! `split_heads`/`merge_heads` (a reshape and a transpose, so heads are
//! views) report heads that do not divide the features (E0330) at the head
//! count the user wrote, and `masked(x, mask, fill)` insists that the mask
//! broadcasts *to* the scores: `where` broadcasts both ways, so a padding
//! mask `[b, 1, 1, s]` on single-head scores `[b, t, s]` would silently
//! give `[b, b, t, s]`. The fill is -1e9, not -inf: softmax still gives a
//! masked key an exact 0 (so a later token cannot change an earlier output
//! by a single bit), and a row with every key masked stays finite. Q, K and
//! V are one product with a `[d, 3d]` weight (PyTorch's `in_proj` layout)
//! sliced three ways; in compiled code the slices and heads are views of
//! that one buffer, and the backward products write the adjoints of Q, K
//! and V into its blocks (Code generation: views and placement). A stack of layers is `repeat(n, Layer(...))`, a
//! special form that `elab` evaluates n times (an argument evaluated once
//! would be one layer shared n times), giving a list of layers; a list of
//! layers is callable and applies them in turn. The language has no loops,
//! and this keeps it so.
//!
//! ## Code generation
//!
//! `codegen` forms kernels from the optimised step (broadcasts, transposes
//! and reshapes become strided views; elementwise chains fuse into one
//! loop; sibling loops over one shape merge, so an Adam update of `m`, `v`
//! and the parameter is a single pass), plans every intermediate into one
//! arena, and emits `f32x4` loops with polynomial exp/log/tanh. Matrix
//! products call the `gemm` crate (its AVX-512 kernels are chosen at run
//! time) through a symbol imported into the JIT module. Loop-invariant
//! splats and reciprocals are parked in stack slots because Cranelift would
//! otherwise rematerialise them inside the loop. Compiled code runs with
//! subnormals flushed to zero (`codegen::fpenv`). The runtime compiles one
//! function per batch shape and validates every argument's shape first.
//!
//! Views and placement. A kernel reads or writes a slot through a
//! `kernel::Access`: a base offset and a stride per axis. Every view op
//! maps its operand's access to its own (`codegen::view`): broadcast
//! (stride 0), transpose (permuted strides), slice (the start as offset,
//! strides times the step), reverse (offset at the end, negative
//! strides) and reshape whenever the axes it merges nest in memory (always
//! over contiguous data; over a slice of the last axis when only that axis
//! is split, as `split_heads` of `qkv[..., d:2d]` does). GEMM operands take
//! the offset as a pointer and the strides as they are (a negative stride
//! is copied forward first). The converse, writing a value where its one
//! reader wants it, is planned before kernels are formed
//! (`Former::plan_places`, a backward walk): an operand of a concat is
//! written by its kernel (loop, GEMM, materialisation) into its block of
//! the result, nested concats into the outer block, and a product read
//! once through a transpose and a merging reshape (`merge_heads`) is
//! written in the layout that makes both views. A producer that cannot
//! write through strides (windows, gathers, scans) leaves its reader to
//! copy as before. In the encoder step nothing moves between the products
//! any more: the score and value products read Q, K and V from the QKV
//! buffer at +0, +d, +2d with its row stride, the value product writes
//! merged heads as `[b·t, d]` rows, and dQ, dKᵀ and dV are written into
//! the `[b·t, 3d]` gradient (`tests/it/views.rs`). A `gather` or a scan
//! still takes whole contiguous slots.
//!
//! The training step is compiled with every parameter and optimizer state
//! paired to its update (`Compiled::compile_inplace`): the step overwrites
//! the weights where they lie, so it allocates and copies nothing, and its
//! memory traffic is half that of writing new tensors. Right after the
//! kernel that computes the loss, the step returns early if the loss is not
//! finite, so a diverging step leaves the last good weights in place.
//! Batches are gathered from the shuffled dataset by a loader thread
//! (`runtime::batch`) a few steps ahead. `nnc bench` times all of this on
//! random data of a model's shapes; `bench/peers.py` runs JAX and PyTorch
//! beside it for ratios.
//!
//! ## Fuzzing
//!
//! `fuzz` is a stable-Rust fuzzer (cargo-fuzz needs nightly): inputs come
//! from a seeded SplitMix64 stream, so input `i` of seed `s` is always the
//! same and CI runs fixed slices. A worker thread checks inputs under
//! `catch_unwind`; the calling thread is a watchdog for time and resident
//! memory, because a hang or a runaway allocation cannot be interrupted
//! in-process — it writes the input and ends the campaign. Panics are
//! minimised by delta debugging over lines, then bytes.
//! ## Convolutions
//!
//! `conv2d` is lowered in `sema::conv` to an `im2col` op (every window of
//! the image copied into a row: `[n, c, h, w]` → `[n, oh, ow, c, kh, kw]`),
//! a reshape and one matrix product with the `[c·kh·kw, out]` weights;
//! groups are a batched product over the group axis. So the FLOPs run in
//! the `gemm` crate at its peak, autodiff needs rules only for `im2col` and
//! its adjoint `col2im` (each other's VJP), and the weight gradient is one
//! GEMM over all windows. The batch is symbolic while checking, so the IR
//! first holds a product per image against a broadcast weight;
//! `opt::batch_fold` folds the batch into the GEMM rows once the step is
//! specialised to a batch size. Max pooling is its own op with a gradient
//! op that sends each window's gradient to its first maximum (PyTorch's
//! tie rule); average pooling is `im2col` and a sum.
//!
//! The window ops are memory-bound gathers and scatters. Their loops live
//! once in `ir::window`, generic over f32/f64: the interpreter runs them in
//! f64, and compiled code calls the f32 instances as a host function
//! (`codegen::window`), like the GEMM. A Cranelift version would be
//! limited to 128-bit vectors and would repeat every index rule; the
//! measurements behind the lowering are in the README's CNN section.
//!
//! Measured per call (the host functions timed one by one over a LeNet-5
//! training run at batch 64, one thread, on the loaded 2-core machine;
//! the shares are what matters): the conv GEMMs take about 4.4 ms of a
//! ~10 ms step, the window ops took 4.5 ms before this round: the first
//! layer's `im2col` 0.9 ms (it writes a 5 MB column buffer, 25× the
//! image), the second layer's `im2col` 0.6 ms and `col2im` 0.7 ms, and
//! 2×2 max pooling 1.0 ms forward and 1.1 ms backward. Pooling was that
//! slow because its data-dependent choices, written as selects, came out
//! of LLVM as branches (the baseline x86-64 target has no blend) that
//! mispredict on about half the windows; `ir::window` now gives the 2×2
//! rows an f32 SSE2 version, four windows at a time with masks, checked
//! bit for bit against the generic reference rows, which took pooling to
//! 0.1 ms each way. The window loops also run compiled for AVX2 where the
//! CPU has it (`codegen::window`). The window loops precompute, per call,
//! which window offsets of each output position fall inside the image
//! (`Taps`), so no element pays for the padding arithmetic; `im2col` and
//! `col2im` first copy each image into a zero-padded buffer, where every
//! window lies inside, and write (or sum back) the column rows in order
//! with a loop specialised for the kernel width (a fixed-size array copy;
//! a `copy_from_slice` of a few floats is a `memmove` call costing more
//! than the copy). What is left is the conv1 products, which are skinny
//! (`[64·784, 25] × [25, 6]` forward and a `k = 50,176` weight gradient:
//! the `gemm` crate spends them packing, not multiplying) and the column
//! buffers' traffic; the next steps are a direct convolution for the
//! one-channel first layer (no column buffer; the weight gradient as a
//! direct correlation too), and the gather fused into the GEMM's packing.
//!
//! The ResNet block is an ordinary `.nn` layer (`stdlib/conv.nn`): the
//! choice of shortcut is a compile-time `if` in a `let` of the layer body,
//! so a block that keeps its shape builds no projection weights, and
//! `let NAME = if ... { Layer(...) }` gives the branch's layer the name
//! NAME, as a direct `let NAME = Layer(...)` does (`block2.shortcut.W`).
//!
//! Export: ONNX has no im2col, but it is a depthwise `Conv` whose
//! `c·kh·kw` one-hot filters each pick one window offset, then a reshape
//! and a transpose (exact: products by one, sums with zeros); max pooling
//! is ONNX `MaxPool` (padding never wins in either). The PyTorch export
//! calls `F.conv2d`, `F.max_pool2d` and `F.avg_pool2d` from `nnc_ops.py`,
//! padding explicitly when nnc's padding is asymmetric (`"same"`).
//!
//! ## Export
//!
//! `export::onnx` writes ONNX from the IR `predict` function, not from the
//! syntax tree: every model lowers to the same few primitive ops, so one
//! exhaustive match over `ir::Op` exports any model, and a new op fails to
//! compile there until it has a lowering or an E0701 arm. The protobuf is
//! written by a 70-line encoder (`export::proto`) instead of generated
//! code, which would add `protoc` or a build script for eight messages.
//! Symbolic dims (the batch) are read at run time with `Shape`, so the
//! graph keeps a symbolic batch. `export::pytorch` does the opposite: a
//! source-to-source translation of the syntax tree, because a readable
//! PyTorch project keeps the file's functions, layers and pipelines that
//! the IR has inlined away; layers a model builds inline get the names the
//! checker gave them (looked up by call span in `Analysis::model_layers`).
//! The PyTorch names of nnc parameters (`fc1.W` is `fc1.weight`,
//! transposed, for a stdlib `Dense` exported as `nn.Linear`) are decided in
//! one place, `runtime::checkpoint::pytorch_alias`, which the exporter
//! writes with and the weight loader reads with. The exported `train.py`
//! uses a Python port of nnc's counter-based shuffles and splits, so it
//! trains on nnc's batches in nnc's order.
//!
//! Modes and steps in the PyTorch export: an `if` expression becomes an
//! `if` statement assigning a temporary (pending statements that the
//! statement being translated emits first), with `training` read as
//! `self.training` in a method and as `ops.is_training()` in a function
//! (`dropout` has no module), which the model's forward sets with `with
//! ops.mode(self)`. Buffer writes are queued and applied when the
//! outermost forward ends: nnc's step returns new buffers while every read
//! in the step sees the old ones. A block of steps exports one container
//! module holding its models as attributes, so its state dict keys are
//! nnc's store names (`G.dense1.W` ↔ `G.dense1.weight`), and one loss and
//! optimizer per step; `nnc_ops.replay` lets the tests feed nnc's own
//! random draws (from the step's IR, in instruction order, which is the
//! order of evaluation in both languages), so training-mode outputs,
//! gradients and buffers are compared exactly rather than statistically.
//! ONNX has no training mode and no steps: a block of steps exports one
//! model in evaluation mode, `--model` or the one `sample =` calls.
//!
//! ## Tools
//!
//! `nnc fmt` and `nnc lsp` work from `syntax::lexer` (logos tokens that keep
//! comments and whitespace) and `driver::compile`. The formatter never moves
//! a token to another line; it normalises indentation and spacing within
//! lines, and refuses text that does not parse. The language server is
//! synchronous — a compile of a 300-line file takes milliseconds — and
//! answers from immutable snapshots, keeping the last one that parsed for
//! hover, definitions and hints while the text is broken. A diagnostic's
//! `help:` replacement becomes a quick fix only after the fixed text has
//! been compiled and found to check.
//!
//! ## Teaching tools
//!
//! `nnc explain --grad`, `trace`, `plot` and `tune` live in `teach`. The IR
//! is flat (every call inlined), so `sema` records each call it inlines
//! (`CallRecord`: callee, layer, argument and result values, the range of
//! instructions it emitted); `teach::graph` regroups the loss function by
//! those records into layers and calls (`relu(z)` rather than
//! `max(z, 0)`), and `teach::backward` applies the vector-Jacobian rules of
//! `autodiff` at that level, printing each named adjoint once in the
//! textbook's notation. The closed forms in the "where" lines are also
//! written as `.nn` code and tested against autodiff. `trace` composes the
//! step like `runtime::step` but copies instructions itself, so forward
//! values keep their names and `autodiff::grad_with_adjoints` names the
//! backward ones; it runs in the f64 interpreter and replays earlier steps
//! so its weights are `nnc run`'s. Hyper-parameters reach a trial as edits of
//! the source text (`nnc run --set`, `teach::overrides`), so every setting,
//! even one folded into the compiled update (`beta1`), works as if written
//! by hand; each `tune` trial is a child `nnc run` with its own run
//! directory, and a finished trial's `trial.json` lets a re-run continue.
//! A model's `let hidden = 128` is a named size the same edits reach, and
//! `tune` checks every trial's edited file before running any, so a width
//! that breaks a shape is a coded error at the layer. Convolution and
//! pooling print closed forms (`teach::windows`): the call is copied into
//! a function of its own, `autodiff::vjp` derives it, and the backward
//! code is matched (`col2im` of a product is `δ ∗ rot180(W)`, a product
//! with `im2col(x)` is `x ⋆ δ`, `max_pool_grad` is `unpool_max`); anything
//! else keeps the transposed Jacobian. An unrolled recurrence's equations
//! are folded afterwards (`teach::steps`): each is rewritten relative to
//! its own step, and equal rewrites over three or more consecutive steps
//! print once for step `t`, so a folded line never stands for a line that
//! differs. A scan over the loop bound is still one opaque term.

pub mod autodiff;
pub mod base;
pub mod cli;
pub mod codegen;
pub mod diag;
pub mod driver;
pub mod export;
pub mod fuzz;
pub mod ir;
pub mod lsp;
pub mod opt;
pub mod plan;
pub mod runtime;
pub mod sema;
pub mod syntax;
pub mod teach;
