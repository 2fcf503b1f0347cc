"""The torch backend's dispatch point and its compiled CPU kernel (``crossentropy/kernels/compiled.py``) for
tensors: zero-copy NumPy views of CPU tensors of every float dtype (bfloat16 as its 16 raw bits), and the rules
layer's coefficients handed over through the kernel's one mapping (``compiled.coefficient_arrays``).

CUDA tensors and tensors under ``torch.compile`` cannot run on the compiled kernel: ``impl="auto"`` keeps the
rules' torch path for them, and ``impl="compiled"`` raises.
"""

from __future__ import annotations

import torch

from ..constants import NATIVE_AUTO_MAX
from ..kernels import compiled
from ..kernels.dispatch import NO_NATIVE, NO_PATH, NOT_BUILT, select, triton_reason
from ..rules.rows import RowResult
from ._buffers import POOL
from ._xp import TORCH

_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
NOT_ON_GPU = "auto runs the Triton kernels on GPU tensors only"


def compiled_reason(x: torch.Tensor) -> str | None:
    """Why the compiled kernel cannot run the rows ``x`` (None when it can)."""
    if not compiled.AVAILABLE:
        return NOT_BUILT
    if x.device.type != "cpu":
        return f"the compiled kernel runs on the CPU, but the input is on {x.device.type}"
    if x.dtype not in _DTYPES:
        return f"the compiled kernel takes float16, bfloat16, float32 or float64, not {x.dtype}"
    if not TORCH.checkable(x):
        return "the compiled kernel cannot run under torch.compile"
    return None


def softmax_kernel(options, x: torch.Tensor, *, has_compiled: bool = True, no_triton: str | None = None,
                   native: str | None = NO_NATIVE) -> str:
    """The torch backend's dispatch point: which kernel runs the softmax-family rows ``x`` under
    ``options.impl`` ("reference", "compiled", "triton" or "native"). ``has_compiled=False`` for a loss the
    compiled kernel has no path for (vocab-parallel, distillation); ``no_triton`` the reason the Triton kernels have
    no path for this call (focal, sparse distillation: ``NO_TRITON_PATH``): "triton" then raises, "auto" never picks
    it; ``native`` is None where torch's own kernels can run the call (``_native.native_reason``), and "auto" takes
    them up to ``NATIVE_AUTO_MAX`` logits."""
    reason = compiled_reason(x) if has_compiled else NO_PATH
    gpu = x.device.type == "cuda"
    # Triton's reason matters for impl="triton", and for "auto" on a GPU only (it is never picked on the CPU)
    triton = no_triton or (triton_reason(x) if options.impl == "triton" or gpu else NOT_ON_GPU)
    return select(options, compiled=reason, triton=triton, native=native,
                  prefer_native=x.numel() <= NATIVE_AUTO_MAX, gpu=gpu)


def _view(t: torch.Tensor, name: str, bf16: list):
    """A NumPy view of ``t`` sharing its memory (bfloat16 as int16 bits, recorded in ``bf16``)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        bf16.append(name)
        return t.view(torch.int16).numpy()
    return t.numpy()


def softmax_rows(x: torch.Tensor, coef, options, *, dtype: torch.dtype, row_scale: torch.Tensor | None = None,
                 stats: bool = False, grad_into: torch.Tensor | None = None) -> RowResult:
    """``rules.rows.softmax_rows`` on the compiled kernel, as the same ``RowResult``: per-row values in ``dtype``
    (the compute dtype), and, when ``row_scale`` is given, the gradient in ``x``'s dtype (written into
    ``grad_into`` when given, which may be ``x`` itself). ``options`` (a ``SoftmaxOptions``) gives ``z_loss`` and
    ``softcap``; ``stats`` adds the entropy, the target's probability (index targets) and the argmax."""
    softcap = options.softcap
    if grad_into is not None and not (x.is_contiguous() and grad_into.is_contiguous()):
        raise RuntimeError("grad_into needs contiguous rows")
    x = x.contiguous()
    n = x.shape[0]
    bf16: list = []
    probs = None if coef.index else _view(coef.probs.contiguous(), "probs", bf16)
    kw = compiled.coefficient_arrays(coef, probs)
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
            logit = compiled.target_logit(TORCH, x.detach(), coef, softcap)  # before a gradient overwrites x
    compiled.softmax_rows(_view(x, "z", bf16), **kw, z_loss=options.z_loss, softcap=softcap, loss=loss.numpy(),
                          lse=lse.numpy(), bf16=tuple(bf16))
    if p_target is not None:
        p_target = compiled.unweighted_p_target(TORCH, p_target, logit, lse, coef)

    def cast(t):
        return None if t is None else t.to(dtype)
    return RowResult(cast(loss), cast(lse), grad, cast(entropy), cast(p_target), predicted)

