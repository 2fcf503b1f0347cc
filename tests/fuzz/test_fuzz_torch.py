"""Fuzz area 2, torch side by side with NumPy: the same random cases as area 1 (tests/fuzz/cases.py), extremes,
infinities and NaN included, through ``crossentropy.torch`` and the NumPy core.

Invariants: where both accept the input, values and gradients agree (NaN where the other has NaN); where one
refuses it, the other refuses it too, with the same exception type, and the same message for a bad option; torch
raises nothing but InputError and PyTorch's own errors never escape.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from cases import elementwise, likelihood, softmax_family
from conftest import tol
from fuzzkit import area, arrays_in, count, rng_for

import crossentropy.torch as cet
from crossentropy import InputError

TORCH_NAME = {"softmax_cross_entropy": cet.cross_entropy, "softmax_focal_loss": cet.softmax_focal_loss,
              "binary_cross_entropy_with_logits": cet.binary_cross_entropy_with_logits,
              "binary_cross_entropy": cet.binary_cross_entropy, "sigmoid_focal_loss": cet.sigmoid_focal_loss,
              "poisson_nll": cet.poisson_nll_loss, "gaussian_nll": cet.gaussian_nll_loss}
RENAME = {"class_weight": "weight", "sample_weight": "weight"}
OPTIONS = ("reduction", "label_smoothing", "ignore_index", "gamma", "alpha", "eps", "total_weight", "pos_weight",
           "class_weight", "sample_weight")


def _tensor(v, dtype):
    if isinstance(v, (np.ndarray, np.generic)):
        v = np.asarray(v)
        return torch.from_numpy(np.array(v, dtype=np.int64 if v.dtype.kind in "iu" else dtype))
    return v


def _torch_call(case, dtype):
    """The torch twin of a NumPy case; None where torch has no such option (sample weights of softmax losses)."""
    kw = {k: v for k, v in case.kw.items() if k not in ("axis", "return_grad")}
    if case.name in ("softmax_cross_entropy", "softmax_focal_loss") and "sample_weight" in kw:
        return None
    if case.name == "binary_cross_entropy" and "pos_weight" in kw:  # PyTorch's BCE has no pos_weight either
        return None
    x = _tensor(case.args[0], dtype)
    if isinstance(x, torch.Tensor) and x.dtype.is_floating_point:
        x.requires_grad_(True)
    rest = [_tensor(v, dtype) for v in case.args[1:]]
    tk = {RENAME.get(k, k): _tensor(v, v.dtype if isinstance(v, np.ndarray) and v.dtype.kind == "f" else dtype)
          for k, v in kw.items()}  # weights keep their float64, as NumPy keeps them
    if isinstance(kw.get("alpha"), np.ndarray):  # a sequence, as NumPy takes it (float64)
        tk["alpha"] = kw["alpha"].tolist()
    fn = TORCH_NAME[case.name]

    def run():
        value = fn(x, *rest, **tk)
        if not case.grad:
            return value.detach()
        value.sum().backward()
        return value.detach(), x.grad
    return run


def _squares_overflow(case, dtype) -> bool:
    big = np.sqrt(np.finfo(dtype).max)
    return any(np.any(np.abs(np.asarray(v, dtype=np.float64)[np.isfinite(v)]) > big) for v in case.args[:2])


def _renamed(exc) -> str:
    """A NumPy message with torch's argument names (``weight`` for class and sample weights)."""
    text = str(exc)
    for ours, theirs in RENAME.items():
        text = text.replace(ours, theirs)
    return text


def _outcome(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.filterwarnings("error", category=RuntimeWarning, module=r"crossentropy\.")
            return fn(), None
    except Exception as exc:  # noqa: BLE001 -- compared below
        return None, exc


def test_fuzz_torch_side_by_side():
    a = area("torch vs NumPy")
    since = len(a.failures)
    gens = [(softmax_family, 0.035), (elementwise, 0.02), (likelihood, 0.01)]
    known: dict = {}
    for gen, share in gens:
        for i in range(count(share, least=20)):
            rng = rng_for("torch", gen.__name__, i)
            dtype = (np.float64, np.float32)[i % 2]
            mode = ("finite", "extreme", "bad")[(i // 2) % 3]
            case = gen(rng, dtype, mode)
            if case.name == "categorical_cross_entropy" or case.bad == "axis":  # no torch twin, no axis option
                continue
            run = _torch_call(case, dtype)
            if run is None:
                continue
            a.cases += 1
            label = f"{case!r} [torch {TORCH_NAME[case.name].__name__}]"
            ours, np_exc = _outcome(case.run)
            theirs, t_exc = _outcome(run)
            for exc in (np_exc, t_exc):
                if exc is not None and not isinstance(exc, InputError):
                    a.fail(label, f"{type(exc).__name__} is not an InputError: {exc}")
            if (np_exc is None) != (t_exc is None):
                a.fail(label, f"NumPy {'raised ' + repr(np_exc) if np_exc else 'accepted'}, torch "
                              f"{'raised ' + repr(t_exc) if t_exc else 'accepted'}")
                continue
            if np_exc is not None:
                if type(np_exc) is not type(t_exc):
                    a.fail(label, f"NumPy raised {type(np_exc).__name__}, torch {type(t_exc).__name__}")
                elif case.bad in OPTIONS and "shape" not in str(np_exc) and _renamed(np_exc) != str(t_exc):
                    a.fail(label, f"messages differ for a bad {case.bad}: {np_exc} / {t_exc}")
                continue
            key = "float64-reference" if dtype == np.float64 else dtype
            if case.name == "gaussian_nll" and _squares_overflow(case, dtype):
                continue  # PyTorch's autograd takes 2 (x - t) / 2 v, which overflows sooner than (x - t) / v
            for got, want in zip(arrays_in(theirs), arrays_in(ours), strict=True):
                if got.shape != want.shape or not np.allclose(got, want, equal_nan=True, **tol(key)):
                    reason = _known_difference(case, dtype)
                    if reason is None:
                        a.fail(label, f"torch {got} != NumPy {want}")
                    else:
                        known.setdefault(reason, [0, label[:600]])[0] += 1
                    break
    a.known.extend(f"{reason}: x{n}, e.g. {text}" for reason, (n, text) in sorted(known.items()))
    a.check(since)


def _known_difference(case, dtype) -> str | None:
    """Differences seen on this branch and left for later, listed in the summary (not failures)."""
    fi = np.finfo(np.float32 if dtype == np.float16 else dtype)
    for k in ("class_weight", "alpha", "sample_weight", "pos_weight"):
        w = case.kw.get(k)
        if isinstance(w, np.ndarray) and np.any((w != 0) & ((np.abs(w) < fi.tiny) | (np.abs(w) > fi.max))):
            return ("weights outside the compute dtype's normal range: NumPy builds coefficients in float64, "
                    "torch in the compute dtype, so they round differently")
    w = case.kw.get("sample_weight")
    if isinstance(w, np.ndarray) and np.isnan(case.args[0]).any() and (w == 0).any():
        return "an element weight of 0 on a NaN input: NumPy's gradient is 0 there, torch's NaN"
    return None
