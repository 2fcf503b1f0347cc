"""The one rule of ``impl=``, applied by each backend's dispatch point (``core.dispatch``, ``torch._cpu``).

A dispatch point knows its input and says, per kernel, None when that kernel can run it or a reason why not;
``select`` turns that and ``options.impl`` into the kernel that runs:

* ``"reference"``: the rules layer's code, always;
* ``"compiled"`` / ``"triton"``: that kernel, or an ``InputValueError`` naming ``impl`` and the reason: never a
  silent fallback;
* ``"native"``: torch's own fused kernels (``torch/_native.py``), for the torch ``cross_entropy`` calls whose
  semantics they share; an ``InputValueError`` elsewhere;
* ``"auto"``: Triton for a CUDA input it can run (never for a CPU input, even under Triton's interpreter), else
  ``"native"`` where it can run and the dispatch point prefers it (a small input: the per-call overhead dominates
  there), else the compiled kernel where it can run, else the reference; all but the reference only while
  ``compiled.PREFERRED`` (``CROSSENTROPY_KERNEL=numpy`` and ``forced_fallback()`` turn it off).

>>> from crossentropy.rules.options import SoftmaxOptions
>>> select(SoftmaxOptions(impl="reference"), compiled=None, triton=None)
'reference'
>>> select(SoftmaxOptions(impl="compiled"), compiled="the input is on cuda", triton=None)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
crossentropy.rules.errors.InputValueError: impl='compiled' cannot run this input: the input is on cuda. Use ...
"""

from __future__ import annotations

from ..rules.errors import InputValueError
from . import compiled as compiled_kernel

NOT_BUILT = "the compiled kernel is not built in this installation (python setup.py build_ext --inplace builds it)"
NO_PATH = "the compiled kernel has no path for this loss"
NO_NATIVE = "torch's own kernels (impl='native') run only the torch cross_entropy"
NO_TRITON_PATH = "the Triton kernels have no path for this loss"


def triton_reason(x) -> str | None:
    """Why the Triton kernels (``kernels/triton/``) cannot run the rows ``x`` (None when they can): they take torch
    tensors of a float dtype, on CUDA, or on the CPU in Triton's interpreter (``TRITON_INTERPRET=1``, set before
    Triton is first imported), and need Triton installed.

    >>> import numpy as np
    >>> triton_reason(np.zeros((1, 2)))
    'the Triton kernels take torch tensors, not ndarray'
    """
    if not type(x).__module__.startswith("torch"):  # NumPy rows: torch is not imported for them
        return f"the Triton kernels take torch tensors, not {type(x).__name__}"
    from .triton import rows  # imports torch (the input is a torch tensor), not Triton

    return rows.reason(x)


def select(options, *, compiled: str | None, triton: str | None, native: str | None = NO_NATIVE,
           prefer_native: bool = False, gpu: bool = False) -> str:
    """The kernel that runs: "reference", "compiled", "triton" or "native" (see the module docstring).
    ``compiled``, ``triton`` and ``native`` are None when that kernel can run the input, else the reason it cannot
    (``triton_reason(x)``); ``prefer_native`` says that "auto" should take "native" when it can; ``gpu`` says the
    input is on a GPU ("auto" picks Triton only then)."""
    impl = options.impl
    if impl == "reference":
        return impl
    reasons = {"compiled": compiled, "triton": triton, "native": native}
    if impl == "auto":
        if not compiled_kernel.PREFERRED:
            return "reference"
        if reasons["triton"] is None and gpu:
            return "triton"
        if reasons["native"] is None and prefer_native:
            return "native"
        return "compiled" if reasons["compiled"] is None else "reference"
    if reasons[impl] is not None:
        raise InputValueError(f"impl={impl!r} cannot run this input: {reasons[impl]}. Use impl='auto' (or "
                              f"impl='reference').")
    return impl
