"""The compiled fused row kernel (kernels/compiled.py, kernels/_fused.c) against a float64 reference written from its
formulas, against the NumPy fallback (core/_kernels.py), finite differences, and its own invariances."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_close, numeric_grad
from hypothesis import given
from hypothesis import strategies as st

from crossentropy.core._kernels import softmax_xent_block
from crossentropy.kernels import compiled as fused
from crossentropy.rules.options import SoftmaxOptions
from crossentropy.rules.targets import Coefficients
from crossentropy.rules.xp import NUMPY

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(not fused.AVAILABLE, reason="the compiled kernel is not built or is switched off")

KS = [1, 2, 3, 7, 17, 64, 1000, 32001]
DTYPES = ["float16", "bfloat16", "float32", "float64"]


# ----------------------------------------------------------------------------------------------------------------
# Storage: bfloat16 lives in int16 bits (as torch tensors reach the kernel); everything else is a NumPy dtype.

def store(x64: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(x64)).to(torch.bfloat16).view(torch.int16).numpy()
    return x64.astype(dtype)


def value(stored: np.ndarray, dtype: str) -> np.ndarray:
    """The float64 value of a stored array."""
    if dtype == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(stored)).view(torch.bfloat16).double().numpy()
    return stored.astype(np.float64)


# ----------------------------------------------------------------------------------------------------------------
# The float64 reference, written from the formulas of fused.py.

def dense(n, k, *, y=None, a_y=None, u=None, probs=None, s=None, alpha=1.0, beta=0.0, w=None) -> np.ndarray:
    wv = np.ones(k) if w is None else w
    if y is not None:
        a = np.zeros((n, k)) if u is None else u[:, None] * wv[None, :]
        a[np.arange(n), y] += a_y
        return a
    return s[:, None] * wv[None, :] * (alpha * probs + beta)


def reference(z, a, o, *, y=None, z_loss=0.0, softcap=None, r=None):
    """Loss, gradient (before the row scale r is applied when r is None) and statistics of float64 ``z``."""
    n, k = z.shape
    with np.errstate(all="ignore"):
        zc = softcap * np.tanh(z / softcap) if softcap else z.copy()
        nan = np.isnan(zc).any(axis=1)
        m = np.where(nan, 0.0, np.nanmax(np.where(np.isnan(zc), -np.inf, zc), axis=1))
        sh = np.where(np.isinf(m)[:, None], np.where(zc == m[:, None], 0.0, -np.inf), zc - m[:, None])
        e = np.exp(sh)
        S = e.sum(axis=1)
        log_s = np.log(S)
        lse = m + log_s
        lin = np.where(a != 0, a * sh, 0.0).sum(axis=1)
        loss = np.where(o != 0, o * log_s, 0.0) - lin
        if z_loss:
            loss += np.where(o != 0, z_loss * o * lse**2, 0.0)
        kf = np.where(o == 0, 0.0, o * ((1 + 2 * z_loss * lse) if z_loss else 1.0) / S)
        dcap = 1 - (zc / softcap) ** 2 if softcap else 1.0
        g = (kf[:, None] * e - a) * dcap
        if r is not None:
            g *= r[:, None]
        entropy = log_s - np.where(e != 0, e * sh, 0.0).sum(axis=1) / S
        out = {"loss": loss, "grad": g, "lse": lse, "entropy": entropy, "argmax": np.argmax(zc, axis=1)}
        if y is not None:
            ignored = ~(a != 0).any(axis=1)
            out["p_target"] = np.where(ignored, 0.0, e[np.arange(n), y] / S)
            out["p_target"][nan & ~ignored] = np.nan
    for key in ("loss", "lse", "entropy"):
        out[key][nan] = np.nan
    out["loss"][nan & (o == 0)] = 0.0  # no target weight: the masked product drops even a NaN row
    out["grad"][nan] = np.nan
    return out


# ----------------------------------------------------------------------------------------------------------------
# Problems drawn by hypothesis.

ROW_KINDS = ["normal", "normal", "wide", "plus_inf", "minus_inf", "all_minus_inf", "nan"]


def logits(rng, n, k, kinds) -> np.ndarray:
    z = rng.standard_normal((n, k)) * 3
    for i, kind in enumerate(kinds):
        pick = rng.random(k) < 0.3
        pick[rng.integers(k)] = True
        if kind == "wide":
            z[i] *= 40
        elif kind == "plus_inf":
            z[i, pick] = np.inf
        elif kind == "minus_inf":
            z[i, pick] = -np.inf
        elif kind == "all_minus_inf":
            z[i] = -np.inf
        elif kind == "nan":
            z[i, rng.integers(k)] = np.nan
    return z


@st.composite
def problems(draw, *, dtypes=DTYPES, specials=True):
    k = draw(st.sampled_from(KS))
    n = draw(st.integers(1, 3 if k > 1000 else 9))
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kinds = [draw(st.sampled_from(ROW_KINDS if specials else ["normal", "wide"])) for _ in range(n)]
    z = store(logits(rng, n, k, kinds), dtype)
    index = draw(st.booleans())
    w = rng.uniform(0.2, 2.0, k) * (rng.random(k) > 0.2) if draw(st.booleans()) else None
    kw = {"w": w}
    if index:
        y = rng.integers(0, k, n)
        a_y = rng.uniform(0.5, 2.0, n) * (rng.random(n) > 0.25)  # some rows ignored (a_y = 0)
        u = rng.uniform(0.0, 0.1, n) * (rng.random(n) > 0.25) if draw(st.booleans()) else None
        kw.update(y=y, a_y=a_y, u=u)
    else:
        t = rng.dirichlet(np.ones(k), n) * (rng.random((n, k)) > 0.3)
        p_dtype = draw(st.sampled_from(DTYPES))
        eps = draw(st.sampled_from([0.0, 0.1]))
        kw.update(probs=store(t, p_dtype), s=rng.uniform(0.0, 2.0, n), alpha=1 - eps, beta=eps / k)
        kw["_probs"] = (p_dtype, value(kw["probs"], p_dtype))
    opts = {
        "z_loss": draw(st.sampled_from([0.0, 0.0, 1e-3])),
        "softcap": draw(st.sampled_from([None, None, 15.0])),
        "row_scale": rng.uniform(0.1, 2.0, n) if draw(st.booleans()) else None,
        "scale": draw(st.sampled_from([1.0, 0.25])),
        "threads": draw(st.integers(1, 4)),
        "grad": draw(st.sampled_from(["separate", "alias", "none"])),
        "padded": draw(st.booleans()),
        "stats": draw(st.booleans()),  # entropy makes pass 2 accumulate one more sum
        "portable": draw(st.booleans()),  # the portable loops even where the AVX-512 pass could run
    }
    return z, dtype, kw, opts


def call(z, dtype, kw, opts):
    n, k = z.shape
    z_seen = value(z, dtype)
    if opts["padded"]:
        wide = np.zeros((n, k + 5), dtype=z.dtype)
        wide[:, 2:k + 2] = z
        z = wide[:, 2:k + 2]
    else:
        z = z.copy()
    args = {key: v for key, v in kw.items() if key != "_probs"}
    if "y" in kw:
        a = dense(n, k, y=kw["y"], a_y=kw["a_y"], u=kw["u"], w=kw["w"])
    else:
        a = dense(n, k, probs=kw["_probs"][1], s=kw["s"], alpha=kw["alpha"], beta=kw["beta"], w=kw["w"])
    o = a.sum(axis=1)
    bf16 = tuple(name for name, arr in (("z", z), ("probs", kw.get("probs"))) if arr is not None
                 and arr.dtype == np.int16)
    out = {key: np.full(n, -7.0) for key in ("loss", "lse")}
    if opts.get("stats", True):
        out["entropy"] = np.full(n, -7.0)
        out["argmax"] = np.full(n, -7, dtype=np.int64)
        if "y" in kw:
            out["p_target"] = np.full(n, -7.0)
    grad = {"separate": np.zeros_like(z), "alias": z, "none": None}[opts["grad"]]
    if grad is not None and dtype == "bfloat16":
        bf16 += ("grad",)
    with fused.portable_loops() if opts.get("portable") else contextlib.nullcontext():
        fused.softmax_rows(z, o=o, **args, z_loss=opts["z_loss"], softcap=opts["softcap"], grad=grad,
                           row_scale=opts["row_scale"], scale=opts["scale"], threads=opts["threads"], bf16=bf16,
                           **out)
    if grad is not None:
        out["grad"] = value(grad, dtype)
    return z_seen, a, o, out


def check(z, dtype, kw, opts):
    z_seen, a, o, out = call(z, dtype, kw, opts)
    r = opts["row_scale"] if opts["row_scale"] is not None else np.full(len(o), opts["scale"])
    ref = reference(z_seen, a, o, y=kw.get("y"), z_loss=opts["z_loss"], softcap=opts["softcap"], r=r)
    compute = "float64" if dtype == "float64" else "float32"
    # per-row values are computed in float32 for every 16/32-bit input; the gradient is rounded to its own dtype
    for key in ("loss", "lse", "entropy", "p_target"):
        if key in out:
            assert_close(out[key], ref[key], compute, err_msg=key)
    if "argmax" in out and not opts["softcap"]:  # float32 tanh saturates before float64's: capped ties may differ
        np.testing.assert_array_equal(out["argmax"], ref["argmax"])
    if "grad" in out:
        assert_close(out["grad"], ref["grad"], dtype, err_msg="grad")


@given(problems())
def test_matches_float64_reference_on_the_option_grid(problem):
    check(*problem)


@given(problems(dtypes=["float32", "float64"], specials=False))
def test_argmax_is_the_first_maximum(problem):
    z, dtype, kw, opts = problem
    z[:, -1] = z.max(axis=1)  # a tie with an earlier maximum: the first one wins
    z_seen, _, _, out = call(z, dtype, kw, {**opts, "softcap": None, "stats": True})
    assert np.array_equal(out["argmax"], np.argmax(z_seen, axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_argmax_at_every_position_around_the_search_blocks(dtype):
    """The kernel looks for the first maximum in blocks of 64 classes: put it at each position of k = 130 (with a
    later tie, possibly in the next block), also as +inf, and compare with np.argmax."""
    k = 130
    z = np.tile(np.linspace(-3.0, -1.0, k), (2 * k, 1)).astype(dtype)
    for c in range(k):
        z[c, c] = z[c, min(k - 1, c + 64)] = 5.0
        z[k + c, c] = z[k + c, min(k - 1, c + 64)] = np.inf
    n = len(z)
    argmax = np.full(n, -7, dtype=np.int64)
    fused.softmax_rows(z, o=np.ones(n), y=np.zeros(n, dtype=np.int64), a_y=np.ones(n), loss=np.empty(n),
                       argmax=argmax, threads=2)
    np.testing.assert_array_equal(argmax, np.argmax(z, axis=1))


@given(problems())
def test_threads_and_aliasing_change_nothing(problem):
    z, dtype, kw, opts = problem
    opts = {**opts, "stats": True}
    base = call(z, dtype, kw, {**opts, "threads": 1, "grad": "separate", "padded": False})[3]
    for threads, grad in ((opts["threads"], "alias"), (4, "separate"), (3, "alias")):
        other = call(z, dtype, kw, {**opts, "threads": threads, "grad": grad})[3]
        for key, v in base.items():
            np.testing.assert_array_equal(other[key], v, err_msg=key)


@given(problems(dtypes=["float64"], specials=False))
def test_a_constant_shift_of_a_row_changes_nothing(problem):
    z, dtype, kw, opts = problem
    opts = {**opts, "softcap": None, "z_loss": 0.0}
    base = call(z, dtype, kw, opts)[3]
    shifted = call(z + 5.0, dtype, kw, opts)[3]
    for key in ("loss", "entropy", "p_target", "grad"):
        if key in base:
            assert_close(shifted[key], base[key], np.float64, err_msg=key)


@given(problems(dtypes=["float32", "float64"]))
def test_agrees_with_the_numpy_fallback(problem):
    """The blocked NumPy path (core/_kernels.py) on the options it shares with the kernel."""
    z, dtype, kw, opts = problem
    opts = {**opts, "softcap": None, "z_loss": 0.0, "row_scale": None, "grad": "separate", "padded": False}
    if "probs" in kw:
        p_dtype = kw["_probs"][0]
        if p_dtype == "bfloat16":  # the fallback reads no bfloat16 bits
            return
    z_seen, a, o, out = call(z, dtype, kw, opts)
    n, k = z.shape
    if "y" in kw:
        coef = Coefficients(NUMPY, o=o, n_classes=k, w=kw["w"], y=kw["y"], a_y=kw["a_y"], u=kw["u"])
    else:
        coef = Coefficients(NUMPY, o=o, n_classes=k, w=kw["w"], probs=kw["probs"], s=kw["s"],
                            label_smoothing=kw["beta"] * k)
    grad = np.empty_like(z)
    with np.errstate(all="ignore"):
        loss = softmax_xent_block(z, 0, n, coef, opts["scale"], grad, np.empty((n, k), dtype=z.dtype),
                                  options=SoftmaxOptions())
    assert_close(out["loss"], loss, dtype, err_msg="loss")
    assert_close(out["grad"], grad, dtype, err_msg="grad")


def test_zero_weight_on_an_infinite_logit_costs_nothing():
    z = np.array([[0.5, np.inf], [-np.inf, 0.0]])
    y, a_y, u, w = np.array([1, 1]), np.ones(2), np.full(2, 0.1), np.array([0.0, 1.0])
    loss, g = np.empty(2), np.empty_like(z)
    fused.softmax_rows(z, o=a_y + u, y=y, a_y=a_y, u=u, w=w, loss=loss, grad=g)
    assert_close(loss, [0.0, 0.0])
    assert_close(g, [[0.0, 0.0], [0.0, 0.0]])


# ----------------------------------------------------------------------------------------------------------------
# Golden values, finite differences, the vector exp.

@pytest.mark.parametrize("k", [1, 15, 16, 17, 1023, 1024, 1025, 32001])
def test_avx512_pass_and_portable_loops_agree(k):
    """The same rows with and without the intrinsics pass (identical where the CPU has no AVX-512)."""
    rng = np.random.default_rng(k)
    z = (rng.standard_normal((5, k)) * 30).astype(np.float32)
    z[1, : k // 2] = -np.inf
    z[2, -1] = np.inf
    y, ones = rng.integers(0, k, 5), np.ones(5)
    results = []
    for portable in (False, True):
        loss, g = np.empty(5), np.empty_like(z)
        with fused.portable_loops() if portable else contextlib.nullcontext():
            fused.softmax_rows(z, o=ones, y=y, a_y=ones, loss=loss, grad=g)
        results.append((loss, g))
    assert_close(results[0][0], results[1][0], np.float32)
    # the same reduction and polynomial: the gradients agree to a few float32 ulps, far inside the tolerance table
    (_, g1), (_, g2) = results
    both = np.isfinite(g1) & np.isfinite(g2)
    assert np.array_equal(np.isfinite(g1), np.isfinite(g2))
    assert (ulps(g1[both], g2[both].astype(np.longdouble), np.float32) <= 4).all()
    ref = reference(z.astype(np.float64), dense(5, k, y=y, a_y=ones), ones)
    assert_close(results[0][0], ref["loss"], np.float32)
    assert_close(results[0][1], ref["grad"], np.float32)


def test_golden_values():
    z = np.array([[0.0, 0.0, np.log(2.0)], [1.0, -np.inf, 0.0], [np.inf, np.inf, 0.0], [-np.inf] * 3])
    y = np.array([0, 1, 0, 2])
    a_y = np.array([1.0, 0.0, 1.0, 1.0])  # row 1 is ignored: its -inf target costs nothing
    loss, lse, p, g = np.empty(4), np.empty(4), np.empty(4), np.empty_like(z)
    fused.softmax_rows(z, o=a_y.copy(), y=y, a_y=a_y, loss=loss, lse=lse, p_target=p, grad=g)
    np.testing.assert_array_equal(loss[1], 0.0)
    assert_close(loss, [np.log(4.0), 0.0, np.log(2.0), np.log(3.0)])
    assert_close(lse, [np.log(4.0), np.log(np.e + 1), np.inf, -np.inf])
    assert_close(p, [0.25, 0.0, 0.5, 1 / 3])
    assert_close(g, [[-0.75, 0.25, 0.5], [0, 0, 0], [-0.5, 0.5, 0], [1 / 3, 1 / 3, -2 / 3]])


def test_nan_rows_are_nan_and_other_rows_untouched():
    z = np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]], dtype=np.float32)
    y, ones = np.array([0, 2]), np.ones(2)
    loss, g, am = np.empty(2), np.empty_like(z), np.empty(2, dtype=np.int64)
    fused.softmax_rows(z, o=ones, y=y, a_y=ones, loss=loss, grad=g, argmax=am)
    assert np.isnan(loss[0]) and np.isnan(g[0]).all() and am[0] == 1
    assert_close(loss[1], np.log(np.exp([-2.0, -1.0, 0.0]).sum()), np.float32)
    fused.softmax_rows(z, o=np.array([0.0, 1.0]), y=y, a_y=np.array([0.0, 1.0]), loss=loss, grad=g)  # row 0 ignored
    assert loss[0] == 0.0 and np.isnan(g[0]).all()


@pytest.mark.parametrize("index", [True, False])
def test_gradient_matches_finite_differences(index):
    rng = np.random.default_rng(3)
    n, k = 3, 5
    z0 = rng.standard_normal((n, k))
    w, r = rng.uniform(0.5, 2, k), rng.uniform(0.5, 2, n)
    if index:
        kw = {"y": np.array([0, 3, 4]), "a_y": np.array([1.0, 0.5, 2.0]), "u": np.array([0.1, 0.0, 0.2]), "w": w}
        a = dense(n, k, **kw)
    else:
        kw = {"probs": rng.dirichlet(np.ones(k), n), "s": rng.uniform(0.5, 2, n), "alpha": 0.9, "beta": 0.02,
              "w": w}
        a = dense(n, k, **kw)
    opts = {"o": a.sum(axis=1), "z_loss": 1e-2, "softcap": 4.0}

    def total(z):
        loss = np.empty(n)
        fused.softmax_rows(np.ascontiguousarray(z), loss=loss, **kw, **opts)
        return (r * loss).sum()

    g, loss = np.empty_like(z0), np.empty(n)
    fused.softmax_rows(z0, loss=loss, grad=g, row_scale=r, **kw, **opts)
    assert_close(g, numeric_grad(total, z0), np.float32)  # central differences are good to ~1e-9 here


def ulps(actual, exact, dtype) -> np.ndarray:
    spacing = np.spacing(np.abs(exact).astype(dtype)).astype(np.longdouble)
    return np.abs(actual.astype(np.longdouble) - exact) / spacing


def test_vector_exp_float32_is_within_one_ulp_over_its_whole_range():
    x = np.concatenate([np.linspace(-104.0, 88.72, 3_000_001, dtype=np.float32),
                        np.linspace(-0.5, 0.5, 100_001, dtype=np.float32)])
    exact = np.exp(x.astype(np.longdouble))
    assert ulps(fused.exp(x), exact, np.float32).max() <= 1.01  # measured 1.003 (correct rounding would be 0.5)
    special = fused.exp(np.array([np.inf, -np.inf, np.nan, 89.0, -200.0, 0.0], dtype=np.float32))
    np.testing.assert_array_equal(special, [np.inf, 0.0, np.nan, np.inf, 0.0, 1.0])


def test_vector_exp_float64_is_within_two_ulp_over_its_whole_range():
    x = np.concatenate([np.linspace(-745.0, 709.7, 1_000_001), np.linspace(-0.5, 0.5, 100_001)])
    exact = np.exp(x.astype(np.longdouble))
    assert ulps(fused.exp(x), exact, np.float64).max() <= 2.0
    special = fused.exp(np.array([np.inf, -np.inf, np.nan, 710.0, -800.0, 0.0]))
    np.testing.assert_array_equal(special, [np.inf, 0.0, np.nan, np.inf, 0.0, 1.0])


def test_float16_conversions_match_numpy_exactly():
    h = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)  # every float16 bit pattern
    edges = np.float32([65519.99, 65520.0, 6.0e-8, 2.98e-8, 2.9802322e-8, -0.0, np.inf, -np.inf, np.nan])
    anything = np.frombuffer(np.random.default_rng(7).bytes(4 << 18), dtype=np.float32)
    x = np.concatenate([h.view(np.float16).astype(np.float32), edges, anything])
    bits, back = fused.f16_convert(x, np.resize(h, x.size))
    assert np.array_equal(back[: 1 << 16].view(np.uint32), h.view(np.float16).astype(np.float32).view(np.uint32))
    with np.errstate(all="ignore"):
        expected = x.astype(np.float16).view(np.uint16)
    nan = np.isnan(x)
    np.testing.assert_array_equal(bits[~nan], expected[~nan])
    assert np.isnan(bits[nan].view(np.float16)).all()


def test_bfloat16_gradient_rounds_like_torch():
    rng = np.random.default_rng(5)
    z64 = rng.standard_normal((4, 300))
    zb = torch.from_numpy(z64).to(torch.bfloat16)
    y = rng.integers(0, 300, 4)
    ones, loss = np.ones(4), np.empty(4)
    g = torch.empty_like(zb)
    fused.softmax_rows(zb.view(torch.int16).numpy(), o=ones, y=y, a_y=ones, loss=loss,
                       grad=g.view(torch.int16).numpy(), bf16=("z", "grad"))
    g32 = np.empty((4, 300), dtype=np.float32)
    fused.softmax_rows(zb.float().numpy(), o=ones, y=y, a_y=ones, loss=np.empty(4), grad=g32)
    assert torch.equal(g, torch.from_numpy(g32).to(torch.bfloat16))  # round to nearest even, as torch does


@pytest.mark.slow
def test_the_environment_switch_changes_only_what_auto_picks():
    code = ("from crossentropy.kernels import compiled, dispatch; "
            "from crossentropy.rules.options import SoftmaxOptions; "
            "print(compiled.PREFERRED, dispatch.select(SoftmaxOptions(), compiled=None, triton='no'), "
            "dispatch.select(SoftmaxOptions(impl='compiled'), compiled=None, triton='no'))")
    env = {**os.environ, "CROSSENTROPY_KERNEL": "numpy"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "reference", "compiled"]
    preferred = fused.PREFERRED
    with fused.forced_fallback():
        assert not fused.PREFERRED
    assert fused.PREFERRED == preferred


def test_internal_misuse_raises_runtime_error():
    z, ones = np.zeros((2, 3)), np.ones(2)
    with pytest.raises(RuntimeError, match="exactly one of y"):
        fused.softmax_rows(z, o=ones, loss=np.empty(2))
    with pytest.raises(RuntimeError, match="contiguous class axis"):
        fused.softmax_rows(np.zeros((3, 2)).T, o=ones, y=np.zeros(2, np.int64), a_y=ones, loss=np.empty(2))
    with pytest.raises(RuntimeError, match="float64"):
        fused.softmax_rows(z, o=ones.astype(np.float32), y=np.zeros(2, np.int64), a_y=ones, loss=np.empty(2))
