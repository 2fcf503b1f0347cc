"""The NumPy kernels of the softmax family: one function per loss that runs the rules layer's row math on a block
of rows ``r0:r1`` of an ``(n, K)`` array, in a cache-sized buffer, and writes the gradient where it is wanted.

``threads.run_rows`` spreads the blocks over threads; the compiled kernel (``kernels/compiled.py``) replaces
``softmax_xent_block`` where it is built. Every block gets ``scale``, the factor of the reduction (the rules'
``reduction_scale``), so the gradient is final when it is written.
"""

from __future__ import annotations

import numpy as np

from ..rules.limits import masked_product
from ..rules.rows import RowResult, focal_rows, softmax_rows
from ..rules.xp import NUMPY


def _block_input(z: np.ndarray, r0: int, r1: int, grad, buffer: np.ndarray):
    """``(work, zb, direct)``: where the block's gradient is built (the destination itself when its dtype is the
    compute dtype, else the buffer) and the block's logits in the compute dtype."""
    cdt = buffer.dtype
    direct = grad is not None and grad.dtype == cdt
    work = grad[r0:r1] if direct else buffer[: r1 - r0]
    zb = z[r0:r1]
    if zb.dtype != cdt:
        np.copyto(work, zb, casting="unsafe")
        zb = work
    return work, zb, direct


def softmax_xent_block(z: np.ndarray, r0: int, r1: int, coef, scale: float, grad, buffer: np.ndarray, *, options,
                       stats: RowResult | None = None) -> np.ndarray:
    """Losses of rows ``r0:r1`` of ``z`` (``options.z_loss`` and ``options.softcap`` as in ``rows.softmax_rows``);
    with ``grad`` given, the gradient of ``scale * l`` is written there, and with ``stats`` (``(n,)`` arrays
    ``lse, entropy, p_target, predicted``) the rows' statistics. ``grad`` may be ``z`` itself: every read of a row
    happens before it is overwritten."""
    work, zb, direct = _block_input(z, r0, r1, grad, buffer)
    c = coef.rows(r0, r1).astype(buffer.dtype)
    row_scale = None if grad is None else np.full(r1 - r0, scale, buffer.dtype)
    r = softmax_rows(NUMPY, zb, c, z_loss=options.z_loss, softcap=options.softcap, row_scale=row_scale, work=work,
                     stats=stats is not None)
    if stats is not None:
        for name in ("lse", "entropy", "p_target", "predicted"):
            getattr(stats, name)[r0:r1] = getattr(r, name)
    if grad is not None and (not direct or stats is not None):  # with stats the gradient is a new array
        np.copyto(grad[r0:r1], r.grad, casting="unsafe")
    return r.loss


def focal_block(z: np.ndarray, r0: int, r1: int, coef, scale: float, grad, buffer: np.ndarray, *,
                gamma: float) -> np.ndarray:
    """Softmax focal losses of rows ``r0:r1`` (``rows.focal_rows``), and their scaled gradient into ``grad``."""
    zb = buffer[: r1 - r0]
    np.copyto(zb, z[r0:r1], casting="unsafe")
    c = coef.rows(r0, r1).astype(buffer.dtype)
    row_scale = None if grad is None else np.full(r1 - r0, scale, buffer.dtype)
    r = focal_rows(NUMPY, zb, c, gamma=gamma, row_scale=row_scale)
    if grad is not None:
        np.copyto(grad[r0:r1], r.grad, casting="unsafe")
    return r.loss


def categorical_block(p_rows: np.ndarray, r0: int, r1: int, coef, scale: float, grad, buffer: np.ndarray, *,
                      eps: float | None) -> np.ndarray:
    """Cross-entropy of probability rows ``r0:r1``: ``l_i = sum_c a_ic (-log P_ic)``, ``d l / d P = -a / P``;
    with ``eps`` the probabilities are clipped to ``[eps, 1 - eps]`` and the gradient is that of the clipped
    function."""
    p = buffer[: r1 - r0]
    np.copyto(p, p_rows[r0:r1], casting="unsafe")
    if eps is not None:
        inside = (p >= eps) & (p <= 1 - eps)
        np.clip(p, eps, 1 - eps, out=p)
    a = coef.rows(r0, r1).astype(buffer.dtype).dense(buffer.dtype)
    neg_log = NUMPY.log(p)
    np.negative(neg_log, out=neg_log)
    loss = masked_product(NUMPY, a, neg_log).sum(axis=1)
    if grad is not None:
        with np.errstate(divide="ignore"):
            g = masked_product(NUMPY, a, -scale / p)
        if eps is not None:
            g *= inside
        np.copyto(grad[r0:r1], g, casting="unsafe")
    return loss
