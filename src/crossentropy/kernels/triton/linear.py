"""Chunked linear cross-entropy on the Triton row kernel: the loop that ``impl="triton"`` runs for
``linear_cross_entropy`` on CUDA, with the chunk size taken from the free device memory.

Per chunk of rows ``x_c`` (in the inputs' dtype)::

    z_c = x_c @ W.T + b                          (one chunk of logits, in x's dtype)
    l_c, g_c = softmax_rows(z_c, coef_c)         (the gradient written over z_c by the row kernel)
    grad_x[c] = g_c @ W,  grad_W += g_c.T @ x_c,  grad_b += sum_rows g_c     (float32 results)

so at most one chunk of logits exists at a time, and the gradients are those of ``sum_i row_scale_i l_i``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from . import rows

CPU_CHUNK_BYTES = 64 << 20
FREE_MEMORY_SHARE = 8  # a chunk's logits take at most 1/8 of the free device memory


class LinearRows(NamedTuple):
    loss: torch.Tensor
    grad_x: torch.Tensor | None
    grad_w: torch.Tensor | None
    grad_b: torch.Tensor | None


def chunk_rows(n: int, vocab: int, dtype: torch.dtype, device: torch.device) -> int:
    """Rows per chunk: ``1/FREE_MEMORY_SHARE`` of the free CUDA memory (``CPU_CHUNK_BYTES`` on CPU) over the
    bytes of one row of logits, between 1 and ``n``.

    >>> chunk_rows(10_000, 1024, torch.float32, torch.device("cpu"))
    10000
    """
    budget = torch.cuda.mem_get_info(device)[0] // FREE_MEMORY_SHARE if device.type == "cuda" else CPU_CHUNK_BYTES
    itemsize = torch.empty((), dtype=dtype).element_size()
    return max(1, min(n, budget // (vocab * itemsize)))


def linear_rows(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, coef_of, row_scale, *,
                z_loss: float = 0.0, softcap=None, chunk_size: int | None = None, with_grad: bool = True,
                block: int | None = None) -> LinearRows:
    """Per-row losses (float32; float64 for float64 inputs) of ``softmax_rows(x @ weight.T + bias, coef)`` and,
    with ``with_grad``, the gradients of ``sum_i row_scale_i l_i`` w.r.t. ``x``, ``weight`` and ``bias`` in the
    compute dtype. ``coef_of(start, stop)`` gives the rules' coefficients of rows ``start:stop`` (the caller's
    targets and options); ``row_scale`` is ``(n,)``."""
    n, vocab = x.shape[0], weight.shape[0]
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    chunk = chunk_size or chunk_rows(n, vocab, x.dtype, x.device)
    loss = torch.empty(n, dtype=acc, device=x.device)
    grad_x = torch.empty(x.shape, dtype=acc, device=x.device) if with_grad else None
    grad_w = torch.zeros(weight.shape, dtype=acc, device=x.device) if with_grad else None
    grad_b = torch.zeros(vocab, dtype=acc, device=x.device) if with_grad and bias is not None else None
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        xc = x[start:stop]
        z = xc @ weight.T if bias is None else torch.addmm(bias, xc, weight.T)
        r = rows.softmax_rows(z, coef_of(start, stop), z_loss=z_loss, softcap=softcap, dtype=acc,
                              row_scale=row_scale[start:stop] if with_grad else None, out=z, block=block)
        loss[start:stop] = r.loss
        if with_grad:
            _matmul_into(grad_x[start:stop], r.grad, weight, accumulate=False)
            _matmul_into(grad_w, r.grad.T, xc, accumulate=True)
            if grad_b is not None:
                grad_b += r.grad.sum(0, dtype=acc)
    return LinearRows(loss, grad_x, grad_w, grad_b)


def _matmul_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, accumulate: bool) -> None:
    """``out = a @ b`` (``out += a @ b`` with ``accumulate``) in ``out``'s dtype (float32): on CUDA from 16-bit
    operands straight to a float32 result (cuBLAS accumulates in float32), elsewhere through copies in ``out``'s
    dtype."""
    if a.is_cuda and a.dtype in (torch.float16, torch.bfloat16) and out.dtype == torch.float32:
        if accumulate:
            torch.addmm(out, a, b, out_dtype=torch.float32, out=out)
        else:
            torch.mm(a, b, out_dtype=torch.float32, out=out)
    elif accumulate:
        out.addmm_(a.to(out.dtype), b.to(out.dtype))
    else:
        torch.mm(a.to(out.dtype), b.to(out.dtype), out=out)
