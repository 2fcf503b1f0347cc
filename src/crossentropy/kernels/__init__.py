"""Kernels: the fast implementations of the rules layer's row math, one subpackage or module per backend.

``compiled.py`` loads the optional C kernel (``_fused.c``, CPU, every float dtype) with ctypes; ``threads.py`` holds
the thread count the kernels share; ``dispatch.py`` holds the one rule of ``impl=`` that both backends' dispatch
points apply. ``triton/`` (GPU) is the place of the Triton kernels. Nothing here validates user input: the public
entries do that (docs/design.md).
"""
