#!/usr/bin/env python3
"""The MLP 784-128-64-10 training step of `benches/mlp_step.rs` in PyTorch
and JAX, when installed, for same-machine ratios.

    python3 bench/peers.py [--threads N]

ReLU, softmax cross-entropy with integer labels, Adam (lr 1e-3); random data
of MNIST shape; median of 7 timed batches after warm-up, like the Rust bench.
"""
import argparse
import os
import statistics
import time

SIZES = [784, 128, 64, 10]
BATCHES = [32, 128, 1024]


def median_ms(step, reps=7):
    step()
    t = time.perf_counter()
    step()
    one = max(time.perf_counter() - t, 1e-6)
    n = max(1, min(10_000, int(0.02 / one)))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(n):
            step()
        times.append((time.perf_counter() - t) * 1e3 / n)
    return statistics.median(times)


def bench_torch(threads):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    for batch in BATCHES:
        layers = []
        for a, b in zip(SIZES, SIZES[1:]):
            layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1])
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x = torch.randn(batch, SIZES[0])
        y = torch.randint(0, SIZES[-1], (batch,))
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()

        print(f"torch eager   batch {batch:4} threads {threads}: {median_ms(step):.3f} ms")


def bench_jax(threads):
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}")
    import jax
    import jax.numpy as jnp

    def init(key):
        params = []
        for a, b in zip(SIZES, SIZES[1:]):
            key, k = jax.random.split(key)
            params.append((jax.random.normal(k, (a, b)) / jnp.sqrt(a), jnp.zeros(b)))
        return params

    def loss(params, x, y):
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i + 1 < len(params):
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def step(params, m, v, t, x, y):
        g = jax.grad(loss)(params, x, y)
        b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-8
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1**t, 1 - b2**t
        params = jax.tree_util.tree_map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
        return params, m, v

    key = jax.random.PRNGKey(0)
    for batch in BATCHES:
        params = init(key)
        m = jax.tree_util.tree_map(jnp.zeros_like, params)
        v = jax.tree_util.tree_map(jnp.zeros_like, params)
        x = jax.random.normal(key, (batch, SIZES[0]))
        y = jax.random.randint(key, (batch,), 0, SIZES[-1])
        state = [params, m, v]

        def run():
            state[0], state[1], state[2] = step(state[0], state[1], state[2], 1.0, x, y)
            jax.block_until_ready(state[0])

        print(f"jax jit       batch {batch:4} threads {threads}: {median_ms(run):.3f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    ran = False
    for name, fn in [("torch", bench_torch), ("jax", bench_jax)]:
        try:
            fn(args.threads)
            ran = True
        except ImportError:
            print(f"{name}: not installed, skipped")
    if not ran:
        print("no peer framework installed; see bench/PEERS.md in /work/shared for reference figures")


if __name__ == "__main__":
    main()
