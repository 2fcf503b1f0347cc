"""crossentropy.core.likelihood against PyTorch (float64), finite differences, properties and bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close, numeric_grad
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import crossentropy as ce

REDUCTIONS = ["none", "sum", "mean"]


def t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def test_golden_values():
    assert_close(ce.poisson_nll([0.0], [1.0]), 1.0)
    assert_close(ce.gaussian_nll([1.0], [0.0], [1.0]), 0.5)
    assert_close(ce.gaussian_nll([0.0], [0.0], [1.0], full=True), 0.5 * np.log(2 * np.pi))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [True, False])
def test_poisson_matches_torch(reduction, log_input, full):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 3, size=(4, 3))
    y = rng.integers(0, 6, size=(4, 3)).astype(float)
    xt = t(x).requires_grad_()
    expected = F.poisson_nll_loss(xt, t(y), log_input=log_input, full=full, reduction=reduction)
    expected.sum().backward()
    loss, grad = ce.poisson_nll(x, y, log_input=log_input, full=full, reduction=reduction, return_grad=True)
    assert_close(loss, expected.detach().numpy())
    assert_close(grad, xt.grad.numpy())


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("var_shape", ["same", "last1", "dropped"])
@pytest.mark.parametrize("full", [True, False])
def test_gaussian_matches_torch(reduction, var_shape, full):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    var = {"same": rng.uniform(0.1, 2, (4, 3)), "last1": rng.uniform(0.1, 2, (4, 1)),
           "dropped": rng.uniform(0.1, 2, (4,))}[var_shape]
    var[0, ...] = 1e-9  # below eps: clamped
    xt = t(x).requires_grad_()
    expected = F.gaussian_nll_loss(xt, t(y), t(var), full=full, reduction=reduction)
    expected.sum().backward()
    loss, grad = ce.gaussian_nll(x, y, var, full=full, reduction=reduction, return_grad=True)
    assert_close(loss, expected.detach().numpy())
    assert_close(grad, xt.grad.numpy())


@given(arrays(np.float64, st.integers(1, 6), elements=st.floats(-3, 3)), st.sampled_from(REDUCTIONS))
def test_gradients_and_nonnegativity(x, reduction):
    counts = np.arange(x.size, dtype=float) % 4
    _, g = ce.poisson_nll(x, counts, reduction=reduction, return_grad=True)
    numeric = numeric_grad(lambda v: np.sum(ce.poisson_nll(v, counts, reduction=reduction)), x)
    assert_close(g, numeric, "finite-difference")
    y = np.linspace(-1, 1, x.size)
    _, g = ce.gaussian_nll(x, y, 0.5, reduction=reduction, return_grad=True)
    numeric = numeric_grad(lambda v: np.sum(ce.gaussian_nll(v, y, 0.5, reduction=reduction)), x)
    assert_close(g, numeric, "finite-difference")
    # The full Poisson NLL is a negative log-probability (up to Stirling's approximation for t > 1), so >= 0
    # for integer counts; the Gaussian NLL with var=1/(2 pi) and full=True is >= 0.
    assert np.all(ce.poisson_nll(np.exp(x), counts, log_input=False, full=True, reduction="none") >= -1e-3)
    assert np.all(ce.gaussian_nll(x, y, 1 / (2 * np.pi), full=True, reduction="none") >= 0)


def test_bad_input():
    with pytest.raises(ValueError, match=r"target must hold non-negative counts, but its smallest value is -1"):
        ce.poisson_nll([0.0], [-1.0])
    with pytest.raises(ValueError, match=r"input must be a non-negative rate when log_input=False"):
        ce.poisson_nll([-1.0], [1.0], log_input=False)
    with pytest.raises(ValueError, match=r"target must have the same shape as input"):
        ce.poisson_nll([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match=r"var must have the input's shape \(2, 3\), that shape with the last "):
        ce.gaussian_nll(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((3,)))
    with pytest.raises(ValueError, match=r"var must be non-negative, but its smallest value is -1"):
        ce.gaussian_nll([0.0], [0.0], [-1.0])
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        ce.gaussian_nll([0.0], [0.0], [1.0], reduction="average")
