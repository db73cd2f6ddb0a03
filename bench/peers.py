#!/usr/bin/env python3
"""nnc against JAX and PyTorch on this machine, in one run, for ratios.

    python3 bench/peers.py [--model mlp|lenet5|lstm|encoder] [--threads N] [--nnc PATH] [--skip-epoch] [--json]

Times the MLP 784-128-64-10 (ReLU, softmax cross-entropy with integer
labels, Adam lr 1e-3) of examples/mnist_mlp.nn on random data of MNIST
shape: a training step at batch 32, 128 and 1024, inference at batch 1024,
and a 60,000-sample epoch at batch 32 including the shuffle. Each framework
gets its fastest idiomatic form: JAX `jit` with donated buffers (the epoch
as one `lax.scan`), PyTorch eager with the fused Adam. Then it runs
`nnc bench examples/mnist_mlp.nn --json` and prints every figure with its
ratio to nnc. Frameworks that are not installed are skipped.

`--model lenet5` times examples/lenet5.nn instead (LeNet-5: 5×5 conv 6
with padding 2, ReLU, 2×2 max pool, 5×5 conv 16, ReLU, pool, dense
400-120-84-10; Adam) at batch 64, inference at batch 1024, and an epoch
at batch 64; PyTorch eager with fused Adam (oneDNN convolutions) and JAX
`jit` (`lax.conv_general_dilated`, `lax.reduce_window`). `--json` prints
the figures as one JSON object instead of the table.

`--model lstm` times examples/lstm_mnist.nn (MNIST as 28 steps of 28
pixels, LSTM with 128 hidden units, the last state into 10 outputs; Adam)
at batch 64: PyTorch's `nn.LSTM` (oneDNN) with fused Adam, and JAX with the
steps as one `lax.scan` and the input projection as one product.

`--model encoder` times bench/encoder.nn (two post-norm Transformer
encoder layers, d_model 128, 4 heads, feed-forward 512, ReLU, no dropout,
over 64 positions; the mean over positions into 10 outputs; Adam) at batch
32 and inference at batch 32: PyTorch's `nn.TransformerEncoder` with fused
Adam, and the same layers written out in JAX under `jit`. It has no epoch
figure (an epoch of 60,000 sequences takes tens of minutes on one core).

The process (and so every framework and nnc) is pinned to the first N
cores, so `--threads 1` means one core for everyone. Medians of 7 timed
batches of calls after warm-up, like `nnc bench`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SIZES = [784, 128, 64, 10]
BATCHES = [32, 128, 1024]
INFER_BATCH = 1024
EPOCH_SAMPLES, EPOCH_BATCH = 60_000, 32
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_ms(call, reps=7):
    """Median ms per call over `reps` batches of calls lasting ~20 ms each."""
    call()
    t = time.perf_counter()
    for _ in range(3):
        call()
    one = max((time.perf_counter() - t) / 3, 1e-6)
    n = max(1, min(10_000, int(0.02 / one)))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(n):
            call()
        times.append((time.perf_counter() - t) * 1e3 / n)
    return statistics.median(times)


def median_s(call, reps=3):
    call()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_torch(threads, epoch):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    def mlp():
        layers = []
        for a, b in zip(SIZES, SIZES[1:]):
            layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        return torch.nn.Sequential(*layers[:-1])

    out = {"steps": {}}
    loss_fn = torch.nn.CrossEntropyLoss()
    for batch in BATCHES:
        model = mlp()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        x = torch.rand(batch, SIZES[0])
        y = torch.randint(0, SIZES[-1], (batch,))

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

        out["steps"][batch] = median_ms(step)
    model = mlp()
    x = torch.rand(INFER_BATCH, SIZES[0])
    with torch.inference_mode():
        out["inference"] = median_ms(lambda: model(x))
    if epoch:
        model = mlp()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        xs = torch.rand(EPOCH_SAMPLES, SIZES[0])
        ys = torch.randint(0, SIZES[-1], (EPOCH_SAMPLES,))

        def run_epoch():
            perm = torch.randperm(EPOCH_SAMPLES)
            for i in range(0, EPOCH_SAMPLES, EPOCH_BATCH):
                idx = perm[i : i + EPOCH_BATCH]
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xs[idx]), ys[idx]).backward()
                opt.step()

        out["epoch"] = median_s(run_epoch)
    return out


def bench_jax(threads, epoch):
    import jax
    import jax.numpy as jnp

    def init(key):
        params = []
        for a, b in zip(SIZES, SIZES[1:]):
            key, k = jax.random.split(key)
            params.append((jax.random.normal(k, (a, b)) / jnp.sqrt(a), jnp.zeros(b)))
        return params

    def forward(params, x):
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i + 1 < len(params):
                h = jax.nn.relu(h)
        return h

    def loss(params, x, y):
        logp = jax.nn.log_softmax(forward(params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def adam(state, x, y):
        params, m, v, t = state
        g = jax.grad(loss)(params, x, y)
        b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-7
        t = t + 1
        tree = jax.tree_util.tree_map
        m = tree(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tree(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1**t, 1 - b2**t
        params = tree(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
        return (params, m, v, t)

    step = jax.jit(adam, donate_argnums=0)
    key = jax.random.PRNGKey(0)

    def fresh():
        params = init(key)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return (params, zeros, jax.tree_util.tree_map(jnp.zeros_like, params), jnp.float32(0))

    out = {"steps": {}}
    for batch in BATCHES:
        x = jax.random.uniform(key, (batch, SIZES[0]))
        y = jax.random.randint(key, (batch,), 0, SIZES[-1])
        state = [fresh()]

        def run():
            state[0] = step(state[0], x, y)
            jax.block_until_ready(state[0])

        out["steps"][batch] = median_ms(run)
    infer = jax.jit(forward)
    params, x = init(key), jax.random.uniform(key, (INFER_BATCH, SIZES[0]))
    out["inference"] = median_ms(lambda: jax.block_until_ready(infer(params, x)))
    if epoch:

        def run_epoch(state, xs, ys, k):
            perm = jax.random.permutation(k, EPOCH_SAMPLES)
            xb = xs[perm].reshape(-1, EPOCH_BATCH, SIZES[0])
            yb = ys[perm].reshape(-1, EPOCH_BATCH)
            state, _ = jax.lax.scan(lambda s, b: (adam(s, *b), None), state, (xb, yb))
            return state

        epoch_fn = jax.jit(run_epoch, donate_argnums=0)
        xs = jax.random.uniform(key, (EPOCH_SAMPLES, SIZES[0]))
        ys = jax.random.randint(key, (EPOCH_SAMPLES,), 0, SIZES[-1])
        state = [fresh()]

        def one_epoch():
            state[0] = epoch_fn(state[0], xs, ys, key)
            jax.block_until_ready(state[0])

        out["epoch"] = median_s(one_epoch)
    return out


LENET_BATCHES = [64]
LENET_EPOCH_BATCH = 64


def bench_torch_lenet(threads, epoch):
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    def lenet():
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )

    loss_fn = nn.CrossEntropyLoss()
    out = {"steps": {}}
    for batch in LENET_BATCHES:
        model = lenet()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

        out["steps"][batch] = median_ms(step)
    model, x = lenet(), torch.rand(INFER_BATCH, 1, 28, 28)
    with torch.inference_mode():
        out["inference"] = median_ms(lambda: model(x))
    if epoch:
        model = lenet()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        xs, ys = torch.rand(EPOCH_SAMPLES, 1, 28, 28), torch.randint(0, 10, (EPOCH_SAMPLES,))

        def run_epoch():
            perm = torch.randperm(EPOCH_SAMPLES)
            for i in range(0, EPOCH_SAMPLES, LENET_EPOCH_BATCH):
                idx = perm[i : i + LENET_EPOCH_BATCH]
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xs[idx]), ys[idx]).backward()
                opt.step()

        out["epoch"] = median_s(run_epoch, reps=1)
    return out


def bench_jax_lenet(threads, epoch):
    import jax
    import jax.numpy as jnp
    from jax import lax

    shapes = [("conv", (6, 1, 5, 5)), ("conv", (16, 6, 5, 5)), ("dense", (400, 120)), ("dense", (120, 84)), ("dense", (84, 10))]

    def init(key):
        params = []
        for kind, shape in shapes:
            key, k = jax.random.split(key)
            fan_in = shape[1] * shape[2] * shape[3] if kind == "conv" else shape[0]
            bias = shape[0] if kind == "conv" else shape[1]
            params.append((jax.random.normal(k, shape) / jnp.sqrt(fan_in), jnp.zeros(bias)))
        return params

    def pool(h):
        return lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def forward(params, x):
        dn = ("NCHW", "OIHW", "NCHW")
        (w1, b1), (w2, b2), (w3, b3), (w4, b4), (w5, b5) = params
        h = lax.conv_general_dilated(x, w1, (1, 1), [(2, 2), (2, 2)], dimension_numbers=dn)
        h = pool(jax.nn.relu(h + b1[None, :, None, None]))
        h = lax.conv_general_dilated(h, w2, (1, 1), "VALID", dimension_numbers=dn)
        h = pool(jax.nn.relu(h + b2[None, :, None, None])).reshape(x.shape[0], -1)
        h = jax.nn.relu(h @ w3 + b3)
        h = jax.nn.relu(h @ w4 + b4)
        return h @ w5 + b5

    def loss(params, x, y):
        logp = jax.nn.log_softmax(forward(params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def adam(state, x, y):
        params, m, v, t = state
        g = jax.grad(loss)(params, x, y)
        b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-7
        t = t + 1
        tree = jax.tree_util.tree_map
        m = tree(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tree(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1**t, 1 - b2**t
        params = tree(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
        return (params, m, v, t)

    step = jax.jit(adam, donate_argnums=0)
    key = jax.random.PRNGKey(0)

    def fresh():
        params = init(key)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return (params, zeros, jax.tree_util.tree_map(jnp.zeros_like, params), jnp.float32(0))

    out = {"steps": {}}
    for batch in LENET_BATCHES:
        x = jax.random.uniform(key, (batch, 1, 28, 28))
        y = jax.random.randint(key, (batch,), 0, 10)
        state = [fresh()]

        def run():
            state[0] = step(state[0], x, y)
            jax.block_until_ready(state[0])

        out["steps"][batch] = median_ms(run)
    infer = jax.jit(forward)
    params, x = init(key), jax.random.uniform(key, (INFER_BATCH, 1, 28, 28))
    out["inference"] = median_ms(lambda: jax.block_until_ready(infer(params, x)))
    if epoch:
        n = EPOCH_SAMPLES // LENET_EPOCH_BATCH * LENET_EPOCH_BATCH

        def run_epoch(state, xs, ys, k):
            perm = jax.random.permutation(k, EPOCH_SAMPLES)[:n]
            xb = xs[perm].reshape(-1, LENET_EPOCH_BATCH, 1, 28, 28)
            yb = ys[perm].reshape(-1, LENET_EPOCH_BATCH)
            state, _ = jax.lax.scan(lambda s, b: (adam(s, *b), None), state, (xb, yb))
            return state

        epoch_fn = jax.jit(run_epoch, donate_argnums=0)
        xs = jax.random.uniform(key, (EPOCH_SAMPLES, 1, 28, 28))
        ys = jax.random.randint(key, (EPOCH_SAMPLES,), 0, 10)
        state = [fresh()]

        def one_epoch():
            state[0] = epoch_fn(state[0], xs, ys, key)
            jax.block_until_ready(state[0])

        out["epoch"] = median_s(one_epoch, reps=1)
    return out


LSTM_BATCHES = [64]
LSTM_EPOCH_BATCH = 64


def bench_torch_lstm(threads, epoch):
    """examples/lstm_mnist.nn in PyTorch: its oneDNN `nn.LSTM`, fused Adam."""
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(28, 128, batch_first=True)
            self.out = nn.Linear(128, 10)

        def forward(self, x):
            h, _ = self.lstm(x)
            return self.out(h[:, -1])

    loss_fn = nn.CrossEntropyLoss()
    out = {"steps": {}}
    for batch in LSTM_BATCHES:
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        x, y = torch.rand(batch, 28, 28), torch.randint(0, 10, (batch,))

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

        out["steps"][batch] = median_ms(step)
    model, x = Net(), torch.rand(INFER_BATCH, 28, 28)
    with torch.inference_mode():
        out["inference"] = median_ms(lambda: model(x))
    if epoch:
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        xs, ys = torch.rand(EPOCH_SAMPLES, 28, 28), torch.randint(0, 10, (EPOCH_SAMPLES,))

        def run_epoch():
            perm = torch.randperm(EPOCH_SAMPLES)
            for i in range(0, EPOCH_SAMPLES, LSTM_EPOCH_BATCH):
                idx = perm[i : i + LSTM_EPOCH_BATCH]
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xs[idx]), ys[idx]).backward()
                opt.step()

        out["epoch"] = median_s(run_epoch, reps=1)
    return out


def bench_jax_lstm(threads, epoch):
    """examples/lstm_mnist.nn in JAX: the steps as one `lax.scan`, the input
    projection as one product over all steps, Adam, all under `jit`."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    hidden = 128

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        return (
            jax.random.normal(k1, (28, 4 * hidden)) / jnp.sqrt(28.0),
            jax.random.normal(k2, (hidden, 4 * hidden)) / jnp.sqrt(float(hidden)),
            jnp.zeros(4 * hidden),
            jax.random.normal(k3, (hidden, 10)) / jnp.sqrt(float(hidden)),
            jnp.zeros(10),
        )

    def forward(params, x):
        wx, wh, b, wo, bo = params
        zs = jnp.swapaxes(x, 0, 1) @ wx + b  # [steps, batch, 4 * hidden]

        def cell(carry, z):
            h, c = carry
            i, f, g, o = jnp.split(z + h @ wh, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), None

        zero = jnp.zeros((x.shape[0], hidden))
        (h, _), _ = lax.scan(cell, (zero, zero), zs)
        return h @ wo + bo

    def loss(params, x, y):
        logp = jax.nn.log_softmax(forward(params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def adam(state, x, y):
        params, m, v, t = state
        g = jax.grad(loss)(params, x, y)
        b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-7
        t = t + 1
        tree = jax.tree_util.tree_map
        m = tree(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tree(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1**t, 1 - b2**t
        params = tree(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
        return (params, m, v, t)

    step = jax.jit(adam, donate_argnums=0)
    key = jax.random.PRNGKey(0)

    def fresh():
        params = init(key)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return (params, zeros, jax.tree_util.tree_map(jnp.zeros_like, params), jnp.float32(0))

    out = {"steps": {}}
    for batch in LSTM_BATCHES:
        x = jax.random.uniform(key, (batch, 28, 28))
        y = jax.random.randint(key, (batch,), 0, 10)
        state = [fresh()]

        def run():
            state[0] = step(state[0], x, y)
            jax.block_until_ready(state[0])

        out["steps"][batch] = median_ms(run)
    infer = jax.jit(forward)
    params, x = init(key), jax.random.uniform(key, (INFER_BATCH, 28, 28))
    out["inference"] = median_ms(lambda: jax.block_until_ready(infer(params, x)))
    if epoch:
        n = EPOCH_SAMPLES // LSTM_EPOCH_BATCH * LSTM_EPOCH_BATCH

        def run_epoch(state, xs, ys, k):
            perm = jax.random.permutation(k, EPOCH_SAMPLES)[:n]
            xb = xs[perm].reshape(-1, LSTM_EPOCH_BATCH, 28, 28)
            yb = ys[perm].reshape(-1, LSTM_EPOCH_BATCH)
            state, _ = jax.lax.scan(lambda s, b: (adam(s, *b), None), state, (xb, yb))
            return state

        epoch_fn = jax.jit(run_epoch, donate_argnums=0)
        xs = jax.random.uniform(key, (EPOCH_SAMPLES, 28, 28))
        ys = jax.random.randint(key, (EPOCH_SAMPLES,), 0, 10)
        state = [fresh()]

        def one_epoch():
            state[0] = epoch_fn(state[0], xs, ys, key)
            jax.block_until_ready(state[0])

        out["epoch"] = median_s(one_epoch, reps=1)
    return out


ENCODER_BATCHES = [32]
ENCODER_INFER_BATCH = 32
ENC_T, ENC_D, ENC_HEADS, ENC_FF, ENC_LAYERS = 64, 128, 4, 512, 2


def bench_torch_encoder(threads, epoch):
    """bench/encoder.nn in PyTorch: `nn.TransformerEncoder` (post-norm, ReLU,
    no dropout), the mean over positions, a linear head; fused Adam."""
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(ENC_D, ENC_HEADS, ENC_FF, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, ENC_LAYERS, enable_nested_tensor=False)
            self.out = nn.Linear(ENC_D, 10)

        def forward(self, x):
            return self.out(self.encoder(x).mean(dim=1))

    loss_fn = nn.CrossEntropyLoss()
    out = {"steps": {}}
    for batch in ENCODER_BATCHES:
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        x, y = torch.rand(batch, ENC_T, ENC_D), torch.randint(0, 10, (batch,))

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

        out["steps"][batch] = median_ms(step)
    model, x = Net().eval(), torch.rand(ENCODER_INFER_BATCH, ENC_T, ENC_D)
    with torch.inference_mode():
        out["inference"] = median_ms(lambda: model(x))
    return out


def bench_jax_encoder(threads, epoch):
    """bench/encoder.nn in JAX: the same post-norm layers written out (Q, K
    and V as one product, heads by reshape), Adam, under `jit`."""
    import jax
    import jax.numpy as jnp

    d, h, ff = ENC_D, ENC_HEADS, ENC_FF

    def dense(key, n, m):
        return (jax.random.normal(key, (n, m)) / jnp.sqrt(float(n)), jnp.zeros(m))

    def init(key):
        keys = jax.random.split(key, 4 * ENC_LAYERS + 1)
        layers = []
        for i in range(ENC_LAYERS):
            k = keys[4 * i : 4 * i + 4]
            layers.append(
                {
                    "qkv": dense(k[0], d, 3 * d),
                    "o": dense(k[1], d, d),
                    "ff1": dense(k[2], d, ff),
                    "ff2": dense(k[3], ff, d),
                    "ln1": (jnp.ones(d), jnp.zeros(d)),
                    "ln2": (jnp.ones(d), jnp.zeros(d)),
                }
            )
        return {"layers": layers, "head": dense(keys[-1], d, 10)}

    def norm(x, gb):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + 1e-5) * gb[0] + gb[1]

    def lin(x, wb):
        return x @ wb[0] + wb[1]

    def mha(x, p):
        n, t, _ = x.shape
        q, k, v = jnp.split(lin(x, p["qkv"]), 3, axis=-1)
        heads = lambda z: z.reshape(n, t, h, d // h).transpose(0, 2, 1, 3)
        q, k, v = heads(q), heads(k), heads(v)
        a = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / jnp.sqrt(float(d // h)), axis=-1) @ v
        return lin(a.transpose(0, 2, 1, 3).reshape(n, t, d), p["o"])

    def forward(params, x):
        for p in params["layers"]:
            x = norm(x + mha(x, p), p["ln1"])
            x = norm(x + lin(jax.nn.relu(lin(x, p["ff1"])), p["ff2"]), p["ln2"])
        return lin(x.mean(axis=1), params["head"])

    def loss(params, x, y):
        logp = jax.nn.log_softmax(forward(params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def adam(state, x, y):
        params, m, v, t = state
        g = jax.grad(loss)(params, x, y)
        b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-7
        t = t + 1
        tree = jax.tree_util.tree_map
        m = tree(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tree(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1**t, 1 - b2**t
        params = tree(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
        return (params, m, v, t)

    step = jax.jit(adam, donate_argnums=0)
    key = jax.random.PRNGKey(0)

    def fresh():
        params = init(key)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return (params, zeros, jax.tree_util.tree_map(jnp.zeros_like, params), jnp.float32(0))

    out = {"steps": {}}
    for batch in ENCODER_BATCHES:
        x = jax.random.uniform(key, (batch, ENC_T, ENC_D))
        y = jax.random.randint(key, (batch,), 0, 10)
        state = [fresh()]

        def run():
            state[0] = step(state[0], x, y)
            jax.block_until_ready(state[0])

        out["steps"][batch] = median_ms(run)
    infer = jax.jit(forward)
    params, x = init(key), jax.random.uniform(key, (ENCODER_INFER_BATCH, ENC_T, ENC_D))
    out["inference"] = median_ms(lambda: jax.block_until_ready(infer(params, x)))
    return out


MODELS = {
    # name: (model file, step batches, epoch batch, JAX bench, PyTorch bench, title)
    "mlp": ("examples/mnist_mlp.nn", BATCHES, EPOCH_BATCH, bench_jax, bench_torch, "MLP 784-128-64-10"),
    "lenet5": ("examples/lenet5.nn", LENET_BATCHES, LENET_EPOCH_BATCH, bench_jax_lenet, bench_torch_lenet, "LeNet-5"),
    "lstm": ("examples/lstm_mnist.nn", LSTM_BATCHES, LSTM_EPOCH_BATCH, bench_jax_lstm, bench_torch_lstm, "LSTM 28x28 -> 128 -> 10"),
    "encoder": ("bench/encoder.nn", ENCODER_BATCHES, None, bench_jax_encoder, bench_torch_encoder, "Transformer encoder 2 x (d 128, 4 heads, ff 512), seq 64"),
}

# Inference batch per model (the MLP, LeNet-5 and LSTM at 1024).
INFER_BATCHES = {"encoder": ENCODER_INFER_BATCH}


def bench_nnc(threads, nnc, epoch, model="mlp"):
    example, batches, _, _, _, _ = MODELS[model]
    cmd = [nnc, "bench", os.path.join(ROOT, example), "--json"]
    cmd += ["--threads", str(threads), "--batch", ",".join(map(str, batches))]
    cmd += ["--infer-batch", str(INFER_BATCHES.get(model, INFER_BATCH)), "--samples", str(EPOCH_SAMPLES if epoch else 0)]
    r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {
        "steps": {s["batch"]: s["ms"] for s in r["steps"]},
        "inference": r["inference"][0]["ms"],
        "epoch": r["epochs"][0]["seconds"] if r["epochs"] else None,
        "compile_ms": r.get("compile_ms"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nnc", default=os.path.join(ROOT, "target", "release", "nnc"), help="the nnc binary (build with cargo build --release)")
    ap.add_argument("--skip-epoch", action="store_true")
    ap.add_argument("--model", choices=sorted(MODELS), default="mlp")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    _, batches, epoch_batch, jax_fn, torch_fn, title = MODELS[args.model]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(min(args.threads, os.cpu_count() or 1))))
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'}")
    epoch = not args.skip_epoch and epoch_batch is not None
    results = {"nnc": bench_nnc(args.threads, args.nnc, epoch, args.model)}
    for name, fn in [("jax", jax_fn), ("torch", torch_fn)]:
        try:
            results[name] = fn(args.threads, epoch)
        except ImportError:
            print(f"{name}: not installed, skipped", file=sys.stderr)
    # nnc once more at the end; the slower of its two runs is the baseline,
    # so a change in machine load during the run never flatters nnc.
    again = bench_nnc(args.threads, args.nnc, epoch, args.model)
    first = results["nnc"]
    first["steps"] = {b: max(first["steps"][b], again["steps"][b]) for b in first["steps"]}
    first["inference"] = max(first["inference"], again["inference"])
    if first["compile_ms"] is not None and again["compile_ms"] is not None:
        first["compile_ms"] = max(first["compile_ms"], again["compile_ms"])
    if epoch:
        first["epoch"] = max(first["epoch"], again["epoch"])

    if args.json:
        print(json.dumps({"model": args.model, "threads": args.threads, "results": results}, indent=1))
        return
    base = results["nnc"]
    rows = [(f"train step batch {b} (ms)", lambda r, b=b: r["steps"][b]) for b in batches]
    rows.append((f"inference batch {INFER_BATCHES.get(args.model, INFER_BATCH)} (ms)", lambda r: r["inference"]))
    if epoch:
        rows.append((f"epoch {EPOCH_SAMPLES} batch {epoch_batch} (s)", lambda r: r["epoch"]))
    names = list(results)
    print(f"{title}, Adam, random data, {args.threads} thread(s); ratio = framework / nnc (higher: nnc faster)")
    print(f"{'':32}" + "".join(f"{n:>18}" for n in names))
    for label, get in rows:
        cells = []
        for n in names:
            v = get(results[n])
            cells.append(f"{v:10.3f}" + (f" ({v / get(base):4.2f}x)" if n != "nnc" else " " * 8))
        print(f"{label:32}" + "".join(f"{c:>18}" for c in cells))
    if base.get("compile_ms") is not None:
        print(f"{'nnc compile, training step (ms)':32}{base['compile_ms']:10.1f}")


if __name__ == "__main__":
    main()
