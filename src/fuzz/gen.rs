//! A generator of random well-formed programs: functions, layers (with
//! buffers and `if training` branches), models with pipelines and blocks,
//! recurrent models over `scan` (short ones unrolled, long ones the loop
//! op), slicing and indexing (negative indices, steps) with `split` and
//! `concat`, convolution and pooling over images, token models with
//! `Embedding` and attention trained on `text(...)` data, optimizers, and
//! train blocks with one loss or with `step`s, some naming a layer's
//! weights (`l2(fc1.W)`). Dims are chained
//! so most programs check and reach lowering, autodiff and optimisation;
//! a fraction get a deliberately wrong size, name or argument so the error
//! paths of the same constructs are exercised too.

use super::rng::Rng;
use std::fmt::Write as _;

const ACTIVATIONS: &[&str] = &["relu", "tanh", "sigmoid", "identity", "softmax", "leaky_relu", "exp", "abs"];
const UNARY: &[&str] = &["exp", "tanh", "abs", "relu", "sigmoid", "sqrt", "log", "softmax", "log_softmax"];
const INITS: &[&str] = &[
    "zeros()",
    "ones()",
    "glorot_uniform()",
    "he_normal()",
    "normal(std: 0.1)",
    "uniform(-0.1, 0.1)",
];
const RECURRENT: &[&str] = &["Rnn", "Lstm", "Gru"];
const OPTIMIZERS: &[&str] = &[
    "sgd(lr: 0.1)",
    "adam(lr: 0.01)",
    "adamw(lr: 0.01)",
    "rmsprop()",
    "adagrad(lr: 0.1)",
    "sgd_momentum(lr: 0.05, momentum: 0.9)",
    "nesterov()",
];

struct Gen<'a> {
    rng: &'a mut Rng,
    out: String,
    /// Names of generated helper functions `(x) -> same shape`.
    fns: Vec<String>,
    /// Generated layers `(name, takes (in, out))`.
    layers: Vec<String>,
    /// Generated layers with a buffer and modes, `(name, takes (n))`.
    moded: Vec<String>,
    /// Generated recurrent layers over `scan`, `(inputs, hidden)`.
    recurrent: Vec<String>,
    /// Weights a loss may name, by model (`fc1.W`).
    members: Vec<(String, String)>,
    /// Whether to slip in a mistake.
    wrong: bool,
}

/// A random program; `seed`-determined.
pub fn program(rng: &mut Rng) -> String {
    let wrong = rng.one_in(4);
    let mut g = Gen {
        rng,
        out: String::new(),
        fns: vec![],
        layers: vec![],
        moded: vec![],
        recurrent: vec![],
        members: vec![],
        wrong,
    };
    g.program();
    g.out
}

impl Gen<'_> {
    fn dim(&mut self) -> u64 {
        if self.wrong && self.rng.one_in(6) {
            self.rng.size()
        } else {
            self.rng.range(1, 12) as u64
        }
    }

    fn program(&mut self) {
        for i in 0..self.rng.below(3) {
            self.function(i);
        }
        for i in 0..self.rng.below(3) {
            self.layer(i);
        }
        if self.rng.one_in(3) {
            self.moded_layer(0);
        }
        if self.rng.one_in(3) {
            self.recurrent_layer(0);
        }
        let models = 1 + self.rng.below(2);
        for i in 0..models {
            let (name, d_in, d_out) = self.model(i);
            if self.rng.below(5) < 4 {
                self.train(&name, &d_in, d_out);
            }
        }
        if self.rng.one_in(3) {
            let (name, input, d_out) = self.sequence_model(0);
            if self.rng.below(5) < 4 {
                self.train(&name, &input, d_out);
            }
        }
        if self.rng.one_in(5) {
            let (name, input, d_out) = self.sliced_model(0);
            if self.rng.below(5) < 4 {
                self.train(&name, &input, d_out);
            }
        }
        if self.rng.one_in(5) {
            let (name, input, d_out) = self.conv_model(0);
            if self.rng.below(5) < 4 {
                self.train(&name, &input, d_out);
            }
        }
        if self.rng.one_in(5) {
            self.token_model(0);
        }
    }

    /// A model over `[batch, steps, d]` that takes steps apart by index
    /// (negative too), by slices with steps and reversed, cuts one with
    /// `split` and joins the pieces with `concat`.
    fn sliced_model(&mut self, i: usize) -> (String, Vec<u64>, u64) {
        let name = format!("P{i}");
        let steps = self.rng.range(1, 5) as i64;
        let d = self.rng.range(2, 8) as i64;
        // Any step, counted from either end; one past the end is a mistake.
        let t = match (self.wrong, self.rng.below(3)) {
            (true, 0) => steps,
            (_, 1) => -(self.rng.range(1, steps as usize) as i64),
            _ => self.rng.below(steps as usize) as i64,
        };
        let stride = *self.rng.pick(&[1i64, 2, 3, -1, -2]);
        let take = self.rng.range(1, d as usize) as i64;
        let cut = self.rng.range(1, d as usize - 1) as i64;
        let rest = if self.wrong && self.rng.one_in(3) { d - cut + 1 } else { d - cut };
        let width = d + d + rest + take;
        let out = self.dim();
        let _ = writeln!(
            self.out,
            "model {name}(x: [batch, {steps}, {d}]) -> [batch, {out}] {{\n    let last = x[:, -1, :]\n    let picked = x[:, {t}, :]\n    let strided = x[:, ::{stride}, :]\n    let head = x[..., 0:{take}]\n    let parts = split(last, [{cut}, {rest}], axis: -1)\n    let joined = concat([strided[:, 0, :], picked, parts[1], head[:, -1]], axis: -1)\n    return joined |> Dense({width} -> {out})\n}}\n"
        );
        (name, vec![steps as u64, d as u64], out)
    }

    /// Convolution and pooling over images `[batch, channels, h, w]`, then
    /// `flatten` and a dense readout; the sizes follow the layers'
    /// arithmetic (a planted mistake gets the flattened width wrong).
    fn conv_model(&mut self, i: usize) -> (String, Vec<u64>, u64) {
        let name = format!("C{i}");
        let channels = self.rng.range(1, 2) as u64;
        let (h, w) = (self.rng.range(2, 7) as u64, self.rng.range(2, 7) as u64);
        let kernel = self.rng.range(1, 3.min(h.min(w) as usize)) as u64;
        let pad = self.rng.below(2) as u64;
        let maps = self.rng.range(1, 4) as u64;
        let act = self.activation();
        let (mut oh, mut ow) = (h + 2 * pad - kernel + 1, w + 2 * pad - kernel + 1);
        let mut body = vec![format!("Conv2d({channels} -> {maps}, {act}, kernel: {kernel}, pad: {pad})")];
        // Pooling windows must tile the maps exactly.
        if oh.is_multiple_of(2) && ow.is_multiple_of(2) && self.rng.below(4) < 3 {
            body.push(if self.rng.one_in(2) { "MaxPool2d(2)" } else { "AvgPool2d(2)" }.to_string());
            (oh, ow) = (oh / 2, ow / 2);
        }
        body.push("flatten".into());
        let mut flat = maps * oh * ow;
        if self.wrong && self.rng.one_in(3) {
            flat += 1;
        }
        let out = self.dim();
        body.push(format!("Dense({flat} -> {out})"));
        let _ = writeln!(
            self.out,
            "model {name}(x: [batch, {channels}, {h}, {w}]) -> [batch, {out}] =\n    x |> {}\n",
            body.join("\n      |> ")
        );
        (name, vec![channels, h, w], out)
    }

    /// A model of token ids, `Embedding` then self-attention (the stdlib's
    /// `MultiHeadAttention`, `TransformerEncoderLayer`, or `attention`
    /// itself), trained to predict the next character of `text(...)`.
    fn token_model(&mut self, i: usize) {
        let name = format!("T{i}");
        let steps = self.rng.range(1, 5);
        let vocab = self.rng.range(2, 12);
        let heads = self.rng.range(1, 2);
        let d = heads * self.rng.range(1, 3);
        // Heads that do not divide the width are a mistake.
        let heads = if self.wrong && self.rng.one_in(3) { d + 1 } else { heads };
        // The sinusoidal table pairs a sine with a cosine: an even width.
        let positions = if d.is_multiple_of(2) && self.rng.below(4) < 3 {
            "positional_encoding(embed(x))"
        } else {
            "embed(x)"
        };
        let mask = if self.rng.one_in(2) {
            format!(", causal_mask({steps})")
        } else {
            String::new()
        };
        let attend = match self.rng.below(3) {
            0 => format!("    let mix = MultiHeadAttention({d}, {heads})\n    let a = h + mix(h{mask})\n"),
            1 => {
                let ff = self.rng.range(1, 8);
                format!("    let enc = TransformerEncoderLayer({d}, {heads}, {ff}, rate: 0.0)\n    let a = enc(h{mask})\n")
            }
            _ => format!("    let a = attention(h, h, h{mask})\n"),
        };
        let _ = writeln!(
            self.out,
            "model {name}(x: i32[batch, {steps}]) -> [batch, {steps}, {vocab}] {{\n    let embed = Embedding({vocab} -> {d})\n    let h = {positions}\n{attend}    return a |> Dense({d} -> {vocab})\n}}\n"
        );
        if self.rng.below(5) < 4 {
            let opt = self.rng.pick(OPTIMIZERS);
            let batch = self.rng.range(1, 8);
            let _ = writeln!(
                self.out,
                "train {name} {{\n    data = text(\"fuzz.txt\", steps: {steps}, vocab: {vocab})\n    loss = sequence_cross_entropy(model(x), y)\n    optimizer = {opt}\n    epochs = 1\n    batch_size = {batch}\n}}\n"
            );
        }
    }

    /// A layer with a buffer written in training mode and a branch on the
    /// mode (dropout in training, the buffer in evaluation).
    fn moded_layer(&mut self, i: usize) {
        let name = format!("N{i}");
        let write = match (self.wrong, self.rng.below(4)) {
            // A buffer whose new value has another shape.
            (true, 0) => "seen = mean(x)",
            _ => "seen = 0.9 * seen + 0.1 * mean(x, axis: 0)",
        };
        // A buffer written in evaluation mode is an error (E0111).
        let (train_write, eval_write) = if self.wrong && self.rng.one_in(3) {
            ("", format!("\n            {write}"))
        } else {
            (write, String::new())
        };
        let _ = writeln!(
            self.out,
            "layer {name}(n: int, rate = 0.25) {{\n    param g: [n] = ones()\n    buffer seen: [n] = zeros()\n\n    fn forward(x: [b, n]) -> [b, n] {{\n        let y = if training {{\n            {train_write}\n            dropout(x, rate)\n        }} else {{{eval_write}\n            x - seen\n        }}\n        return g * y\n    }}\n}}\n"
        );
        self.moded.push(name);
    }

    /// A recurrent layer written as a `scan` with two carried states.
    fn recurrent_layer(&mut self, i: usize) {
        let name = format!("R{i}");
        let act = self.activation();
        let (along, start, update) = match (self.wrong, self.rng.below(4)) {
            // An axis the sequence does not have, a state that changes shape.
            (true, 0) => ("3", "zeros([n, hidden])", "concat([h, h], axis: -1)"),
            (true, 1) => ("1", "zeros([n, hidden + 1])", format!("{act}(c + h @ Wh)").leak() as &str),
            _ => ("1", "zeros([n, hidden])", format!("{act}(c + h @ Wh)").leak() as &str),
        };
        let _ = writeln!(
            self.out,
            "layer {name}(inputs: int, hidden: int) {{\n    param Wx: [inputs, hidden] = glorot_uniform()\n    param Wh: [hidden, hidden] = orthogonal()\n\n    fn forward(xs: [n, steps, inputs]) -> [n, steps, hidden] {{\n        return scan x in xs along {along} from h = {start}, c = zeros([n, hidden]) {{\n            c = 0.5 * c + tanh(x @ Wx)\n            h = {update}\n        }}\n    }}\n}}\n"
        );
        self.recurrent.push(name);
    }

    /// A model over sequences `[batch, steps, d]`: recurrent layers (the
    /// stdlib's or generated ones), the last state or the mean over the
    /// steps, and a dense readout. Mostly a few steps (unrolled), sometimes
    /// more than `UNROLL_MAX_STEPS` (the loop op and its reverse scan).
    fn sequence_model(&mut self, i: usize) -> (String, Vec<u64>, u64) {
        let name = format!("S{i}");
        let steps = if self.rng.one_in(5) {
            self.rng.range(33, 40) as u64
        } else {
            self.rng.range(1, 5) as u64
        };
        let d_in = self.dim();
        let mut d = d_in;
        let mut body = vec![];
        for _ in 0..self.rng.range(1, 2) {
            let hidden = self.dim();
            let input = if self.wrong && self.rng.one_in(6) { self.dim() } else { d };
            let layer = if !self.recurrent.is_empty() && self.rng.one_in(3) {
                self.rng.pick(&self.recurrent).clone()
            } else {
                self.rng.pick(RECURRENT).to_string()
            };
            body.push(format!("{layer}({input} -> {hidden})"));
            d = hidden;
        }
        body.push(if self.rng.one_in(3) {
            "mean(axis: 1)".into()
        } else {
            "last".into()
        });
        let out = self.dim();
        body.push(format!("Dense({d} -> {out})"));
        let _ = writeln!(
            self.out,
            "model {name}(x: [batch, {steps}, {d_in}]) -> [batch, {out}] =\n    x |> {}\n",
            body.join("\n      |> ")
        );
        (name, vec![steps, d_in], out)
    }

    /// An elementwise expression of `x` (shape-preserving).
    fn expr(&mut self, depth: usize) -> String {
        if depth == 0 || self.rng.one_in(3) {
            return match self.rng.below(4) {
                0 => format!("{}", self.rng.range(0, 5)),
                1 => "0.5".into(),
                _ => "x".into(),
            };
        }
        match self.rng.below(6) {
            0 => format!("{}({})", self.rng.pick(UNARY), self.expr(depth - 1)),
            1 if !self.fns.is_empty() => format!("{}({})", self.rng.pick(&self.fns).clone(), self.expr(depth - 1)),
            2 => format!("max({}, {})", self.expr(depth - 1), self.expr(depth - 1)),
            3 => format!("where(x > 0, {}, {})", self.expr(depth - 1), self.expr(depth - 1)),
            _ => {
                let op = self.rng.pick(&["+", "-", "*", "/", "^"]);
                format!("({} {op} {})", self.expr(depth - 1), self.expr(depth - 1))
            }
        }
    }

    fn function(&mut self, i: usize) {
        let name = format!("f{i}");
        let mut body = self.expr(3);
        if !body.contains('x') {
            // Without `x` the function gives a number, not an activation.
            body = format!("({body}) * x");
        }
        if self.rng.one_in(3) {
            let _ = writeln!(self.out, "fn {name}(x) {{\n    let t = {body}\n    return t + x\n}}\n");
        } else {
            let _ = writeln!(self.out, "fn {name}(x) = {body}\n");
        }
        self.fns.push(name);
    }

    fn layer(&mut self, i: usize) {
        let name = format!("L{i}");
        let init = self.rng.pick(INITS);
        let act = self.activation();
        let extra = if self.rng.one_in(3) { "\n    let k = 2" } else { "" };
        let _ = writeln!(
            self.out,
            "layer {name}(n: int, m: int) {{\n    param W: [n, m] = {init}\n    param b: [m] = zeros(){extra}\n\n    fn forward(x: [..., n]) -> [..., m] = {act}(x @ W + b)\n}}\n"
        );
        self.layers.push(name);
    }

    fn activation(&mut self) -> String {
        if !self.fns.is_empty() && self.rng.one_in(3) {
            self.rng.pick(&self.fns).clone()
        } else {
            self.rng.pick(ACTIVATIONS).to_string()
        }
    }

    /// A stage from `d` features to the returned count.
    fn stage(&mut self, d: u64) -> (String, u64) {
        let out = self.dim();
        let input = if self.wrong && self.rng.one_in(8) { self.dim() } else { d };
        match self.rng.below(9) {
            7 if !self.moded.is_empty() => (format!("{}({d})", self.rng.pick(&self.moded).clone()), d),
            7 => ("dropout(0.25)".into(), d),
            8 => (format!("BatchNorm({input})"), d),
            0..=2 => {
                let act = self.activation();
                (format!("Dense({input} -> {out}, {act})"), out)
            }
            3 if !self.layers.is_empty() => (format!("{}({input}, {out})", self.rng.pick(&self.layers).clone()), out),
            4 => (self.rng.pick(ACTIVATIONS).to_string(), d),
            5 if !self.fns.is_empty() => (self.rng.pick(&self.fns).clone(), d),
            _ => (format!("Dense({input} -> {out})"), out),
        }
    }

    /// A model over `[batch, d]` or images `[batch, h, w]`: its name, a
    /// sample's shape and its output width.
    fn model(&mut self, i: usize) -> (String, Vec<u64>, u64) {
        let name = format!("M{i}");
        let image = self.rng.one_in(4);
        let (h, w) = (self.rng.range(1, 6) as u64, self.rng.range(1, 6) as u64);
        let mut d = if image { h * w } else { self.dim() };
        let d_in = d;
        let stages = if self.rng.one_in(20) {
            self.rng.range(20, 300)
        } else {
            self.rng.range(1, 5)
        };
        let mut body = vec![];
        if image {
            body.push("flatten".to_string());
        }
        for _ in 0..stages {
            let (s, nd) = self.stage(d);
            body.push(s);
            d = nd;
        }
        let input = if image {
            format!("[batch, {h}, {w}]")
        } else {
            format!("[batch, {d_in}]")
        };
        let ret = if self.rng.one_in(2) {
            format!(" -> [batch, {d}]")
        } else {
            String::new()
        };
        if self.rng.one_in(3) {
            // A block body with named values; the first dense layer is
            // also bound by name, so a loss can name its weights.
            let _ = writeln!(self.out, "model {name}(x: {input}){ret} {{");
            let mut prev = "x".to_string();
            let mut named = false;
            for (k, s) in body.iter().enumerate() {
                if !named && s.starts_with("Dense(") {
                    let _ = writeln!(self.out, "    let fc1 = {s}");
                    let _ = writeln!(self.out, "    let h{k} = {prev} |> fc1");
                    self.members.push((name.clone(), "fc1.W".into()));
                    named = true;
                } else {
                    let _ = writeln!(self.out, "    let h{k} = {prev} |> {s}");
                }
                prev = format!("h{k}");
            }
            let _ = writeln!(self.out, "    return {prev}\n}}\n");
        } else {
            let _ = writeln!(self.out, "model {name}(x: {input}){ret} =\n    x |> {}\n", body.join("\n      |> "));
        }
        let sample = if image { vec![h, w] } else { vec![d_in] };
        (name, sample, d)
    }

    /// A train block on literal tensors: `x` rows of shape `input`, `y` rows
    /// of `d_out`; one loss, or (sometimes) the same as `step`s.
    fn train(&mut self, model: &str, input: &[u64], d_out: u64) {
        let rows = self.rng.range(1, 6);
        fn literal(rng: &mut Rng, shape: &[u64]) -> String {
            match shape.split_first() {
                None => format!("{}", rng.below(3)),
                Some((&n, rest)) => {
                    let items: Vec<String> = (0..n.min(64)).map(|_| literal(rng, rest)).collect();
                    format!("[{}]", items.join(", "))
                }
            }
        }
        let xs: Vec<String> = (0..rows).map(|_| literal(self.rng, input)).collect();
        let ys: Vec<String> = (0..rows).map(|_| literal(self.rng, &[d_out])).collect();
        // Steps name their model's layers another way; a weight by name
        // goes in a train block's single loss.
        let steps = self.rng.one_in(4);
        let member = self.members.iter().find(|(m, _)| m == model && !steps).map(|(_, w)| w.clone());
        let loss = match (self.rng.below(5), member) {
            (0, _) => "mse(model(x), y)".to_string(),
            (1, _) => "mae(model(x), y)".to_string(),
            (2, _) => "mse(model(x), y) + 0.01 * l2(params)".to_string(),
            // A weight by name; a planted mistake names one that is not there.
            (3, Some(w)) if self.wrong && self.rng.one_in(3) => format!("mse(model(x), y) + 0.01 * l2({w}x)"),
            (3, Some(w)) => format!("mse(model(x), y) + 0.01 * l2({w}) + 0.01 * l1(fc1.b)"),
            _ => "mean((model(x) - y)^2)".to_string(),
        };
        let opt = self.rng.pick(OPTIMIZERS);
        let batch = self.rng.range(1, 8);
        let data = format!(
            "    data = tensors(\n        x: [{}],\n        y: [{}],\n    )\n",
            xs.join(", "),
            ys.join(", ")
        );
        if steps {
            // Steps: each names the model it trains and calls it by name.
            let call = format!("{model}(x)");
            let every = if self.rng.one_in(3) { "        every = 2\n" } else { "" };
            let steps = format!(
                "    step fit with {opt} on {model} {{\n{every}        loss = {}\n    }}\n",
                loss.replace("model(x)", &call)
            );
            let _ = writeln!(
                self.out,
                "train Fit{model} {{\n{data}    epochs = 1\n    batch_size = {batch}\n{steps}}}\n"
            );
            return;
        }
        let mut extra = String::new();
        if self.rng.one_in(3) {
            extra.push_str("    schedule = cosine()\n");
        }
        if self.rng.one_in(4) {
            extra.push_str("    validation = 0.2\n");
        }
        let _ = writeln!(
            self.out,
            "train {model} {{\n{data}    loss = {loss}\n    optimizer = {opt}\n    epochs = 1\n    batch_size = {batch}\n{extra}}}\n"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator is useful only if what it means to be valid is: most
    /// programs without a planted mistake check clean, and the new
    /// constructs appear among those that do.
    #[test]
    fn most_generated_programs_check_and_cover_the_language() {
        let mut rng = Rng::new(5);
        let (mut clean, mut total) = (0, 0);
        let mut seen = std::collections::BTreeSet::new();
        let mut failures = vec![];
        while total < 300 {
            let mut g = Gen {
                rng: &mut rng,
                out: String::new(),
                fns: vec![],
                layers: vec![],
                moded: vec![],
                recurrent: vec![],
                members: vec![],
                wrong: false,
            };
            g.program();
            let text = g.out;
            total += 1;
            let c = crate::driver::compile("gen.nn", &text);
            if c.has_errors() {
                failures.push((
                    text,
                    c.diagnostics()
                        .iter()
                        .map(|d| format!("{} {}", d.code, d.message))
                        .collect::<Vec<_>>(),
                ));
                continue;
            }
            clean += 1;
            for (needle, what) in [
                ("scan x in xs", "a scan"),
                ("Lstm(", "a stdlib recurrent layer"),
                ("if training", "a mode branch"),
                ("step fit", "steps"),
                ("BatchNorm(", "batch norm"),
                ("x[:, -1, :]", "a negative index"),
                ("x[:, ::", "a slice with a step"),
                ("split(", "split"),
                ("concat(", "concat"),
                ("Conv2d(", "a convolution"),
                ("MaxPool2d(", "pooling"),
                ("|> flatten", "flatten"),
                ("Embedding(", "an embedding (gather)"),
                ("MultiHeadAttention(", "multi-head attention"),
                ("TransformerEncoderLayer(", "an encoder layer"),
                ("attention(h, h, h", "attention"),
                ("causal_mask(", "a causal mask"),
                ("text(\"", "text data"),
                ("l2(fc1.W)", "a weight named in a loss"),
            ] {
                if text.contains(needle) {
                    seen.insert(what);
                }
            }
            if (33..=40).any(|t| text.contains(&format!("x: [batch, {t}, "))) {
                seen.insert("a looped scan");
            }
        }
        if std::env::var("GEN_DUMP").is_ok() {
            for (text, d) in &failures {
                eprintln!("{d:?}");
                if std::env::var("GEN_DUMP").is_ok_and(|v| d.iter().any(|m| m.contains(&v))) {
                    eprintln!("{text}");
                }
            }
        }
        assert!(
            clean * 10 >= total * 9,
            "only {clean} of {total} programs check; first failure: {:?}",
            failures.first()
        );
        assert_eq!(seen.len(), 20, "constructs reached: {seen:?}");
    }
}
