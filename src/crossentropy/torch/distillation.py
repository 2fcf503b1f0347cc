"""Distillation losses for language models (vocabulary last): dense, chunked linear heads, and top-k teachers.

With ``S = softmax(student / tau)`` and ``T = softmax(teacher / tau)`` (``tau = temperature``): ``"forward_kl"``
is ``KL(T || S)``,
``"reverse_kl"`` is ``KL(S || T)``, ``"jsd"`` is ``beta KL(T || M) + (1 - beta) KL(S || M)`` with
``M = beta T + (1 - beta) S``; each per token times ``tau**2``. Tokens whose ``target`` is ``ignore_index`` are
excluded and "mean" is over the kept ones (0 with a zero gradient when none is). Gradients go to the student only,
built analytically in float32 for half/bfloat16 (docs/semantics.md); no function reads a tensor on the host,
except the argument checks, which run eagerly on CPU tensors only.
"""

from __future__ import annotations

import dataclasses

import torch

from ..constants import IGNORE_INDEX
from ..kernels.dispatch import NO_TRITON_PATH
from ..rules.divergence import SCALED_ABOVE, check_sparse_teacher, check_vocabulary, kept_tokens
from ..rules.errors import InputValueError
from ..rules.options import DistillationOptions
from ._cpu import softmax_kernel
from ._distill_autograd import LinearDistillationFunction, RowsDistillationFunction
from ._inputs import check_same_dtype, check_sample_weight, check_tensor
from ._xp import TORCH
from .linear import default_chunk_size

KERNEL_TEMPORARIES = 4  # a chunk gets 1/4 of linear_cross_entropy's logits budget: it holds two vocabularies' logits


def _kept(target, batch_shape: tuple, options, like: torch.Tensor, *, dense: bool = True):
    """``(kept, options)``: the flat mask of kept rows (None keeps every row), and ``options`` with ``impl`` the
    kernel the dispatch point picked for the student's tensor ``like``: "reference", or "triton" for the dense
    losses, except forward KL above ``SCALED_ABOVE`` (the rules' cancellation-free form, which the kernel lacks);
    the compiled kernel has no distillation path."""
    no_triton = None if dense else NO_TRITON_PATH
    if dense and options.divergence == "forward_kl" and options.temperature > SCALED_ABOVE:
        no_triton = (f"the Triton kernel has no cancellation-free forward KL for temperature > {SCALED_ABOVE} "
                     f"(got {options.temperature})")
    kernel = softmax_kernel(options, like, has_compiled=False, no_triton=no_triton)
    if target is not None:
        check_tensor(target, "target", floating=False)
    return kept_tokens(TORCH, target, batch_shape, options.ignore_index), dataclasses.replace(options, impl=kernel)


def _wants_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _shaped(loss: torch.Tensor, batch_shape: tuple, reduction: str) -> torch.Tensor:
    return loss.reshape(batch_shape) if reduction == "none" else loss


def distillation_loss(student_logits, teacher_logits, target=None, *, divergence: str = "forward_kl",
                      beta: float = 0.5, temperature: float = 1.0, ignore_index: int = IGNORE_INDEX,
                      reduction: str = "mean", sample_weight=None, impl: str = "auto"):
    """Distillation divergence between ``student_logits`` and ``teacher_logits`` of shape ``(..., V)``.

    ``target`` (integer, shape ``(...)``) only marks ignored tokens. The teacher gets no gradient (it need not be
    detached). "none" returns the per-token values in shape ``(...)``. ``sample_weight`` (one non-negative weight
    per token, shape ``(...)``) multiplies each token's value, and "mean" divides by the kept tokens' total
    weight (docs/semantics.md, 4).

    >>> s, t = torch.zeros(1, 2, requires_grad=True), torch.tensor([[0.0, 1.0986123]])
    >>> loss = distillation_loss(s, t)  # KL([1/4, 3/4] || [1/2, 1/2])
    >>> round(float(loss), 5)
    0.13081
    >>> loss.backward(); s.grad  # S - T
    tensor([[ 0.2500, -0.2500]])
    """
    check_tensor(student_logits, "student_logits")
    check_tensor(teacher_logits, "teacher_logits")
    options = DistillationOptions.of(divergence=divergence, beta=beta, temperature=temperature,
                                     ignore_index=ignore_index, reduction=reduction, impl=impl)
    if student_logits.dim() == 0 or teacher_logits.shape != student_logits.shape:
        raise InputValueError(f"teacher_logits must have the student's shape {tuple(student_logits.shape)} (..., V), "
                              f"but got {tuple(teacher_logits.shape)}. Both models must score the same vocabulary "
                              f"(the last dim).")
    check_vocabulary(student_logits.shape[-1], "student_logits")
    batch_shape = tuple(student_logits.shape[:-1])
    kept, options = _kept(target, batch_shape, options, student_logits)
    vocab = student_logits.shape[-1]
    s = check_sample_weight(sample_weight, batch_shape, student_logits.device)
    loss = RowsDistillationFunction.apply(student_logits.reshape(-1, vocab), teacher_logits.reshape(-1, vocab).detach(),
                                          None, kept, s, options, _wants_grad(student_logits))
    return _shaped(loss, batch_shape, options.reduction)


def sparse_distillation_loss(student_logits, teacher_indices, teacher_logprobs, target=None, *,
                             divergence: str = "forward_kl", beta: float = 0.5, temperature: float = 1.0,
                             ignore_index: int = IGNORE_INDEX, reduction: str = "mean", sample_weight=None,
                             impl: str = "auto"):
    """``distillation_loss`` against an offline teacher's top-k: ``teacher_indices`` (integer, ``(..., k)``) and
    ``teacher_logprobs`` (``(..., k)``, ``log T`` at those classes, at the distillation temperature).

    The divergence is over k + 1 bins: the k classes and a tail bin holding the rest of each distribution's mass
    (the teacher's ``1 - sum_k T``; the student's mass outside the k classes). With k = V it equals
    ``distillation_loss``. ``temperature`` divides the student's logits only (see the NumPy core's docstring).

    >>> z = torch.zeros(1, 4)
    >>> round(float(sparse_distillation_loss(z, torch.tensor([[0]]), torch.log(torch.tensor([[0.5]])))), 5)
    0.14384
    """
    check_tensor(student_logits, "student_logits")
    check_tensor(teacher_indices, "teacher_indices", integer=True)
    check_tensor(teacher_logprobs, "teacher_logprobs")
    options = DistillationOptions.of(divergence=divergence, beta=beta, temperature=temperature,
                                     ignore_index=ignore_index, reduction=reduction, impl=impl)
    if student_logits.dim() == 0:
        raise InputValueError("student_logits must have a vocabulary (last) dim, but got a scalar.")
    batch_shape, vocab = tuple(student_logits.shape[:-1]), student_logits.shape[-1]
    check_vocabulary(vocab, "student_logits")
    if teacher_indices.dim() == 0 or teacher_logprobs.dim() == 0:
        raise InputValueError("teacher_indices and teacher_logprobs must have a top-k (last) dim, but got a scalar.")
    check_sparse_teacher(TORCH, teacher_indices, teacher_logprobs.detach(), vocab, batch_shape)
    kept, options = _kept(target, batch_shape, options, student_logits, dense=False)
    k = teacher_indices.shape[-1]
    s = check_sample_weight(sample_weight, batch_shape, student_logits.device)
    loss = RowsDistillationFunction.apply(student_logits.reshape(-1, vocab), teacher_logprobs.reshape(-1, k).detach(),
                                          teacher_indices.reshape(-1, k).long(), kept, s, options,
                                          _wants_grad(student_logits))
    return _shaped(loss, batch_shape, options.reduction)


def _check_head(x, weight, bias, who: str) -> None:
    check_tensor(x, f"{who}_input")
    check_tensor(weight, f"{who}_weight")
    if x.dim() < 1 or weight.dim() != 2 or weight.shape[1] != x.shape[-1]:
        raise InputValueError(f"{who}_weight must have shape (V, D) with D = {who}_input.shape[-1], but got "
                              f"{tuple(weight.shape)} for {who}_input {tuple(x.shape)}.")
    if bias is not None:
        check_tensor(bias, f"{who}_bias")
        if tuple(bias.shape) != (weight.shape[0],):
            raise InputValueError(f"{who}_bias must have shape ({weight.shape[0]},), but got {tuple(bias.shape)}.")
    check_vocabulary(weight.shape[0], f"{who}_weight")
    # as in linear_cross_entropy (and torch's matmul): a head multiplies its input, so their dtypes must match
    check_same_dtype({f"{who}_input": x, f"{who}_weight": weight, f"{who}_bias": bias})


def linear_distillation_loss(student_input, student_weight, teacher_input, teacher_weight, target=None, *,
                             student_bias=None, teacher_bias=None, divergence: str = "forward_kl", beta: float = 0.5,
                             temperature: float = 1.0, ignore_index: int = IGNORE_INDEX, reduction: str = "mean",
                             chunk_size: int | None = None, sample_weight=None, impl: str = "auto"):
    """``distillation_loss(student_input @ student_weight.T + student_bias, teacher_input @ teacher_weight.T +
    teacher_bias, target, ...)`` holding at most ``chunk_size`` rows of either vocabulary's logits at once.

    ``student_input (..., Ds)``, ``student_weight (V, Ds)``, ``teacher_input (..., Dt)``, ``teacher_weight
    (V, Dt)``: the hidden sizes may differ, the vocabularies may not. Gradients go to the student's input, weight
    and bias only, accumulated in float32 (float64 for float64). No gradient work is done when grad mode is off or
    none of those requires grad. For "mean"/"sum" the gradients are made in forward and backward can run once;
    "none" recomputes each chunk in backward. ``chunk_size=None`` picks about 16 MiB of float32 logits per chunk
(the kernel holds a few chunk-sized temporaries).

    >>> g = torch.Generator().manual_seed(0)
    >>> xs, ws = torch.randn(5, 3, generator=g), torch.randn(7, 3, generator=g)
    >>> xt, wt = torch.randn(5, 4, generator=g), torch.randn(7, 4, generator=g)
    >>> a = linear_distillation_loss(xs, ws, xt, wt, chunk_size=2, divergence="jsd")
    >>> bool(torch.allclose(a, distillation_loss(xs @ ws.T, xt @ wt.T, divergence="jsd")))
    True
    """
    _check_head(student_input, student_weight, student_bias, "student")
    _check_head(teacher_input, teacher_weight, teacher_bias, "teacher")
    options = DistillationOptions.of(divergence=divergence, beta=beta, temperature=temperature,
                                     ignore_index=ignore_index, reduction=reduction, chunk_size=chunk_size,
                                     impl=impl)
    if teacher_weight.shape[0] != student_weight.shape[0]:
        raise InputValueError(f"teacher_weight scores {teacher_weight.shape[0]} classes but student_weight scores "
                              f"{student_weight.shape[0]}: the vocabularies must match (dim 0 of both weights).")
    if tuple(teacher_input.shape[:-1]) != tuple(student_input.shape[:-1]):
        raise InputValueError(f"teacher_input must have the student_input's token shape "
                              f"{tuple(student_input.shape[:-1])} (before the hidden dim), but got "
                              f"{tuple(teacher_input.shape[:-1])}.")
    if options.chunk_size is None:
        options = dataclasses.replace(
            options, chunk_size=max(1, default_chunk_size(student_weight.shape[0]) // KERNEL_TEMPORARIES))
    batch_shape = tuple(student_input.shape[:-1])
    kept, options = _kept(target, batch_shape, options, student_input)
    with_grad = _wants_grad(student_input, student_weight, student_bias)
    xs = student_input.reshape(-1, student_input.shape[-1])
    xt = teacher_input.reshape(-1, teacher_input.shape[-1]).detach()
    s = check_sample_weight(sample_weight, batch_shape, student_input.device)
    loss = LinearDistillationFunction.apply(
        xs, student_weight, student_bias, xt, teacher_weight.detach(),
        None if teacher_bias is None else teacher_bias.detach(), kept, s, options, with_grad)
    return _shaped(loss, batch_shape, options.reduction)
