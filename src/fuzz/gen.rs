//! A generator of random well-formed programs: functions, layers, models
//! with pipelines and blocks, optimizers and train blocks. Dims are chained
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
        let models = 1 + self.rng.below(2);
        for i in 0..models {
            let (name, d_in, d_out) = self.model(i);
            if self.rng.below(5) < 4 {
                self.train(&name, d_in, d_out);
            }
        }
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
        let body = self.expr(3);
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
        match self.rng.below(7) {
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

    fn model(&mut self, i: usize) -> (String, u64, u64) {
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
            // A block body with named layers.
            let _ = writeln!(self.out, "model {name}(x: {input}){ret} {{");
            let mut prev = "x".to_string();
            for (k, s) in body.iter().enumerate() {
                let _ = writeln!(self.out, "    let h{k} = {prev} |> {s}");
                prev = format!("h{k}");
            }
            let _ = writeln!(self.out, "    return {prev}\n}}\n");
        } else {
            let _ = writeln!(self.out, "model {name}(x: {input}){ret} =\n    x |> {}\n", body.join("\n      |> "));
        }
        (name, d_in, d)
    }

    fn train(&mut self, model: &str, d_in: u64, d_out: u64) {
        let rows = self.rng.range(1, 6);
        let row = |rng: &mut Rng, n: u64| -> String {
            let vals: Vec<String> = (0..n.min(64)).map(|_| format!("{}", rng.below(3))).collect();
            format!("[{}]", vals.join(", "))
        };
        let xs: Vec<String> = (0..rows).map(|_| row(self.rng, d_in)).collect();
        let ys: Vec<String> = (0..rows).map(|_| row(self.rng, d_out)).collect();
        let loss = match self.rng.below(4) {
            0 => "mse(model(x), y)".to_string(),
            1 => "mae(model(x), y)".to_string(),
            2 => "mse(model(x), y) + 0.01 * l2(params)".to_string(),
            _ => "mean((model(x) - y)^2)".to_string(),
        };
        let opt = self.rng.pick(OPTIMIZERS);
        let batch = self.rng.range(1, 8);
        let mut extra = String::new();
        if self.rng.one_in(3) {
            extra.push_str("    schedule = cosine()\n");
        }
        if self.rng.one_in(4) {
            extra.push_str("    validation = 0.2\n");
        }
        let _ = writeln!(
            self.out,
            "train {model} {{\n    data = tensors(\n        x: [{}],\n        y: [{}],\n    )\n    loss = {loss}\n    optimizer = {opt}\n    epochs = 1\n    batch_size = {batch}\n{extra}}}\n",
            xs.join(", "),
            ys.join(", ")
        );
    }
}
