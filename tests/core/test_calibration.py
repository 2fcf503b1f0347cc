"""fit_temperature: a closed-form golden value, a brute-force minimiser (grid + SciPy's Brent), the objective's
derivatives against finite differences, scale equivariance and weights as repetition, edge cases and bad input."""

import warnings

import numpy as np
import pytest
from conftest import assert_close, numeric_grad
from hypothesis import given
from hypothesis import strategies as st
from reference import brute_force_temperature

import crossentropy as ce
from crossentropy.core.calibration import TEMPERATURE_RANGE, _check, _Objective


def _noisy_problem(seed, n=300, k=6, scale=3.0, hit=0.6):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * scale
    y = np.where(rng.random(n) < hit, z.argmax(axis=1), rng.integers(0, k, n))
    return z, y


def test_golden_binary_closed_form():
    # four samples with logits (0, 1), three of class 1: the optimum has sigmoid(1/T) = 3/4, so T = 1/log 3
    assert_close(ce.fit_temperature([[0.0, 1.0]] * 4, [1, 1, 1, 0]), 1 / np.log(3))
    # the same as one sigmoid logit per sample, and as sample weights 3 and 1
    assert_close(ce.fit_temperature(np.ones(4), [1, 1, 1, 0]), 1 / np.log(3))
    assert_close(ce.fit_temperature([[0.0, 1.0]] * 2, [1, 0], sample_weight=[3.0, 1.0]), 1 / np.log(3))


@pytest.mark.parametrize("seed,scale,hit", [(0, 3.0, 0.6), (1, 0.3, 0.9), (2, 10.0, 0.3), (3, 1.0, 0.5)])
def test_equals_brute_force_minimiser(seed, scale, hit):
    z, y = _noisy_problem(seed, scale=scale, hit=hit)
    assert_close(ce.fit_temperature(z, y), brute_force_temperature(z, y), "minimizer")


def test_weighted_equals_brute_force_and_repetition():
    z, y = _noisy_problem(4, n=120)
    w = np.random.default_rng(4).integers(0, 4, len(y)).astype(float)
    t = ce.fit_temperature(z, y, sample_weight=w)
    assert_close(t, brute_force_temperature(z, y, w), "minimizer")
    rows = np.repeat(np.arange(len(y)), w.astype(int))
    assert_close(t, ce.fit_temperature(z[rows], y[rows]))


def test_probabilities_via_log_with_zeros():
    """Probabilities enter as log(p); a probability of 0 off the target is a -inf logit, which stays at p = 0."""
    z, y = _noisy_problem(5, n=200, k=4)
    p = ce.softmax(z)
    p[np.arange(len(y)), (y + 1) % 4] = 0.0
    p /= p.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        logp = np.log(p)
    finite = np.where(np.isfinite(logp), logp, -1e4)  # exp(-1e4 / T) is exactly 0 at every T in play
    assert_close(ce.fit_temperature(logp, y), brute_force_temperature(finite, y), "minimizer")


def test_objective_derivatives_match_finite_differences():
    z, y = _noisy_problem(6, n=50, k=5)
    objective = _Objective(*_check(z, y, None))
    for b in (0.0, 0.3, 1.0, 2.5):
        assert_close(objective.loss(b), ce.softmax_cross_entropy(b * z, y))
        d1, d2 = objective.derivatives(b)
        assert_close(d1, numeric_grad(lambda v: objective.loss(float(v[0])), np.array([b]))[0], "finite-difference")
        assert_close(d2, numeric_grad(lambda v: objective.derivatives(float(v[0]))[0], np.array([b]))[0],
                     "finite-difference")
        assert d2 >= 0  # convex in b = 1/T


@given(seed=st.integers(0, 2**31 - 1), c=st.floats(0.01, 100.0), shift=st.floats(-50, 50))
def test_scale_equivariance_and_shift_invariance(seed, c, shift):
    z, y = _noisy_problem(seed, n=40, k=3, hit=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rare draws hit an edge case; equivariance holds there too
        t = ce.fit_temperature(z, y)
        assert_close(ce.fit_temperature(c * z, y), c * t)
        assert_close(ce.fit_temperature(z + shift, y), t)
    assert t > 0


@given(seed=st.integers(0, 2**31 - 1))
def test_optimum_is_a_minimum_and_never_worse_than_t1(seed):
    z, y = _noisy_problem(seed, n=60, k=4, hit=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t = ce.fit_temperature(z, y)
    loss = [float(ce.softmax_cross_entropy(z / v, y)) for v in (t, t * 1.01, t / 1.01, 1.0)]
    assert loss[0] <= min(loss[1:]) + 1e-12


def test_separable_returns_lower_bound_with_warning():
    z = np.array([[3.0, 0.0, -1.0], [0.0, 2.0, 1.0]])
    with pytest.warns(UserWarning, match="perfectly separable"):
        t = ce.fit_temperature(z, [0, 1])
    assert t == TEMPERATURE_RANGE[0] * 4.0  # the largest spread of a row is 4


def test_all_wrong_returns_upper_bound_with_warning():
    z = np.array([[3.0, 0.0], [0.0, 2.0]])
    with pytest.warns(UserWarning, match="no better than uniform"):
        t = ce.fit_temperature(z, [1, 0])
    assert t == TEMPERATURE_RANGE[1] * 3.0
    loss = float(ce.softmax_cross_entropy(z / t, [1, 0]))
    assert np.log(2) - 1e-5 < loss <= float(ce.softmax_cross_entropy(z, [1, 0]))


def test_constant_logits_return_one_with_warning():
    with pytest.warns(UserWarning, match="constant"):
        assert ce.fit_temperature(np.full((5, 3), 2.5), [0, 1, 2, 0, 1]) == 1.0


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"logits": np.zeros((3, 2, 2)), "target": [0, 1, 0]}, ce.InputValueError, "logits must have shape"),
    ({"logits": np.zeros((0, 2)), "target": np.zeros(0, int)}, ce.InputValueError, "n_samples >= 1"),
    ({"logits": [[0.0, np.nan]], "target": [0]}, ce.InputValueError, "NaN or \\+inf"),
    ({"logits": [[0.0, 1.0]], "target": [0.0]}, ce.InputTypeError, "target must hold integer class indices"),
    ({"logits": [[0.0, 1.0]], "target": [2]}, ce.InputValueError, "target has class index 2"),
    ({"logits": [[0.0, 1.0]], "target": [-1]}, ce.InputValueError, "no ignored index"),
    ({"logits": [[0.0, 1.0]], "target": [0, 1]}, ce.InputValueError, "target holds class indices"),
    ({"logits": [[0.0, 1.0]] * 2, "target": [0, 1], "sample_weight": [1.0, -1.0]}, ce.InputValueError,
     "sample_weight must be non-negative"),
    ({"logits": [[0.0, 1.0]] * 2, "target": [0, 1], "sample_weight": [0.0, 0.0]}, ce.InputValueError,
     "sample_weight sums to 0"),
    ({"logits": [[0.0, -np.inf], [0.0, 1.0]], "target": [1, 0]}, ce.InputValueError, "-inf at a sample's target"),
    ({"logits": [["a", "b"]], "target": [0]}, ce.InputTypeError, "logits must hold real numbers"),
])
def test_bad_input(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        ce.fit_temperature(**kwargs)


# ------------------------------------------------------------------ issue 21.28: extreme scales
def test_fit_temperature_is_invariant_to_the_scale_of_weights_and_scales_with_logits():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 60)
    z = rng.standard_normal((60, 4)) + 2.0 * np.eye(4)[y]
    w = rng.uniform(0.5, 2, 60)
    plain = ce.fit_temperature(z, y, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning at any scale
        for c in (1e307, 1e-300):
            assert_close(ce.fit_temperature(z, y, sample_weight=w * c), plain, "minimizer")
        for c in (1e200, 1e-200):
            assert_close(ce.fit_temperature(z * c, y, sample_weight=w) / c, plain, "minimizer")
