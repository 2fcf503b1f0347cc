"""The library's shared constants, written once: every default and every list of names that more than one module
(or the CLI) needs.

>>> IGNORE_INDEX, REDUCTIONS, IMPLS[0]
(-100, ('none', 'sum', 'mean'), 'auto')
"""

IGNORE_INDEX = -100  # the target value that drops a token (PyTorch's default)
ECE_BINS = 15  # the default number of bins of the expected calibration error
LOSSES = ("cross_entropy", "focal")  # the training losses of the estimators
REDUCTIONS = ("none", "sum", "mean")
DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")  # the distillation divergences
IMPLS = ("auto", "compiled", "reference", "triton", "native")  # the kernel switch ``impl=`` of the softmax family
NATIVE_AUTO_MAX = 1 << 16  # "auto" runs torch's own kernels ("native") up to this many logits, where they apply
