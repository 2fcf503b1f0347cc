"""The NumPy backend's dispatch point: which kernel runs a softmax-family call under ``options.impl``."""

from __future__ import annotations

from ..kernels import compiled
from ..kernels.dispatch import NO_PATH, NOT_BUILT, select, triton_reason


def softmax_kernel(options, rows, *, has_compiled: bool = True) -> str:
    """"compiled" or "reference" for the ``(n, K)`` NumPy rows ``rows`` ("triton" raises: no NumPy input runs on
    it). ``has_compiled=False`` for a loss the compiled kernel has no path for (focal, probabilities).

    >>> import numpy as np
    >>> from crossentropy.rules.options import FocalOptions
    >>> softmax_kernel(FocalOptions(), np.zeros((1, 2)), has_compiled=False)
    'reference'
    """
    reason = (None if compiled.AVAILABLE else NOT_BUILT) if has_compiled else NO_PATH
    return select(options, compiled=reason, triton=triton_reason(rows))
