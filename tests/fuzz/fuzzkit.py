"""The fuzz suite's budget, its tally per area, the value pools and the one invariant checker.

``CROSSENTROPY_FUZZ_BUDGET`` (default 600) is the total number of cases over every area; ``make fuzz`` sets
100000. ``CROSSENTROPY_FUZZ_SEED`` (default 0) moves every random stream. Each area records its cases and its
failures; ``tests/conftest.py`` prints the table at the end of the run.
"""

from __future__ import annotations

import os
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np

from crossentropy import InputError

BUDGET = int(os.environ.get("CROSSENTROPY_FUZZ_BUDGET", "600"))
SEED = int(os.environ.get("CROSSENTROPY_FUZZ_SEED", "0"))
FLOATS = (np.float16, np.float32, np.float64)
REDUCTIONS = ("none", "sum", "mean")


@dataclass
class Area:
    name: str
    cases: int = 0
    failures: list = field(default_factory=list)
    known: list = field(default_factory=list)

    def fail(self, label: str, why: str) -> None:
        self.failures.append(f"{why[:400]}\n    reproducer: {label[:1500]}")

    def report(self, since: int = 0, limit: int = 12) -> str:
        new = self.failures[since:]
        more = len(new) - limit
        return f"{len(new)} {self.name} cases failed:\n" + "\n".join(new[:limit]) + (
            f"\n... and {more} more" if more > 0 else "")

    def check(self, since: int) -> None:
        assert len(self.failures) == since, self.report(since)


AREAS: dict[str, Area] = {}


def area(name: str) -> Area:
    return AREAS.setdefault(name, Area(name))


def count(share: float, least: int = 1, most: int | None = None) -> int:
    """Cases for a share of the budget."""
    n = max(least, round(BUDGET * share))
    return n if most is None else min(n, most)


def rng_for(*key) -> np.random.Generator:
    return np.random.default_rng([SEED, *(zlib.crc32(k.encode()) if isinstance(k, str) else k for k in key)])


def extremes(dtype) -> np.ndarray:
    """Values at the ends of a dtype's range, with the specials: max, tiny, subnormal, eps, +-inf, NaN."""
    fi = np.finfo(dtype)
    return np.array([0.0, -0.0, 1.0, -1.0, fi.max, -fi.max, fi.tiny, -fi.tiny, fi.smallest_subnormal, fi.eps,
                     1 - fi.epsneg, np.inf, -np.inf, np.nan], dtype=dtype)


def moderate(rng, shape, dtype, scale: float = 3.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(dtype)


def sprinkle(rng, a: np.ndarray, pool: np.ndarray, rate: float) -> np.ndarray:
    """``a`` with a share ``rate`` of its entries replaced by values from ``pool``."""
    a = np.array(a, copy=True)
    if a.size:
        hit = rng.random(a.shape) < rate
        a[hit] = rng.choice(pool, size=int(hit.sum())).astype(a.dtype)
    return a


def arrays_in(result) -> list[np.ndarray]:
    if isinstance(result, (tuple, list)):
        return [x for r in result for x in arrays_in(r)]
    if hasattr(result, "detach"):
        return [result.detach().cpu().double().numpy()]
    return [np.asarray(result, dtype=np.float64)]


def has_nan(*values) -> bool:
    return any(np.isnan(np.asarray(v, dtype=np.float64)).any() for v in values
               if v is not None and not isinstance(v, (str, bool)) and np.asarray(v).dtype.kind in "fc")


def has_inf(*values) -> bool:
    """An infinite value, or one whose square overflows its dtype (beyond sqrt(max)): intermediate products of
    such values can meet as inf - inf, an indeterminate form."""
    def huge(v):
        a = np.asarray(v)
        return np.isinf(a).any() or bool((np.abs(a[np.isfinite(a)]) > np.sqrt(np.finfo(a.dtype).max)).any())
    return any(huge(v) for v in values
               if v is not None and not isinstance(v, (str, bool)) and np.asarray(v).dtype.kind == "f")


def call(a: Area, label: str, fn, *, bad: str | None = None, finite: bool = False, nan_ok: bool = True):
    """Run one case and check the contract; returns the result, or the InputError raised.

    * bad input (``bad`` names the argument): an InputError that is a ValueError or TypeError and names it;
    * any input: no exception other than InputError, and no RuntimeWarning from crossentropy's own code;
    * ``finite``: the mathematics is finite here, so no InputError and every value is finite;
    * ``nan_ok=False``: no input is NaN, so no output is NaN.
    """
    a.cases += 1
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            warnings.filterwarnings("error", category=RuntimeWarning, module=r"crossentropy\.")
            result = fn()
    except InputError as exc:
        if not isinstance(exc, (ValueError, TypeError)):
            a.fail(label, f"{type(exc).__name__} is neither ValueError nor TypeError")
        elif bad is not None and bad not in str(exc):
            a.fail(label, f"the message does not name {bad!r}: {exc}")
        elif bad is None and finite:
            a.fail(label, f"valid input refused: {exc}")
        return exc
    except Exception as exc:  # noqa: BLE001 -- any other exception is the failure being looked for
        a.fail(label, f"{type(exc).__name__}: {exc}")
        return exc
    if bad is not None:
        a.fail(label, f"bad {bad} accepted")
        return result
    values = arrays_in(result)
    if finite and not all(np.isfinite(v).all() for v in values):
        a.fail(label, f"not finite where the mathematics is finite: {values}")
    elif not nan_ok and any(np.isnan(v).any() for v in values):
        a.fail(label, f"NaN from input without NaN: {values}")
    return result
