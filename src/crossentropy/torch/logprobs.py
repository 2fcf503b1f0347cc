"""Per-token log-probabilities and entropies of a linear layer's logits, for policy-gradient training (GRPO, PPO,
DPO), without materialising the logits."""

from __future__ import annotations

import dataclasses

import torch

from ..constants import IGNORE_INDEX
from ..rules.options import LogprobOptions
from ._cpu import softmax_kernel
from ._inputs import check_linear_head, index_target_last_dim
from ._logprobs_autograd import LinearLogprobsFunction, values
from .linear import default_chunk_size
from .parallel import VocabShards, local_head

SHARDED = "the Triton log-prob rows run a whole vocabulary, not one split across ranks"
TEMPORARIES = 4  # a chunk holds a few logits-sized temporaries (logits, shifted, exp, gradient)


def linear_logprobs(input, linear_weight, target, *, linear_bias=None, temperature: float = 1.0,
                    softcap: float | None = None, ignore_index: int = IGNORE_INDEX, return_entropy: bool = False,
                    chunk_size: int | None = None, impl: str = "auto"):
    """The log-probability of each target token, and optionally each token's entropy, under the sampling
    distribution of a linear head::

        z = input @ linear_weight.T + linear_bias           (capped: softcap * tanh(z / softcap))
        q = softmax(z / temperature)
        logp_i = log q_i[target_i]            H_i = -sum_c q_ic log q_ic            (both 0 where ignored)

    that is, ``log_softmax((input @ linear_weight.T + linear_bias) / temperature, -1).gather(-1, target[..., None])``
    for ``input (..., D)``, ``linear_weight (V, D)``, ``linear_bias (V,)`` and integer ``target (...)``, holding at
    most ``chunk_size`` rows of logits at once (``None``: about 16 MiB of float32 logits per chunk). Returns
    ``logp`` in ``target``'s shape, or ``(logp, entropy)`` with ``return_entropy=True``, in float32 (float64 for
    float64 inputs), computed in that dtype for half and bfloat16 inputs too.

    Both outputs are differentiable with respect to ``input``, ``linear_weight`` and ``linear_bias`` for any
    upstream gradient (advantages, importance ratios, masks): backward recomputes each chunk's logits, so forward
    builds nothing for it, and nothing is done for the gradient under ``torch.no_grad()`` or when no input requires
    grad. No value is read on the host; it runs under ``torch.compile(fullgraph=True)``.

    A ``DTensor`` head runs as ``parallel.local_head`` says: an FSDP2-sharded ``linear_weight`` (with a plain
    ``input``) is all-gathered for the call and its gradient averaged over the mesh, as FSDP2 does; a
    vocabulary-sharded one (``Shard(0)``) with a replicated ``DTensor`` input keeps each rank's slice and exchanges
    O(tokens) per chunk (the row max and sums; the input gradient summed in backward). ``impl``: "auto",
    "reference" (the rules layer's torch code) or "triton" (each chunk's rows on the Triton log-prob kernels: CUDA,
    or the CPU under Triton's interpreter; "auto" takes it for CUDA tensors); the compiled CPU kernel has no
    log-prob path, so "compiled" is an ``InputValueError``.

    >>> g = torch.Generator().manual_seed(0)
    >>> x, w, y = torch.randn(5, 4, generator=g), torch.randn(7, 4, generator=g), torch.tensor([0, 1, 2, 3, -100])
    >>> logp, h = linear_logprobs(x, w, y, temperature=0.7, return_entropy=True, chunk_size=2)
    >>> ref = torch.log_softmax(x @ w.T / 0.7, -1).gather(-1, y.clamp(min=0)[:, None]).squeeze(-1)
    >>> bool(torch.allclose(logp[:4], ref[:4])), float(logp[4]), float(h[4])
    (True, 0.0, 0.0)
    """
    options = LogprobOptions.of(temperature=temperature, softcap=softcap, ignore_index=ignore_index,
                                return_entropy=return_entropy, chunk_size=chunk_size, impl=impl)
    return linear_logprobs_with(options, input, linear_weight, target, linear_bias=linear_bias)


def linear_logprobs_with(options: LogprobOptions, input, linear_weight, target, *, linear_bias=None):
    """``linear_logprobs`` with its scalar options given as one checked ``LogprobOptions``; the tensors are checked
    here."""
    vocab = check_linear_head(input, linear_weight, linear_bias)
    t = index_target_last_dim(target, input, options.ignore_index, vocab, " (the vocabulary)")
    input, linear_weight, linear_bias, group = local_head(input, linear_weight, linear_bias)
    # "reference" or "triton" (each chunk's rows on kernels.triton.rows.logprob_rows) runs it; the compiled kernel
    # has no log-prob path, and the Triton rows none for a vocabulary split across ranks
    kernel = softmax_kernel(options, input, has_compiled=False, no_triton=None if group is None else SHARDED)
    options = dataclasses.replace(options, impl=kernel, chunk_size=options.chunk_size or
                                  max(1, default_chunk_size(vocab) // TEMPORARIES))
    return_entropy = options.return_entropy
    shards = None if group is None else VocabShards(group)
    rows = input.reshape(-1, input.shape[-1])
    if torch.is_grad_enabled() and any(v is not None and v.requires_grad for v in (input, linear_weight,
                                                                                     linear_bias)):
        out = LinearLogprobsFunction.apply(rows, linear_weight, linear_bias, t, options, shards)
        logp, entropy = out if return_entropy else (out, None)
    else:
        logp, entropy = values(rows, linear_weight, linear_bias, t, options, shards)
    logp = logp.reshape(target.shape)
    return (logp, entropy.reshape(target.shape)) if return_entropy else logp
