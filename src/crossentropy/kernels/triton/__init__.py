"""Triton kernels of the softmax-family rows (``rows.py`` adapters, ``jit.py`` kernels). Importing this package
imports neither torch's kernels nor Triton: ``rows`` imports Triton on its first launch."""
