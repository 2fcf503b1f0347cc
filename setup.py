"""Builds the optional fused CPU kernel (src/crossentropy/kernels/_fused.c); everything else is in pyproject.toml.

The kernel is a plain shared library loaded with ctypes (crossentropy/kernels/compiled.py). It is optional: where no C
compiler (or no OpenMP) is available the build of this one extension fails, the install still succeeds, and the
library runs its NumPy fallback.
"""

import sys

from setuptools import Extension, setup

# No -ffast-math or -ffinite-math-only: the kernel keeps inf / NaN semantics. -fno-math-errno and
# -fno-trapping-math change no results; they let the compiler vectorise.
flags = [] if sys.platform == "win32" else ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
link = [] if sys.platform == "win32" else ["-fopenmp"]

setup(ext_modules=[Extension("crossentropy.kernels._fused", ["src/crossentropy/kernels/_fused.c"],
                             extra_compile_args=flags, extra_link_args=link, optional=True)])
