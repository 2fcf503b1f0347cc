"""Loaded by pytest before any test or doctest module: Triton's kernels (``crossentropy/kernels/triton/jit.py``)
run in Triton's interpreter on CPU tensors when no CUDA device is present (``TRITON_INTERPRET`` must be set before
Triton first decorates a kernel), and the kernel module is not collected when Triton is not installed."""

import importlib.util
import os

collect_ignore = []
if importlib.util.find_spec("triton") is None:
    collect_ignore.append("src/crossentropy/kernels/triton/jit.py")
else:
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
