"""Knowledge-distillation losses between a student's and a teacher's logits, with the student's analytic gradient.

With ``S = softmax(student / tau)`` and ``T = softmax(teacher / tau)`` along ``axis`` (docs/semantics.md)::

    "forward_kl"  tau**2 * KL(T || S)     = tau**2 * sum_c T_c (log T_c - log S_c)
    "reverse_kl"  tau**2 * KL(S || T)     = tau**2 * sum_c S_c (log S_c - log T_c)
    "jsd"         tau**2 * (beta KL(T || M) + (1 - beta) KL(S || M)),   M = beta T + (1 - beta) S,  0 < beta < 1

and the gradient with respect to the student's logits ``z`` (``G_c`` the derivative of the divergence by ``S_c``)
is ``tau * S_c (G_c - sum_j S_j G_j)``: ``tau (S - T)`` for forward KL, ``tau S (f - KL)`` with ``f = log S - log T``
for reverse KL, and ``tau S (g - sum_j S_j g_j)`` with ``g = (1 - beta)(log S - log M)`` for JSD. Everything runs in
log space (``log_softmax``, ``logaddexp``; never ``log(softmax)``), float16 in float32, with ``0 log 0 = 0``: a class
the teacher gives no mass costs nothing in forward KL, whatever the student's logit (``-inf`` included).

Tokens whose ``target`` equals ``ignore_index`` give 0 and no gradient; ``"mean"`` is over the kept tokens (0 with a
zero gradient when none is kept). Per-token values are clipped below at 0 (rounding can leave -1 ulp).

``sparse_distillation_loss`` takes an offline teacher's top-k log-probs: the divergence is taken over k + 1 bins,
the k classes and one tail bin holding the rest of each distribution's mass.
"""

from __future__ import annotations

import numpy as np

from ..rules.errors import InputTypeError, InputValueError
from ..rules.options import check_reduction
from ..rules.reduction import reduction_scale
from ..rules.xp import NUMPY
from ._inputs import check_axis, compute_dtype, float_array
from ._outputs import reduced
from .stable import log_softmax, logsumexp

DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")


# --------------------------------------------------------------------------------------------- validation
def check_divergence(divergence, beta, temperature) -> tuple[str, float, float]:
    """Validate the three distillation options; return them as ``(divergence, beta, temperature)``."""
    if divergence not in DIVERGENCES:
        raise InputValueError(f"divergence must be one of 'forward_kl', 'reverse_kl' or 'jsd', but got "
                              f"{divergence!r}.")
    for name, value in (("beta", beta), ("temperature", temperature)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InputTypeError(f"{name} must be a real number, but got {type(value).__name__}.")
    if not 0.0 < float(beta) < 1.0:
        raise InputValueError(f"beta must be in the open interval (0, 1), but got {beta}. It weighs the teacher in "
                              f"the JSD mixture M = beta T + (1 - beta) S; use e.g. beta=0.5.")
    if not (np.isfinite(float(temperature)) and float(temperature) > 0):
        raise InputValueError(f"temperature must be a positive finite number, but got {temperature}. Use 1.0 for "
                              f"no softening, or e.g. 2.0.")
    return divergence, float(beta), float(temperature)


def _kept_rows(target, batch_shape: tuple, ignore_index) -> np.ndarray | None:
    """A boolean mask of the kept rows (flattened batch), or None when ``target`` is None."""
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise InputTypeError(f"ignore_index must be an int, but got {type(ignore_index).__name__}.")
    if target is None:
        return None
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise InputTypeError(f"target must hold integer labels (it only marks ignored tokens), but got dtype "
                             f"{t.dtype}. Pass None to keep every token.")
    if t.shape != tuple(batch_shape):
        raise InputValueError(f"target must have the student's shape without the class axis, {tuple(batch_shape)}, "
                              f"but got shape {t.shape}.")
    return (t != ignore_index).reshape(-1)


# --------------------------------------------------------------------------------------------- kernel
def divergence_rows(ls: np.ndarray, lt: np.ndarray, divergence: str, beta: float, with_grad: bool):
    """Per-row divergence of ``(log S, log T)`` rows (bins on the last axis) and, with ``with_grad``, its gradient
    with respect to logits whose log-softmax is ``ls``: ``S (G - sum S G)``. Returns ``(values, grad or None)``."""
    s = np.exp(ls)
    with np.errstate(invalid="ignore"):
        if divergence == "forward_kl":
            t = np.exp(lt)
            values = np.where(t == 0, 0.0, t * (lt - ls)).sum(-1)
            grad = s - t if with_grad else None
        elif divergence == "reverse_kl":
            f = ls - lt
            values = np.where(s == 0, 0.0, s * f).sum(-1)
            grad = np.where(s == 0, 0.0, s * (f - values[:, None])) if with_grad else None
        else:
            t = np.exp(lt)
            with np.errstate(divide="ignore"):
                lm = np.logaddexp(np.log(beta) + lt, np.log1p(-beta) + ls)
            s_term = np.where(s == 0, 0.0, s * (ls - lm))
            values = beta * np.where(t == 0, 0.0, t * (lt - lm)).sum(-1) + (1 - beta) * s_term.sum(-1)
            grad = None
            if with_grad:
                g = (1 - beta) * s_term
                grad = g - s * g.sum(-1, keepdims=True)
    return np.maximum(values, 0.0), grad  # maximum propagates NaN


def _finish(values: np.ndarray, grad_rows, kept, batch_shape, reduction: str, cdt: np.dtype, tau: float):
    """Scale by tau**2, drop ignored rows, reduce; scale the gradient rows to d(reduced)/d(student logits)."""
    values = values * tau**2
    if kept is not None:
        values = np.where(kept, values, 0.0)
    o_total = float(values.size if kept is None else np.count_nonzero(kept))
    reduce_scale = float(reduction_scale(NUMPY, reduction, o_total))
    loss = reduced(values.reshape(batch_shape), reduction, reduce_scale, cdt)
    if grad_rows is None:
        return loss, None
    scale = tau * reduce_scale
    grad_rows *= scale
    if kept is not None:
        grad_rows[~kept] = 0.0
    return loss, grad_rows


def _gradient_out(grad_rows: np.ndarray, x: np.ndarray, axis: int, out):
    """The gradient rows back in the student's layout and dtype, written into ``out`` when given."""
    moved = grad_rows.reshape(x.shape[:axis] + x.shape[axis + 1:] + (x.shape[axis],))
    grad = np.moveaxis(moved, -1, axis)
    if out is None:
        return grad.astype(x.dtype)
    np.copyto(out, grad, casting="unsafe")
    return out


def _check_out(out, x: np.ndarray, return_grad: bool) -> None:
    if out is None:
        return
    if not return_grad:
        raise InputValueError("out= receives the gradient, so it needs return_grad=True. Pass return_grad=True, or "
                              "drop out=.")
    if not isinstance(out, np.ndarray):
        raise InputTypeError(f"out must be a NumPy array, but got {type(out).__name__}.")
    if out.shape != x.shape or out.dtype != x.dtype or not out.flags.writeable:
        raise InputValueError(f"out must be a writeable array of the student's shape {x.shape} and dtype {x.dtype}, "
                              f"but got shape {out.shape} and dtype {out.dtype}. Allocate it with "
                              f"np.empty_like(student_logits).")


def _student_rows(student_logits, axis, out, return_grad):
    x = float_array(student_logits, "student_logits")
    if x.ndim == 0:
        raise InputValueError("student_logits must have a class axis, but got a scalar. Pass at least a 1-D array.")
    ax = check_axis(axis, x.ndim)
    _check_out(out, x, return_grad)
    batch_shape = x.shape[:ax] + x.shape[ax + 1:]
    return x, ax, batch_shape


def _rows(a: np.ndarray, axis: int, cdt: np.dtype) -> np.ndarray:
    return np.moveaxis(a, axis, -1).reshape(-1, a.shape[axis]).astype(cdt, copy=False)


# --------------------------------------------------------------------------------------------- public
def distillation_loss(student_logits, teacher_logits, target=None, *, divergence: str = "forward_kl",
                      beta: float = 0.5, temperature: float = 1.0, ignore_index: int = -100,
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
    divergence, beta, tau = check_divergence(divergence, beta, temperature)
    reduction = check_reduction(reduction)
    x, ax, batch_shape = _student_rows(student_logits, axis, out, return_grad)
    y = float_array(teacher_logits, "teacher_logits")
    if y.shape != x.shape:
        what = "vocabulary (class axis) sizes differ" if y.ndim == x.ndim else "shapes differ"
        raise InputValueError(f"teacher_logits must have the student's shape {x.shape}, but got {y.shape}: the "
                              f"{what}. Both models must score the same vocabulary, in the same layout.")
    kept = _kept_rows(target, batch_shape, ignore_index)
    cdt = compute_dtype(np.result_type(x.dtype, y.dtype))
    ls = log_softmax(_rows(x, ax, cdt) / cdt.type(tau))
    lt = log_softmax(_rows(y, ax, cdt) / cdt.type(tau))
    values, grad_rows = divergence_rows(ls, lt, divergence, beta, return_grad)
    loss, grad_rows = _finish(values, grad_rows, kept, batch_shape, reduction, cdt, tau)
    return (loss, _gradient_out(grad_rows, x, ax, out)) if return_grad else loss


def tail_log_mass(teacher_logprobs: np.ndarray) -> np.ndarray:
    """``log(1 - sum(exp(logprobs)))`` over the last axis, the log of the mass outside the given classes (0 when
    it rounds below 0)."""
    lse = logsumexp(teacher_logprobs, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # log1mexp: accurate on both sides of log 2 (Maechler 2012)
        tail = np.where(lse > -np.log(2), np.log(-np.expm1(lse)), np.log1p(-np.exp(lse)))
    return np.where(lse >= 0, -np.inf, tail)


def check_sparse_teacher(indices: np.ndarray, logprobs: np.ndarray, vocab: int, batch_shape: tuple) -> None:
    """Top-k teacher checks: the shapes agree, indices in range and distinct per row, log-probs <= 0 summing to
    at most 1 (within sqrt(eps) of their dtype)."""
    if indices.shape != logprobs.shape or indices.shape[:-1] != tuple(batch_shape):
        raise InputValueError(f"teacher_indices and teacher_logprobs must both have shape {tuple(batch_shape)} + "
                              f"(k,), the student's batch shape and k top classes, but got {indices.shape} and "
                              f"{logprobs.shape}.")
    k = indices.shape[-1]
    if not 1 <= k <= vocab:
        raise InputValueError(f"teacher_indices must hold between 1 and {vocab} (the student's vocabulary) classes "
                              f"per token, but got k={k}. The vocabularies must match.")
    if indices.size and (indices.min() < 0 or indices.max() >= vocab):
        raise InputValueError(f"teacher_indices must be classes in [0, {vocab - 1}] of the student's vocabulary, "
                              f"but they range from {indices.min()} to {indices.max()}. The vocabularies must "
                              f"match.")
    if k > 1 and (np.diff(np.sort(indices, axis=-1), axis=-1) == 0).any():
        raise InputValueError("teacher_indices has a repeated class within a token; each token's k indices must be "
                              "distinct (take them from a top-k).")
    if (logprobs > 0).any():
        raise InputValueError(f"teacher_logprobs must be log-probabilities (<= 0), but the largest is "
                              f"{logprobs.max()}. Pass log_softmax values, not logits.")
    excess = logsumexp(logprobs, axis=-1) if logprobs.size else np.zeros(0)
    tol = float(np.sqrt(np.finfo(logprobs.dtype).eps))
    if (excess > tol).any():
        raise InputValueError(f"teacher_logprobs of a token must sum (as probabilities) to at most 1, but one sums "
                              f"to {float(np.exp(excess.max())):.8g}. Pass log_softmax values of the teacher.")


def sparse_distillation_loss(student_logits, teacher_indices, teacher_logprobs, target=None, *,
                             divergence: str = "forward_kl", beta: float = 0.5, temperature: float = 1.0,
                             ignore_index: int = -100, reduction: str = "mean", axis: int = -1,
                             return_grad: bool = False, out=None):
    """``distillation_loss`` against an offline teacher's top-k: ``teacher_indices`` (integer, batch shape + (k,))
    and ``teacher_logprobs`` (the same shape), the teacher's ``log T`` at those classes.

    **Decision:** ``teacher_logprobs`` are the log-probs of ``T`` itself, i.e. at the distillation temperature
    (``log_softmax(teacher / tau)``): a tempered distribution cannot be recovered from a top-k at another one.
    ``temperature`` divides only the student's logits (and scales the loss by ``tau**2``). The divergence is taken
    over k + 1 bins: the k classes, and a tail bin holding ``1 - sum_k T`` for the teacher and the student's mass
    outside the k classes, ``log S_tail = logsumexp(z_rest / tau) - logsumexp(z / tau)``. With k = V the tail is
    empty and the loss equals ``distillation_loss``. The gradient of a tail class ``c`` is the tail bin's, times
    ``S_c / S_tail``.

    >>> z, idx = np.zeros((1, 4)), np.array([[0]])
    >>> round(float(sparse_distillation_loss(z, idx, np.log([[0.5]]))), 6)  # KL([1/2, 1/2] || [1/4, 3/4])
    0.143841
    """
    divergence, beta, tau = check_divergence(divergence, beta, temperature)
    reduction = check_reduction(reduction)
    x, ax, batch_shape = _student_rows(student_logits, axis, out, return_grad)
    idx = np.asarray(teacher_indices)
    if idx.dtype.kind not in "iu":
        raise InputTypeError(f"teacher_indices must hold integer class indices, but got dtype {idx.dtype}.")
    lp = float_array(teacher_logprobs, "teacher_logprobs")
    vocab = x.shape[ax]
    check_sparse_teacher(idx, lp, vocab, batch_shape)
    kept = _kept_rows(target, batch_shape, ignore_index)
    cdt = compute_dtype(np.result_type(x.dtype, lp.dtype))
    k = idx.shape[-1]
    idx_rows = idx.reshape(-1, k).astype(np.int64)
    lp_rows = lp.reshape(-1, k).astype(cdt)
    ls_full = log_softmax(_rows(x, ax, cdt) / cdt.type(tau))
    rest = ls_full.copy()
    np.put_along_axis(rest, idx_rows, -np.inf, axis=-1)
    ls_tail = logsumexp(rest, axis=-1)
    ls = np.concatenate([np.take_along_axis(ls_full, idx_rows, axis=-1), ls_tail[:, None]], axis=-1)
    # with k = V the tail is empty: what rounding leaves of 1 - sum T is not mass
    lt_tail = np.full(lp_rows.shape[0], -np.inf, cdt) if k == vocab else tail_log_mass(lp_rows)
    lt = np.concatenate([lp_rows, lt_tail[:, None]], axis=-1)
    values, bins = divergence_rows(ls, lt, divergence, beta, return_grad)
    grad_rows = None
    if return_grad:
        with np.errstate(invalid="ignore"):
            share = np.where(np.isneginf(rest), 0.0, np.exp(rest - ls_tail[:, None]))
        grad_rows = bins[:, -1:] * share  # tail classes: the tail bin's gradient, shared as S_c / S_tail
        np.put_along_axis(grad_rows, idx_rows, bins[:, :-1], axis=-1)
    loss, grad_rows = _finish(values, grad_rows, kept, batch_shape, reduction, cdt, tau)
    return (loss, _gradient_out(grad_rows, x, ax, out)) if return_grad else loss
