"""The torch side of the rules layer's array namespace (see ``crossentropy/rules/xp.py``).

Values are read on the host only eagerly on the CPU: never under ``torch.compile`` and never on CUDA, where a read
would synchronise the device.
"""

from __future__ import annotations

import torch

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _dtype(dtype):
    return _DTYPES.get(dtype, dtype)


class TorchNamespace:
    name = "torch"
    inf = float("inf")

    @staticmethod
    def checkable(x) -> bool:
        return not torch.compiler.is_compiling() and (not isinstance(x, torch.Tensor) or x.device.type == "cpu")

    @staticmethod
    def where(cond, a, b):
        return torch.where(cond, a, b)

    @staticmethod
    def mul_where(a, x, cond, out=None):
        if out is not None:
            return torch.mul(a, x, out=out).masked_fill_(~cond, 0.0)
        product = a * x
        return torch.where(cond, product, torch.zeros((), dtype=product.dtype, device=product.device))

    @staticmethod
    def amax(x, keepdims: bool = False):
        return x.amax(-1, keepdim=keepdims)

    @staticmethod
    def argmax(x):
        return x.argmax(-1)

    @staticmethod
    def sum(x, keepdims: bool = False):
        return x.sum(-1, keepdim=keepdims)

    @staticmethod
    def total(x):
        return x.sum(dtype=torch.float64) if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=torch.float64)

    @staticmethod
    def gather(x, index):
        return x.gather(-1, index[:, None]).squeeze(-1)

    @staticmethod
    def take(x, index):
        return x.gather(-1, index)

    @staticmethod
    def scatter_(x, index, values):
        return x.scatter_(-1, index, values)

    @staticmethod
    def concat(arrays):
        return torch.cat(arrays, -1)

    @staticmethod
    def scatter_sub_(x, index, values):
        return x.scatter_add_(-1, index[:, None], -values[:, None])

    @staticmethod
    def sub(a, b, out=None):
        return torch.sub(a, b) if out is None else torch.sub(a, b, out=out)

    @staticmethod
    def fill_where_(x, mask, value):
        return x.masked_fill_(mask, value)

    @staticmethod
    def exp_(x):
        return x.exp_()

    @staticmethod
    def mul_(x, factor):
        return x.mul_(factor)

    @staticmethod
    def clamp_min_(x, low):
        return x.clamp_(min=low)

    @staticmethod
    def sub_(x, value):
        return x.sub_(value)

    @staticmethod
    def exp(x):
        return torch.exp(x)

    @staticmethod
    def expm1(x):
        return torch.expm1(x)

    @staticmethod
    def log1p(x):
        return torch.log1p(x)

    @staticmethod
    def log_softmax(z, out=None):
        return torch.log_softmax(z, -1) if out is None else torch.log_softmax(z, -1, out=out)

    @staticmethod
    def logaddexp(a, b):
        return torch.logaddexp(a, b)

    @staticmethod
    def reciprocal(x):
        return torch.reciprocal(x)

    @staticmethod
    def sigmoid(x):
        return torch.sigmoid(x)

    @staticmethod
    def softplus(x):
        return torch.nn.functional.softplus(x)

    @staticmethod
    def tanh(x):
        return torch.tanh(x)

    @staticmethod
    def log(x):
        return torch.log(x)

    @staticmethod
    def matvec(x, w):
        return x @ w

    @staticmethod
    def row_mass(x, w=None):
        """``sum_c x_ic`` (``sum_c x_ic w_c`` with ``w``) per row, accumulated in at least float32."""
        dtype = torch.promote_types(x.dtype, torch.float32)
        if w is None:
            return x.sum(-1, dtype=dtype)
        return x.to(dtype) @ w.to(dtype)

    @staticmethod
    def astype(x, dtype):
        return x.to(_dtype(dtype))

    @staticmethod
    def size(x) -> int:
        return x.numel()

    @staticmethod
    def broadcast_to(x, shape):
        return x.expand(shape)

    @staticmethod
    def is_integer(x) -> bool:
        return not (x.is_floating_point() or x.is_complex())

    @staticmethod
    def isinf(x):
        return torch.isinf(x)

    @staticmethod
    def isnan(x):
        return torch.isnan(x)

    @staticmethod
    def extrema(x) -> tuple:
        """``(min, max)`` of a non-empty integer tensor, as Python ints (host read; only where ``checkable``)."""
        low, high = torch.aminmax(x)
        return int(low), int(high)

    @staticmethod
    def first_true(mask) -> tuple:
        """The index of the first True of ``mask`` (host read; only where ``checkable``)."""
        return tuple(int(i) for i in mask.nonzero()[0])

    @staticmethod
    def any(x) -> bool:
        return bool(x.any())

    @staticmethod
    def sort(x):
        return torch.sort(x, dim=-1).values

    @staticmethod
    def host(x):
        """A CPU tensor as a NumPy array sharing its memory (bfloat16 widened to float32 first)."""
        x = x.detach()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()

    @staticmethod
    def eps(x) -> float:
        return torch.finfo(x.dtype).eps

    @staticmethod
    def zeros(shape, dtype, like=None):
        return torch.zeros(shape, dtype=_dtype(dtype), device=None if like is None else like.device)

    @staticmethod
    def ones(shape, dtype, like=None):
        return torch.ones(shape, dtype=_dtype(dtype), device=None if like is None else like.device)

    @staticmethod
    def scalar(value, dtype, like=None):
        device = like.device if isinstance(like, torch.Tensor) else None
        return torch.tensor(value, dtype=_dtype(dtype), device=device)


TORCH = TorchNamespace()


class TorchGraphNamespace(TorchNamespace):
    """The same operations without in-place updates, so that autograd can differentiate through them: the
    backward of a loss runs its row math in this namespace when a graph is being built (double backward)."""

    @staticmethod
    def fill_where_(x, mask, value):
        return x.masked_fill(mask, value)

    @staticmethod
    def mul_where(a, x, cond, out=None):
        return TorchNamespace.mul_where(a, x, cond)

    @staticmethod
    def scatter_(x, index, values):
        return x.scatter(-1, index, values)

    @staticmethod
    def log_softmax(z, out=None):
        return torch.log_softmax(z, -1)

    @staticmethod
    def scatter_sub_(x, index, values):
        return x.scatter_add(-1, index[:, None], -values[:, None])

    @staticmethod
    def exp_(x):
        return torch.exp(x)

    @staticmethod
    def mul_(x, factor):
        return x * factor

    @staticmethod
    def clamp_min_(x, low):
        return x.clamp(min=low)

    @staticmethod
    def sub_(x, value):
        return x - value


TORCH_GRAPH = TorchGraphNamespace()


def namespace_for_backward():
    """``TORCH_GRAPH`` when backward itself is being differentiated (``create_graph=True``), else ``TORCH``."""
    return TORCH_GRAPH if torch.is_grad_enabled() else TORCH
