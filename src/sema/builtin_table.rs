//! The primitives of the language, as an enum with one table entry each:
//! name, parameter names, a one-line description and the shape rule.
//! Name lookup (`sema::elab`), keyword binding (`sema::builtins`), hover,
//! completion and signature help (`lsp`) and the language reference
//! (`docs/reference.md`, checked by `tests/it/reference.rs`) all read it, so
//! a primitive is documented once. Its checking and lowering is one arm of
//! the exhaustive `match` in `builtins::call`.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    Exp,
    Log,
    Sqrt,
    Tanh,
    Abs,
    Sign,
    Max,
    Min,
    Sum,
    Mean,
    Where,
    Reshape,
    Transpose,
    OneHot,
    Float,
    Zeros,
    Ones,
    Full,
    ZerosLike,
    OnesLike,
    Uniform,
    Normal,
    FanIn,
    FanOut,
    Size,
    Floor,
    Ceil,
    Sin,
    Cos,
    Erf,
    StopGradient,
    Concat,
    Stack,
    Split,
    Chunk,
    Gather,
    Pad,
    Arange,
    Conv2d,
    MaxPool2d,
    AvgPool2d,
    SplitHeads,
    MergeHeads,
    Masked,
    Positions,
    Repeat,
    Shape,
    Check,
}

/// What a primitive is, for people: the reference, hover and completion.
pub struct BuiltinInfo {
    pub name: &'static str,
    /// Parameter names, in positional order (keyword arguments use them).
    pub params: &'static [&'static str],
    /// What it computes, in a sentence.
    pub doc: &'static str,
    /// Argument and result shapes. `[s]` is any shape; `[..., n]` binds the
    /// last dim; a name in backticks is a compile-time value.
    pub shapes: &'static str,
}

const fn info(name: &'static str, params: &'static [&'static str], doc: &'static str, shapes: &'static str) -> BuiltinInfo {
    BuiltinInfo { name, params, doc, shapes }
}

/// An elementwise function's shape rule.
const ELEMENTWISE: &str = "`[s] -> [s]`, f32; a list of tensors maps elementwise; on a compile-time number, a compile-time number";

impl Builtin {
    /// Every primitive, in the order the reference lists them.
    pub const ALL: [Builtin; 48] = [
        Builtin::Exp,
        Builtin::Log,
        Builtin::Sqrt,
        Builtin::Tanh,
        Builtin::Abs,
        Builtin::Sign,
        Builtin::Max,
        Builtin::Min,
        Builtin::Sum,
        Builtin::Mean,
        Builtin::Where,
        Builtin::Reshape,
        Builtin::Transpose,
        Builtin::OneHot,
        Builtin::Float,
        Builtin::Zeros,
        Builtin::Ones,
        Builtin::Full,
        Builtin::ZerosLike,
        Builtin::OnesLike,
        Builtin::Uniform,
        Builtin::Normal,
        Builtin::FanIn,
        Builtin::FanOut,
        Builtin::Size,
        Builtin::Floor,
        Builtin::Ceil,
        Builtin::Sin,
        Builtin::Cos,
        Builtin::Erf,
        Builtin::StopGradient,
        Builtin::Concat,
        Builtin::Stack,
        Builtin::Split,
        Builtin::Chunk,
        Builtin::Gather,
        Builtin::Pad,
        Builtin::Arange,
        Builtin::Conv2d,
        Builtin::MaxPool2d,
        Builtin::AvgPool2d,
        Builtin::SplitHeads,
        Builtin::MergeHeads,
        Builtin::Masked,
        Builtin::Positions,
        Builtin::Repeat,
        Builtin::Shape,
        Builtin::Check,
    ];

    pub fn info(self) -> BuiltinInfo {
        match self {
            Builtin::Exp => info("exp", &["x"], "e raised to each element", ELEMENTWISE),
            Builtin::Log => info("log", &["x"], "natural logarithm of each element", ELEMENTWISE),
            Builtin::Sqrt => info("sqrt", &["x"], "square root of each element", ELEMENTWISE),
            Builtin::Tanh => info("tanh", &["x"], "hyperbolic tangent of each element", ELEMENTWISE),
            Builtin::Abs => info("abs", &["x"], "absolute value of each element", ELEMENTWISE),
            Builtin::Sign => info("sign", &["x"], "-1, 0 or 1 for each element", ELEMENTWISE),
            Builtin::Max => info(
                "max",
                &["a", "b", "axis", "keep"],
                "max(a, b): elementwise maximum; max(x, axis: i): the largest element along axis i",
                "`max(a: [s], b: [t]) -> [broadcast(s, t)]`; `max(x: [s], axis: i, keep: false) -> [s without axis i]` (`keep: true` keeps it as size 1; no axis: every axis, giving `[]`)",
            ),
            Builtin::Min => info(
                "min",
                &["a", "b", "axis", "keep"],
                "min(a, b): elementwise minimum; min(x, axis: i): the smallest element along axis i",
                "as `max`",
            ),
            Builtin::Sum => info(
                "sum",
                &["x", "axis", "keep"],
                "sum of all elements, or along `axis` (an int or a list); a list of tensors sums all of them",
                "`sum(x: [s]) -> []`; `sum(x: [s], axis: i or [i, j], keep: false) -> [s without those axes]`; `sum([t1, t2, ...]) -> []`",
            ),
            Builtin::Mean => info(
                "mean",
                &["x", "axis", "keep"],
                "mean of all elements, or along `axis`",
                "as `sum`",
            ),
            Builtin::Where => info(
                "where",
                &["cond", "a", "b"],
                "`a` where `cond` is nonzero, else `b` (broadcasting)",
                "`where(cond: [s], a: [t], b: [u]) -> [broadcast(s, t, u)]`",
            ),
            Builtin::Reshape => info(
                "reshape",
                &["x", "shape"],
                "the same elements in a new shape; one dim may be -1",
                "`reshape(x: [s], shape: [d1, d2, ...]) -> [d1, d2, ...]` with the same element count; `-1` stands for the dim that makes it so",
            ),
            Builtin::Transpose => info(
                "transpose",
                &["x", "a", "b"],
                "swap axes `a` and `b` (default the last two)",
                "`transpose(x: [..., m, n]) -> [..., n, m]`; with `a`, `b`: those two dims swapped",
            ),
            Builtin::OneHot => info(
                "one_hot",
                &["labels", "classes"],
                "i32 labels [n] to one-hot rows [n, classes]",
                "`one_hot(labels: i32[s], classes: k) -> f32[s, k]`; a label outside `0..k` gives a zero row",
            ),
            Builtin::Float => info("float", &["x"], "convert to f32", "`float(x: i32[s]) -> f32[s]`"),
            Builtin::Zeros => info("zeros", &["shape"], "a tensor of zeros", "`zeros(shape: [d1, ...]) -> f32[d1, ...]`"),
            Builtin::Ones => info("ones", &["shape"], "a tensor of ones", "`ones(shape: [d1, ...]) -> f32[d1, ...]`"),
            Builtin::Full => info(
                "full",
                &["shape", "value"],
                "a tensor filled with `value`",
                "`full(shape: [d1, ...], value: v) -> f32[d1, ...]`",
            ),
            Builtin::ZerosLike => info("zeros_like", &["x"], "zeros with the shape of `x`", "`zeros_like(x: [s]) -> f32[s]`"),
            Builtin::OnesLike => info("ones_like", &["x"], "ones with the shape of `x`", "`ones_like(x: [s]) -> f32[s]`"),
            Builtin::Uniform => info(
                "uniform",
                &["shape", "low", "high"],
                "uniform random draws in [low, high)",
                "`uniform(shape: [d1, ...], low: 0, high: 1) -> f32[d1, ...]`",
            ),
            Builtin::Normal => info(
                "normal",
                &["shape", "mean", "std"],
                "normal random draws",
                "`normal(shape: [d1, ...], mean: 0, std: 1) -> f32[d1, ...]`",
            ),
            Builtin::FanIn => info(
                "fan_in",
                &["shape"],
                "inputs per unit of a weight of this shape: [in, out] -> in; [out, in, k...] -> in*k...",
                "`fan_in(shape: [d1, ...]) -> int`",
            ),
            Builtin::FanOut => info(
                "fan_out",
                &["shape"],
                "outputs per unit: [in, out] -> out; [out, in, k...] -> out*k...",
                "`fan_out(shape: [d1, ...]) -> int`",
            ),
            Builtin::Size => info(
                "size",
                &["x", "axis"],
                "the size of dim `axis` of `x`, as a compile-time integer",
                "`size(x: [s], axis: i) -> int` (a symbolic dim such as `batch` stays symbolic)",
            ),
            Builtin::Floor => info(
                "floor",
                &["x"],
                "a compile-time number rounded down to an integer: `floor((h - k) / stride) + 1`",
                "`floor(x: number) -> int`",
            ),
            Builtin::Ceil => info(
                "ceil",
                &["x"],
                "a compile-time number rounded up to an integer",
                "`ceil(x: number) -> int`",
            ),
            Builtin::Sin => info("sin", &["x"], "sine of each element (radians)", ELEMENTWISE),
            Builtin::Cos => info("cos", &["x"], "cosine of each element (radians)", ELEMENTWISE),
            Builtin::Erf => info(
                "erf",
                &["x"],
                "the error function of each element (exact GELU: x * (1 + erf(x / sqrt(2))) / 2)",
                ELEMENTWISE,
            ),
            Builtin::StopGradient => info(
                "stop_gradient",
                &["x"],
                "`x` itself, but no gradient flows back through it (a target network, a fixed baseline)",
                "`stop_gradient(x: [s]) -> [s]`",
            ),
            Builtin::Concat => info(
                "concat",
                &["xs", "axis"],
                "join a list of tensors along an existing axis (default 0): concat([a, b], axis: -1)",
                "`concat([a: [..., m, ...], b: [..., n, ...]], axis: k) -> [..., m + n, ...]`: equal dims elsewhere; not along the batch",
            ),
            Builtin::Stack => info(
                "stack",
                &["xs", "axis"],
                "join a list of tensors of one shape along a new axis (default 0)",
                "`stack([a: [s], b: [s], ...], axis: k) -> [s with the count inserted at k]`",
            ),
            Builtin::Split => info(
                "split",
                &["x", "sizes", "axis"],
                "cut an axis (default 0) into pieces of the listed sizes: a list of tensors",
                "`split(x: [..., n, ...], sizes: [a, b, ...], axis: k) -> [[..., a, ...], [..., b, ...], ...]` with `a + b + ... = n`",
            ),
            Builtin::Chunk => info(
                "chunk",
                &["x", "n", "axis"],
                "cut an axis (default 0) into n equal pieces: chunk(z, 4, axis: -1) gives an LSTM's gates",
                "`chunk(x: [..., m, ...], n, axis: k) -> n tensors [..., m / n, ...]`; `n` divides `m`",
            ),
            Builtin::Gather => info(
                "gather",
                &["x", "ids", "axis"],
                "the slices of `x` along `axis` (default 0) at i32 positions `ids`: an embedding lookup gather(E, tokens)",
                "`gather(x: [a..., n, b...], ids: i32[t], axis: k) -> [a..., t, b...]`; an id outside `0..n` reads NaN",
            ),
            Builtin::Pad => info(
                "pad",
                &["x", "widths", "value"],
                "surround `x` with `value` (default 0): widths one integer, or per axis an integer or [before, after]",
                "`pad(x: [d1, ...], widths: [[l1, h1], ...], value: v) -> [l1 + d1 + h1, ...]`; the batch axis gets width 0",
            ),
            Builtin::Arange => info(
                "arange",
                &["start", "stop", "step"],
                "evenly spaced values: arange(n) is 0, 1, ..., n-1; arange(start, stop, step)",
                "`arange(n) -> f32[n]`; `arange(a, b, s) -> f32[ceil((b - a) / s)]`",
            ),
            Builtin::Conv2d => info(
                "conv2d",
                super::conv::CONV2D,
                "2-D convolution of images with `stride`, `pad` (a number, [h, w], \"same\" or \"valid\"), `dilation` and `groups`",
                "`[n, c, h, w]`, `[out, c / groups, kh, kw]` -> `[n, out, (h + 2·pad − dilation·(kh − 1) − 1) / stride + 1, ...]`",
            ),
            Builtin::MaxPool2d => info(
                "max_pool2d",
                super::conv::POOL2D,
                "the maximum of each window (`kernel` a number or [h, w]; `stride` defaults to it); the gradient goes to the first maximum",
                "`[n, c, h, w]` -> `[n, c, (h + 2·pad − kernel) / stride + 1, ...]`; the windows must tile the input",
            ),
            Builtin::AvgPool2d => info(
                "avg_pool2d",
                super::conv::POOL2D,
                "the mean of each window, padding counted as zeros",
                "`[n, c, h, w]` -> `[n, c, (h + 2·pad − kernel) / stride + 1, ...]`; the windows must tile the input",
            ),
            Builtin::SplitHeads => info(
                "split_heads",
                &["x", "heads"],
                "cut the features into `heads` heads, as a view (a reshape and a transpose, no copies)",
                "`split_heads(x: [..., t, d], heads) -> [..., heads, t, d / heads]`; `heads` divides `d`",
            ),
            Builtin::MergeHeads => info(
                "merge_heads",
                &["x"],
                "put the heads side by side again: the inverse of `split_heads`",
                "`merge_heads(x: [..., h, t, k]) -> [..., t, h * k]`",
            ),
            Builtin::Masked => info(
                "masked",
                &["x", "mask", "fill"],
                "`x` where `mask` is nonzero, else `fill` (default -1e9, which softmax turns into an exact 0)",
                "`masked(x: [s], mask: [m], fill) -> [s]`; `[m]` broadcasts to `[s]` (not the other way)",
            ),
            Builtin::Repeat => info(
                "repeat",
                &["n", "layer"],
                "`n` layers built from one expression, each with its own parameters; the list applied to `x` applies each in turn",
                "`repeat(n, Layer(...)) -> [Layer, ...]`; `(layers)(x: [s], ...) -> [s]` when each layer keeps the shape",
            ),
            Builtin::Positions => info(
                "positions",
                &["table", "x"],
                "the rows of a learned positional table for the positions of `x`: `table[0:t]`, and E0332 (with the sizes and a fix) when the table is shorter than the sequence",
                "`positions(table: [max_len, d], x: [..., t, d]) -> [t, d]` with t ≤ max_len",
            ),
            Builtin::Shape => info(
                "shape",
                &["x"],
                "the shape of `x` as a list of dims, e.g. for `uniform(shape(x))`",
                "`shape(x: [d1, ..., dn]) -> [d1, ..., dn]`, a compile-time list (symbolic dims such as `batch` included)",
            ),
            Builtin::Check => info(
                "check",
                &["condition", "message"],
                "a compile-time requirement: reports `message` (E0207) at the call when `condition` is false",
                "`check(condition: bool, message: string)`; both known when compiling",
            ),
        }
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn params(self) -> &'static [&'static str] {
        self.info().params
    }

    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.iter().copied().find(|b| b.name() == name)
    }
}

/// The primitives section of `docs/reference.md`, generated from the
/// table (`tests/it/reference.rs` checks the file holds exactly this).
pub fn reference_markdown() -> String {
    let mut out = String::from("| primitive | shapes | what it computes |\n|---|---|---|\n");
    for b in Builtin::ALL {
        let i = b.info();
        out.push_str(&format!(
            "| `{}({})` | {} | {} |\n",
            i.name,
            i.params.join(", "),
            i.shapes.replace('|', "\\|"),
            i.doc.replace('|', "\\|")
        ));
    }
    out
}
