//! The registry of diagnostic codes: E00xx syntax, E01xx names, E02xx types
//! and values, E03xx shapes, E04xx autodiff, E05xx backend limits, E06xx
//! data, E07xx export, W00xx warnings. `nnc explain CODE` prints the long text.

pub struct CodeInfo {
    pub code: &'static str,
    pub title: &'static str,
    pub explanation: &'static str,
}

macro_rules! codes {
    ($($code:literal, $title:literal, $text:literal;)*) => {
        pub const CODES: &[CodeInfo] = &[$(CodeInfo { code: $code, title: $title, explanation: $text }),*];
    };
}

codes! {
    "E0001", "syntax error",
    "The parser met a token it did not expect. The label points at that token and the\nmessage names what could come there instead.\n\n    fn relu(x) = max(x, 0    // error: expected `)`\n\nCheck for a missing closing bracket, comma or `=` just before the marked place.";
    "E0002", "invalid number literal",
    "A number is too large to represent. Integers must fit in 64 bits and floats\nmust be finite.";
    "E0003", "empty file",
    "The file holds no declarations. A `.nn` file declares functions, layers,\nmodels, optimizers and training runs:\n\n    model Linear(x: [batch, 4]) -> [batch, 3] = x |> Dense(4 -> 3)";
    "E0004", "source is not UTF-8",
    "`.nn` files must be UTF-8 text. The label marks the first byte that is not valid\nUTF-8. Re-save the file as UTF-8.";
    "E0101", "unknown name",
    "A name is used that no declaration, parameter or `let` defines. Names are looked\nup in the enclosing function or layer, then in the file, then in the standard\nlibrary. The message suggests the closest known name when there is one.\n\n    x |> Dense(784 -> 10, rleu)   // error: unknown name `rleu`; did you mean `relu`?";
    "E0102", "duplicate definition",
    "Two declarations in one scope have the same name. Rename one of them. A file may\nredefine a standard-library name; that shadows the library definition.";
    "E0103", "wrong number of arguments",
    "A function, layer or optimizer was called with more positional arguments than it\nhas parameters, or a required parameter was not given.\n\n    fn f(x, y) = x + y\n    f(1)    // error: `f` is missing argument `y`";
    "E0104", "unknown keyword argument",
    "A call names an argument that the callee does not declare.\n\n    adam(learning_rate: 0.01)   // error: `adam` has no parameter `learning_rate`; did you mean `lr`?";
    "E0105", "argument given twice",
    "An argument was given both by position and by name, or named twice.";
    "E0106", "not callable",
    "Only functions, layers, models and optimizers can be called. The callee here is a\nvalue such as a tensor or a number.";
    "E0107", "unknown or missing training setting",
    "A `train` block accepts: data, loss, optimizer, epochs, batch_size, validation,\ntest, metrics, seed, early_stop, schedule, warmup, standardize, search. `data`, `loss`\nand `optimizer` are required.\n\n    early_stop = patience(3, monitor: val_loss)     // stop after 3 epochs without improvement\n    schedule   = cosine()                           // or step_decay(every: 3, factor: 0.5),\n                                                    // exponential(rate: 0.9), cyclic(min_lr: 1e-4, period: 2),\n                                                    // one_cycle(max_lr: 0.01)\n    warmup     = 500                                // steps of linear learning-rate warm-up\n    standardize = true                              // features to mean 0, variance 1 (training statistics)\n    search     = space(lr: log_uniform(1e-4, 1e-1))  // what `nnc tune` searches";
    "E0108", "module not found",
    "`use NAME` loads `NAME.nn` from the directory of the file, or a standard-library\nmodule of that name. Neither exists.";
    "E0109", "wrong kind of declaration",
    "The name refers to a declaration of another kind than this place needs: `train`\nnames a model, `optimizer =` calls an optimizer, a pipeline stage is a function,\nlayer or model.";
    "E0110", "assignment to an unknown variable",
    "Inside an optimizer, `x = ...`, `x -= ...` update a `state` variable or `param`.\nDeclare the variable with `state x = ...` first.";
    "E0111", "buffer written in evaluation mode",
    "A layer's `buffer` (state that is not trained, such as batch norm's running\nmean) may be assigned only while training: the evaluation-mode model reads\nbuffers and never changes them, so `nnc predict` gives each sample the same\nanswer whatever else is in its batch. Put the assignment in the training branch:\n\n    let x_hat = if training {\n        running_mean = (1 - momentum) * running_mean + momentum * mu\n        ...\n    } else { ... }";
    "E0112", "parameter trained by two steps",
    "In a `train` block with several `step`s, each parameter is updated by exactly one\nstep (each step owns its optimizer state). Two steps train the same parameter:\nusually both say `on` the same model, or one step without `on` trains every\nparameter its loss uses. Train the model in one step, or freeze it in the other.";
    "E0113", "unknown step setting",
    "A `step NAME with OPTIMIZER on MODEL { ... }` block holds `let` bindings,\n`loss = ...` (required) and `every = k` (run the step on every k-th batch, e.g.\none generator step per k discriminator steps).";
    "E0114", "no such member",
    "`a.b` reads a member of a layer instance — a parameter (`fc1.W`), a buffer, an\nargument of its constructor (`fc1.outputs`) or a method — or, on a model, one of\nits layers (`model.fc1`). In a `train` block's `loss` the trained model's layers\nare in scope by name, so weights-only regularisation reads\n\n    loss = cross_entropy(model(x), y) + 1e-4 * (l2(fc1.W) + l2(fc2.W))\n\nA layer bound with `let fc1 = Dense(...)` is named `fc1`; an unnamed one is\n`dense1`, `dense2`, ... in order. The message suggests the closest member.";
    "E0115", "recursive definition",
    "A function, layer or model reaches itself, directly or through other calls.\nnnc inlines every call when it compiles a model, and the language has no\ncompile-time condition that could end a recursion, so a recursive definition\nwould never finish compiling.\n\n    fn f(x) = f(x) + 1        // error: `f` calls itself\n    fn g(x, y = g(1)) = x     // error: a default argument is part of the call\n\nWrite the repetition out (`x |> Dense(...) |> Dense(...)`). Applying the same\nlayer definition inside another instance of it, as in\n`Residual(Residual(Dense(4 -> 4)))`, is not recursion and is allowed.";
    "E0201", "wrong dtype",
    "An operation received an integer tensor where it needs a float tensor, or the\nother way round. Labels are `i32`; everything differentiable is `f32`.";
    "E0202", "expected a compile-time value",
    "Layer arguments such as sizes, kernel widths and axes must be known when the\nmodel is compiled: integer or float literals, or arithmetic on other such\narguments. A tensor cannot be used there.";
    "E0203", "wrong kind of value",
    "A value of one kind (a number, a tensor, a function, a layer, a list) was used\nwhere another kind is needed, for example a number where a function is expected.";
    "E0204", "compile-time arithmetic overflows or divides by zero",
    "Arithmetic on compile-time numbers (shapes, sizes, hyperparameters) is exact:\nintegers are 64-bit and never silently become floats, so\n\n    let n = 2^40 * 2^40     // error: overflows\n\nis an error at the expression, as is a division or remainder by zero. `/` of two\nintegers is an integer when it divides exactly and a float otherwise (`1/16` is\n0.0625); round with `floor(a / b)` or `ceil(a / b)`, and take remainders with\n`a % b` (the sign of `b`, as in Python). Write a float literal (`2.0^40`) to\ncompute in floating point. Inside a shape annotation every dim is a whole number\nand `/` rounds down: `[n, (h + 2*pad - k) / stride + 1]`.";
    "E0206", "window parameter out of range",
    "A convolution or pooling parameter has a value it cannot take: `stride` and\n`dilation` are at least 1, `pad` is 0 or more (or \"same\" / \"valid\"), `groups`\ndivides both the input and the output channels, and max pooling pads at most\nhalf its window (a window of padding alone would have no maximum).\n\n    conv2d(x, w, stride: 0)              // error: `stride` must be at least 1\n    Conv2d(6 -> 16, kernel: 3, groups: 4) // error: 4 does not divide 6";
    "E0207", "a requirement of a call is not met",
    "A function checked a compile-time requirement with `check(condition, message)`\nand it is false for these arguments, for example a dropout rate outside [0, 1):\n\n    x |> dropout(1.5)    // error: the dropout rate must be in [0, 1)";
    "E0301", "argument shape mismatch",
    "A function or layer declares the shape of a parameter, and the argument's shape\ndoes not match it. Named dims (`inputs`, `n`) must agree everywhere they occur;\n`...` matches any number of leading dims.\n\n    layer Dense(inputs: int, outputs: int) { fn forward(x: [..., inputs]) = ... }\n    x |> Dense(100 -> 10)    // x is [batch, 784]: error, 784 != 100\n\nThe help line gives the layer arguments that would fit the input.";
    "E0302", "shapes cannot be broadcast",
    "Elementwise operators (+ - * / ^ max min comparisons) follow NumPy's broadcasting\nrules: shapes are aligned on the right, and each pair of dims must be equal or\none of them 1. `[batch, 10] + [10]` works; `[batch, 10] + [5]` does not.";
    "E0303", "matrix product shape mismatch",
    "`a @ b` multiplies `[..., m, k]` by `[k, n]` (or by `[..., k, n]` with the same\nleading dims): the last dim of `a` must equal the second-to-last dim of `b`.";
    "E0304", "loss is not a scalar",
    "The `loss` of a `train` block must be a single number (shape `[]`). Reduce it,\nfor example with `mean(...)` or `sum(...)`.";
    "E0305", "return shape mismatch",
    "The body's result does not have the shape the declaration promises after `->`.";
    "E0306", "axis out of range",
    "An axis argument names a dimension the tensor does not have. Axes count from 0;\nnegative axes count from the end (-1 is the last).";
    "E0307", "reshape changes the number of elements",
    "`reshape` and `flatten` keep every element: the product of the new dims must equal\nthe product of the old ones.";
    "E0308", "data does not fit the model",
    "The dataset's samples, read from the file's header (IDX) or first row (CSV)\nwithout reading the whole file, do not have as many values as the model's input.\nSamples are reshaped to the input, so only the count must agree: MNIST's\n[28, 28] images fit `x: [batch, 28, 28]` and `x: [batch, 784]`, but not\n`x: [batch, 64]`.\n\n    model M(x: [batch, 784]) -> [batch, 10] = x |> Dense(784 -> 10)\n    train M { data = csv(\"digits.csv\", label: 64) ... }   // error: 64 values, not 784\n\nFix the model's input or point `data =` at the intended dataset.";
    "E0309", "wrong rank",
    "The tensor has a different number of dimensions than the operation needs.";
    "E0310", "window larger than its input",
    "A convolution or pooling window, dilated, is larger than the input plus its\npadding, so it has no position to start from. Along each spatial axis the output\nsize is\n\n    (h + 2·pad − dilation·(kernel − 1) − 1) / stride + 1\n\nand it must be at least 1. The message shows this arithmetic with the numbers of\nthe failing axis. Pad the input, use a smaller kernel, or pool earlier less.\n\n    x: [batch, 16, 4, 4] |> Conv2d(16 -> 32, kernel: 5)   // error: 5 > 4; pad: 1 fits";
    "E0311", "convolution channel mismatch",
    "A convolution weight `[out, in / groups, kh, kw]` expects `in` input channels,\nand the image `[n, c, h, w]` has a different `c`. The channels are the second\ndim of the image (NCHW, as in PyTorch): a batch of grey images is\n`[n, 1, 28, 28]`.\n\n    conv2d(x: [batch, 3, 32, 32], w: [16, 1, 3, 3])   // error: 1 channel expected, 3 found";
    "E0312", "pooling windows do not tile the input",
    "A pooling window stepping by its stride leaves rows or columns of the input that\nno window covers: (h + 2·pad − kernel) is not a multiple of the stride. PyTorch\nand Keras silently drop that border; nnc asks you to decide. Pad the input (for\nexample `pad: 1`), crop it, or choose a kernel and stride that divide it.\n\n    x: [batch, 6, 25, 25] |> max_pool2d(2)   // error: 25 = 2·12 + 1 leaves one column";
    "E0313", "a column broadcast against a vector",
    "An elementwise operation between `[batch, 1]` and `[batch]` would broadcast\nto `[batch, batch]`: every row of one paired with every row of the other.\nNumPy and PyTorch allow it, and a loss computed that way trains and reports\nplausible numbers while being wrong. It is almost always a regression model's\n`[batch, 1]` output against a `[batch]` column of targets.\n\n    model Price(x: [batch, 3]) -> [batch, 1] = x |> Dense(3 -> 1)\n    loss = mse(model(x), y)        // y: [batch]: error\n    loss = mse(model(x), reshape(y, [-1, 1]))   // both [batch, 1]\n\nMake both operands the same shape: reshape the vector into a column, or\ndeclare the model's output as `[batch]`.";
    "E0314", "parameter shape uses the batch dimension",
    "A parameter is created once, when its layer is built, and has one shape for\nevery batch. Its shape can use the layer's arguments, not `batch` or another\ndimension of the input, which are known only when the layer is applied.\n\n    layer Scale(n: int) {\n        param s: [batch, n] = ones()   // error\n        param s: [n] = ones()          // broadcasting repeats it over the batch\n    }";
    "E0320", "index out of range",
    "An index or a slice bound names a position the axis does not have. Positions\ncount from 0; negative ones count from the end (-1 is the last):\n\n    x: [batch, 10]\n    x[:, 10]       // error: axis 1 has positions 0 to 9\n    x[:, 0:12]     // error: the slice end can be at most 10; write `x[:, 0:10]` or `x[:, 0:]`\n\nUnlike NumPy, nnc does not clamp a slice bound that lies outside the axis: in a\nmodel whose sizes are known, such a bound is a mistake. A `gather` id outside\nthe axis can only be known at run time; it reads NaN (as JAX's `take` does), so\nthe training step stops with a non-finite loss instead of going on silently.";
    "E0321", "invalid slice",
    "A slice `start:end:step` must take at least one element, and its step cannot be\n0. With a positive step, start must be below end; with a negative step\n(`x[::-1]` reverses an axis) start must be above end. Only one `...` may appear\nin an index.";
    "E0322", "shapes do not match for concat or stack",
    "`concat(xs, axis: k)` joins tensors along axis k: they must have the same rank and\nthe same dims on every other axis. `stack(xs, axis: k)` adds a new axis k: the\ntensors must have identical shapes.\n\n    concat([a, b], axis: -1)   // a: [batch, 3], b: [batch, 4] -> [batch, 7]\n    concat([a, c], axis: -1)   // c: [5, 4]: error, batch and 5 differ";
    "E0323", "split does not fit the axis",
    "`split(x, sizes, axis: k)` cuts axis k into pieces of the given sizes, which must\nadd up to the axis; `chunk(x, n, axis: k)` cuts it into n equal pieces, so n must\ndivide it. An LSTM's four gates from one product:\n\n    let gates = chunk(x @ W + h @ U + b, 4, axis: -1)   // [batch, 4*hidden] -> 4 x [batch, hidden]\n    let i = sigmoid(gates[0])";
    "E0324", "index into a dim of unknown size",
    "The batch dim (and any other symbolic dim) is known only when the model runs,\nso an index, a slice bound, padding or a concatenation along it cannot be\nchecked. Only `:` (the whole axis) may stand there. Index the other axes:\n`x[:, 0]` is the first feature of every sample.";
    "E0330", "heads do not divide the features",
    "Multi-head attention cuts each position's d_model features into `heads` equal\nparts, one per head (`split_heads`), so `heads` must divide d_model. The label\nmarks the head count; the fix is the nearest count that divides.\n\n    MultiHeadAttention(30, 4)   // error: 4 heads do not divide 30 features\n    MultiHeadAttention(30, 5)   // 5 heads of 6 features";
    "E0331", "mask does not broadcast to the scores",
    "An attention mask says which keys each query may look at: 1 (or nonzero) to\nlook, 0 not to. It must broadcast to the scores [..., queries, keys] without\nwidening them: aligned from the right, each mask dim is 1 or equal to the\nscores' dim, and the mask has no more dims than the scores. A padding mask of\nids [batch, keys] needs the query (and head) axes as 1s:\n\n    masked(scores, reshape(m, [batch, 1, keys]))       // scores [batch, queries, keys]\n    padding_mask(ids)                                  // [batch, 1, 1, keys], for heads\n    causal_mask(t)                                     // [t, t]";
    "E0332", "sequence longer than a learned positional table",
    "`LearnedPositions(max_len, d_model)` trains one row of `d_model` numbers per\nposition, for positions 0 to max_len - 1; a sequence with more positions has\npositions without a row. The message gives both lengths; the fix raises the\ntable's length to the sequence's.\n\n    let pos = LearnedPositions(50, 16)\n    pos(x)                              // x: [batch, 100, 16]: error, 100 > 50\n    let pos = LearnedPositions(100, 16) // one row per position\n\nThe sinusoidal table (`positional_encoding`) has no maximum length.";
    "E0333", "parameter with an empty dimension",
    "A layer was built with a size of 0, so one of its parameters holds no numbers:\n\n    x |> Dense(12 -> 0)   // error: parameter `dense1.W` is [12, 0]\n\nSuch a layer trains nothing while the loss still looks plausible. Give every size\nof the layer a value of at least 1 (check `let` sizes and `--set` values).";
    "E0325", "a scan's carried state changes shape",
    "`scan x in xs along 1 from h = h0 { h = ... }` runs its body once per step,\ncarrying `h` from each step to the next. The body must give each carried\nvariable the shape and dtype it started with, so that every step can run the\nsame code:\n\n    scan x in xs from h = zeros([batch, 64]) {\n        h = tanh(x @ Wx + h @ Wh + b)     // Wh: [64, 128] makes h [batch, 128]: error\n    }\n\nThe message gives both shapes; start the state with the shape the step\nproduces, or fix the weight whose size changes it.";
    "E0326", "nothing to scan",
    "A `scan` runs once per step of its sequences, along one axis: every sequence\nmust have at least one step there, and all of them the same number of steps.\n\n    scan x in xs, m in mask along 1 from h = h0 { ... }   // xs: [batch, 28, 28], mask: [batch, 28]\n\nA sequence of length 0 has nothing to run the body on; pad it, or drop it from\nthe data.";
    "E0401", "not differentiable",
    "Gradients flow only through f32 values. The loss depends on the trained\nparameters only through integer or comparison results, so it has no gradient.";
    "E0403", "parameters that get no gradient",
    "Some trained parameters reach the loss only through an operation whose\nderivative is zero everywhere: a comparison (`x > 0`), the `step` activation,\n`sign`. Their gradient is always 0, so training never changes them and the\nmodel cannot learn. The perceptron's threshold is why multilayer networks use\nsmooth activations.\n\n    x |> Dense(2 -> 4, step)   // error: dense1.W and dense1.b get no gradient\n    x |> Dense(2 -> 4, relu)   // or sigmoid, tanh";
    "E0402", "a step's loss does not depend on what it trains",
    "A step's loss has no gradient with respect to any parameter the step updates, so\nits optimizer would never move them: the model named after `on` is not used in\nthe loss (or only through integer or comparison results).\n\n    step generator with adam(lr: 2e-4) on G {\n        loss = binary_cross_entropy(D(x), 1)    // error: G is not in this loss\n    }";
    "E0501", "backend limit",
    "The program is valid but uses a feature the selected backend cannot run.";
    "E0502", "program too large to check",
    "Checking inlines every call and evaluates every compile-time value. This\nprogram needs more evaluation steps, IR instructions or list values than nnc\nallows for one compile (millions: far more than any real model), so checking\nstopped with this error rather than running out of time or memory. The usual\ncause is a chain of functions each calling the next twice:\n\n    fn f1(x) = f0(x) + f0(x)\n    fn f2(x) = f1(x) + f1(x)   // ... f40 inlines f0 2^40 times\n\nCompute the shared value once with `let` and use it twice.";
    "E0503", "tensor too large",
    "A tensor's shape has more elements than nnc can allocate and index: at most\n2^31 (2,147,483,648) elements, 8 GiB of f32, per tensor, counting a symbolic\ndim such as `batch` as 1. The sizes are known when the program is checked, so\nthis is reported before anything is allocated.\n\n    model M(x: [batch, 2]) = x |> Dense(2 -> 1099511627776)   // 2^41 weights\n\nUse smaller layers, or split the data into batches.";
    "E0504", "training block cannot be prepared",
    "The `train` block has no error of its own, but the training step could not\nbe built from it; the message says why. Each `train` block that nnc cannot\nrun says so instead of disappearing.";
    "E0601", "cannot read data",
    "The dataset named by `data =` could not be read: the file is missing, truncated,\nor not in the expected format. The message names the file. Relative paths are\nresolved against the .nn file's directory, then `--data-dir` / `NNC_DATA`.";
    "E0607", "cannot read saved weights",
    "A weights file (`--weights`, or the `weights.safetensors` of a run given to\n`--resume`) could not be read: it is missing, not a safetensors file (truncated,\nor another format), or the run's history (`metrics.jsonl`) beside it is\ncorrupt. The message names the file. `nnc run --out DIR` writes\n`DIR/weights.safetensors`; pass that path, or the directory to `--resume`.";
    "E0605", "an id outside the vocabulary",
    "A character of a `text(...)` file has a code point at or above the source's\n`vocab:` (128, ASCII, unless given), so it has no row in the model's embedding\nand no output to predict it. The message gives the file, line and column and\nthe character. Character ids are code points so that the model's sizes follow\nfrom the `data =` line alone and `nnc sample` can print any id.\n\n    data = text(\"poems.txt\", steps: 64)               // error: 'é' (U+00E9) has id 233\n    data = text(\"poems.txt\", steps: 64, vocab: 256)   // ids 0 to 255\n\nRaise `vocab:` (and the embedding's and output layer's sizes with it), or\nremove or replace the character in the file. A prompt given to `nnc sample`\nis checked the same way.";
    "E0606", "a text file that is not UTF-8",
    "A `text(...)` data file must be UTF-8. The message gives the line, column and\nbyte offset of the first byte that is not part of a UTF-8 character (a file\nsaved as Latin-1 or Windows-1252 typically has one at its first accented\nletter). Convert it, for example with `iconv -f latin1 -t utf-8 in.txt >\nout.txt`.";
    "E0701", "no ONNX equivalent",
    "`nnc export --onnx` writes the model's inference graph (evaluation mode) as ONNX\nopset 17 operators. The model uses an operation that has no ONNX operator with\nthe same meaning, for example nnc's counter-based random draws, so the graph\ncannot be written. The message names the operation. Export the model without\nit (dropout and other training-only randomness is absent in evaluation mode),\nor export it with `--pytorch`.";
    "E0702", "no PyTorch equivalent",
    "`nnc export --pytorch` translates the `.nn` file into a PyTorch module and a\ntraining script. The construct named in the message (an operation, a stdlib\nfunction or a user-defined optimizer) has no translation yet. Rewrite it with\nthe operations the message lists, or export the inference graph with `--onnx`.";
    "E0703", "cannot write the export",
    "The export's output path is in a directory that does not exist or cannot be\nwritten (read-only, or no permission), or names an existing directory where a\nfile is needed. Nothing was written: create the directory, or choose another\npath.";
    "E0704", "weights do not fit the model",
    "A weights file read by `nnc eval`, `nnc predict`, `nnc export --weights` or\n`nnc run --resume` does not fit the model in the .nn file: it holds another\nmodel's weights, or tensors the model declares are missing, have another shape\nor hold a non-finite value. The message names the file and the first mismatches,\neach parameter with both shapes:\n\n    error[E0704]: run/weights.safetensors: does not fit model `LeNet5`: `c1.W` has\n    shape [6, 1, 3, 3] in the file, but the model declares [6, 1, 5, 5]\n\nUsually the .nn file changed since the weights were saved (here the kernel went\nfrom 3 to 5): train again, or go back to the layer sizes the file was saved with.\nWeights are matched by name (`fc1.W`); a PyTorch state dict saved by an exported\n`model.py` is matched through its names (`fc1.weight`, transposed).";
    "E0801", "unknown name on the command line",
    "A command-line option names a model, function or hyper-parameter the file does not\nhave. The message suggests the closest name that exists.\n\n    nnc explain --grad xor.nn --model Xr      // error: no trained model `Xr`; did you mean `Xor`?\n    nnc tune mnist.nn --grid lrr=0.1,0.01     // error: `lrr` is not a setting; did you mean `lr`?";
    "E0802", "empty or contradictory search space",
    "`nnc tune` needs at least one hyper-parameter with at least one value, each named\nonce, with ranges whose low end is below the high end (and above zero for\n`log:` ranges), and values the setting accepts (a whole batch size, a learning\nrate above zero).\n\n    nnc tune mnist.nn --grid lr=0.1,0.01 --random batch_size=16..128 --trials 8";
    "E0803", "step or sample past the end of the data",
    "`nnc trace --step K` traces the K-th training step (counting from 1) of the first\nepoch and `--sample N` starts the batch at sample N; both must lie inside the\ntraining split. The message gives how many steps and samples there are.";
    "E0804", "function cannot be plotted",
    "`nnc plot` draws functions of one tensor, such as activations: `relu`, `sigmoid`,\n`tanh`, or a `fn` of the file with one parameter (others need defaults). A\nfunction of two tensors (a loss), a layer or a number has no curve to draw.";
    "E0805", "no training run",
    "`nnc explain --grad`, `nnc trace` and `nnc tune` work on a `train` block: the loss\nit differentiates, the data it reads, the settings it tunes. The file declares none\n(or none for the model named with `--model`).";
    "E0602", "labels that do not fit the model",
    "The class labels of the data, read before training, do not fit the model: a\nlabel reaches the number of outputs (a 5-output model trained on the 10 digit\nclasses), so the labels from there on have no output to score them; or the\nlabel column holds numbers that are not class ids.\n\n    model M(x: [batch, 784]) -> [batch, 5] = x |> Dense(784 -> 5)\n    train M { data = mnist(\"mnist\") ... }   // error: labels go up to 9\n\nGive the model as many outputs as there are classes. For a column of numbers\nto predict (a price), read it as a regression target: `csv(\"houses.csv\",\ntarget: \"price\")` gives `y: [batch]` of f32.";
    "W0001", "training may not fit in memory",
    "The checker's estimate of the memory a training step needs (weights, their\ngradients and optimizer state, and the values of the forward pass and the\nloss at the file's batch size, kept for the backward pass) is more than this\nmachine has. Make the largest layer or value smaller, or lower `batch_size`.";
    "W0003", "raw scores given to a loss that expects probabilities",
    "`binary_cross_entropy` takes the log of its first argument and of one minus\nit, so it expects probabilities in (0, 1). The output of a layer without an\nactivation (a raw score, any real number) gives it logs of negative numbers:\nthe loss is not a number after the first steps.\n\n    x |> Dense(8 -> 1)            // warning with binary_cross_entropy(model(x), y)\n    x |> Dense(8 -> 1, sigmoid)   // probabilities\n\nOr keep the raw scores and use `binary_cross_entropy_with_logits`, which applies\nthe sigmoid itself and keeps its gradient where the sigmoid saturates.";
    "W0002", "probabilities given to a loss that expects logits",
    "`cross_entropy` and `categorical_cross_entropy` apply `log_softmax` to their\nfirst argument, so they expect logits (any real numbers). Given the output of\n`softmax` or `sigmoid`, they squash it twice: the model still trains, but\nslowly and to worse accuracy, and its outputs are no longer the probabilities\nthey seem.\n\n    x |> Dense(128 -> 10, softmax)   // warning with cross_entropy(model(x), y)\n    x |> Dense(128 -> 10)            // logits; softmax them to read probabilities";
}

pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code.eq_ignore_ascii_case(code))
}

/// The long explanation printed by `nnc explain CODE`.
pub fn explain(code: &str) -> Option<String> {
    lookup(code).map(|c| format!("{}: {}\n\n{}\n", c.code, c.title, c.explanation))
}
