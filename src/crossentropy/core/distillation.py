"""Knowledge-distillation losses between a student's and a teacher's logits, with the student's analytic gradient.

With ``S = softmax(student / tau)`` and ``T = softmax(teacher / tau)`` along ``axis``, ``tau = temperature``
(docs/semantics.md)::

    "forward_kl"  temperature**2 * KL(T || S)     = temperature**2 * sum_c T_c (log T_c - log S_c)
    "reverse_kl"  temperature**2 * KL(S || T)     = temperature**2 * sum_c S_c (log S_c - log T_c)
    "jsd"         temperature**2 * (beta KL(T || M) + (1 - beta) KL(S || M)),   M = beta T + (1 - beta) S,  0 < beta < 1

and the gradient with respect to the student's logits ``z`` (``G_c`` the derivative of the divergence by ``S_c``)
is ``tau * S_c (G_c - sum_j S_j G_j)``: ``tau (S - T)`` for forward KL, ``tau S (f - KL)`` with ``f = log S - log T``
for reverse KL, and ``tau S (g - sum_j S_j g_j)`` with ``g = (1 - beta)(log S - log M)`` for JSD. Everything runs in
log space (``log_softmax``, ``logaddexp``; never ``log(softmax)``), float16 in float32, with ``0 log 0 = 0``: a class
the teacher gives no mass costs nothing in forward KL, whatever the student's logit (``-inf`` included).

Tokens whose ``target`` equals ``ignore_index`` give 0 and no gradient; ``"mean"`` is over the kept tokens (0 with a
zero gradient when none is kept). Per-token values are clipped below at 0 (rounding can leave -1 ulp).

``sparse_distillation_loss`` takes an offline teacher's top-k log-probs: the divergence is taken over k + 1 bins,
the k classes and one tail bin holding the rest of each distribution's mass.

The row math is the rules layer's (``crossentropy.rules.divergence``), shared with the torch Functions; this module
turns NumPy inputs into rows and the gradient rows back into the student's layout.
"""

from __future__ import annotations

import numpy as np

from ..constants import IGNORE_INDEX
from ..rules.divergence import check_sparse_teacher, check_vocabulary, dense_rows, kept_tokens, kept_total, sparse_rows
from ..rules.errors import InputTypeError, InputValueError
from ..rules.options import DistillationOptions
from ..rules.reduction import reduction_scale
from ..rules.xp import NUMPY
from ._inputs import check_axis, compute_dtype, float_array
from ._outputs import check_out, reduced


def _student_rows(student_logits, axis, out, return_grad):
    x = float_array(student_logits, "student_logits")
    if x.ndim == 0:
        raise InputValueError("student_logits must have a class axis, but got a scalar. Pass at least a 1-D array.")
    ax = check_axis(axis, x.ndim)
    check_vocabulary(x.shape[ax], "student_logits")
    check_out(out, x, return_grad, whose="student", name="student_logits")
    batch_shape = x.shape[:ax] + x.shape[ax + 1:]
    return x, ax, batch_shape


def _rows(a: np.ndarray, axis: int, cdt: np.dtype) -> np.ndarray:
    return np.moveaxis(a, axis, -1).reshape(-1, a.shape[axis]).astype(cdt, copy=False)


def _run(rows, x, ax, batch_shape, target, ignore_index, reduction, cdt, return_grad, out, *operands):
    """Run ``rows`` (``rules.divergence.dense_rows`` or ``sparse_rows``) on the student's rows; reduce."""
    kept = kept_tokens(NUMPY, None if target is None else np.asarray(target), batch_shape, ignore_index)
    zs = _rows(x, ax, cdt)
    scale = reduction_scale(NUMPY, reduction, kept_total(NUMPY, kept, zs))
    values, grad_rows = rows(NUMPY, zs, *operands, kept, scale.astype(cdt), with_grad=return_grad)
    loss = reduced(values.reshape(batch_shape), reduction, scale, cdt)
    if not return_grad:
        return loss
    grad = np.moveaxis(grad_rows.reshape(batch_shape + (x.shape[ax],)), -1, ax)
    if out is None:
        return loss, grad.astype(x.dtype)
    np.copyto(out, grad, casting="unsafe")
    return loss, out


# --------------------------------------------------------------------------------------------- public
def distillation_loss(student_logits, teacher_logits, target=None, *, divergence: str = "forward_kl",
                      beta: float = 0.5, temperature: float = 1.0, ignore_index: int = IGNORE_INDEX,
                      reduction: str = "mean", axis: int = -1, return_grad: bool = False, out=None):
    """Distillation divergence between ``softmax(student / tau)`` and ``softmax(teacher / tau)``, times ``tau**2``.

    See the module docstring for the three divergences and their gradients. ``target`` (integer, the batch shape)
    only marks ignored tokens: rows where it equals ``ignore_index`` are excluded and "mean" is over the others.
    ``return_grad=True`` returns ``(loss, grad)``, the gradient of the returned loss's sum with respect to
    ``student_logits`` (the teacher gets none), in the student's dtype; ``out=`` receives it in place.

    >>> s, t = np.array([[0.0, 0.0]]), np.array([[0.0, np.log(3.0)]])
    >>> round(float(distillation_loss(s, t)), 6)  # KL([1/4, 3/4] || [1/2, 1/2])
    0.130812
    >>> loss, grad = distillation_loss(s, t, return_grad=True)
    >>> grad.tolist()  # S - T
    [[0.25, -0.25]]
    >>> float(distillation_loss(s, s, divergence="jsd"))
    0.0
    """
    options = DistillationOptions.of(divergence=divergence, beta=beta, temperature=temperature,
                                     ignore_index=ignore_index, reduction=reduction)
    reduction = options.reduction
    x, ax, batch_shape = _student_rows(student_logits, axis, out, return_grad)
    y = float_array(teacher_logits, "teacher_logits")
    if y.shape != x.shape:
        what = "vocabulary (class axis) sizes differ" if y.ndim == x.ndim else "shapes differ"
        raise InputValueError(f"teacher_logits must have the student's shape {x.shape}, but got {y.shape}: the "
                              f"{what}. Both models must score the same vocabulary, in the same layout.")
    cdt = compute_dtype(np.result_type(x.dtype, y.dtype))
    return _run(dense_rows, x, ax, batch_shape, target, options.ignore_index, reduction, cdt, return_grad, out,
                _rows(y, ax, cdt), options)


def sparse_distillation_loss(student_logits, teacher_indices, teacher_logprobs, target=None, *,
                             divergence: str = "forward_kl", beta: float = 0.5, temperature: float = 1.0,
                             ignore_index: int = IGNORE_INDEX, reduction: str = "mean", axis: int = -1,
                             return_grad: bool = False, out=None):
    """``distillation_loss`` against an offline teacher's top-k: ``teacher_indices`` (integer, batch shape + (k,))
    and ``teacher_logprobs`` (the same shape), the teacher's ``log T`` at those classes.

    **Decision:** ``teacher_logprobs`` are the log-probs of ``T`` itself, i.e. at the distillation temperature
    (``log_softmax(teacher / temperature)``): a tempered distribution cannot be recovered from a top-k at another one.
    ``tau`` divides only the student's logits (and scales the loss by ``tau**2``). The divergence is taken
    over k + 1 bins: the k classes, and a tail bin holding ``1 - sum_k T`` for the teacher and the student's mass
    outside the k classes, ``log S_tail = logsumexp(z_rest / tau) - logsumexp(z / tau)``. With k = V the tail is
    empty and the loss equals ``distillation_loss``. The gradient of a tail class ``c`` is the tail bin's, times
    ``S_c / S_tail``.

    >>> z, idx = np.zeros((1, 4)), np.array([[0]])
    >>> round(float(sparse_distillation_loss(z, idx, np.log([[0.5]]))), 6)  # KL([1/2, 1/2] || [1/4, 3/4])
    0.143841
    """
    options = DistillationOptions.of(divergence=divergence, beta=beta, temperature=temperature,
                                     ignore_index=ignore_index, reduction=reduction)
    reduction = options.reduction
    x, ax, batch_shape = _student_rows(student_logits, axis, out, return_grad)
    idx = np.asarray(teacher_indices)
    if idx.dtype.kind not in "iu":
        raise InputTypeError(f"teacher_indices must hold integer class indices, but got dtype {idx.dtype}.")
    lp = float_array(teacher_logprobs, "teacher_logprobs")
    vocab = x.shape[ax]
    check_sparse_teacher(NUMPY, idx, lp, vocab, batch_shape)
    cdt = compute_dtype(np.result_type(x.dtype, lp.dtype))
    k = idx.shape[-1]
    return _run(sparse_rows, x, ax, batch_shape, target, options.ignore_index, reduction, cdt, return_grad, out,
                idx.reshape(-1, k).astype(np.int64), lp.reshape(-1, k).astype(cdt), options)
