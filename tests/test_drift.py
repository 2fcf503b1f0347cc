"""Drift: every loss and option runs through the NumPy core and the torch path on the same random float64 inputs,
with infinite logits and all-ignored rows, and must give equal values and gradients; the same bad option must give
the same exception type and message text in both."""

import numpy as np
import pytest
import torch
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st

import crossentropy as ce
import crossentropy.torch as cet

INF = float("inf")


def _torch_run(fn, x, *args, **kw):
    """Loss and the gradient of its sum with respect to ``x`` (a NumPy array), through torch."""
    leaf = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    loss = fn(leaf, *args, **kw)
    (grad,) = torch.autograd.grad(loss.sum(), leaf)
    return loss.detach().numpy(), grad.numpy()


def _same(np_result, torch_result):
    for a, b in zip(np_result, torch_result, strict=True):
        assert_close(a, b, "float64-reference")


@st.composite
def softmax_cases(draw):
    n, k = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.normal(size=(n, k)) * 3
    y = rng.integers(0, k, size=n)
    special = draw(st.sampled_from(["finite", "neg-inf", "all-neg-inf-row", "pos-inf", "all-ignored"]))
    if special == "neg-inf" and k > 1:
        x[0, (y[0] + 1) % k] = -INF
    elif special == "all-neg-inf-row":
        x[0] = -INF
    elif special == "pos-inf":
        x[0, y[0]] = INF
    elif special == "all-ignored":
        y[:] = -100
    if draw(st.booleans()) and special != "all-ignored":
        y[rng.random(n) < 0.3] = -100
    options = {"reduction": draw(st.sampled_from(["none", "sum", "mean"])),
               "label_smoothing": draw(st.sampled_from([0.0, 0.2]))}
    weight = rng.uniform(0, 2, size=k) if draw(st.booleans()) else None
    if weight is not None and draw(st.booleans()):
        weight[0] = 0.0
    soft = draw(st.booleans()) and special != "all-ignored"
    return x, y, weight, soft, options


@st.composite
def softmax_options(draw, finite: bool):
    """The options NumPy softmax_cross_entropy and torch cross_entropy share beyond reduction and smoothing
    (docs/design.md, entry x option): z_loss (on finite logits), softcap, total_weight, ignore_index, impl."""
    return {"z_loss": draw(st.sampled_from([0.0, 1e-2])) if finite else 0.0,
            "softcap": draw(st.sampled_from([None, 4.0])),
            "total_weight": draw(st.sampled_from([None, 3.0])),
            "impl": draw(st.sampled_from(["auto", "reference"]))}


@given(softmax_cases(), st.data())
def test_softmax_cross_entropy(case, data):
    x, y, weight, soft, options = case
    options = {**options, **data.draw(softmax_options(bool(np.isfinite(x).all())))}
    if options["reduction"] != "mean":
        options["total_weight"] = None
    target = ce.one_hot(np.where(y < 0, 0, y), x.shape[1]) if soft else y
    np_result = ce.softmax_cross_entropy(x, target, class_weight=weight, return_grad=True, **options)
    w = None if weight is None else torch.tensor(weight)
    _same(np_result, _torch_run(cet.cross_entropy, x, torch.tensor(target), w, **options))


@given(softmax_cases(), st.data(), st.sampled_from([-100, 0]))
def test_softmax_cross_entropy_stats_and_ignore_index(case, data, ignore_index):
    x, y, weight, _, options = case
    options = {**options, **data.draw(softmax_options(bool(np.isfinite(x).all())))}
    if options["reduction"] != "mean":
        options["total_weight"] = None
    y = np.where(y < 0, ignore_index, y)
    loss, _, stats = ce.softmax_cross_entropy(x, y, class_weight=weight, ignore_index=ignore_index,
                                              return_stats=True, return_grad=True, **options)
    w = None if weight is None else torch.tensor(weight)
    t_loss, t_stats = cet.cross_entropy(torch.tensor(x), torch.tensor(y), w, ignore_index=ignore_index,
                                        return_stats=True, **options)
    assert_close(loss, t_loss.numpy(), "float64-reference")
    for name in ("lse", "entropy", "p_target", "predicted", "correct"):
        assert_close(getattr(stats, name), getattr(t_stats, name).numpy(), "float64-reference", err_msg=name)


@given(softmax_cases(), st.sampled_from([0.0, 0.5, 2.0]), st.sampled_from(["none", "scalar", "class"]))
def test_softmax_focal_loss(case, gamma, alpha_kind):
    x, y, weight, soft, options = case
    alpha = {"none": None, "scalar": 0.25, "class": weight}[alpha_kind]
    np_result = ce.softmax_focal_loss(x, y, gamma=gamma, alpha=alpha, return_grad=True, **options)
    a = torch.tensor(alpha) if isinstance(alpha, np.ndarray) else alpha
    torch_result = _torch_run(cet.softmax_focal_loss, x, torch.tensor(y), gamma, a, **options)
    _same(np_result, torch_result)


@st.composite
def binary_cases(draw):
    n, k = draw(st.integers(0, 5)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.normal(size=(n, k)) * 3
    t = rng.random((n, k)) if draw(st.booleans()) else (rng.random((n, k)) < 0.5).astype(float)
    if n and draw(st.booleans()):
        x[0, 0] = draw(st.sampled_from([INF, -INF]))
    options = {"reduction": draw(st.sampled_from(["none", "sum", "mean"])),
               "label_smoothing": draw(st.sampled_from([0.0, 0.1]))}
    weight = rng.uniform(0, 2, size=(n, k)) if draw(st.booleans()) else None
    if weight is not None and n:
        weight[0, 0] = 0.0
    return x, t, weight, options


@given(binary_cases(), st.booleans())
def test_binary_cross_entropy_with_logits(case, with_pos_weight):
    x, t, weight, options = case
    pw = np.linspace(0.5, 2.0, x.shape[1]) if with_pos_weight else None
    np_result = ce.binary_cross_entropy_with_logits(x, t, pos_weight=pw, sample_weight=weight, return_grad=True,
                                                    **options)
    torch_result = _torch_run(cet.binary_cross_entropy_with_logits, x, torch.tensor(t),
                              None if weight is None else torch.tensor(weight),
                              pos_weight=None if pw is None else torch.tensor(pw), **options)
    _same(np_result, torch_result)


@given(binary_cases(), st.sampled_from([None, 1e-3]))
def test_binary_cross_entropy(case, eps):
    x, t, weight, options = case
    p = 1 / (1 + np.exp(-x))  # includes exact 0 and 1 at the infinite logits
    np_result = ce.binary_cross_entropy(p, t, sample_weight=weight, eps=eps, return_grad=True, **options)
    torch_result = _torch_run(cet.binary_cross_entropy, p, torch.tensor(t),
                              None if weight is None else torch.tensor(weight), eps=eps, **options)
    _same(np_result, torch_result)


@given(binary_cases(), st.sampled_from([0.0, 0.5, 2.0]), st.sampled_from(["none", "scalar", "zero", "class"]))
def test_sigmoid_focal_loss(case, gamma, alpha_kind):
    x, t, weight, options = case
    alpha = {"none": None, "scalar": 0.25, "zero": 0.0, "class": np.linspace(0.0, 1.0, x.shape[1])}[alpha_kind]
    np_result = ce.sigmoid_focal_loss(x, t, gamma=gamma, alpha=alpha, sample_weight=weight, return_grad=True,
                                      **options)
    a = torch.tensor(alpha) if isinstance(alpha, np.ndarray) else alpha
    torch_result = _torch_run(cet.sigmoid_focal_loss, x, torch.tensor(t), gamma, a,
                              weight=None if weight is None else torch.tensor(weight), **options)
    _same(np_result, torch_result)


@given(st.integers(0, 2**31), st.sampled_from(["none", "sum", "mean"]), st.booleans(), st.booleans())
def test_likelihoods(seed, reduction, log_input, full):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.1, 3, size=(4, 3))
    counts = rng.integers(0, 5, size=(4, 3)).astype(float)
    np_result = ce.poisson_nll(x, counts, log_input=log_input, full=full, reduction=reduction, return_grad=True)
    _same(np_result, _torch_run(cet.poisson_nll_loss, x, torch.tensor(counts), log_input, full,
                                reduction=reduction))
    var = rng.uniform(0.1, 2, size=(4, 3))
    np_result = ce.gaussian_nll(x, counts, var, full=full, reduction=reduction, return_grad=True)
    _same(np_result, _torch_run(cet.gaussian_nll_loss, x, torch.tensor(counts), torch.tensor(var), full,
                                reduction=reduction))


X = np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -2.0]])
Y = np.array([0, 2])
BAD_OPTIONS = [
    {"reduction": "avg"},
    {"label_smoothing": 1.0},
    {"label_smoothing": "0.1"},
    {"ignore_index": 1.5},
    {"gamma": -1.0},
    {"gamma": float("nan")},
]
BAD_TARGETS = [np.array([0, 3]), np.array([0, -1])]


def _message(call):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert isinstance(info.value, ce.InputError)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("option", BAD_OPTIONS, ids=lambda o: repr(o))
def test_same_bad_option_same_error(option):
    if "gamma" in option:
        np_call = lambda: ce.softmax_focal_loss(X, Y, **option)  # noqa: E731
        torch_call = lambda: cet.softmax_focal_loss(torch.tensor(X), torch.tensor(Y), **option)  # noqa: E731
    else:
        np_call = lambda: ce.softmax_cross_entropy(X, Y, **option)  # noqa: E731
        torch_call = lambda: cet.cross_entropy(torch.tensor(X), torch.tensor(Y), **option)  # noqa: E731
    assert _message(np_call) == _message(torch_call)


@pytest.mark.parametrize("target", BAD_TARGETS, ids=str)
def test_same_bad_target_same_error(target):
    np_error = _message(lambda: ce.softmax_cross_entropy(X, target))
    torch_error = _message(lambda: cet.cross_entropy(torch.tensor(X), torch.tensor(target)))
    assert np_error[0] == torch_error[0]
    # the same sentence, apart from where the class axis is said to be
    assert np_error[1].split(" (")[0] == torch_error[1].split(" (")[0]


@pytest.mark.parametrize("weight", [[1.0, -1.0, 1.0], [1.0, float("nan"), 1.0]])
def test_same_bad_weight_same_error(weight):
    np_error = _message(lambda: ce.softmax_cross_entropy(X, Y, class_weight=weight))
    torch_error = _message(lambda: cet.cross_entropy(torch.tensor(X), torch.tensor(Y), torch.tensor(weight)))
    assert np_error[0] == torch_error[0] and np_error[1].replace("class_weight", "weight") == torch_error[1]
    np_error = _message(lambda: ce.softmax_focal_loss(X, Y, alpha=weight))
    torch_error = _message(lambda: cet.softmax_focal_loss(torch.tensor(X), torch.tensor(Y), alpha=weight))
    assert np_error == torch_error


@st.composite
def distillation_cases(draw):
    n, v = draw(st.integers(1, 5)), draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    s, t = rng.normal(size=(n, v)) * 3, rng.normal(size=(n, v)) * 3
    y = rng.integers(0, v, size=n)
    special = draw(st.sampled_from(["finite", "student-neg-inf", "teacher-neg-inf", "all-neg-inf-row", "pos-inf",
                                    "all-ignored"]))
    if special == "student-neg-inf":
        s[0, 0] = -INF
    elif special == "teacher-neg-inf":
        t[0, 0] = -INF
    elif special == "all-neg-inf-row":
        s[0] = -INF
    elif special == "pos-inf":
        s[0, 0] = INF
    elif special == "all-ignored":
        y[:] = -100
    if draw(st.booleans()):
        y[rng.random(n) < 0.3] = -100
    options = {"divergence": draw(st.sampled_from(["forward_kl", "reverse_kl", "jsd"])),
               "beta": draw(st.sampled_from([0.1, 0.5])), "temperature": draw(st.sampled_from([1.0, 2.0])),
               "reduction": draw(st.sampled_from(["none", "sum", "mean"]))}
    return s, t, y, draw(st.integers(1, v)), options


def _top_k(t, k, tau):
    """The teacher's top-k classes and their log-probs at the temperature (the offline teacher's record)."""
    lp, idx = torch.log_softmax(torch.tensor(t) / tau, -1).topk(k, -1)
    return idx.numpy(), lp.numpy()


@given(distillation_cases())
def test_distillation_loss(case):
    s, t, y, _, options = case
    np_result = ce.distillation_loss(s, t, y, return_grad=True, **options)
    _same(np_result, _torch_run(cet.distillation_loss, s, torch.tensor(t), torch.tensor(y), **options))


@given(distillation_cases())
def test_sparse_distillation_loss(case):
    s, t, y, k, options = case
    idx, lp = _top_k(t, k, options["temperature"])
    np_result = ce.sparse_distillation_loss(s, idx, lp, y, return_grad=True, **options)
    _same(np_result, _torch_run(cet.sparse_distillation_loss, s, torch.tensor(idx), torch.tensor(lp),
                                torch.tensor(y), **options))


BAD_DISTILLATION_OPTIONS = [
    {"divergence": "kl"},
    {"divergence": None},
    {"beta": 1.0},
    {"beta": "0.5"},
    {"temperature": 0.0},
    {"temperature": float("inf")},
    {"ignore_index": 1.5},
    {"reduction": "avg"},
]


@pytest.mark.parametrize("option", BAD_DISTILLATION_OPTIONS, ids=lambda o: repr(o))
def test_same_bad_distillation_option_same_error(option):
    idx, lp = _top_k(X, 2, 1.0)
    pairs = [(lambda: ce.distillation_loss(X, X[::-1], Y, **option),
              lambda: cet.distillation_loss(torch.tensor(X), torch.tensor(X[::-1].copy()), torch.tensor(Y), **option)),
             (lambda: ce.sparse_distillation_loss(X, idx, lp, Y, **option),
              lambda: cet.sparse_distillation_loss(torch.tensor(X), torch.tensor(idx), torch.tensor(lp),
                                                   torch.tensor(Y), **option))]
    for np_call, torch_call in pairs:
        assert _message(np_call) == _message(torch_call)
