"""How many threads the kernels use (the compiled kernel and the NumPy blocked loops alike).

The count defaults to the cores this process may use; ``CROSSENTROPY_NUM_THREADS``, ``set_num_threads`` and the
``num_threads`` context manager override it.

>>> with num_threads(1):
...     get_num_threads()
1
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from ..rules.errors import InputValueError
from ..rules.options import check_positive_int

_config = {"threads": None}


def _default_threads() -> int:
    env = os.environ.get("CROSSENTROPY_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise InputValueError(f"CROSSENTROPY_NUM_THREADS must be a positive integer, but is {env!r}.")
        return n
    if "cores" not in _config:  # read once: a system call per loss call costs more than a small loss
        try:
            _config["cores"] = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            _config["cores"] = os.cpu_count() or 1
    return _config["cores"]


def get_num_threads() -> int:
    """The number of threads the blocked kernels use."""
    return _config["threads"] or _default_threads()


def set_num_threads(n: int | None) -> None:
    """Use ``n`` threads (``None`` restores the default: ``CROSSENTROPY_NUM_THREADS`` or the available cores)."""
    _config["threads"] = check_positive_int(n, "num_threads")


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Context manager: ``with ce.num_threads(1): ...`` runs the kernels on ``n`` threads inside the block."""
    previous = _config["threads"]
    set_num_threads(n)
    try:
        yield
    finally:
        _config["threads"] = previous
