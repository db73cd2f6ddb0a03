"""nnc's primitive operations in PyTorch, used by the translated model.py.

Each function has the name, arguments and meaning of the nnc primitive of
the same name. Arguments may be tensors or plain numbers: layer sizes and
initializer bounds are ordinary Python numbers here, as they are
compile-time values in the .nn file.
"""

import builtins
import contextlib
import math

import torch
import torch.nn.functional as F


def _tensor(x):
    return x if torch.is_tensor(x) else torch.tensor(x, dtype=torch.float32)


def _elementwise(tensor_fn, number_fn):
    return lambda x: tensor_fn(x) if torch.is_tensor(x) else number_fn(x)


exp = _elementwise(torch.exp, math.exp)
log = _elementwise(torch.log, math.log)
sqrt = _elementwise(torch.sqrt, math.sqrt)
tanh = _elementwise(torch.tanh, math.tanh)
abs = _elementwise(torch.abs, builtins.abs)
sign = _elementwise(torch.sign, lambda v: float((v > 0) - (v < 0)))


def _reduce(fn, x, axis, keep):
    if axis is None:
        axis = list(range(x.dim()))
    return fn(x, dim=axis, keepdim=keep)


def max(a, b=None, axis=None, keep=False):
    """max(a, b): elementwise; max(x, axis=i): the largest element along axis i."""
    if b is not None:
        if not torch.is_tensor(a) and not torch.is_tensor(b):
            return builtins.max(a, b)
        return torch.maximum(_tensor(a), _tensor(b))
    return _reduce(torch.amax, a, axis, keep)


def min(a, b=None, axis=None, keep=False):
    if b is not None:
        if not torch.is_tensor(a) and not torch.is_tensor(b):
            return builtins.min(a, b)
        return torch.minimum(_tensor(a), _tensor(b))
    return _reduce(torch.amin, a, axis, keep)


def sum(x, axis=None, keep=False):
    """The sum of all elements, or along `axis`; a list of tensors sums all of them."""
    if isinstance(x, (list, tuple)):
        return builtins.sum(sum(t) for t in x)
    return _reduce(torch.sum, x, axis, keep)


def mean(x, axis=None, keep=False):
    if isinstance(x, (list, tuple)):
        return builtins.sum(sum(t) for t in x) / builtins.sum(t.numel() for t in x)
    return _reduce(torch.mean, x, axis, keep)


def where(cond, a, b):
    return torch.where(_tensor(cond) != 0, _tensor(a), _tensor(b))


def reshape(x, shape):
    return x.reshape(shape)


def transpose(x, a=-2, b=-1):
    return x.transpose(a, b)


def one_hot(labels, classes):
    """One-hot rows; a label outside 0..classes (padding such as -1) is a row of zeros."""
    labels = labels.long()
    inside = (labels >= 0) & (labels < classes)
    rows = F.one_hot(torch.where(inside, labels, 0), classes).float()
    return rows * inside.unsqueeze(-1)


def float(x):
    return x.float()


def zeros(shape):
    return torch.zeros(shape, device=_DEVICE)


def ones(shape):
    return torch.ones(shape, device=_DEVICE)


def full(shape, value):
    return torch.full(shape, builtins.float(value), device=_DEVICE)


def zeros_like(x):
    return torch.zeros_like(x)


def ones_like(x):
    return torch.ones_like(x)


# Tensors the model creates (a scan's initial state, noise, positions) are
# made on this device: train.py sets it to the one the model runs on, so a
# CUDA run does not mix devices. None is torch's default (the CPU).
_DEVICE = None


def use_device(device):
    """Create the model's own tensors on `device` from now on."""
    global _DEVICE
    _DEVICE = device


# Random draws come from torch's generator, or, after `replay(draws)`, from
# the given tensors in call order (to check a module against nnc on nnc's
# own dropout masks and noise).
_REPLAY = None


def replay(draws):
    """Take the next random draws from `draws` (raw uniform [0, 1) or
    standard normal tensors, in the order the model draws them)."""
    global _REPLAY
    _REPLAY = list(draws)


def replayed():
    """How many replayed draws are left (None when not replaying)."""
    return None if _REPLAY is None else len(_REPLAY)


def _draw(shape, source):
    shape = [int(d) for d in shape]
    if _REPLAY is None:
        return source(shape, device=_DEVICE)
    d = _REPLAY.pop(0)
    if list(d.shape) != shape:
        raise ValueError(f"replayed draw has shape {list(d.shape)}, the model draws {shape}")
    return d if _DEVICE is None else d.to(_DEVICE)


def uniform(shape, low=0.0, high=1.0):
    return low + (high - low) * _draw(shape, torch.rand)


def normal(shape, mean=0.0, std=1.0):
    return mean + std * _draw(shape, torch.randn)


def shape(x):
    return list(x.shape)


def check(condition, message="a requirement of this call is not met"):
    """nnc checks these when compiling; here, when the function runs."""
    if not condition:
        raise ValueError(message)


# ---- training and evaluation modes ------------------------------------------
#
# `if training { ... }` in a layer is `self.training`; in a function (such as
# `dropout`) it is the mode of the model whose forward is running, which
# `with ops.mode(self):` in that forward sets. A buffer written in training
# (batch norm's running mean) is written when the outermost forward ends, so
# reads within the forward see the old value, as in nnc.

_MODES = []
_WRITES = []


@contextlib.contextmanager
def mode(model):
    _MODES.append(model.training)
    try:
        yield
    finally:
        _MODES.pop()
        if not _MODES:
            writes = list(_WRITES)
            _WRITES.clear()
            with torch.no_grad():
                for module, name, value in writes:
                    setattr(module, name, value)


def is_training():
    """The mode of the running model (evaluation outside any model)."""
    return _MODES[-1] if _MODES else False


def write_buffer(module, name, value):
    value = value.detach()
    if _MODES:
        _WRITES.append((module, name, value))
    else:
        with torch.no_grad():
            setattr(module, name, value)


def fan_in(shape):
    """Inputs per unit of a weight of this shape: [in, out] -> in; [out, in, k...] -> in*k..."""
    if len(shape) == 0:
        return 1
    if len(shape) == 1:
        return shape[0]
    if len(shape) == 2:
        return shape[0]
    return shape[1] * math.prod(shape[2:])


def fan_out(shape):
    if len(shape) == 0:
        return 1
    if len(shape) == 1:
        return shape[0]
    if len(shape) == 2:
        return shape[1]
    return shape[0] * math.prod(shape[2:])


floor = _elementwise(torch.floor, math.floor)
ceil = _elementwise(torch.ceil, math.ceil)


def size(x, axis):
    return x.shape[axis]


def compare(c):
    """nnc's comparisons give 1.0 where true and 0.0 where false."""
    return _tensor(c).float() if torch.is_tensor(c) else builtins.float(c)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pads(x, pad, kernel, stride, dilation):
    """nnc's padding per side, ((top, left), (bottom, right)): a number, a
    pair, "valid", or "same" (output ceil(input / stride), the odd pixel after)."""
    if pad == "valid":
        return (0, 0), (0, 0)
    if pad != "same":
        p = _pair(pad)
        return p, p
    lo, hi = [], []
    for n, k, s, d in zip(x.shape[2:], kernel, stride, dilation):
        total = builtins.max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        lo.append(total // 2)
        hi.append(total - total // 2)
    return tuple(lo), tuple(hi)


def _padded(x, lo, hi, value=0.0):
    return F.pad(x, (lo[1], hi[1], lo[0], hi[0]), value=value)


def conv2d(x, weight, stride=1, pad=0, dilation=1, groups=1):
    stride, dilation = _pair(stride), _pair(dilation)
    lo, hi = _pads(x, pad, weight.shape[2:], stride, dilation)
    return F.conv2d(_padded(x, lo, hi), weight, stride=stride, dilation=dilation, groups=groups)


def max_pool2d(x, kernel, stride=None, pad=0):
    """The maximum of each window; padding never wins (nnc's and PyTorch's rule)."""
    kernel = _pair(kernel)
    stride = kernel if stride is None else _pair(stride)
    lo, hi = _pads(x, pad, kernel, stride, (1, 1))
    return F.max_pool2d(_padded(x, lo, hi, -math.inf), kernel, stride)


def avg_pool2d(x, kernel, stride=None, pad=0):
    """The mean of each window, padding counted as zeros."""
    kernel = _pair(kernel)
    stride = kernel if stride is None else _pair(stride)
    lo, hi = _pads(x, pad, kernel, stride, (1, 1))
    return F.avg_pool2d(_padded(x, lo, hi), kernel, stride)


sin = _elementwise(torch.sin, math.sin)
cos = _elementwise(torch.cos, math.cos)
erf = _elementwise(torch.erf, math.erf)


class Borrowed:
    """A layer that another layer calls but does not own. nnc names a layer's
    parameters where it is built (`gru1.Wx` for `Bidirectional(Gru(...), ...)`
    in a model), so the model registers it and the layer it is given to holds
    it outside PyTorch's module tree: the state dict has each name once."""

    def __init__(self, layer):
        self.layer = layer

    def __call__(self, *args, **kwargs):
        return self.layer(*args, **kwargs)


def borrow(f):
    """`f` as a layer argument: a module is borrowed, a function kept."""
    return Borrowed(f) if isinstance(f, torch.nn.Module) else f


def stop_gradient(x):
    return x.detach()


def concat(xs, axis=0):
    return torch.cat([_tensor(x) for x in xs], dim=axis)


def stack(xs, axis=0):
    return torch.stack([_tensor(x) for x in xs], dim=axis)


def split(x, sizes, axis=0):
    return list(torch.split(x, sizes, dim=axis))


def chunk(x, n, axis=0):
    return list(torch.chunk(x, n, dim=axis))


def arange(start, stop=None, step=1):
    if stop is None:
        start, stop = 0, start
    return torch.arange(start, stop, step, dtype=torch.float32, device=_DEVICE)


def split_heads(x, heads):
    """[..., t, d] -> [..., heads, t, d / heads] (a view)."""
    *lead, t, d = x.shape
    return x.reshape(*lead, t, heads, d // heads).transpose(-3, -2)


def merge_heads(x):
    """[..., heads, t, k] -> [..., t, heads * k]."""
    *lead, h, t, k = x.shape
    return x.transpose(-3, -2).reshape(*lead, t, h * k)


def masked(x, mask, fill=-1e9):
    """x where mask is nonzero, else fill; a number masks nothing or everything."""
    if not torch.is_tensor(mask):
        return x if mask else torch.full_like(x, fill)
    return torch.where(mask != 0, x, torch.full_like(x, fill))


class Repeat(torch.nn.ModuleList):
    """nnc's repeat(n, Layer(...)): n layers applied in turn, extra arguments to each."""

    def forward(self, x, *args):
        for layer in self:
            x = layer(x, *args)
        return x
