"""The compiled CPU kernel (``crossentropy/core/fused.py``) for tensors: zero-copy NumPy views of CPU tensors of
every float dtype (bfloat16 as its 16 raw bits), and the rules layer's coefficients handed over as float64 arrays.

CUDA tensors, tensors under ``torch.compile`` and builds without the kernel keep the torch path.
"""

from __future__ import annotations

import torch

from ..core import fused
from ..core.threads import get_num_threads
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


def softmax_rows(x: torch.Tensor, coef, *, z_loss: float, softcap, row_scale: torch.Tensor | None = None,
                 stats: bool = False, grad_into: torch.Tensor | None = None) -> dict:
    """``rules.rows.softmax_rows`` on the compiled kernel: ``{"loss", "lse"}`` (float64 tensors of ``n``), and
    ``"grad"`` (in ``x``'s dtype; written into ``grad_into`` when given, which may be ``x`` itself) when
    ``row_scale`` is given; with ``stats`` also ``"entropy"``, ``"p_target"`` (index targets) and
    ``"predicted"``."""
    if grad_into is not None and not (x.is_contiguous() and grad_into.is_contiguous()):
        raise RuntimeError("grad_into needs contiguous rows")
    x = x.contiguous()
    n = x.shape[0]
    bf16: list = []
    kw = _arrays(coef)
    if not coef.index:
        kw["probs"] = _view(coef.probs.contiguous(), "probs", bf16)
    out = {"loss": torch.empty(n, dtype=torch.float64), "lse": torch.empty(n, dtype=torch.float64)}
    if row_scale is not None:
        out["grad"] = torch.empty_like(x) if grad_into is None else grad_into
        kw["grad"] = _view(out["grad"], "grad", bf16)
        kw["row_scale"] = row_scale.detach().to(torch.float64).contiguous().numpy()
    if stats:
        out["entropy"] = torch.empty(n, dtype=torch.float64)
        out["predicted"] = torch.empty(n, dtype=torch.int64)
        kw.update(entropy=out["entropy"].numpy(), argmax=out["predicted"].numpy())
        if coef.index:
            out["p_target"] = torch.empty(n, dtype=torch.float64)
            kw["p_target"] = out["p_target"].numpy()
    fused.softmax_rows(_view(x, "z", bf16), **kw, z_loss=z_loss, softcap=softcap, loss=out["loss"].numpy(),
                       lse=out["lse"].numpy(), threads=get_num_threads(), bf16=tuple(bf16))
    return out


def target_logit(x: torch.Tensor, coef) -> torch.Tensor:
    """Each row's logit at its target class, as float64 (read before a kernel call that overwrites ``x``)."""
    return x.detach().gather(-1, coef.y[:, None]).squeeze(-1).to(torch.float64)


def target_probability(x: torch.Tensor, coef, result: dict, softcap, logit: torch.Tensor | None = None):
    """``p_target`` of the rules (``p_y`` on every kept row, 0 on ignored ones) from the kernel's result: the kernel
    reports 0 also on kept rows whose target carries no weight (a class weight of 0, no smoothing); those few get
    ``exp(zc_y - lse)`` from the target logit (``logit``, else read from ``x``)."""
    p = result["p_target"]
    weightless = coef.keep & (coef.o == 0)
    zc = target_logit(x, coef) if logit is None else logit
    if softcap is not None:
        zc = torch.tanh(zc / softcap) * softcap
    return torch.where(weightless, torch.exp(zc - result["lse"]), p)
