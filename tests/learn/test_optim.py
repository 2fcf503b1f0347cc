"""crossentropy.learn.models.optim: each optimizer's update rule against a hand-computed step, convergence on a convex
quadratic, decoupled vs coupled decay, schedules and bad input."""

import math

import numpy as np
import pytest
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st

from crossentropy.learn.models.optim import OPTIMIZERS, Adam, AdamW, Momentum, RMSProp, make_optimizer, scheduled_lr


def test_single_steps_golden():
    g = np.array([0.5, -2.0])
    p = np.array([1.0, 1.0])
    make_optimizer("sgd", 0.1).step([p], [g])
    assert_close(p, [0.95, 1.2])
    p = np.array([1.0, 1.0])
    opt = Momentum(0.1, beta=0.9)
    opt.step([p], [g])
    opt.step([p], [g])
    assert_close(p, 1.0 - 0.1 * g - 0.1 * (0.9 * g + g))
    p = np.array([1.0, 1.0])
    Adam(0.1).step([p], [g])  # the first bias-corrected step: lr g / (|g| + eps / sqrt(1 - beta2)), ~ lr sign(g)
    assert_close(p, 1.0 - 0.1 * g / (np.abs(g) + 1e-8 / np.sqrt(1 - 0.999)))
    p = np.array([1.0, 1.0])
    RMSProp(0.1, rho=0.9).step([p], [g])
    assert_close(p, 1.0 - 0.1 * g / (np.sqrt(0.1 * g * g) + 1e-8))


def test_decoupled_weight_decay():
    p1, p2 = np.array([2.0]), np.array([2.0])
    zero = np.array([0.0])
    AdamW(0.1, weight_decay=0.5).step([p1], [zero])
    assert_close(p1, 2.0 - 0.1 * 0.5 * 2.0)  # the decay does not pass through Adam's normalisation
    Adam(0.1, weight_decay=0.5).step([p2], [zero])
    assert_close(p2, 2.0 - 0.1 / (1.0 + 1e-8 / np.sqrt(1 - 0.999)))  # coupled: the decay is a gradient, normalised
    p3 = np.array([2.0])
    make_optimizer("sgd", 0.1, 0.5).step([p3], [zero], decay=[False])
    assert_close(p3, 2.0)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_converges_on_a_quadratic(name):
    target = np.array([3.0, -1.0, 0.5])
    p = np.zeros(3)
    opt = make_optimizer(name, {"sgd": 0.1, "momentum": 0.05, "adam": 0.05, "adamw": 0.05, "rmsprop": 0.01}[name])
    for _ in range(2000):
        opt.step([p], [p - target])
    assert_close(p, target, "iterative")


@given(st.integers(0, 99), st.integers(1, 100))
def test_schedules(epoch, total):
    assert scheduled_lr("constant", 0.1, epoch, total) == 0.1
    cos = scheduled_lr("cosine", 0.1, epoch, total)
    assert 0 <= cos <= 0.1
    assert math.isclose(scheduled_lr("cosine", 0.1, 0, total), 0.1)
    assert scheduled_lr("step", 0.1, epoch, total) == pytest.approx(0.1 * 0.1 ** (epoch // max(1, total // 3)))


def test_bad_input():
    with pytest.raises(ValueError, match=r"optimizer must be one of sgd, momentum, adam, adamw, rmsprop"):
        make_optimizer("lbfgs", 0.1)
    with pytest.raises(ValueError, match=r"learning_rate must be positive"):
        make_optimizer("sgd", 0.0)
    with pytest.raises(ValueError, match=r"weight_decay must be non-negative"):
        make_optimizer("sgd", 0.1, -1.0)
    with pytest.raises(ValueError, match=r"lr_schedule must be one of constant, cosine, step"):
        scheduled_lr("linear", 0.1, 0, 10)
