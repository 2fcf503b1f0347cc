"""Torch adapters of the Triton kernels (``jit.py``): the rules layer's row functions on CUDA tensors, or on CPU
tensors under Triton's interpreter (``TRITON_INTERPRET=1``, set before Triton is first imported).

Each adapter takes rows ``(n, V)`` with contiguous classes, the rules layer's ``Coefficients`` (tensors) where
targets enter, and returns per-row values in the compute dtype (float32; float64 for float64 inputs) and the
gradient in the input's dtype, into ``out`` when given (which may be the logits themselves). Nothing reads a
tensor value on the host. Triton is imported on the first launch, not with this module.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import torch

from ...rules.errors import InputValueError
from ...rules.rows import RowResult
from ...rules.targets import Coefficients

DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
MAX_BLOCK = 4096
DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")


def available() -> bool:
    """Whether Triton imports."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def reason(x: torch.Tensor) -> str | None:
    """Why the rows ``x`` cannot run on the Triton kernels (None when they can): they need Triton installed, a
    float dtype, a CUDA tensor or a CPU tensor under the interpreter (``TRITON_INTERPRET=1``, set before Triton
    is first imported), and no ``torch.compile`` tracing. ``kernels.dispatch.triton_reason`` asks this for torch
    tensors.

    >>> not available() or reason(torch.zeros(1, 3, dtype=torch.int64)).endswith("not torch.int64")
    True
    """
    if not available():
        return "Triton is not installed (the [triton] extra installs it)"
    if x.dtype not in DTYPES:
        return f"the Triton kernels take float16, bfloat16, float32 or float64 logits, not {x.dtype}"
    if x.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        return ("x is a CPU tensor and TRITON_INTERPRET is not set: the Triton kernels run on CUDA, or on CPU in "
                "Triton's interpreter (TRITON_INTERPRET=1 before Triton is first imported)")
    if x.device.type not in ("cpu", "cuda"):
        return f"the Triton kernels run on CUDA tensors, but the input is on {x.device.type}"
    if torch.compiler.is_compiling():  # a launch from Python is not traceable: auto keeps the reference's torch ops
        return "the Triton kernels cannot run under torch.compile"
    return None


def block_size(vocab: int) -> int:
    """The vocabulary block of one loop step: the next power of two of ``vocab``, between 16 and ``MAX_BLOCK``.

    >>> block_size(300), block_size(3), block_size(128256)
    (512, 16, 4096)
    """
    return min(MAX_BLOCK, max(16, 1 << max(0, vocab - 1).bit_length()))


def _launch_options(vocab: int, block: int | None) -> dict:
    """``BLOCK`` and ``num_warps`` of a row kernel (8 warps for blocks of 2048 classes and more)."""
    block = block or block_size(vocab)
    return {"BLOCK": block, "num_warps": 8 if block >= 2048 else 4}


def _acc(x: torch.Tensor):
    import triton.language as tl

    return (torch.float64, tl.float64) if x.dtype == torch.float64 else (torch.float32, tl.float32)


def _params(like: torch.Tensor, dtype, *, z_loss=0.0, softcap=None, temperature=1.0, alpha=1.0, beta=0.0,
            log_beta=0.0, log_1mbeta=0.0) -> torch.Tensor:
    """The kernels' scalar options as one tensor (``jit.Z_LOSS`` ... ``jit.TEMPERATURE``)."""
    values = [z_loss, 1.0 if softcap is None else softcap, 1.0 / temperature, alpha, beta, log_beta, log_1mbeta,
              temperature]
    host = torch.tensor(values, dtype=dtype)
    if like.device.type != "cuda":
        return host
    return host.pin_memory().to(like.device, non_blocking=True)  # a pinned, asynchronous copy: no host sync


def _rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` with unit class stride (a copy only when needed)."""
    return x if x.stride(-1) == 1 else x.contiguous()


def _vec(t, dtype, like: torch.Tensor) -> torch.Tensor:
    """A contiguous ``(n,)`` or ``(K,)`` tensor in ``dtype`` (a 1-element placeholder for None)."""
    if t is None:
        return torch.zeros(1, dtype=dtype, device=like.device)
    return t.detach().to(dtype).contiguous()


class Partials(NamedTuple):
    """Per-row partial statistics of one vocabulary shard (``shard_partials``)."""

    max: torch.Tensor
    total: torch.Tensor
    linear: torch.Tensor
    mass: torch.Tensor


def _launch(x, coef, *, z_loss, softcap, temperature=1.0, row_scale=None, stats=False, out=None, given=None,
            block=None):
    """Run ``jit.softmax_rows_kernel`` on rows ``x``; returns ``(outputs, grad)`` with outputs the dict of
    per-row tensors it wrote."""
    from . import jit

    x = _rows(x)
    n, vocab = x.shape
    acc, tl_acc = _acc(x)
    like = x
    alpha, beta = coef.affine
    params = _params(x, acc, z_loss=z_loss, softcap=softcap, temperature=temperature, alpha=alpha, beta=beta)
    names = ("loss", "max", "total", "lse", "linear", "mass", "entropy", "logpt")
    outs = {k: torch.empty(n, dtype=acc, device=x.device) for k in names}
    outs["argmax"] = torch.empty(n, dtype=torch.int64, device=x.device)
    if given is not None:
        outs["max"], outs["total"] = (t.detach().to(acc).contiguous() for t in given)
    grad = None
    if row_scale is not None:
        grad = torch.empty_like(x) if out is None else out
        if grad.shape != x.shape or grad.stride(-1) != 1:
            raise InputValueError(f"out must be an (n, V) tensor with unit class stride like the logits "
                                  f"{tuple(x.shape)}, but got shape {tuple(grad.shape)}, strides {grad.stride()}.")
    probs = coef.probs if not coef.index else None
    y = coef.y.contiguous() if coef.index else torch.zeros(1, dtype=torch.int64, device=x.device)
    dummy_rows = torch.zeros((1, 1), dtype=acc, device=x.device)
    g = dummy_rows if grad is None else grad
    p = dummy_rows if probs is None else _rows(probs)
    if n:  # an empty grid launches nothing
        jit.softmax_rows_kernel[(n,)](
            x, x.stride(0), g, g.stride(0), p, p.stride(0), vocab,
            y, _vec(coef.a_y, acc, like), _vec(coef.u, acc, like), _vec(coef.w, acc, like), _vec(coef.o, acc, like),
            _vec(coef.s, acc, like), _vec(row_scale, acc, like), params,
            outs["loss"], outs["max"], outs["total"], outs["lse"], outs["linear"], outs["mass"], outs["entropy"],
            outs["logpt"], outs["argmax"],
            ACC=tl_acc, INDEX=coef.index, HAS_W=coef.w is not None, HAS_U=coef.u is not None,
            HAS_SOFTCAP=softcap is not None, HAS_Z_LOSS=bool(z_loss), STATS=stats, FORWARD=given is None,
            GRAD=row_scale is not None, **_launch_options(vocab, block))
    return outs, grad


def softmax_rows(x: torch.Tensor, coef, *, z_loss: float, softcap, dtype: torch.dtype,
                 row_scale: torch.Tensor | None = None, stats: bool = False, out: torch.Tensor | None = None,
                 block: int | None = None) -> RowResult:
    """``rules.rows.softmax_rows`` on the Triton kernel, as the same ``RowResult``: per-row ``loss`` and ``lse``
    in ``dtype`` and, when ``row_scale (n,)`` is given, the gradient of ``sum_i row_scale_i l_i`` in ``x``'s dtype
    (into ``out`` when given; it may be ``x``). ``stats`` adds the entropy, ``p_target`` (index targets; 0 on an
    ignored row) and the argmax. One kernel launch: both passes over each row run in it.

    """
    outs, grad = _launch(x, coef, z_loss=z_loss, softcap=softcap, row_scale=row_scale, stats=stats, out=out,
                         block=block)
    entropy = p_target = predicted = None
    if stats:
        entropy, predicted = outs["entropy"].to(dtype), outs["argmax"]
        if coef.index:
            p_target = torch.where(coef.keep, torch.exp(outs["logpt"]), 0.0).to(dtype)
    return RowResult(outs["loss"].to(dtype), outs["lse"].to(dtype), grad, entropy, p_target, predicted)


def shard_partials(x: torch.Tensor, coef, *, softcap, block: int | None = None) -> Partials:
    """One vocabulary shard's partial statistics of rows ``x (n, V_shard)`` with this shard's ``coef`` (target
    term on the shard holding the target, ``u`` of the whole row)::

        max = m_k = max_c zc_c,  total = S_k = sum_c exp(shift(zc_c, m_k)),
        linear = T_k = sum_c a_c shift(zc_c, m_k),  mass = A_k = sum_c a_c

    ``combine_partials`` puts them on the global max; the SUM over shards then gives the whole row's ``S`` and
    target term, as the ``collective`` of ``rules.rows.softmax_rows`` does.
    """
    outs, _ = _launch(x, coef, z_loss=0.0, softcap=softcap, block=block)
    return Partials(outs["max"], outs["total"], outs["linear"], outs["mass"])


def combine_partials(part: Partials, m: torch.Tensor):
    """``(S_k exp(d_k), T_k + A_k d_k)`` with ``d_k = shift(m_k, m)`` against the global max ``m`` (the MAX over
    shards): summed over the shards they are the row's ``S`` and ``sum_c a_c shift(zc_c, m)`` (products masked)."""
    d = torch.where(torch.isinf(m) & (part.max == m), 0.0, part.max - m)
    return part.total * torch.exp(d), part.linear + _masked(part.mass, d)


def _masked(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a * x`` with ``0 * x = 0`` (``rules.limits.masked_product``)."""
    return torch.where(a != 0, a * x, 0.0)


def partial_rows(coef, m: torch.Tensor, total: torch.Tensor, linear: torch.Tensor, z_loss: float):
    """``(loss, lse)`` of whole rows from their combined ``m``, ``S`` and target term:
    ``l = o log S - linear + z_loss o lse**2`` (products with ``o`` masked), ``lse = m + log S``."""
    log_s = torch.log(total)
    lse = m + log_s
    loss = _masked(coef.o, log_s) - linear
    return (loss + _masked(coef.o, lse * lse * z_loss) if z_loss else loss), lse


def shard_grad(x: torch.Tensor, coef, m: torch.Tensor, total: torch.Tensor, *, z_loss: float, softcap,
               row_scale: torch.Tensor, out: torch.Tensor | None = None, block: int | None = None) -> torch.Tensor:
    """The gradient of ``sum_i row_scale_i l_i`` w.r.t. one shard's logits, given the whole rows' max ``m`` and
    ``S`` (``combine_partials``): the kernel's second pass alone."""
    _, grad = _launch(x, coef, z_loss=z_loss, softcap=softcap, row_scale=row_scale, out=out, given=(m, total),
                      block=block)
    return grad


class LogProbRows(NamedTuple):
    """``logp = log q[target]`` and ``entropy = -sum q log q`` per row (0 on ignored rows), and the row max and
    sum (``max``, ``total``) of ``z / T`` that the backward pass reads."""

    logp: torch.Tensor
    entropy: torch.Tensor
    max: torch.Tensor
    total: torch.Tensor


def _logprob_coefficients(target: torch.Tensor, vocab: int, ignore_index: int, dtype) -> Coefficients:
    """Index coefficients of weight 1 on the kept rows (the kernel reads ``y`` and ``keep``)."""
    keep = target != ignore_index
    a_y = keep.to(dtype)
    return Coefficients(None, o=a_y, n_classes=vocab, y=torch.where(keep, target, 0), a_y=a_y, keep=keep)


def logprob_rows(x: torch.Tensor, target: torch.Tensor, *, temperature: float = 1.0, softcap=None,
                 ignore_index: int = -100, block: int | None = None) -> LogProbRows:
    """With ``zc = softcap(x) / temperature`` and ``q = softmax(zc)`` (the limit rule for infinite logits)::

        logp_i = zc_iy - lse_i = shift(zc_iy, m_i) - log S_i        entropy_i = log S_i - sum_c q_ic s_ic

    both 0 where ``target == ignore_index``: the forward pass of ``linear_logprobs`` on one chunk of logits."""
    acc, _ = _acc(x)
    coef = _logprob_coefficients(target, x.shape[-1], ignore_index, acc)
    outs, _ = _launch(x, coef, z_loss=0.0, softcap=softcap, temperature=temperature, stats=True, block=block)
    return LogProbRows(torch.where(coef.keep, outs["logpt"], 0.0), torch.where(coef.keep, outs["entropy"], 0.0),
                       outs["max"], outs["total"])


def logprob_rows_backward(x: torch.Tensor, target: torch.Tensor, forward: LogProbRows, g_logp: torch.Tensor,
                          g_entropy: torch.Tensor, *, temperature: float = 1.0, softcap=None,
                          ignore_index: int = -100, out: torch.Tensor | None = None,
                          block: int | None = None) -> torch.Tensor:
    """The gradient w.r.t. ``x`` of ``sum_i g_logp_i logp_i + g_entropy_i entropy_i``
    (``jit.logprob_backward_kernel``)::

        dx_ic = (g_logp_i ([c == y_i] - q_ic) - g_entropy_i q_ic (log q_ic + H_i)) / T * softcap'(x_ic)

    0 on ignored rows; in ``x``'s dtype, into ``out`` when given (it may be ``x``)."""
    from . import jit

    x = _rows(x)
    n, vocab = x.shape
    acc, tl_acc = _acc(x)
    keep = target != ignore_index
    y = torch.where(keep, target, 0).contiguous()
    grad = torch.empty_like(x) if out is None else out
    params = _params(x, acc, softcap=softcap, temperature=temperature)
    if n:  # an empty grid launches nothing
        jit.logprob_backward_kernel[(n,)](
            x, x.stride(0), grad, grad.stride(0), vocab, y, keep.to(torch.int8).contiguous(), forward.max,
            forward.total, forward.entropy, _vec(g_logp, acc, x), _vec(g_entropy, acc, x), params,
            ACC=tl_acc, HAS_SOFTCAP=softcap is not None, **_launch_options(vocab, block))
    return grad


def distill_rows(z_student: torch.Tensor, z_teacher: torch.Tensor, *, divergence: str, beta: float, temperature: float,
                 kept: torch.Tensor | None = None, row_scale: torch.Tensor | None = None, with_grad: bool,
                 out: torch.Tensor | None = None, block: int | None = None):
    """``rules.divergence.dense_rows`` on the Triton kernel: ``(values, grad)`` with ``values (n,)`` the
    ``temperature**2``-scaled divergence of ``softmax(z_teacher / temperature)`` and ``softmax(z_student /
    temperature)`` per row (see ``jit.distill_rows_kernel`` for the formulas), 0 on rows not ``kept``, and with
    ``with_grad`` the gradient w.r.t. ``z_student`` times ``temperature * row_scale`` (a scalar or per row; 1 when
    None), in the student's dtype."""
    from . import jit

    if divergence not in DIVERGENCES:
        raise InputValueError(f"divergence must be one of {DIVERGENCES}, but got {divergence!r}.")
    zs, zt = _rows(z_student), _rows(z_teacher)
    n, vocab = zs.shape
    acc, tl_acc = _acc(zs)
    params = _params(zs, acc, temperature=temperature, beta=beta, log_beta=math.log(beta) if beta > 0 else -math.inf,
                     log_1mbeta=math.log1p(-beta) if beta < 1 else -math.inf)
    keep = torch.ones(n, dtype=torch.int8, device=zs.device) if kept is None else kept.to(torch.int8).contiguous()
    if isinstance(row_scale, torch.Tensor):
        scale = row_scale.detach().to(acc).expand(n).contiguous()
    else:
        scale = torch.full((n,), 1.0 if row_scale is None else float(row_scale), dtype=acc, device=zs.device)
    values = torch.empty(n, dtype=acc, device=zs.device)
    grad = None
    if with_grad:
        grad = torch.empty_like(zs) if out is None else out
    g = grad if grad is not None else torch.zeros((1, 1), dtype=acc, device=zs.device)
    if n:  # an empty grid launches nothing
        jit.distill_rows_kernel[(n,)](
            zs, zs.stride(0), zt, zt.stride(0), g, g.stride(0), vocab, keep, scale, values, params,
            ACC=tl_acc, DIVERGENCE=DIVERGENCES.index(divergence), GRAD=with_grad, **_launch_options(vocab, block))
    return values, grad
