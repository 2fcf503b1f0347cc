"""Streaming corpus perplexity, bits per token and bits per byte, exact however the stream is cut and merged.

For per-token negative log-likelihoods ``nll_i`` (nats) over ``N`` tokens covering ``B`` bytes of text::

    nll_mean = sum_i nll_i / N        perplexity = exp(nll_mean)
    bits_per_token = nll_mean / ln 2  bits_per_byte = sum_i nll_i / (B ln 2)

Each update's sum is exactly rounded (``math.fsum``) and the running totals are float64 with Neumaier compensation,
so the result agrees with ``math.fsum`` over the whole stream to a few ulps, for any cut into updates and any order
of merges.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np

from ..rules.errors import InputTypeError, InputValueError
from ._inputs import float_array
from .textio import read_csv_cells

LN2 = math.log(2.0)


def _neumaier(total: float, comp: float, value: float) -> tuple[float, float]:
    """Add ``value`` to the compensated sum ``total + comp``."""
    t = total + value
    if math.isinf(t):  # a zero-probability token (or overflow): the sum is infinite, nothing to compensate
        return t, 0.0
    if abs(total) >= abs(value):
        comp += (total - t) + value
    else:
        comp += (value - t) + total
    return t, comp


def _count(n_bytes) -> int:
    if isinstance(n_bytes, bool) or not isinstance(n_bytes, (int, np.integer)):
        raise InputTypeError(f"n_bytes must be an int (the UTF-8 byte count of the text the tokens cover), but got "
                             f"{type(n_bytes).__name__}.")
    if n_bytes < 0:
        raise InputValueError(f"n_bytes must be non-negative, but got {n_bytes}. Pass len(text.encode('utf-8')).")
    return int(n_bytes)


def nll_values(nll, name: str = "nll") -> np.ndarray:
    """``nll`` flattened to float64, rejecting NaN and negative values (``+inf``, a zero-probability token, is
    allowed and makes the perplexity infinite)."""
    a = float_array(nll, name).astype(np.float64, copy=False).reshape(-1)
    if np.isnan(a).any():
        raise InputValueError(f"{name} contains NaN at position {int(np.flatnonzero(np.isnan(a))[0])}; per-token "
                              f"negative log-likelihoods must be numbers. Check the model's output for NaN.")
    if (a < 0).any():
        raise InputValueError(f"{name} must be non-negative negative log-likelihoods (nats), but its smallest value "
                              f"is {a.min()}. If these are log-probabilities, pass their negation.")
    return a


def _fsum(values: list) -> float:
    """``math.fsum`` of non-negative values; inf where the exact total is beyond the float range."""
    try:
        return math.fsum(values)
    except OverflowError:  # "intermediate overflow": the total of these non-negative values overflows
        return math.inf


def _moments(a: np.ndarray) -> tuple[int, float, float, float]:
    """``(count, mean, scale, m2)`` of finite values ``a``, with the sum of squared deviations ``scale**2 * m2``:
    scaled, so that NLLs near the float range (1e200, 1e308) give a finite mean and standard deviation."""
    n = a.size
    if not n:
        return 0, 0.0, 0.0, 0.0
    mean = _fsum((a / n).tolist())
    dev = a - mean
    scale = float(np.abs(dev).max())
    m2 = _fsum(((dev / scale) ** 2).tolist()) if scale > 0 else 0.0
    return n, mean, scale, m2


def _merge_moments(x: tuple, y: tuple) -> tuple[int, float, float, float]:
    """Chan et al.'s parallel update of ``_moments``, in scaled form."""
    (na, ma, sa, qa), (nb, mb, sb, qb) = x, y
    if not na or not nb:
        return x if nb == 0 else y
    n = na + nb
    delta = mb - ma
    scale = max(sa, sb, abs(delta))
    if scale == 0:
        return n, ma, 0.0, 0.0
    m2 = qa * (sa / scale) ** 2 + qb * (sb / scale) ** 2 + (delta / scale) ** 2 * (na * nb / n)
    return n, ma + delta * (nb / n), scale, m2


class PerplexityMeter:
    """Accumulate per-token NLLs (nats) over a corpus; ``merge`` meters from several workers; read ``result()``.

    ``result(ci=0.95)`` adds an **analytic** confidence interval: the normal interval of the mean NLL,
    ``nll_mean +- z sd / sqrt(N)`` (``sd`` the sample standard deviation of the per-token NLLs), mapped through
    ``exp`` and ``/ ln 2``. It treats tokens as independent, so on text, where tokens within a document correlate,
    it is optimistic.

    >>> m = PerplexityMeter().update([1.0, 2.0], n_bytes=6)
    >>> m = m.merge(PerplexityMeter().update([3.0], n_bytes=3))
    >>> r = m.result()
    >>> r["tokens"], round(r["perplexity"], 6), round(r["bits_per_byte"], 6)  # exp(2), 6 / (9 ln 2)
    (3, 7.389056, 0.961797)
    """

    def __init__(self) -> None:
        self.tokens = 0
        self.bytes = 0
        self._sum = (0.0, 0.0)  # (total, compensation) of nll
        self._moments = (0, 0.0, 0.0, 0.0)  # of the finite NLLs: count, mean and scaled squared deviations

    def update(self, nll, *, n_bytes=None) -> PerplexityMeter:
        """Add per-token NLLs (nats, any shape; ``+inf`` allowed) and, optionally, the byte count of the text they
        cover (give it with every update, or once in total). Returns ``self``."""
        a = nll_values(nll)
        nb = 0 if n_bytes is None else _count(n_bytes)
        self._sum = _neumaier(*self._sum, _fsum(a.tolist()))
        self._moments = _merge_moments(self._moments, _moments(a[np.isfinite(a)]))
        self.tokens += a.size
        self.bytes += nb
        return self

    def merge(self, other: PerplexityMeter) -> PerplexityMeter:
        """Fold another meter's totals into this one (e.g. one per worker). Returns ``self``."""
        if not isinstance(other, PerplexityMeter):
            raise InputTypeError(f"other must be a PerplexityMeter, but got {type(other).__name__}.")
        self._sum = _neumaier(*_neumaier(*self._sum, other._sum[0]), other._sum[1])
        self._moments = _merge_moments(self._moments, other._moments)
        self.tokens += other.tokens
        self.bytes += other.bytes
        return self

    @property
    def nll_sum(self) -> float:
        return self._sum[0] + self._sum[1]

    def result(self, ci: float | None = None) -> dict:
        """``{"tokens", "bytes", "nll_sum", "nll_mean", "nll_std", "perplexity", "bits_per_token",
        "bits_per_byte"}``; ``bits_per_byte`` is None without bytes, the means are None without tokens. With
        ``ci`` (a level in (0, 1)), also ``"ci": {"level", "method": "analytic", "nll_mean", "perplexity",
        "bits_per_token", "bits_per_byte"}``, each a ``[low, high]`` pair (None where undefined)."""
        if ci is not None and (isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1):
            raise InputValueError(f"`ci` must be a confidence level in (0, 1) such as 0.95, or None, but got {ci!r}.")
        n, total = self.tokens, self.nll_sum
        finite = self._moments[0] == n  # no +inf NLL
        mean = None if not n else self._moments[1] if finite and math.isinf(total) else total / n
        std = None
        if n > 1 and finite:  # the sample standard deviation, from the scaled moments
            _, _, scale, m2 = self._moments
            std = scale * math.sqrt(m2 / (n - 1))
        out = {"tokens": n, "bytes": self.bytes or None, "nll_sum": total, "nll_mean": mean, "nll_std": std,
               "perplexity": None if mean is None else _exp(mean),
               "bits_per_token": None if mean is None else mean / LN2,
               "bits_per_byte": total / (self.bytes * LN2) if self.bytes else None}
        if ci is not None:
            out["ci"] = self._interval(float(ci), mean, std)
        return out

    def _interval(self, level: float, mean, std) -> dict:
        band = {"level": level, "method": "analytic", "nll_mean": None, "perplexity": None, "bits_per_token": None,
                "bits_per_byte": None}
        if std is None:
            return band
        half = statistics.NormalDist().inv_cdf(0.5 + level / 2) * std / math.sqrt(self.tokens)
        lo, hi = max(mean - half, 0.0), mean + half
        band.update(nll_mean=[lo, hi], perplexity=[_exp(lo), _exp(hi)], bits_per_token=[lo / LN2, hi / LN2])
        if self.bytes:
            per_byte = self.tokens / (self.bytes * LN2)
            band["bits_per_byte"] = [lo * per_byte, hi * per_byte]
        return band


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


# --------------------------------------------------------------------------------------------- files
DEFAULT_COLUMNS = {"nll": False, "logprob": True, "logprobs": True, "log_prob": True}  # name -> holds log-probs


def _pick_column(names: list[str], column: str | None, where: str) -> tuple[str, bool | None]:
    """The column to read and whether its name says it holds log-probs (None: the name does not say)."""
    if column is not None:
        if column not in names:
            raise InputValueError(f"column {column!r} is not in {where}; its columns are {names}.")
        return column, DEFAULT_COLUMNS.get(column)
    for name in names:
        if name in DEFAULT_COLUMNS:
            return name, DEFAULT_COLUMNS[name]
    if len(names) == 1:
        return names[0], None
    raise InputValueError(f"{where} has columns {names}; name the one holding per-token NLLs or log-probs with a "
                          f"`column`, or call it 'nll' or 'logprob'.")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path, column: str | None) -> tuple[np.ndarray, bool | None]:
    rows = read_csv_cells(path, "the token scores")
    if not rows:
        return np.zeros(0), None
    headed = not all(_is_number(v) for v in rows[0])
    names = rows[0] if headed else [str(i) for i in range(len(rows[0]))]
    name, says = _pick_column(names, column, str(path))
    j = names.index(name)
    try:
        values = [float(row[j]) for row in rows[1 if headed else 0:]]
    except ValueError:
        raise InputValueError(f"column {name!r} of {path} must hold one number per row.") from None
    return np.array(values, dtype=np.float64), says


def _read_jsonl(path: Path, column: str | None) -> tuple[np.ndarray, bool | None]:
    parts, says = [], None
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputValueError(f"line {number} of {path} is not JSON ({exc.msg}).") from None
            if isinstance(item, dict):
                name, says = _pick_column(sorted(item), column, f"line {number} of {path}")
                item = item[name]
            try:
                parts.append(np.asarray(item, dtype=np.float64).reshape(-1))
            except (TypeError, ValueError):
                raise InputValueError(f"line {number} of {path} must hold a number, a list of numbers, or an object "
                                      f"with one, but got {line.strip()[:60]!r}.") from None
    return (np.concatenate(parts) if parts else np.zeros(0)), says


def read_token_scores(path, *, column: str | None = None, logprobs: bool | None = None) -> np.ndarray:
    """Per-token NLLs (nats) from a ``.npy`` (any shape), ``.csv`` (one column: ``column``, else one named ``nll``
    or ``logprob``, else the only one) or ``.jsonl`` file (each line a number, a list, or an object holding one
    under such a key). Log-probs (``logprobs=True``, or a column named ``logprob``) are negated."""
    path = Path(path)
    suffix = path.suffix.lower()
    says = None
    if suffix not in (".npy", ".csv", ".jsonl", ".ndjson"):
        raise InputValueError(f"{path} must be a .npy, .csv or .jsonl file of per-token NLLs or log-probs, but its "
                              f"suffix is {suffix!r}.")
    try:
        if suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        elif suffix == ".csv":
            values, says = _read_csv(path, column)
        else:
            values, says = _read_jsonl(path, column)
    except OSError as exc:
        raise InputValueError(f"cannot read {path}: {exc.strerror or exc}.") from None
    except (ValueError, EOFError) as exc:
        if isinstance(exc, InputValueError):
            raise
        raise InputValueError(f"{path} is not a readable {suffix} file of numbers ({exc}).") from None
    if suffix == ".npy" and values.dtype.kind not in "fiu":
        raise InputValueError(f"{path} must hold numbers, but has dtype {values.dtype}.")
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if logprobs if logprobs is not None else bool(says):
        if (values > 0).any():
            raise InputValueError(f"{path} holds log-probabilities, which must be <= 0, but its largest value is "
                                  f"{values.max()}. If these are NLLs, leave out `logprobs` or rename the column.")
        values = -values
    return values


def text_bytes(path) -> int:
    """The UTF-8 byte count of a text file (it must decode as UTF-8)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputValueError(f"cannot read {path}: {exc.strerror or exc}.") from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputValueError(f"{path} is not UTF-8 text (byte {exc.start} does not decode); bits per byte count "
                              f"UTF-8 bytes.") from None
    return len(data)


def perplexity_report(path, *, column: str | None = None, logprobs: bool | None = None, n_bytes: int | None = None,
                      text=None, ci: float | None = None) -> dict:
    """``PerplexityMeter().update(read_token_scores(path, ...), n_bytes=...).result(ci)``, with the byte count from
    ``n_bytes`` or the UTF-8 file ``text`` (not both): what ``crossentropy perplexity`` prints. A file of no
    tokens, or of values that are all <= 0 (log-probabilities) without ``logprobs``, is an ``InputValueError``."""
    if n_bytes is not None and text is not None:
        raise InputValueError("give the byte count once: `n_bytes` or `text`, not both.")
    if text is not None:
        n_bytes = text_bytes(text)
    scores = read_token_scores(path, column=column, logprobs=logprobs)
    if scores.size == 0:
        raise InputValueError(f"{path} holds no token scores; perplexity needs at least one token.")
    if (scores < 0).any() and (scores <= 0).all():
        raise InputValueError(f"the values in {path} are all <= 0, as log-probabilities are; pass `logprobs=True`, "
                              f"which reads them as log-probabilities.")
    nll = nll_values(scores, f"the values in {path}")
    return PerplexityMeter().update(nll, n_bytes=n_bytes).result(ci=ci)
