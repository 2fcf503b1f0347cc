"""Targets as coefficients: label smoothing, class and sample weights and ``ignore_index``, written once.

Per row ``i`` and class ``c`` a softmax-family loss sees its targets only through (docs/semantics.md, 3 and 4)::

    t'_ic = (1 - ls) t_ic + ls / K                label smoothing ls (K counts every class; K = 2 for binary)
    a_ic  = s_i w_c t'_ic                         0 for a row whose index target is ignore_index
    o_i   = sum_c a_ic                            the row's weight in "mean"

so that ``l_i = sum_c a_ic (-log p_ic)``. ``Coefficients`` keeps ``a`` factored, never as an ``(n, K)`` array
unless the targets are probabilities: index targets are ``a_ic = a_y[i] [c == y_i] + u_i w_c``; probability targets
are ``a_ic = s_i w_c (alpha T_ic + beta)`` with ``(alpha, beta) = smoothing_affine(ls, K)``.

For "mean", weights only matter relative to each other, so ``normalize=True`` divides class and sample weights by
their largest value first: the mean is then exact for weights near the ends of the float range (1e-50, 1e39).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..constants import IGNORE_INDEX
from .limits import masked_product


def smoothing_affine(label_smoothing: float, n_classes: int) -> tuple[float, float]:
    """``(alpha, beta)`` with ``t' = alpha * t + beta``: ``(1 - label_smoothing, label_smoothing / K)``.

    >>> smoothing_affine(0.1, 4)
    (0.9, 0.025)
    """
    return 1.0 - label_smoothing, label_smoothing / n_classes


def smooth(t, label_smoothing: float, n_classes: int):
    """``(1 - label_smoothing) t + label_smoothing / K``: the smoothed targets every loss uses (K = 2 for binary
    targets)."""
    if not label_smoothing:
        return t
    alpha, beta = smoothing_affine(label_smoothing, n_classes)
    return alpha * t + beta


def normalized(xp, w):
    """``w / max(w)`` (``w`` itself when every weight is 0): the same "mean", with no underflow or overflow."""
    if w is None or xp.size(w) == 0:  # no weights (an empty batch): nothing to scale
        return w
    top = xp.amax(w)
    return xp.where(top > 0, w / xp.where(top > 0, top, xp.scalar(1.0, w.dtype, like=w)), w)


@dataclass(frozen=True)
class Coefficients:
    """Target coefficients of ``n`` rows over ``K`` classes, in factored form (see the module docstring)."""

    xp: object
    o: object
    n_classes: int
    w: object = None
    y: object = None
    a_y: object = None
    u: object = None
    probs: object = None
    s: object = None
    label_smoothing: float = 0.0
    keep: object = None  # index targets: the rows whose target is not ignore_index

    @property
    def index(self) -> bool:
        return self.probs is None

    @property
    def affine(self) -> tuple[float, float]:
        """``(alpha, beta)`` of the smoothing, ``t' = alpha t + beta``."""
        return smoothing_affine(self.label_smoothing, self.n_classes)

    def rows(self, start: int, stop: int) -> Coefficients:
        """The coefficients of rows ``start:stop`` (for blocks and chunks)."""
        def cut(a):
            return None if a is None else a[start:stop]
        return replace(self, o=cut(self.o), y=cut(self.y), a_y=cut(self.a_y), u=cut(self.u),
                       probs=cut(self.probs), s=cut(self.s), keep=cut(self.keep))

    def take(self, idx) -> Coefficients:
        """The coefficients of rows ``idx`` (an index array)."""
        def pick(a):
            return None if a is None else a[idx]
        return replace(self, o=pick(self.o), y=pick(self.y), a_y=pick(self.a_y), u=pick(self.u),
                       probs=pick(self.probs), s=pick(self.s), keep=pick(self.keep))

    def astype(self, dtype) -> Coefficients:
        """Per-row and per-class factors in ``dtype`` (the compute dtype of a block); ``y`` stays integer."""
        def cast(a):
            return None if a is None else self.xp.astype(a, dtype)
        return replace(self, o=cast(self.o), w=cast(self.w), a_y=cast(self.a_y), u=cast(self.u), s=cast(self.s),
                       probs=cast(self.probs))

    def dense(self, dtype, like=None):
        """``a`` as an ``(n, K)`` array (probability targets, or where a loss needs every coefficient)."""
        xp = self.xp
        if not self.index:
            a = smooth(xp.astype(self.probs, dtype), self.label_smoothing, self.n_classes)
            a = a * xp.astype(self.s, dtype)[:, None]
            return a if self.w is None else a * xp.astype(self.w, dtype)
        n = self.y.shape[0]
        a = xp.zeros((n, self.n_classes), dtype, like=like)
        if self.u is not None:
            a = a + xp.astype(self.u, dtype)[:, None] * (1.0 if self.w is None else xp.astype(self.w, dtype))
        return xp.scatter_sub_(a, self.y, -xp.astype(self.a_y, dtype))

    def target_term(self, x):
        """``sum_c a_ic x_ic`` per row, with ``0 * x = 0`` for infinite ``x``."""
        xp = self.xp
        if not self.index:
            return xp.sum(masked_product(xp, self.dense(x.dtype, like=x), x))
        out = masked_product(xp, self.a_y, xp.gather(x, self.y))
        if self.u is not None:
            if self.w is None:
                spread = xp.sum(x)
            elif xp.checkable(self.w) and not xp.any(self.w == 0):  # no zero weight: a plain product is exact
                spread = xp.matvec(x, xp.astype(self.w, x.dtype))
            else:
                spread = xp.sum(masked_product(xp, self.w, x))
            out = out + masked_product(xp, self.u, spread)
        return out

    def subtract_(self, g, scale):
        """``g_ic -= scale_i a_ic`` in place (``scale`` per row)."""
        xp = self.xp
        if not self.index:
            return xp.sub_(g, self.dense(g.dtype, like=g) * scale[:, None])
        xp.scatter_sub_(g, self.y, self.a_y * scale)
        if self.u is not None:
            uniform = (self.u * scale)[:, None]
            xp.sub_(g, uniform if self.w is None else uniform * self.w)
        return g


def index_coefficients(xp, y, n_classes: int, *, w=None, s=None, ignore_index: int = IGNORE_INDEX,
                       label_smoothing: float = 0.0, dtype, normalize: bool = False) -> Coefficients:
    """Coefficients of integer targets ``y (n,)``; ``w (K,)`` class and ``s (n,)`` sample weights or None.

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> c = index_coefficients(NUMPY, np.array([1, -100]), 3, label_smoothing=0.3, dtype=np.float64)
    >>> c.dense(np.float64).round(3).tolist(), c.o.tolist()
    ([[0.1, 0.8, 0.1], [0.0, 0.0, 0.0]], [1.0, 0.0])
    """
    if normalize:
        w, s = normalized(xp, w), normalized(xp, s)
    keep = y != ignore_index
    y_safe = xp.where(keep, y, xp.scalar(0, y.dtype, like=y))
    alpha, beta = smoothing_affine(label_smoothing, n_classes)
    weight = xp.astype(keep, dtype) if s is None else xp.where(keep, xp.astype(s, dtype),
                                                                xp.scalar(0.0, dtype, like=y))
    a_y = weight * alpha if w is None else weight * alpha * xp.astype(w, dtype)[y_safe]
    if not label_smoothing:
        return Coefficients(xp, o=a_y, n_classes=n_classes, w=w, y=y_safe, a_y=a_y, keep=keep)
    u = weight * beta
    w_total = float(n_classes) if w is None else xp.sum(xp.astype(w, dtype))
    return Coefficients(xp, o=a_y + u * w_total, n_classes=n_classes, w=w, y=y_safe, a_y=a_y, u=u,
                        label_smoothing=label_smoothing, keep=keep)


def probability_coefficients(xp, probs, n_classes: int, *, w=None, s=None, label_smoothing: float = 0.0, dtype,
                             normalize: bool = False) -> Coefficients:
    """Coefficients of probability targets ``probs (n, K)``.

    >>> import numpy as np
    >>> from crossentropy.rules.xp import NUMPY
    >>> probability_coefficients(NUMPY, np.array([[0.5, 0.5]]), 2, w=np.array([1.0, 3.0]), dtype=np.float64).o
    array([2.])
    """
    if normalize:
        w, s = normalized(xp, w), normalized(xp, s)
    alpha, beta = smoothing_affine(label_smoothing, n_classes)
    s = xp.ones((probs.shape[0],), dtype, like=probs) if s is None else xp.astype(s, dtype)
    # the row masses accumulated in float64 (NumPy) or at least float32 (torch), whatever the targets' dtype:
    # a half-precision sum of K targets loses mass
    mass = xp.row_mass(probs, w)
    w_total = float(n_classes) if w is None else xp.sum(xp.astype(w, dtype))
    o = s * (xp.astype(mass, dtype) * alpha + w_total * beta)
    return Coefficients(xp, o=o, n_classes=n_classes, w=w, probs=probs, s=s, label_smoothing=label_smoothing)


def coefficients(xp, target, n_classes: int, options, *, w=None, s=None, dtype,
                 normalize: bool = False) -> Coefficients:
    """``index_coefficients`` for integer targets ``(n,)``, ``probability_coefficients`` for float ones ``(n, K)``,
    with ``options.label_smoothing`` and ``options.ignore_index`` (an options object of ``rules.options``)."""
    if xp.is_integer(target):
        return index_coefficients(xp, target, n_classes, w=w, s=s, ignore_index=options.ignore_index,
                                  label_smoothing=options.label_smoothing, dtype=dtype, normalize=normalize)
    return probability_coefficients(xp, target, n_classes, w=w, s=s, label_smoothing=options.label_smoothing,
                                    dtype=dtype, normalize=normalize)
