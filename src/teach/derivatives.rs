//! Closed forms of the derivatives of stdlib functions, as the textbook
//! writes them, for the "where" lines of `nnc explain --grad`. Each is also
//! written as `.nn` code (`check`), which the tests compare against
//! autodiff of the function itself, so no formula here can be wrong
//! without a test failing.

pub struct Known {
    pub callee: &'static str,
    pub text: &'static str,
    pub latex: &'static str,
    /// `fn d(...)`: the same derivative in `.nn`. Elementwise functions take
    /// `z` and give `f'(z)`; vector functions take `(z, g)` and give the
    /// transposed Jacobian times `g`; losses take their arguments and give
    /// the derivative with respect to the first.
    pub check: &'static str,
}

pub const KNOWN: &[Known] = &[
    Known {
        callee: "relu",
        text: "relu'(z) = 1 where z ≥ 0, else 0",
        latex: r"\mathrm{relu}'(z) = [z \ge 0]",
        check: "fn d(z) = z >= 0",
    },
    Known {
        callee: "leaky_relu",
        text: "leaky_relu'(z) = 1 where z ≥ 0, else the slope (0.01)",
        latex: r"\mathrm{leaky\_relu}'(z) = [z \ge 0] + 0.01\,[z < 0]",
        check: "fn d(z) = where(z >= 0, 1, 0.01)",
    },
    Known {
        callee: "sigmoid",
        text: "sigmoid'(z) = σ(z) ⊙ (1 - σ(z)), σ = sigmoid",
        latex: r"\sigma'(z) = \sigma(z) \odot (1 - \sigma(z))",
        check: "fn d(z) = sigmoid(z) * (1 - sigmoid(z))",
    },
    Known {
        callee: "tanh",
        text: "tanh'(z) = 1 - tanh(z)²",
        latex: r"\tanh'(z) = 1 - \tanh^2(z)",
        check: "fn d(z) = 1 - tanh(z)^2",
    },
    Known {
        callee: "sqrt",
        text: "sqrt'(z) = 1 / (2 sqrt(z))",
        latex: r"\sqrt{z}\,' = \frac{1}{2\sqrt{z}}",
        check: "fn d(z) = 1 / (2 * sqrt(z))",
    },
    Known {
        callee: "step",
        text: "step'(z) = 0: no gradient flows through a threshold",
        latex: r"\mathrm{step}'(z) = 0",
        check: "fn d(z) = z * 0",
    },
    Known {
        callee: "softmax",
        text: "(∂softmax(z)/∂z)ᵀ g = s ⊙ (g - Σ_j g ⊙ s) per row, s = softmax(z)",
        latex: r"\left(\frac{\partial s}{\partial z}\right)^{\top} g = s \odot \left(g - \textstyle\sum_j g_j s_j\right),\ s = \mathrm{softmax}(z)",
        check: "fn d(z, g) = softmax(z) * (g - sum(g * softmax(z), axis: -1, keep: true))",
    },
    Known {
        callee: "log_softmax",
        text: "(∂log_softmax(z)/∂z)ᵀ g = g - softmax(z) ⊙ Σ_j g per row",
        latex: r"\left(\frac{\partial \log s}{\partial z}\right)^{\top} g = g - \mathrm{softmax}(z) \textstyle\sum_j g_j",
        check: "fn d(z, g) = g - softmax(z) * sum(g, axis: -1, keep: true)",
    },
    Known {
        callee: "cross_entropy",
        text: "∂cross_entropy(z, y)/∂z = (softmax(z) - onehot(y)) / n, n rows",
        latex: r"\frac{\partial\,\mathrm{cross\_entropy}(z, y)}{\partial z} = \frac{\mathrm{softmax}(z) - \mathrm{onehot}(y)}{n}",
        check: "fn d(z: [n, c], y: i32[n]) = (softmax(z) - one_hot(y, c)) / n",
    },
    Known {
        callee: "categorical_cross_entropy",
        text: "∂categorical_cross_entropy(z, t)/∂z = (softmax(z) ⊙ Σ_j t - t) / n, n rows",
        latex: r"\frac{\partial\,\mathrm{cce}(z, t)}{\partial z} = \frac{\mathrm{softmax}(z) \textstyle\sum_j t_j - t}{n}",
        check: "fn d(z: [n, c], t: [n, c]) = (softmax(z) * sum(t, axis: -1, keep: true) - t) / n",
    },
    Known {
        callee: "binary_cross_entropy",
        text: "∂binary_cross_entropy(p, y)/∂p = ((1 - y) / (1 - p + ε) - y / (p + ε)) / N, N entries, ε = 1e-7",
        latex: r"\frac{\partial\,\mathrm{bce}(p, y)}{\partial p} = \frac{1}{N}\left(\frac{1 - y}{1 - p + \varepsilon} - \frac{y}{p + \varepsilon}\right)",
        check: "fn d(p: [n, k], y: [n, k]) = ((1 - y) / (1 - p + 1e-7) - y / (p + 1e-7)) / (n * k)",
    },
    Known {
        callee: "mse",
        text: "∂mse(p, t)/∂p = 2 (p - t) / N, N entries",
        latex: r"\frac{\partial\,\mathrm{mse}(p, t)}{\partial p} = \frac{2\,(p - t)}{N}",
        check: "fn d(p: [n, k], t: [n, k]) = 2 * (p - t) / (n * k)",
    },
    Known {
        callee: "mae",
        text: "∂mae(p, t)/∂p = sign(p - t) / N, N entries",
        latex: r"\frac{\partial\,\mathrm{mae}(p, t)}{\partial p} = \frac{\mathrm{sign}(p - t)}{N}",
        check: "fn d(p: [n, k], t: [n, k]) = sign(p - t) / (n * k)",
    },
];

pub fn known(callee: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.callee == callee)
}
