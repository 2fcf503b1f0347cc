"""rules/targets.py: coefficients against the dense float64 reference, index and probability targets."""

from __future__ import annotations

import numpy as np
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st

from crossentropy.rules.options import SoftmaxOptions
from crossentropy.rules.targets import coefficients, smooth, smoothing_affine
from crossentropy.rules.xp import NUMPY


def _dense_reference(target, k, w, s, ignore_index, label_smoothing):
    """a_ic = s_i w_c t'_ic, 0 for an ignored row, written out row by row."""
    n = target.shape[0]
    a = np.zeros((n, k))
    for i in range(n):
        if target.ndim == 1:
            if target[i] == ignore_index:
                continue
            t = np.eye(k)[target[i]]
        else:
            t = target[i]
        t = (1 - label_smoothing) * t + label_smoothing / k
        a[i] = (1.0 if s is None else s[i]) * (np.ones(k) if w is None else w) * t
    return a


@st.composite
def problems(draw):
    n, k = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    if draw(st.booleans()):
        target = rng.integers(0, k, n)
        target[rng.random(n) < 0.3] = -100
    else:
        target = rng.dirichlet(np.ones(k), n)
    w = rng.uniform(0, 3, k) if draw(st.booleans()) else None
    s = rng.uniform(0, 3, n) if draw(st.booleans()) else None
    return target, k, w, s, draw(st.sampled_from([0.0, 0.1, 0.5]))


@given(problems())
def test_coefficients_match_the_dense_reference(problem):
    target, k, w, s, e = problem
    options = SoftmaxOptions(label_smoothing=e)
    coef = coefficients(NUMPY, target, k, options, w=w, s=s, dtype=np.float64)
    expected = _dense_reference(target, k, w, s, options.ignore_index, e)
    assert_close(coef.dense(np.float64), expected)
    assert_close(coef.o, expected.sum(axis=1))


@given(problems())
def test_normalize_scales_o_by_one_factor(problem):
    target, k, w, s, e = problem
    options = SoftmaxOptions(label_smoothing=e)
    plain = coefficients(NUMPY, target, k, options, w=w, s=s, dtype=np.float64).o
    norm = coefficients(NUMPY, target, k, options, w=w, s=s, dtype=np.float64, normalize=True).o
    factor = (1.0 if w is None or w.max() == 0 else w.max()) * (1.0 if s is None or s.max() == 0 else s.max())
    assert_close(norm * factor, plain)


def test_smoothing_golden():
    assert smoothing_affine(0.1, 4) == (0.9, 0.025)
    assert smooth(np.array([1.0, 0.0]), 0.2, 2).tolist() == [0.9, 0.1]
