"""Backend kernels: the Triton kernels (``kernels.triton``), imported lazily by their callers."""
