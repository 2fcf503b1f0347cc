"""The element-wise (binary and multi-label) losses' formulas, written once for NumPy and torch.

Each returns ``(loss, grad)`` per element, ``grad`` being ``d loss / d input`` (None unless asked for). Targets
``t`` arrive smoothed (``targets.smooth`` with K = 2). Every coefficient multiplies its term through the masked
product, so a zero coefficient drops even an infinite term (``0 * inf = 0``). Weights and the reduction are
applied afterwards by ``reduction.reduce_elementwise``.
"""

from __future__ import annotations

from .errors import InputValueError
from .limits import masked_product


def bce_with_logits(xp, x, t, pos_weight=None, *, grad: bool = False):
    """``l = pw t softplus(-x) + (1 - t) softplus(x)``, ``dl/dx = (1 - t) sigmoid(x) - pw t sigmoid(-x)``."""
    pos = t if pos_weight is None else pos_weight * t
    neg = 1 - t
    loss = masked_product(xp, pos, xp.softplus(-x)) + masked_product(xp, neg, xp.softplus(x))
    if not grad:
        return loss, None
    return loss, neg * xp.sigmoid(x) - pos * xp.sigmoid(-x)


def bce_with_probs(xp, p, t, pos_weight=None, *, grad: bool = False):
    """``l = -(pw t log p + (1 - t) log(1 - p))``, ``dl/dp = -pw t / p + (1 - t) / (1 - p)``."""
    pos = t if pos_weight is None else pos_weight * t
    neg = 1 - t
    loss = masked_product(xp, pos, -xp.log(p)) + masked_product(xp, neg, -xp.log1p(-p))
    if not grad:
        return loss, None
    return loss, masked_product(xp, pos, -xp.reciprocal(p)) + masked_product(xp, neg, xp.reciprocal(1 - p))


def sigmoid_focal(xp, x, t, alpha=None, *, gamma: float, grad: bool = False):
    """torchvision's sigmoid focal loss, in log space::

        ce = t softplus(-x) + (1 - t) softplus(x)        p = sigmoid(x),  m = p (1 - t) + (1 - p) t
        l = alpha_t ce m**gamma                          alpha_t = alpha t + (1 - alpha)(1 - t)  (1 if None)
        dl/dx = alpha_t ((p - t) m**gamma + gamma ce (1 - 2 t) p (1 - p) m**(gamma - 1))

    ``1 - p`` is ``sigmoid(-x)``, and ``p (1 - p) m**(gamma - 1)`` is 0 where ``m = 0``: the gradient is finite at
    saturation for every ``gamma >= 0``. ``alpha_t = 0`` drops the element even where ``ce`` is infinite.
    """
    ce, _ = bce_with_logits(xp, x, t)
    p, q = xp.sigmoid(x), xp.sigmoid(-x)
    m = p * (1 - t) + q * t
    mg = m**gamma
    alpha_t = None if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    loss = ce * mg if alpha_t is None else masked_product(xp, alpha_t, ce * mg)
    if not grad:
        return loss, None
    g = ((1 - t) * p - t * q) * mg
    if gamma != 0:  # at gamma = 0 the loss is BCE and there is no bend term (m**-1 could overflow for tiny m)
        positive = m > 0
        m_safe = xp.where(positive, m, xp.ones((), m.dtype, like=m))
        bend = xp.mul_where(p * q, m_safe ** (gamma - 1), positive)
        g = g + masked_product(xp, bend * (gamma * (1 - 2 * t)), ce)
    return loss, (g if alpha_t is None else masked_product(xp, alpha_t, g))


def gaussian_shapes(input_shape: tuple, target_shape: tuple, var_shape: tuple) -> tuple:
    """The shape ``var`` is viewed as in ``gaussian_nll`` (PyTorch's rule), after checking that ``target`` broadcasts
    to the input's shape: ``var`` has the input's shape, is a scalar, is the input's shape without its last dim
    (one variance per row: a trailing 1 is added), or differs from the input's shape in exactly one dim, where it
    is 1.

    >>> gaussian_shapes((4, 3), (1,), (4,)), gaussian_shapes((4, 3), (4, 3), (1, 3))
    ((4, 1), (1, 3))
    """
    input_shape, target_shape, var_shape = tuple(input_shape), tuple(target_shape), tuple(var_shape)
    fits = len(target_shape) <= len(input_shape) and all(
        t in (1, i) for t, i in zip(reversed(target_shape), reversed(input_shape), strict=False))
    if not fits:
        raise InputValueError(f"target must have the input's shape {input_shape} or one that broadcasts to it, but "
                              f"got {target_shape}.")
    if var_shape in (input_shape, ()):
        return var_shape
    if input_shape and var_shape == input_shape[:-1]:
        return var_shape + (1,)
    differ = [(i, v) for i, v in zip(input_shape, var_shape, strict=False) if i != v]
    if len(var_shape) == len(input_shape) and len(differ) == 1 and differ[0][1] == 1:
        return var_shape
    raise InputValueError(f"var must have the input's shape {input_shape}, that shape with the last dimension "
                          f"dropped, or with one dimension 1, or be a scalar, but got shape {var_shape}.")
