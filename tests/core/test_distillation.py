"""NumPy distillation losses: every divergence x beta x tau x ignored tokens against the float64 reference (value and
student gradient), sparse k = V equals dense, sparse k < V against a hand computation of the k + 1 bins, finite
differences, golden values, -inf logits, errors, and properties (>= 0, 0 at student == teacher, tau scaling)."""

import itertools
import warnings

import numpy as np
import pytest
import reference as ref
import torch
from conftest import assert_close, numeric_grad
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import rel_entr

import crossentropy as ce
import crossentropy.torch as cet

DIVERGENCES = ["forward_kl", "reverse_kl", "jsd"]
GRID = list(itertools.product(DIVERGENCES, [0.1, 0.5], [1.0, 2.0]))


def _batch(seed=0, shape=(3, 4), vocab=6):
    rng = np.random.default_rng(seed)
    s = rng.normal(scale=2.0, size=shape + (vocab,))
    t = rng.normal(scale=2.0, size=shape + (vocab,))
    y = rng.integers(0, vocab, size=shape)
    y.reshape(-1)[[1, -1]] = -100
    return s, t, y


def _top(t, tau, k):
    """The teacher's top-k classes and their log T at temperature tau."""
    lt = sp_log_softmax(t / tau, axis=-1)
    idx = np.argsort(-lt, axis=-1)[..., :k]
    return idx, np.take_along_axis(lt, idx, -1)


@pytest.mark.parametrize("divergence,beta,tau", GRID)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_dense_matches_reference(divergence, beta, tau, reduction):
    s, t, y = _batch()
    opts = {"divergence": divergence, "beta": beta, "temperature": tau, "reduction": reduction}
    loss, grad = ce.distillation_loss(s, t, y, return_grad=True, **opts)
    ref_loss, ref_grad = ref.distillation_np(s, t, y, divergence=divergence, beta=beta, tau=tau, reduction=reduction)
    assert_close(loss, ref_loss)
    assert_close(grad, ref_grad)
    assert grad.dtype == np.float64 and grad.shape == s.shape
    assert np.all(grad[y == -100] == 0)  # ignored tokens get no gradient


@pytest.mark.parametrize("divergence,beta,tau", GRID)
def test_sparse_with_k_equal_vocab_matches_reference(divergence, beta, tau):
    s, t, y = _batch(1)
    idx, lp = _top(t, tau, s.shape[-1])
    opts = {"divergence": divergence, "beta": beta, "temperature": tau}
    loss, grad = ce.sparse_distillation_loss(s, idx, lp, y, return_grad=True, **opts)
    ref_loss, ref_grad = ref.distillation_np(s, t, y, divergence=divergence, beta=beta, tau=tau)
    assert_close(loss, ref_loss)
    assert_close(grad, ref_grad)


def _hand_bins(s_row, idx_row, lp_row, divergence, beta, tau):
    """The k + 1-bin divergence of one token, by hand: probabilities, the two tails, and scipy's rel_entr."""
    probs = np.exp(s_row / tau) / np.exp(s_row / tau).sum()
    inside = [probs[c] for c in idx_row]
    outside = [probs[c] for c in range(len(s_row)) if c not in set(idx_row)]
    s_bins = np.array(inside + [sum(outside)])
    t_bins = np.append(np.exp(lp_row), 1 - np.exp(lp_row).sum())
    if divergence == "forward_kl":
        d = rel_entr(t_bins, s_bins).sum()
    elif divergence == "reverse_kl":
        d = rel_entr(s_bins, t_bins).sum()
    else:
        m = beta * t_bins + (1 - beta) * s_bins
        d = beta * rel_entr(t_bins, m).sum() + (1 - beta) * rel_entr(s_bins, m).sum()
    return tau**2 * d


@pytest.mark.parametrize("divergence,beta,tau", GRID)
@pytest.mark.parametrize("k", [1, 3])
def test_sparse_top_k_matches_hand_computation(divergence, beta, tau, k):
    s, t, y = _batch(2, shape=(5,))
    idx, lp = _top(t, tau, k)
    per = ce.sparse_distillation_loss(s, idx, lp, y, divergence=divergence, beta=beta, temperature=tau,
                                      reduction="none")
    hand = [0.0 if y[i] == -100 else _hand_bins(s[i], idx[i], lp[i], divergence, beta, tau) for i in range(5)]
    assert_close(per, hand)
    mean = ce.sparse_distillation_loss(s, idx, lp, y, divergence=divergence, beta=beta, temperature=tau)
    assert_close(mean, sum(hand) / 3)


@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("k", [2, 6])
def test_gradients_match_finite_differences(divergence, k):
    s, t, y = _batch(3, shape=(2, 2))
    idx, lp = _top(t, 1.5, k)
    opts = {"divergence": divergence, "beta": 0.3, "temperature": 1.5, "reduction": "sum"}
    _, g_dense = ce.distillation_loss(s, t, y, return_grad=True, **opts)
    assert_close(g_dense, numeric_grad(lambda v: ce.distillation_loss(v, t, y, **opts), s), "finite-difference")
    _, g_sparse = ce.sparse_distillation_loss(s, idx, lp, y, return_grad=True, **opts)
    assert_close(g_sparse, numeric_grad(lambda v: ce.sparse_distillation_loss(v, idx, lp, y, **opts), s),
                 "finite-difference")


def test_golden_values():
    # KL([1/4, 3/4] || [1/2, 1/2]) = 1/4 log(1/2) + 3/4 log(3/2); reverse: 1/2 log 2 + 1/2 log(2/3)
    s, t = np.zeros((1, 2)), np.array([[0.0, np.log(3.0)]])
    assert_close(ce.distillation_loss(s, t), 0.25 * np.log(0.5) + 0.75 * np.log(1.5))
    assert_close(ce.distillation_loss(s, t, divergence="reverse_kl"), 0.5 * np.log(2.0) + 0.5 * np.log(2 / 3))
    # JSD with beta = 1/2 of disjoint one-hots is log 2; logits -inf make the supports disjoint
    s, t = np.array([[0.0, -np.inf]]), np.array([[-np.inf, 0.0]])
    assert_close(ce.distillation_loss(s, t, divergence="jsd"), np.log(2.0))
    # temperature: tau**2 KL(softmax(t/2) || softmax(s/2))
    s, t = np.zeros((1, 2)), np.array([[0.0, 2 * np.log(3.0)]])
    assert_close(ce.distillation_loss(s, t, temperature=2.0), 4 * (0.25 * np.log(0.5) + 0.75 * np.log(1.5)))


def test_negative_infinite_logits():
    s = np.array([[0.0, -np.inf, 1.0]])
    t = np.array([[0.5, -np.inf, 0.0]])
    # a class with zero teacher mass costs nothing in forward KL, even at the student's -inf
    loss, grad = ce.distillation_loss(s, t, return_grad=True)
    ref_loss, ref_grad = ref.distillation_np(s[:, [0, 2]], t[:, [0, 2]])
    assert_close(loss, ref_loss)
    assert_close(grad[:, [0, 2]], ref_grad)
    assert grad[0, 1] == 0
    for divergence in ("reverse_kl", "jsd"):
        loss, grad = ce.distillation_loss(s, t, divergence=divergence, return_grad=True)
        assert np.isfinite(loss) and np.isfinite(grad).all() and grad[0, 1] == 0
    # the student puts mass where the teacher has none: reverse KL is infinite, forward KL is finite
    t0 = np.array([[0.0, -np.inf, -np.inf]])
    assert ce.distillation_loss(s, t0, divergence="reverse_kl") == np.inf
    assert np.isfinite(ce.distillation_loss(s, t0))
    for divergence in DIVERGENCES:  # NaN propagates from either model
        assert np.isnan(ce.distillation_loss(s, np.full_like(t, np.nan), divergence=divergence))
        assert np.isnan(ce.distillation_loss(np.full_like(s, np.nan), t, divergence=divergence))


def test_ignored_tokens_and_all_ignored():
    s, t, y = _batch(4)
    loss = ce.distillation_loss(s, t, y)
    kept = y != -100
    per = ce.distillation_loss(s, t, reduction="none")
    assert_close(loss, per[kept].mean())
    nan_teacher = t.copy()
    nan_teacher[y == -100] = np.nan  # an ignored token's values do not leak
    assert_close(ce.distillation_loss(s, nan_teacher, y), loss)
    none = np.full(y.shape, -100)
    loss, grad = ce.distillation_loss(s, t, none, return_grad=True)
    assert loss == 0 and np.all(grad == 0)


def test_axis_out_and_dtypes():
    s, t, y = _batch(5)
    loss, grad = ce.distillation_loss(s, t, y, divergence="jsd", return_grad=True)
    loss0, grad0 = ce.distillation_loss(np.moveaxis(s, -1, 0), np.moveaxis(t, -1, 0), y, divergence="jsd", axis=0,
                                        return_grad=True)
    assert_close(loss0, loss)
    assert_close(np.moveaxis(grad0, 0, -1), grad)
    buf = s.copy()
    _, out = ce.distillation_loss(buf, t, y, divergence="jsd", return_grad=True, out=buf)
    assert out is buf
    assert_close(buf, grad)
    half = s.astype(np.float16)
    loss16, grad16 = ce.distillation_loss(half, t.astype(np.float16), y, return_grad=True)
    ref16, refg16 = ref.distillation_np(half.astype(np.float64), t.astype(np.float16).astype(np.float64), y)
    assert loss16.dtype == np.float32 and grad16.dtype == np.float16
    assert_close(loss16, ref16, np.float16)
    assert_close(grad16, refg16, np.float16)


@pytest.mark.parametrize("call,kwargs,names", [
    ("dense", {"divergence": "kl"}, "divergence"),
    ("dense", {"divergence": "jsd", "beta": 1.0}, "beta"),
    ("dense", {"beta": 0.0}, "beta"),
    ("dense", {"temperature": 0.0}, "temperature"),
    ("dense", {"temperature": -1.0}, "temperature"),
    ("dense", {"reduction": "avg"}, "reduction"),
    ("vocab", {}, "vocabular"),
    ("target", {}, "target"),
    ("sparse_range", {}, "teacher_indices"),
    ("sparse_repeat", {}, "teacher_indices"),
    ("sparse_mass", {}, "teacher_logprobs"),
    ("sparse_shape", {}, "teacher_indices"),
])
def test_bad_arguments_name_them(call, kwargs, names):
    s, t, y = _batch()
    idx, lp = _top(t, 1.0, 2)
    with pytest.raises(ce.InputValueError, match=names):
        if call == "dense":
            ce.distillation_loss(s, t, y, **kwargs)
        elif call == "vocab":
            ce.distillation_loss(s, t[..., :5], y)
        elif call == "target":
            ce.distillation_loss(s, t, y[:2])
        elif call == "sparse_range":
            ce.sparse_distillation_loss(s, idx + 6, lp)
        elif call == "sparse_repeat":
            ce.sparse_distillation_loss(s, np.zeros_like(idx), lp)
        elif call == "sparse_mass":
            ce.sparse_distillation_loss(s, idx, lp + 1.0)
        else:
            ce.sparse_distillation_loss(s, idx[..., :1], lp)
    assert issubclass(ce.InputValueError, ValueError)


logits = arrays(np.float64, (3, 5), elements=st.floats(-20, 20))


@given(logits, logits, st.sampled_from(DIVERGENCES), st.floats(0.05, 0.95), st.floats(0.5, 4.0))
def test_properties(s, t, divergence, beta, tau):
    opts = {"divergence": divergence, "beta": beta, "temperature": tau, "reduction": "none"}
    per = ce.distillation_loss(s, t, **opts)
    assert np.all(per >= 0)
    self_loss, self_grad = ce.distillation_loss(s, s, **{**opts, "reduction": "sum"}, return_grad=True)
    assert_close(self_loss, 0.0)
    assert_close(self_grad, np.zeros_like(s))
    # tau scaling: the loss at temperature tau is tau**2 times the tau = 1 loss of logits / tau
    assert_close(per, tau**2 * ce.distillation_loss(s / tau, t / tau, **{**opts, "temperature": 1.0}))
    # invariance to a constant shift of either model's logits
    assert_close(ce.distillation_loss(s + 3.0, t - 2.0, **opts), per)


# ------------------------------------------------------------------ issue 21.26: large temperatures
def _plain_forward_kl(s, t, tau):
    """tau**2 KL(T || S) and tau (S - T) per row in float64, by the textbook formula (accurate to ~1e-10 at
    tau = 1000 in float64, far inside the float32 tier)."""
    ls = s / tau - np.log(np.exp(s / tau).sum(-1, keepdims=True))
    lt = t / tau - np.log(np.exp(t / tau).sum(-1, keepdims=True))
    return tau**2 * (np.exp(lt) * (lt - ls)).sum(-1), tau * (np.exp(ls) - np.exp(lt))


@pytest.mark.parametrize("tau", [2.0, 30.0, 1000.0])
def test_forward_kl_at_large_temperatures_within_the_float32_tier(tau):
    rng = np.random.default_rng(0)
    s, t = rng.standard_normal((4, 50)), rng.standard_normal((4, 50)) * 2
    expected, expected_grad = _plain_forward_kl(s, t, tau)
    loss, grad = ce.distillation_loss(s.astype(np.float32), t.astype(np.float32), temperature=tau,
                                      reduction="none", return_grad=True)
    assert_close(loss, expected, np.float32)
    assert_close(grad, expected_grad, np.float32)
    student = torch.from_numpy(s.astype(np.float32)).requires_grad_()
    torch_loss = cet.distillation_loss(student, torch.from_numpy(t.astype(np.float32)), temperature=tau,
                                       reduction="none")
    torch_loss.sum().backward()
    assert_close(torch_loss.detach(), expected, np.float32)
    assert_close(student.grad, expected_grad, np.float32)


@pytest.mark.parametrize("tau", [1e20, 1e160, 1e300])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_kl_tends_to_half_the_variance(tau, dtype):
    # tau**2 KL(T || S) -> Var(t - s) / 2 under the uniform S as tau grows: no NaN, no OverflowError
    rng = np.random.default_rng(1)
    s, t = rng.standard_normal((3, 20)).astype(dtype), rng.standard_normal((3, 20)).astype(dtype)
    limit = (t.astype(np.float64) - s).var(-1) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_close(ce.distillation_loss(s, t, temperature=tau, reduction="none"), limit, dtype)
        assert_close(cet.distillation_loss(torch.from_numpy(s), torch.from_numpy(t), temperature=tau,
                                           reduction="none"), limit, dtype)
