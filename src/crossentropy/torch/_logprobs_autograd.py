"""The autograd Function of ``linear_logprobs`` (the public function is in ``logprobs.py``).

Forward computes the per-token log-probabilities (and entropies) a chunk of rows at a time and saves only its inputs:
the upstream gradients (advantages, ratios, masks) are known in backward alone, so backward recomputes each chunk's
logits and turns them into the chunk's gradient (``rules.rows.logprob_rows``), accumulated in float32 (float64 for
float64). At most one chunk of logits is alive at a time; nothing is read on the host.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ..kernels.triton import rows as triton_rows
from ..rules.rows import LogprobResult, logprob_rows
from ..rules.targets import index_coefficients
from ._inputs import compute_dtype
from ._xp import TORCH


def logprob_pass(x, weight, bias, target, options, logp=None, entropy=None, grads=None, grad_logp=None,
                 grad_entropy=None, collective=None) -> None:
    """One pass over the rows ``x (n, D)``, a chunk at a time: the log-probabilities into ``logp`` and the entropies
    into ``entropy`` (each ``(n,)`` or None), and/or the gradients of ``sum_i grad_logp_i logp_i + grad_entropy_i
    H_i`` accumulated into ``grads = (grad_x, grad_w, grad_b)`` (None for one not needed). ``collective`` makes
    ``weight`` one rank's slice of a vocabulary split across processes (``parallel.py``)."""
    n, chunk = x.shape[0], options.chunk_size
    for start in range(0, n, chunk):
        _one_chunk(x, weight, bias, target, options, slice(start, min(n, start + chunk)), logp, entropy, grads,
                   grad_logp, grad_entropy, collective)


def _one_chunk(x, weight, bias, target, options, rows, logp, entropy, grads, grad_logp, grad_entropy,
               collective) -> None:
    """Rows ``rows`` of ``logprob_pass`` (a function of its own, so the chunk's logits are freed before the next
    chunk's are made)."""
    cdt = compute_dtype(x.dtype)
    xc = x[rows]
    logits = torch.nn.functional.linear(xc, weight, bias).to(cdt)
    g_logp = None if grad_logp is None else grad_logp[rows].to(cdt)
    g_entropy = None if grad_entropy is None else grad_entropy[rows].to(cdt)
    if options.impl == "triton":
        r = _triton_rows(logits, target[rows], options, g_logp, g_entropy)
    else:
        if collective is None:
            coef = index_coefficients(TORCH, target[rows], weight.shape[0], ignore_index=options.ignore_index,
                                      dtype=cdt)
        else:
            coef = collective.coefficients(target[rows], weight.shape[0], options, cdt)
        r = logprob_rows(TORCH, logits, coef, temperature=options.temperature, softcap=options.softcap,
                         entropy=entropy is not None, grad_logp=g_logp, grad_entropy=g_entropy, collective=collective)
    del logits
    if logp is not None:
        logp[rows] = r.logp
    if entropy is not None:
        entropy[rows] = r.entropy
    if grads is not None:
        grad_x, grad_w, grad_b = grads
        if grad_x is not None:
            grad_x[rows] = (r.grad.to(weight.dtype) @ weight).to(cdt)
        if grad_w is not None:
            grad_w.addmm_(r.grad.T, xc.to(cdt))
        if grad_b is not None:
            grad_b += r.grad.sum(0)


def _triton_rows(logits, target, options, grad_logp, grad_entropy) -> LogprobResult:
    """``rules.rows.logprob_rows`` of one chunk on the Triton kernels (``kernels.triton.rows.logprob_rows`` and its
    backward, the gradient written over ``logits``)."""
    kw = {"temperature": options.temperature, "softcap": options.softcap, "ignore_index": options.ignore_index}
    forward = triton_rows.logprob_rows(logits, target, **kw)
    grad = None
    if grad_logp is not None or grad_entropy is not None:
        zero = torch.zeros(logits.shape[0], dtype=logits.dtype, device=logits.device)
        grad = triton_rows.logprob_rows_backward(logits, target, forward, zero if grad_logp is None else grad_logp,
                                                 zero if grad_entropy is None else grad_entropy, out=logits, **kw)
    return LogprobResult(forward.logp.to(logits.dtype), forward.entropy.to(logits.dtype), grad)


def values(x, weight, bias, target, options, collective=None):
    """``(logp, entropy or None)`` of rows ``x`` (the entropy with ``options.return_entropy``), without any gradient
    work; ``options`` a checked ``LogprobOptions``."""
    cdt = compute_dtype(x.dtype)
    logp = torch.empty(x.shape[0], dtype=cdt, device=x.device)
    entropy = torch.empty(x.shape[0], dtype=cdt, device=x.device) if options.return_entropy else None
    with torch.no_grad():
        logprob_pass(x, weight, bias, target, options, logp, entropy, collective=collective)
    return logp, entropy


class LinearLogprobsFunction(torch.autograd.Function):
    """``(logp, entropy)`` (entropy only with ``return_entropy``) of rows; backward recomputes each chunk."""

    @staticmethod
    def forward(ctx, x, weight, bias, target, options, collective):
        ctx.set_materialize_grads(False)  # an unused output (often the entropy) costs nothing in backward
        logp, entropy = values(x, weight, bias, target, options, collective)
        ctx.save_for_backward(x, weight, bias, target)
        ctx.options, ctx.collective = options, collective
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        return (logp, entropy) if options.return_entropy else logp

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logp, grad_entropy=None):
        x, weight, bias, target = ctx.saved_tensors
        cdt = compute_dtype(x.dtype)
        grads = tuple(torch.zeros(t.shape, dtype=cdt, device=t.device) if t is not None and need else None
                      for t, need in zip((x, weight, bias), ctx.needs_input_grad[:3], strict=True))
        if grad_logp is not None or grad_entropy is not None:
            logprob_pass(x, weight, bias, target, ctx.options, grads=grads, grad_logp=grad_logp,
                         grad_entropy=grad_entropy, collective=ctx.collective)
        if ctx.collective is not None and grads[0] is not None:
            grads = (ctx.collective.sum_gradient(grads[0]),) + grads[1:]
        return tuple(None if g is None else g.to(dtype) for g, dtype in zip(grads, ctx.dtypes, strict=True)) + \
            (None,) * 3
