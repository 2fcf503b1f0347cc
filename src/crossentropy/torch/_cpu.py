"""The compiled CPU kernel (``crossentropy/core/fused.py``) for tensors: zero-copy NumPy views of CPU tensors of
every float dtype (bfloat16 as its 16 raw bits), and the rules layer's coefficients handed over as float64 arrays.

CUDA tensors, tensors under ``torch.compile`` and builds without the kernel keep the torch path.
"""

from __future__ import annotations

import torch

from ..core import fused
from ..core.threads import get_num_threads
from ..rules.rows import RowResult
from ._buffers import POOL
from ._xp import TORCH

_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def usable(x: torch.Tensor) -> bool:
    """Whether the rows ``x`` can run on the compiled kernel."""
    return fused.AVAILABLE and x.device.type == "cpu" and x.dtype in _DTYPES and TORCH.checkable(x)


def _view(t: torch.Tensor, name: str, bf16: list):
    """A NumPy view of ``t`` sharing its memory (bfloat16 as int16 bits, recorded in ``bf16``)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        bf16.append(name)
        return t.view(torch.int16).numpy()
    return t.numpy()


def _arrays(coef) -> dict:
    """The coefficients (tensors) as the kernel's keyword arguments (NumPy arrays; probabilities zero-copy)."""
    def f64(t):
        return None if t is None else t.detach().to(torch.float64).contiguous().numpy()

    kw = {"o": f64(coef.o), "w": f64(coef.w)}
    if coef.index:
        kw.update(y=coef.y.contiguous().numpy(), a_y=f64(coef.a_y), u=f64(coef.u))
    else:
        alpha, beta = coef.affine
        kw.update(s=f64(coef.s), alpha=alpha, beta=beta)
    return kw


def softmax_rows(x: torch.Tensor, coef, *, z_loss: float, softcap, dtype: torch.dtype,
                 row_scale: torch.Tensor | None = None, stats: bool = False,
                 grad_into: torch.Tensor | None = None) -> RowResult:
    """``rules.rows.softmax_rows`` on the compiled kernel, as the same ``RowResult``: per-row values in ``dtype``
    (the compute dtype), and, when ``row_scale`` is given, the gradient in ``x``'s dtype (written into
    ``grad_into`` when given, which may be ``x`` itself); ``stats`` adds the entropy, the target's probability
    (index targets) and the argmax."""
    if grad_into is not None and not (x.is_contiguous() and grad_into.is_contiguous()):
        raise RuntimeError("grad_into needs contiguous rows")
    x = x.contiguous()
    n = x.shape[0]
    bf16: list = []
    kw = _arrays(coef)
    if not coef.index:
        kw["probs"] = _view(coef.probs.contiguous(), "probs", bf16)
    loss, lse = torch.empty(n, dtype=torch.float64), torch.empty(n, dtype=torch.float64)
    grad = entropy = p_target = predicted = logit = None
    if row_scale is not None:
        grad = POOL.empty(x.shape, x.dtype, x.device) if grad_into is None else grad_into
        kw["grad"] = _view(grad, "grad", bf16)
        kw["row_scale"] = row_scale.detach().to(torch.float64).contiguous().numpy()
    if stats:
        entropy, predicted = torch.empty(n, dtype=torch.float64), torch.empty(n, dtype=torch.int64)
        kw.update(entropy=entropy.numpy(), argmax=predicted.numpy())
        if coef.index:
            p_target = torch.empty(n, dtype=torch.float64)
            kw["p_target"] = p_target.numpy()
            logit = _target_logit(x, coef, softcap)  # before the gradient may overwrite x
    fused.softmax_rows(_view(x, "z", bf16), **kw, z_loss=z_loss, softcap=softcap, loss=loss.numpy(),
                       lse=lse.numpy(), threads=get_num_threads(), bf16=tuple(bf16))
    if p_target is not None:
        # the kernel reports 0 also on kept rows whose target carries no weight (a class weight of 0, no
        # smoothing); the rules give p_y there, from the target's logit
        p_target = torch.where(coef.keep & (coef.o == 0), _limit_p_target(x, logit, lse), p_target)

    def cast(t):
        return None if t is None else t.to(dtype)
    return RowResult(cast(loss), cast(lse), grad, cast(entropy), cast(p_target), predicted)


def _limit_p_target(x: torch.Tensor, logit: torch.Tensor, lse: torch.Tensor) -> torch.Tensor:
    """``exp(logit - lse)``, under the limit rule where both are infinite (a row of ``-inf``, or ``+inf`` ties):
    the row's maxima share its mass, so ``p = [logit == max] / #max``, never ``exp(inf - inf)`` = NaN."""
    p = torch.exp(logit - lse)
    undefined = torch.isinf(logit) & (logit == lse)
    if not bool(undefined.any()):
        return p
    z = x.detach().to(torch.float64)
    top = z.amax(-1)
    share = (logit == top).to(torch.float64) / (z == top[:, None]).sum(-1).clamp_min(1)
    return torch.where(undefined, share, p)


def _target_logit(x: torch.Tensor, coef, softcap) -> torch.Tensor:
    """Each row's (capped) logit at its target class, as float64."""
    z = x.detach().gather(-1, coef.y[:, None]).squeeze(-1).to(torch.float64)
    return z if softcap is None else torch.tanh(z / softcap) * softcap
