"""crossentropy: cross-entropy done right. The NumPy API; see ``crossentropy.torch`` for PyTorch.

>>> import crossentropy as ce
>>> round(float(ce.cross_entropy([1, 0, 0, 0], [0.775, 0.116, 0.039, 0.070], base=2)), 4)
0.3677
"""

from .core.accumulation import total_weight
from .core.calibration import fit_temperature
from .core.classification import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    categorical_cross_entropy,
    gan_discriminator_loss,
    gan_generator_loss,
    sigmoid_focal_loss,
    softmax_cross_entropy,
    softmax_focal_loss,
)
from .core.distillation import distillation_loss, sparse_distillation_loss
from .core.information import (
    cross_entropy,
    entropy,
    gaussian_cross_entropy,
    gaussian_entropy,
    gaussian_kl,
    js_divergence,
    kl_divergence,
    perplexity,
)
from .core.likelihood import gaussian_nll, poisson_nll
from .core.perplexity import PerplexityMeter
from .core.stable import log_sigmoid, log_softmax, logsumexp, sigmoid, softmax, softplus, xlogy
from .core.weights import class_weights, one_hot, smooth_labels
from .kernels.threads import get_num_threads, num_threads, set_num_threads
from .rules.errors import InputError, InputTypeError, InputValueError

__version__ = "0.1.0"

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "categorical_cross_entropy", "class_weights",
    "cross_entropy", "distillation_loss", "entropy", "fit_temperature", "gan_discriminator_loss",
    "gan_generator_loss", "gaussian_cross_entropy", "gaussian_entropy", "gaussian_kl", "gaussian_nll",
    "get_num_threads", "InputError", "InputTypeError", "InputValueError", "js_divergence", "kl_divergence",
    "log_sigmoid", "log_softmax", "logsumexp", "num_threads", "one_hot", "perplexity", "PerplexityMeter",
    "poisson_nll",
    "set_num_threads", "sigmoid", "sigmoid_focal_loss", "smooth_labels", "softmax", "softmax_cross_entropy",
    "softmax_focal_loss", "softplus", "sparse_distillation_loss", "total_weight", "xlogy",
]
