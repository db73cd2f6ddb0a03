"""Data as nnc reads it, for train.py: the same files, the same scaling,
the same seeded train/validation/test splits and per-epoch shuffles (a
port of nnc's counter-based SplitMix64 stream), the same learning-rate
schedules and metrics. With these, `python train.py` sees the batches
`nnc run` sees, in the same order.
"""

import gzip
import math
import os
import struct

import numpy as np

MASK = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
DOMAIN_SHUFFLE = 0x5348_5546_464C_4531  # "SHUFFLE1"
DOMAIN_SPLIT = 0x5350_4C49_5456_414C  # "SPLITVAL"


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


class CounterRng:
    """Output i of stream (seed, stream) is mix64(key + i * gamma), as in nnc."""

    def __init__(self, seed, stream):
        self.key = mix64(mix64((seed + GOLDEN_GAMMA) & MASK) ^ mix64(stream ^ DOMAIN_SHUFFLE))
        self.counter = 0

    def next_u64(self):
        self.counter = (self.counter + 1) & MASK
        return mix64((self.key + self.counter * GOLDEN_GAMMA) & MASK)

    def below(self, n):
        """Uniform in 0..n without modulo bias (Lemire's multiply-and-reject)."""
        m = self.next_u64() * n
        if (m & MASK) < n:
            threshold = ((1 << 64) - n) % n
            while (m & MASK) < threshold:
                m = self.next_u64() * n
        return m >> 64


def fisher_yates(rng, idx):
    for i in range(len(idx) - 1, 0, -1):
        j = rng.below(i + 1)
        idx[i], idx[j] = idx[j], idx[i]
    return idx


def shuffle_indices(n, seed, epoch):
    """Epoch `epoch`'s order of the training rows (epochs count from 1)."""
    return fisher_yates(CounterRng(seed, epoch), list(range(n)))


def train_val_split(n, fraction, seed):
    """(kept, held out): round(n * fraction) rows held out, both ascending."""
    idx = fisher_yates(CounterRng(seed ^ DOMAIN_SPLIT, DOMAIN_SPLIT), list(range(n)))
    n_val = min(int(math.floor(n * fraction + 0.5)), n)
    return sorted(idx[n_val:]), sorted(idx[:n_val])


# ---- files ----------------------------------------------------------------


def open_maybe_gzip(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path):
    with open_maybe_gzip(path) as f:
        data = f.read()
    zero, dtype, rank = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, f"{path}: not an unsigned-byte IDX file"
    dims = struct.unpack(">" + "I" * rank, data[4 : 4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def resolve(path, base, data_dir):
    """Relative paths: next to the .nn file first, then under NNC_DATA."""
    if os.path.isabs(path):
        return path
    for root in [base, data_dir]:
        if root and os.path.exists(os.path.join(root, path)):
            return os.path.join(root, path)
    raise FileNotFoundError(f"{path}: not found next to the model nor under NNC_DATA={data_dir}")


def mnist_file(d, stem):
    for name in [stem, stem + ".gz"]:
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise FileNotFoundError(f"{d}: no {stem}(.gz)")


def idx_pair(images, labels):
    x = read_idx(images).astype(np.float32) / 255.0
    y = read_idx(labels).astype(np.int64)
    return x, y


def text(path, steps, vocab):
    """nnc's text(...): characters as their code points (below `vocab`), cut
    into windows of `steps` + 1 that do not overlap; y is x shifted by one."""
    with open(path, encoding="utf-8") as f:
        ids = np.array([ord(c) for c in f.read()], dtype=np.int64)
    if (ids >= vocab).any():
        raise SystemExit(f"{path}: a character's code point is outside the vocabulary of {vocab}")
    n = (len(ids) - 1) // steps
    x = np.stack([ids[i * steps : i * steps + steps] for i in range(n)]).astype(np.float32)
    y = np.stack([ids[i * steps + 1 : i * steps + steps + 1] for i in range(n)])
    return x, y


def mnist(d):
    train = idx_pair(mnist_file(d, "train-images-idx3-ubyte"), mnist_file(d, "train-labels-idx1-ubyte"))
    test = idx_pair(mnist_file(d, "t10k-images-idx3-ubyte"), mnist_file(d, "t10k-labels-idx1-ubyte"))
    return train, test


def _is_number(field):
    try:
        float(field)
        return True
    except ValueError:
        return False


def csv(path, label, scale=None):
    """Numeric rows with an integer class label column (index, negative from
    the end, or a header name); a first line that is not all numbers, or has
    another field count than the next, is a header."""
    with open_maybe_gzip(path) as f:
        lines = [l.strip() for l in f.read().decode("utf-8").splitlines() if l.strip()]
    fields = [[c.strip() for c in l.split(",")] for l in lines]
    header = None
    if not all(_is_number(c) for c in fields[0]) or (len(fields) > 1 and len(fields[1]) != len(fields[0])):
        header, fields = fields[0], fields[1:]
    cols = len(fields[0])
    if isinstance(label, str):
        col = header.index(label)
    else:
        col = label + cols if label < 0 else label
    rows = np.array([[float(c) for c in r] for r in fields], dtype=np.float32)
    y = rows[:, col].astype(np.int64)
    x = np.delete(rows, col, axis=1) * np.float32(scale if scale is not None else 1.0)
    return x.astype(np.float32), y


def standardize(train, others):
    """Features to mean 0, variance 1 with the training split's statistics
    (population std; constant features keep std 1). Returns (mean, std)."""
    flat = train.reshape(len(train), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    std = np.sqrt(((flat - mean) ** 2).mean(axis=0))
    std[std == 0] = 1.0
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    shape = train.shape[1:]
    out = [((a.reshape(len(a), -1) - mean) / std).reshape((len(a),) + shape).astype(np.float32) for a in [train] + others]
    return out, mean, std


def splits(all_xy, test_xy, input_shape, validation, test, seed, do_standardize):
    """nnc's splits: a held-out test fraction when the source has no test
    set, then the validation fraction of the rest, both by seeded shuffles."""
    x, y = all_xy
    x = x.reshape((len(x),) + tuple(input_shape))
    if test_xy is not None:
        tx, ty = test_xy
        test_xy = (tx.reshape((len(tx),) + tuple(input_shape)), ty)
    elif test > 0:
        keep, held = train_val_split(len(x), test, seed ^ 0x7E57)
        test_xy = (x[held], y[held])
        x, y = x[keep], y[keep]
    val_xy = None
    if validation > 0:
        keep, held = train_val_split(len(x), validation, seed ^ 0x7A11)
        val_xy = (x[held], y[held])
        x, y = x[keep], y[keep]
    stats = None
    if do_standardize:
        others = [s[0] for s in [val_xy, test_xy] if s is not None]
        out, mean, std = standardize(x, others)
        x = out[0]
        rest = iter(out[1:])
        val_xy = (next(rest), val_xy[1]) if val_xy is not None else None
        test_xy = (next(rest), test_xy[1]) if test_xy is not None else None
        stats = (mean, std)
    return (x, y), val_xy, test_xy, stats


# ---- learning-rate schedules (nnc's runtime::schedule) --------------------


def lr_at(schedule, base, warmup, step, steps_per_epoch, epochs):
    kind = schedule["kind"]
    total = max(steps_per_epoch * epochs, 1)
    epoch = step // max(steps_per_epoch, 1)
    progress = min(step / total, 1.0)
    if kind == "constant":
        lr = base
    elif kind == "step_decay":
        lr = base * schedule["factor"] ** (epoch // max(schedule["every"], 1))
    elif kind == "exponential":
        lr = base * schedule["rate"] ** epoch
    elif kind == "cosine":
        lo = schedule["min_lr"]
        lr = lo + (base - lo) * 0.5 * (1 + math.cos(math.pi * progress))
    elif kind == "cyclic":
        lo = schedule["min_lr"]
        length = max(schedule["period"] * steps_per_epoch, 1)
        phase = (step % length) / length
        lr = lo + (base - lo) * (1 - abs(2 * phase - 1))
    elif kind == "one_cycle":
        start, end, peak = base / 25, base / 1e4, schedule["max_lr"]

        def cos(a, b, t):
            return b + (a - b) * 0.5 * (1 + math.cos(math.pi * t))

        lr = cos(start, peak, progress / 0.3) if progress < 0.3 else cos(peak, end, (progress - 0.3) / 0.7)
    else:
        raise ValueError(f"unknown schedule {kind}")
    return lr * (step + 1) / warmup if step < warmup else lr


# ---- metrics (nnc's runtime::metrics) -------------------------------------


def predicted_classes(out):
    out = out.reshape(len(out), -1) if out.ndim <= 2 else out.reshape(-1, out.shape[-1])
    if out.shape[1] == 1:
        return (out[:, 0] >= 0.5).astype(np.int64)
    return out.argmax(axis=1)


def metric(name, out, y):
    out = np.asarray(out, dtype=np.float64)
    if name in ("mse", "mae", "r2"):
        t = np.asarray(y, dtype=np.float64).reshape(out.shape)
        if name == "mse":
            return float(((out - t) ** 2).mean())
        if name == "mae":
            return float(np.abs(out - t).mean())
        return float(1 - ((out - t) ** 2).sum() / max(((t - t.mean()) ** 2).sum(), 1e-300))
    pred = predicted_classes(out)
    actual = np.asarray(y).reshape(-1).astype(np.int64)
    if name == "accuracy":
        return float((pred == actual).mean())
    # Macro averages over the classes that occur as a label or a prediction.
    scores = []
    for c in sorted(set(pred.tolist()) | set(actual.tolist())):
        tp = float(((pred == c) & (actual == c)).sum())
        predicted, support = float((pred == c).sum()), float((actual == c).sum())
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f = 2 * p * r / (p + r) if p + r > 0 else 0.0
        scores.append({"precision": p, "recall": r, "f1": f}[name])
    return float(np.mean(scores))
