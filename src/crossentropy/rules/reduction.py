"""The one definition of "none" / "sum" / "mean" (docs/semantics.md, 4 and 5).

Given per-row losses ``l`` and per-row weights ``o``:

* ``"none"`` is ``l``;
* ``"sum"`` is ``sum(l)``;
* ``"mean"`` is ``sum(l) / W`` with ``W = sum(o)``, or the caller's ``total_weight`` (a global count across
  micro-batches and ranks); it is 0, with a zero gradient, when ``W == 0``.

Sums accumulate in float64. ``scale`` is the factor by which the gradient of ``sum(l)`` becomes the gradient of
the reduced loss, so every backend folds it into its closed-form gradient.
"""

from __future__ import annotations

from .errors import InputValueError
from .limits import masked_product
from .options import check_class_indices
from .targets import coefficients


def reduction_scale(xp, reduction: str, o_total, total_weight=None):
    """d(reduced) / d(sum l): 1 for "none" and "sum"; ``1 / W`` for "mean", and 0 when ``W == 0``.

    >>> from crossentropy.rules.xp import NUMPY
    >>> float(reduction_scale(NUMPY, "mean", 4.0)), float(reduction_scale(NUMPY, "mean", 0.0))
    (0.25, 0.0)
    """
    if reduction != "mean":
        return xp.scalar(1.0, "float64", like=o_total)
    w = o_total if total_weight is None else total_weight
    w = xp.astype(xp.scalar(w, "float64", like=o_total) if isinstance(w, (int, float)) else w, "float64")
    one = xp.scalar(1.0, "float64", like=w)
    return xp.where(w > 0, one / xp.where(w > 0, w, one), xp.scalar(0.0, "float64", like=w))


def batch_weight(xp, targets, options, *, w=None, s=None):
    """``W = sum_i o_i`` over every row of every target array in ``targets`` (rows: ``(n,)`` class indices or
    ``(n, K)`` probabilities, one kind for all), in float64: the "mean" denominator of the whole batch, from the same
    coefficients the losses use (``rules.targets``, with ``options.ignore_index`` and
    ``options.label_smoothing``; unnormalised, as a loss given ``total_weight`` uses them). The
    number of classes is ``w``'s length, else the probabilities' ``K`` (index targets without class weights have
    ``o_i = 1``, whatever ``K``). ``s`` (optional) holds one sample-weight array ``(n,)`` per target array.

    >>> import numpy as np
    >>> from crossentropy.rules.options import SoftmaxOptions
    >>> from crossentropy.rules.xp import NUMPY
    >>> targets = [np.array([0, 1]), np.array([-100, 1])]
    >>> float(batch_weight(NUMPY, targets, SoftmaxOptions(), w=np.array([1.0, 3.0])))
    7.0
    """
    index = xp.is_integer(targets[0])
    if any(xp.is_integer(t) != index for t in targets):
        raise InputValueError("targets mixes class indices and probabilities; pass one kind for every micro-batch.")
    n_classes = int(w.shape[0]) if w is not None else 1 if index else int(targets[0].shape[-1])
    total = None
    for i, t in enumerate(targets):
        if index:
            check_class_indices(xp, t, n_classes if w is not None else 2**62, options.ignore_index, f" (targets[{i}])")
        elif t.shape[-1] != n_classes:
            raise InputValueError(f"targets[{i}] has {t.shape[-1]} classes, but the class weights or targets[0] "
                                  f"have {n_classes}. Every micro-batch has the same classes.")
        o = coefficients(xp, t, n_classes, options, w=w, s=None if s is None else s[i], dtype="float64").o
        total = xp.total(o) if total is None else total + xp.total(o)
    return total


def reduce(xp, l, reduction: str, scale):
    """``l`` reduced: as is ("none"), ``sum(l)`` or ``scale * sum(l)`` ("mean"; exactly 0 when ``scale == 0``)."""
    if reduction == "none":
        return l
    total = xp.total(l)
    return total if reduction == "sum" else masked_product(xp, scale, total)


def reduce_elementwise(xp, loss, o, reduction: str):
    """``(value, scale)`` of an element-wise loss (semantics 5): ``o`` (broadcast to ``loss``) weighs each element
    with a masked product, so a zero weight drops even an infinite loss; "mean" is ``sum(o l) / sum(o)``, the plain
    mean when ``o`` is None, and 0 for an empty input. ``scale`` is None for "none"."""
    weighted = loss if o is None else masked_product(xp, o, loss)
    if reduction == "none":
        return weighted, None
    o_total = float(xp.size(loss)) if o is None else xp.total(o)
    scale = reduction_scale(xp, reduction, o_total)
    return reduce(xp, weighted, reduction, scale), scale
