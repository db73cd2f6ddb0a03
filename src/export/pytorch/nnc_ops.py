"""nnc's primitive operations in PyTorch, used by the translated model.py.

Each function has the name, arguments and meaning of the nnc primitive of
the same name. Arguments may be tensors or plain numbers: layer sizes and
initializer bounds are ordinary Python numbers here, as they are
compile-time values in the .nn file.
"""

import builtins
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
    return torch.zeros(shape)


def ones(shape):
    return torch.ones(shape)


def full(shape, value):
    return torch.full(shape, builtins.float(value))


def zeros_like(x):
    return torch.zeros_like(x)


def ones_like(x):
    return torch.ones_like(x)


def uniform(shape, low=0.0, high=1.0):
    return torch.empty(shape).uniform_(low, high)


def normal(shape, mean=0.0, std=1.0):
    return torch.empty(shape).normal_(mean, std)


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
