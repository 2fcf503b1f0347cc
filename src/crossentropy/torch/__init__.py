"""crossentropy for PyTorch: drop-in losses with exact gradients in every dtype, on CPU and CUDA.

Swap ``torch.nn.functional.cross_entropy`` for ``crossentropy.torch.cross_entropy`` (and ``nn.CrossEntropyLoss``
for ``crossentropy.torch.CrossEntropyLoss``); docs/semantics.md lists where the numbers differ.
"""

from ._buffers import release_cpu_buffers
from .accumulation import total_weight
from .distillation import distillation_loss, linear_distillation_loss, sparse_distillation_loss
from .functional import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    gaussian_nll_loss,
    poisson_nll_loss,
    sigmoid_focal_loss,
    softmax_focal_loss,
)
from .linear import LinearCrossEntropyLoss, linear_cross_entropy
from .logprobs import linear_logprobs
from .modules import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    GaussianNLLLoss,
    PoissonNLLLoss,
    SigmoidFocalLoss,
    SoftmaxFocalLoss,
)
from .parallel import vocab_parallel_cross_entropy, vocab_parallel_linear_cross_entropy
from .stats import TokenStats

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "GaussianNLLLoss", "LinearCrossEntropyLoss", "PoissonNLLLoss",
    "SigmoidFocalLoss", "SoftmaxFocalLoss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "cross_entropy", "distillation_loss", "gaussian_nll_loss", "linear_cross_entropy", "linear_distillation_loss",
    "linear_logprobs", "poisson_nll_loss", "release_cpu_buffers", "sigmoid_focal_loss", "softmax_focal_loss",
    "sparse_distillation_loss", "TokenStats",
    "total_weight", "vocab_parallel_cross_entropy", "vocab_parallel_linear_cross_entropy",
]
