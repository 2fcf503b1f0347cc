"""The one rule of ``impl=``, applied by each backend's dispatch point (``core.dispatch``, ``torch._cpu``).

A dispatch point knows its input and says, per kernel, None when that kernel can run it or a reason why not;
``select`` turns that and ``options.impl`` into the kernel that runs:

* ``"reference"``: the rules layer's code, always;
* ``"compiled"`` / ``"triton"``: that kernel, or an ``InputValueError`` naming ``impl`` and the reason: never a
  silent fallback;
* ``"native"``: torch's own fused kernels (``torch/_native.py``), for the torch ``cross_entropy`` calls whose
  semantics they share; an ``InputValueError`` elsewhere;
* ``"auto"``: Triton where it can run, else ``"native"`` where it can run and the dispatch point prefers it (a
  small input: the per-call overhead dominates there), else the compiled kernel where it can run, else the
  reference; ``CROSSENTROPY_KERNEL=numpy`` (``compiled.PREFERRED`` off) makes it pick the reference for both.

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


def triton_reason(x) -> str | None:
    """Why the Triton kernels cannot run ``x`` (None when they can). The place where ``kernels/triton/`` plugs in;
    today they are not available for any input."""
    return "Triton kernels are not available for this input"


def select(options, *, compiled: str | None, triton: str | None, native: str | None = NO_NATIVE,
           prefer_native: bool = False) -> str:
    """The kernel that runs: "reference", "compiled", "triton" or "native" (see the module docstring).
    ``compiled``, ``triton`` and ``native`` are None when that kernel can run the input, else the reason it cannot
    (``triton_reason(x)``); ``prefer_native`` says that "auto" should take "native" when it can."""
    impl = options.impl
    if impl == "reference":
        return impl
    reasons = {"compiled": compiled, "triton": triton, "native": native}
    if impl == "auto":
        if reasons["triton"] is None:
            return "triton"
        if not compiled_kernel.PREFERRED:
            return "reference"
        if reasons["native"] is None and prefer_native:
            return "native"
        return "compiled" if reasons["compiled"] is None else "reference"
    if reasons[impl] is not None:
        raise InputValueError(f"impl={impl!r} cannot run this input: {reasons[impl]}. Use impl='auto' (or "
                              f"impl='reference').")
    return impl
