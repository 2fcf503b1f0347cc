"""Classification losses, each with its analytic gradient next to its forward computation.

Softmax family (a class axis, index or probability targets; docs/semantics.md):
``softmax_cross_entropy`` (logits), ``categorical_cross_entropy`` (probabilities), ``softmax_focal_loss`` (logits).
Element-wise family (binary and multi-label; semantics 5): ``binary_cross_entropy_with_logits``,
``binary_cross_entropy``, ``sigmoid_focal_loss``, and the GAN losses built from them.

``return_grad=True`` returns ``(loss, grad)``, where ``grad`` is the gradient of ``sum(loss)`` with respect to
the first argument, in its shape and dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constants import IGNORE_INDEX
from ..kernels import compiled
from ..rules.elementwise import bce_with_logits, bce_with_probs, sigmoid_focal
from ..rules.errors import InputValueError
from ..rules.options import (
    FocalOptions,
    SoftmaxOptions,
    check_eps,
    check_gamma,
    check_index_stats,
    check_label_smoothing,
    check_nonnegative,
    check_reduction,
    check_total_weight,
    check_unit_interval,
    check_weights_fit,
)
from ..rules.reduction import reduction_scale
from ..rules.rows import RowResult, TokenStats
from ..rules.targets import Coefficients, coefficients, smooth
from ..rules.xp import NUMPY
from ._inputs import (
    check_axis,
    check_weights,
    class_targets,
    compute_dtype,
    float_array,
    same_shape,
    warn_if_not_normalized,
)
from ._kernels import categorical_block, focal_block, softmax_xent_block
from ._outputs import check_out, elementwise, reduced
from .dispatch import softmax_kernel
from .threads import plan, run_rows


# --------------------------------------------------------------------------------------------- shared set-up
@dataclass
class _Rows:
    x: np.ndarray  # the validated first argument, in its own layout
    axis: int
    rows: np.ndarray  # (n, K) view or copy with the class axis last
    coef: Coefficients
    batch_shape: tuple
    options: SoftmaxOptions | FocalOptions
    total_weight: float | None

    @property
    def compute_dtype(self) -> np.dtype:
        return compute_dtype(self.x.dtype)


def _class_axis_last(a: np.ndarray, axis: int) -> np.ndarray:
    return a if axis == a.ndim - 1 else np.moveaxis(a, axis, -1)


def _class_axis_back(a: np.ndarray, axis: int) -> np.ndarray:
    return a if axis == a.ndim - 1 else np.moveaxis(a, -1, axis)


def _as_rows(a: np.ndarray, axis: int) -> np.ndarray:
    moved = _class_axis_last(a, axis)
    return moved.reshape(-1, moved.shape[-1])


def _setup_rows(first, name: str, target, axis, class_weight, sample_weight, options, total_weight=None,
                weight_name: str = "class_weight") -> _Rows:
    """Validate a softmax-family call once (``options`` is already checked) and express its targets and weights
    as the rules' coefficients."""
    x = float_array(first, name)
    if x.ndim == 0:
        raise InputValueError(f"{name} must have a class axis, but got a scalar. Pass an array of shape (N, K).")
    ax = check_axis(axis, x.ndim)
    k = x.shape[ax]
    if k == 0:
        raise InputValueError(f"{name} has 0 classes along axis {ax}; at least one class is needed.")
    total_weight = check_total_weight(NUMPY, total_weight, options.reduction)
    kind, t = class_targets(target, x.shape, ax, options.ignore_index)
    batch = x.shape[:ax] + x.shape[ax + 1:]
    w = check_weights(class_weight, weight_name, (k,))
    s = check_weights(sample_weight, "sample_weight", batch, broadcast=True)
    s = None if s is None else np.ascontiguousarray(np.broadcast_to(s, batch)).reshape(-1)
    normalize = options.normalize(total_weight)
    with np.errstate(over="ignore"):  # weights whose product overflows are refused just below
        coef = coefficients(NUMPY, t.reshape(-1) if kind == "index" else _as_rows(t, ax), k, options, w=w, s=s,
                            dtype=np.float64, normalize=normalize)
    if not normalize:
        cdt = compute_dtype(x.dtype)
        check_weights_fit(NUMPY, coef.o, float(np.finfo(cdt).max), cdt.name)
    return _Rows(x=x, axis=ax, rows=_as_rows(x, ax), coef=coef, batch_shape=batch, options=options,
                 total_weight=total_weight)


class _Gradient:
    """Where a softmax-family gradient goes: ``out`` (possibly the input itself) or a fresh array."""

    def __init__(self, rows: _Rows, out, return_grad: bool):
        self.rows_view = None
        self.out = out
        check_out(out, rows.x, return_grad)
        if not return_grad:
            return
        x = rows.x
        if out is not None:
            moved = _class_axis_last(out, rows.axis)
            self.moved = moved
            self.rows_view = moved.reshape(rows.rows.shape) if moved.flags.c_contiguous else None
        self.array = self.rows_view if self.rows_view is not None else np.empty(rows.rows.shape, x.dtype)
        self.axis = rows.axis
        self.moved_shape = rows.batch_shape + (x.shape[rows.axis],)

    def result(self) -> np.ndarray:
        if self.out is None:
            return _class_axis_back(self.array.reshape(self.moved_shape), self.axis)
        if self.rows_view is None:
            self.moved[...] = self.array.reshape(self.moved_shape)
        return self.out


def _stats_arrays(n: int, index: bool) -> RowResult:
    """Empty ``(n,)`` statistics (``lse, entropy, p_target, predicted``) in float64 / int64."""
    check_index_stats(index)
    return RowResult(None, np.empty(n), entropy=np.empty(n), p_target=np.empty(n),
                     predicted=np.empty(n, dtype=np.int64))


def _compiled_rows(r: _Rows, losses: np.ndarray, g, scale: float, stats: RowResult | None) -> None:
    """Every row on the compiled kernel: losses, the gradient into ``g`` and the statistics into ``stats``."""
    z = compiled.kernel_rows(r.rows)
    kw = compiled.coefficient_arrays(r.coef)
    if stats is not None:
        logit = compiled.target_logit(NUMPY, z, r.coef, r.options.softcap)  # before the gradient may overwrite z
        kw.update(lse=stats.lse, entropy=stats.entropy, p_target=stats.p_target, argmax=stats.predicted)
    compiled.softmax_rows(z, **kw, z_loss=r.options.z_loss, softcap=r.options.softcap, loss=losses, grad=g,
                          scale=scale)
    if stats is not None:
        with np.errstate(invalid="ignore"):  # exp(inf - inf) where the limit rule share replaces it
            stats.p_target[:] = compiled.unweighted_p_target(NUMPY, stats.p_target, logit, stats.lse, r.coef)


def _with_stats(r: _Rows, result, stats: RowResult | None):
    """``result`` and, with ``stats``, the ``TokenStats`` in the batch shape (floats in the compute dtype)."""
    if stats is None:
        return result
    cdt, shape = r.compute_dtype, r.batch_shape
    keep = r.coef.keep
    token = TokenStats(stats.lse.astype(cdt), stats.entropy.astype(cdt), np.where(keep, stats.p_target, 0).astype(cdt),
                       stats.predicted, (stats.predicted == r.coef.y) & keep).reshape(shape)
    return (*result, token) if isinstance(result, tuple) else (result, token)


def _run_softmax_family(r: _Rows, out, return_grad: bool, block, *, kernel: str = "reference") -> tuple:
    """Run ``block(r0, r1, scale, grad_rows, buffer, stats) -> per-row loss`` over row blocks and reduce; with
    ``kernel == "compiled"`` (softmax cross-entropy, chosen by ``dispatch.softmax_kernel``) all rows run on the
    compiled kernel instead. ``options.return_stats`` adds the ``TokenStats`` last."""
    grad = _Gradient(r, out, return_grad)
    scale = float(reduction_scale(NUMPY, r.options.reduction, NUMPY.total(r.coef.o), r.total_weight))
    n, k = r.rows.shape
    cdt = r.compute_dtype
    g = grad.array if return_grad else None
    stats = _stats_arrays(n, r.coef.index) if getattr(r.options, "return_stats", False) else None
    if kernel == "compiled":
        losses = np.empty(n)
        _compiled_rows(r, losses, g, scale, stats)
    else:
        def body(r0: int, r1: int, buf: np.ndarray) -> np.ndarray:
            # In the thread that runs the block: a weighted loss or gradient beyond the float range (a weight
            # of 1e308, a float16 gradient) rounds to +-inf, as any float operation does, and a weight that
            # underflows the compute dtype meets an infinite term as 0 * inf. No warning for either: the contract
            # is on the values (no NaN from input without NaN, tests/fuzz), which the fuzz suite checks.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                return block(r0, r1, scale, g, buf, stats)

        block_rows, threads = plan(n, k, cdt.itemsize)
        losses = run_rows(n, block_rows, threads, body, lambda: np.empty((min(block_rows, n), k), cdt))
    with np.errstate(over="ignore", invalid="ignore"):
        loss = reduced(losses.reshape(r.batch_shape), r.options.reduction, scale, cdt)
    return _with_stats(r, (loss, grad.result()) if return_grad else loss, stats)


# --------------------------------------------------------------------------------------------- softmax family
def softmax_cross_entropy(logits, target, *, axis: int = -1, class_weight=None, sample_weight=None,
                          ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0, reduction: str = "mean",
                          total_weight=None, z_loss: float = 0.0, softcap: float | None = None,
                          return_stats: bool = False, return_grad: bool = False, out=None, impl: str = "auto"):
    """Cross-entropy of softmax(logits) against class indices or probabilities.

    With ``t'_i = (1 - e) t_i + e / K`` (``t_i`` one-hot for index targets), class weights ``w`` and sample weights
    ``s``::

        l_i = s_i * sum_c w_c t'_ic * (logsumexp(z_i) - z_ic)        o_i = s_i * sum_c w_c t'_ic
        "mean" = sum_i l_i / W  (0 if W == 0),  "sum" = sum_i l_i,  "none" = l_i
        d l_i / d z_i = o_i * softmax(z_i) - s_i * w * t'_i

    plus ``z_loss * o_i * logsumexp(z_i)**2`` per row, on ``softcap * tanh(z / softcap)`` when ``softcap`` is set
    (as ``crossentropy.torch.cross_entropy``).
    ``W`` is ``sum_i o_i``, or ``total_weight`` when given: the weight of the whole batch across micro-batches
    (``crossentropy.total_weight``), so that summing micro-batch gradients gives the global mean's gradient.

    ``target`` holds integer class indices (the shape of ``logits`` without ``axis``; ``ignore_index`` entries
    give 0 loss and 0 weight) or probabilities (the shape of ``logits``). ``out=`` receives the gradient in place
    and may be ``logits`` itself. ``return_stats=True`` (index targets) appends a ``TokenStats(lse, entropy,
    p_target, predicted, correct)`` of the batch shape to what is returned, as ``crossentropy.torch.cross_entropy``.
    ``impl`` picks the kernel: "auto" (the compiled kernel, ``kernels/compiled.py``, where it is built, else the
    blocked multi-threaded NumPy path of the rules), "compiled", "reference" or "triton" (not for NumPy input);
    both follow the same rules (docs/design.md).

    >>> x = np.array([[2.3, 2.1, 4.5], [4.2, 3.2, 5.1]])
    >>> round(float(softmax_cross_entropy(x, np.array([1, 2]), class_weight=[25, 25, 100])), 6)
    0.870484
    >>> loss, grad = softmax_cross_entropy([[0.0, 0.0]], np.array([0]), return_grad=True)
    >>> float(loss), grad.tolist()
    (0.6931471805599453, [[-0.5, 0.5]])
    """
    options = SoftmaxOptions.of(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index,
                                z_loss=z_loss, softcap=softcap, return_stats=return_stats, impl=impl)
    r = _setup_rows(logits, "logits", target, axis, class_weight, sample_weight, options, total_weight)
    return _run_softmax_family(
        r, out, return_grad,
        lambda r0, r1, scale, g, buf, stats: softmax_xent_block(r.rows, r0, r1, r.coef, scale, g, buf,
                                                                options=options, stats=stats),
        kernel=softmax_kernel(options, r.rows))


def categorical_cross_entropy(probs, target, *, axis: int = -1, class_weight=None, sample_weight=None,
                              ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0, reduction: str = "mean",
                              eps: float | None = None, total_weight=None, return_grad: bool = False, out=None,
                              impl: str = "auto"):
    """Cross-entropy of predicted probabilities ``P`` against class indices or probabilities.

    The same semantics as ``softmax_cross_entropy`` with ``-log P_ic`` in place of ``logsumexp(z_i) - z_ic``::

        l_i = s_i * sum_c w_c t'_ic * (-log P_ic)          d l_i / d P_ic = -s_i w_c t'_ic / P_ic

    Probabilities are used as given: a zero on a target class gives ``+inf``. ``eps`` clips ``P`` to
    ``[eps, 1 - eps]`` first (off by default; the gradient is then that of the clipped function). Values outside
    [0, 1] raise ValueError; rows that do not sum to 1 give a UserWarning, as in scikit-learn.

    >>> round(float(categorical_cross_entropy([[0.775, 0.116, 0.039, 0.070]], np.array([0]))), 6)
    0.254892
    """
    options = SoftmaxOptions.of(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index,
                                impl=impl)
    r = _setup_rows(probs, "probs", target, axis, class_weight, sample_weight, options, total_weight)
    softmax_kernel(options, r.rows, has_compiled=False)  # "reference" runs it (the others raise)
    check_unit_interval(NUMPY, r.x, "probs", "Pass probabilities, or use softmax_cross_entropy for logits.")
    warn_if_not_normalized(r.x, "probs", r.axis)
    eps = check_eps(eps)
    return _run_softmax_family(
        r, out, return_grad,
        lambda r0, r1, scale, g, buf, _: categorical_block(r.rows, r0, r1, r.coef, scale, g, buf, eps=eps))



def softmax_focal_loss(logits, target, *, gamma: float = 2.0, alpha=None, axis: int = -1, sample_weight=None,
                       ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0, reduction: str = "mean",
                       total_weight=None, return_grad: bool = False, out=None, impl: str = "auto"):
    """Focal loss (Lin et al., 2017) on softmax probabilities, in log space.

    ``alpha`` (None, a float, or one weight per class) plays the role of ``class_weight`` in
    ``softmax_cross_entropy``, including the "mean" denominator. With ``p = softmax(z)``, ``q = 1 - p``::

        l_i = s_i * sum_c alpha_c t'_ic * q_ic**gamma * (-log p_ic)
        d l_i / d z_ij = A_ij G_ij - p_ij sum_c A_ic G_ic,   A = s alpha t',  G = q**gamma (gamma p log(p) / q - 1)

    ``q = -expm1(log p)`` and ``log(p) / q -> -1`` as ``q -> 0``, so the gradient is finite at saturation for every
    ``gamma >= 0``. ``gamma=0`` is exactly ``softmax_cross_entropy`` with ``class_weight=alpha``.

    >>> z, y = np.array([[3.0, 0.0, 0.0]]), np.array([0])
    >>> round(float(softmax_focal_loss(z, y, gamma=0.0)), 6) == round(float(softmax_cross_entropy(z, y)), 6)
    True
    """
    options = FocalOptions.of(gamma=gamma, reduction=reduction, label_smoothing=label_smoothing,
                              ignore_index=ignore_index, impl=impl)
    x = float_array(logits, "logits")
    if alpha is not None and np.ndim(alpha) == 0 and x.ndim:
        alpha = np.full(x.shape[check_axis(axis, x.ndim)], check_nonnegative(alpha, "alpha"))
    r = _setup_rows(x, "logits", target, axis, alpha, sample_weight, options, total_weight, weight_name="alpha")
    softmax_kernel(options, r.rows, has_compiled=False)  # "reference" runs it (the others raise)
    return _run_softmax_family(
        r, out, return_grad,
        lambda r0, r1, scale, g, buf, _: focal_block(r.rows, r0, r1, r.coef, scale, g, buf, gamma=options.gamma))



# --------------------------------------------------------------------------------------------- element-wise family
def _setup_elementwise(first, name: str, target, sample_weight, label_smoothing, reduction):
    x = float_array(first, name)
    reduction = check_reduction(reduction)
    label_smoothing = check_label_smoothing(label_smoothing)
    t = float_array(target, "target")
    same_shape(x, t, name, "target")
    check_unit_interval(NUMPY, t, "target", "Binary targets are 0/1 labels or probabilities.")
    cdt = compute_dtype(x.dtype)
    t = smooth(t.astype(cdt, copy=False), label_smoothing, 2)
    o = check_weights(sample_weight, "sample_weight", x.shape, broadcast=True)
    return x, t, o, reduction, cdt


def _elementwise_weight(w, name: str, shape: tuple, cdt) -> np.ndarray | None:
    a = check_weights(w, name, shape, broadcast=True)
    return None if a is None else a.astype(cdt)


def binary_cross_entropy_with_logits(logits, target, *, pos_weight=None, sample_weight=None,
                                     label_smoothing: float = 0.0, reduction: str = "mean",
                                     return_grad: bool = False):
    """Binary / multi-label cross-entropy from logits, element-wise, with soft targets allowed::

        l = pos_weight * t' * softplus(-x) + (1 - t') * softplus(x)      t' = (1 - e) t + e / 2
        d l / d x = (1 - t') * sigmoid(x) - pos_weight * t' * sigmoid(-x)

    ``sample_weight`` broadcasts to the element shape; "mean" is ``sum(s * l) / sum(s)`` (the plain mean when
    there are no weights, 0 for an empty input). ``pos_weight`` is part of ``l``, as in PyTorch.

    >>> round(float(binary_cross_entropy_with_logits([0.0, 2.0], [1.0, 0.0])), 6)
    1.410038
    """
    x, t, o, reduction, cdt = _setup_elementwise(logits, "logits", target, sample_weight, label_smoothing,
                                                 reduction)
    pw = _elementwise_weight(pos_weight, "pos_weight", x.shape, cdt)
    loss, grad = bce_with_logits(NUMPY, x.astype(cdt, copy=False), t, pw, grad=return_grad)
    return elementwise(loss, grad, o, reduction, x.dtype)


def binary_cross_entropy(probs, target, *, pos_weight=None, sample_weight=None, label_smoothing: float = 0.0,
                         reduction: str = "mean", eps: float | None = None, return_grad: bool = False):
    """Binary / multi-label cross-entropy from probabilities ``p``, element-wise::

        l = -(pos_weight * t' * log(p) + (1 - t') * log(1 - p))
        d l / d p = -pos_weight * t' / p + (1 - t') / (1 - p)

    Probabilities are used as given (PyTorch clamps each log at -100; this gives ``+inf``). ``eps`` clips ``p`` to
    ``[eps, 1 - eps]``. Weights and "mean" as in ``binary_cross_entropy_with_logits``.

    >>> round(float(binary_cross_entropy([0.5, 0.880797], [1.0, 0.0])), 5)
    1.41004
    """
    x, t, o, reduction, cdt = _setup_elementwise(probs, "probs", target, sample_weight, label_smoothing,
                                                 reduction)
    check_unit_interval(NUMPY, x, "probs", "Pass probabilities, or use binary_cross_entropy_with_logits for logits.")
    eps = check_eps(eps)
    pw = _elementwise_weight(pos_weight, "pos_weight", x.shape, cdt)
    p = x.astype(cdt, copy=True)
    if eps is not None:
        inside = (p >= eps) & (p <= 1 - eps)
        np.clip(p, eps, 1 - eps, out=p)
    loss, grad = bce_with_probs(NUMPY, p, t, pw, grad=return_grad)
    if grad is not None and eps is not None:
        grad *= inside
    return elementwise(loss, grad, o, reduction, x.dtype)


def sigmoid_focal_loss(logits, target, *, gamma: float = 2.0, alpha=None, sample_weight=None,
                       label_smoothing: float = 0.0, reduction: str = "mean", return_grad: bool = False):
    """Sigmoid focal loss (Lin et al., 2017; torchvision's formula), element-wise, in log space::

        ce = t' softplus(-x) + (1 - t') softplus(x)         p = sigmoid(x),  m = p (1 - t') + (1 - p) t'
        l = alpha_t * ce * m**gamma                         alpha_t = alpha t' + (1 - alpha)(1 - t')  (1 if None)
        d l / d x = alpha_t * ((p - t') m**gamma + gamma ce (1 - 2 t') p (1 - p) m**(gamma - 1))

    ``1 - p`` is computed as ``sigmoid(-x)`` and ``p (1 - p) m**(gamma - 1)`` is 0 where ``m = 0``, so the gradient
    is finite at saturation for every ``gamma >= 0``; ``alpha_t = 0`` drops an element even where ``ce`` is
    infinite. ``alpha`` is None, a float or an array in [0, 1] broadcasting to the element shape (one alpha per
    class for ``(N, C)`` multi-label logits). Weights and "mean" as in ``binary_cross_entropy_with_logits``.

    >>> round(float(sigmoid_focal_loss([0.0], [1.0], gamma=2.0, alpha=0.25)), 6)  # 0.25 * log(2) * 0.5**2
    0.043322
    """
    gamma = check_gamma(gamma)
    x, t, o, reduction, cdt = _setup_elementwise(logits, "logits", target, sample_weight, label_smoothing,
                                                 reduction)
    a = None
    if alpha is not None:
        a = _elementwise_weight(alpha, "alpha", x.shape, cdt)
        check_unit_interval(NUMPY, a, "alpha", "alpha weighs positives against negatives.")
    loss, grad = sigmoid_focal(NUMPY, x.astype(cdt, copy=False), t, a, gamma=gamma, grad=return_grad)
    return elementwise(loss, grad, o, reduction, x.dtype)


def gan_discriminator_loss(real_logits, fake_logits, *, reduction: str = "mean", return_grad: bool = False):
    """The discriminator's loss: ``BCE(real, 1) + BCE(fake, 0) = softplus(-D(x)) + softplus(D(G(z)))``.

    ``reduction`` is "mean" (each term averaged over its own elements) or "sum". With ``return_grad``, the
    gradient is ``(grad_real, grad_fake)``.

    >>> round(float(gan_discriminator_loss([0.0], [0.0])), 6)  # 2 log 2
    1.386294
    """
    if check_reduction(reduction) == "none":
        raise InputValueError("reduction='none' does not apply: real and fake logits may differ in shape. Use "
                         "'mean' or 'sum', or binary_cross_entropy_with_logits for per-element losses.")
    real = float_array(real_logits, "real_logits")
    fake = float_array(fake_logits, "fake_logits")
    parts = [binary_cross_entropy_with_logits(real, np.ones_like(real), reduction=reduction,
                                              return_grad=return_grad),
             binary_cross_entropy_with_logits(fake, np.zeros_like(fake), reduction=reduction,
                                              return_grad=return_grad)]
    if not return_grad:
        return parts[0] + parts[1]
    return parts[0][0] + parts[1][0], (parts[0][1], parts[1][1])


def gan_generator_loss(fake_logits, *, non_saturating: bool = True, reduction: str = "mean",
                       return_grad: bool = False):
    """The generator's loss: ``BCE(fake, 1) = softplus(-D(G(z)))`` (non-saturating, Goodfellow et al. 2014), or
    the minimax ``-BCE(fake, 0) = -softplus(D(G(z)))`` with ``non_saturating=False``.

    >>> round(float(gan_generator_loss([0.0])), 6)
    0.693147
    """
    fake = float_array(fake_logits, "fake_logits")
    if non_saturating:
        return binary_cross_entropy_with_logits(fake, np.ones_like(fake), reduction=reduction,
                                                return_grad=return_grad)
    result = binary_cross_entropy_with_logits(fake, np.zeros_like(fake), reduction=reduction,
                                              return_grad=return_grad)
    return (-result[0], -result[1]) if return_grad else -result
