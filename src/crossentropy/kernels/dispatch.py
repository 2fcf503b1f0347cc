"""The one rule of ``impl=``, applied by each backend's dispatch point (``core.dispatch``, ``torch._cpu``).

A dispatch point knows its input and says, per kernel, None when that kernel can run it or a reason why not;
``select`` turns that and ``options.impl`` into the kernel that runs:

* ``"reference"``: the rules layer's code, always;
* ``"compiled"`` / ``"triton"``: that kernel, or an ``InputValueError`` naming ``impl`` and the reason: never a
  silent fallback;
* ``"auto"``: Triton where it can run, else the compiled kernel where it can run and ``compiled.PREFERRED``
  (``CROSSENTROPY_KERNEL=numpy`` turns that off), else the reference.

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


def triton_reason(x) -> str | None:
    """Why the Triton kernels cannot run ``x`` (None when they can). The place where ``kernels/triton/`` plugs in;
    today they are not available for any input."""
    return "Triton kernels are not available for this input"


def select(options, *, compiled: str | None, triton: str | None) -> str:
    """The kernel that runs: "reference", "compiled" or "triton" (see the module docstring). ``compiled`` and
    ``triton`` are None when that kernel can run the input, else the reason it cannot (``triton_reason(x)``)."""
    impl = options.impl
    if impl == "reference":
        return impl
    reasons = {"compiled": compiled, "triton": triton}
    if impl == "auto":
        if reasons["triton"] is None:
            return "triton"
        return "compiled" if reasons["compiled"] is None and compiled_kernel.PREFERRED else "reference"
    if reasons[impl] is not None:
        raise InputValueError(f"impl={impl!r} cannot run this input: {reasons[impl]}. Use impl='auto' (or "
                              f"impl='reference').")
    return impl
