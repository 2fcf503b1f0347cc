"""crossentropy.core.classification, tested four ways: golden values, references (float64 loops, PyTorch,
scikit-learn), gradients against finite differences, and hypothesis properties; plus extremes and bad input."""

import warnings

import numpy as np
import pytest
import reference as ref
import sklearn.metrics
import torch
import torch.nn.functional as F
from conftest import assert_close, numeric_grad, tol
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import crossentropy as ce

X = np.array([[2.3, 2.1, 4.5], [4.2, 3.2, 5.1]])
Y = np.array([1, 2])
W = np.array([25.0, 25.0, 100.0])
REDUCTIONS = ["none", "sum", "mean"]


def t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64 if np.asarray(a).dtype.kind == "f" else None)


# ------------------------------------------------------------------------------------------ strategies
@st.composite
def softmax_cases(draw, soft=None, allow_ignore=True):
    n, k = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    logits = draw(arrays(np.float64, (n, k), elements=st.floats(-8, 8)))
    soft = draw(st.booleans()) if soft is None else soft
    if soft:
        raw = draw(arrays(np.float64, (n, k), elements=st.floats(0, 1)))
        raw[:, 0] += 1e-3
        target = raw / raw.sum(axis=1, keepdims=True)
    else:
        target = draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
        if allow_ignore and draw(st.booleans()):
            target[draw(st.integers(0, n - 1))] = -100
    options = {
        "class_weight": draw(st.none() | arrays(np.float64, k, elements=st.floats(0.1, 3))),
        "sample_weight": draw(st.none() | arrays(np.float64, n, elements=st.floats(0.1, 3))),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.5])),
        "reduction": draw(st.sampled_from(REDUCTIONS)),
    }
    return logits, target, options


# ------------------------------------------------------------------------------------------ golden values
def test_pytorch_vector_index_and_one_hot():
    assert round(float(ce.softmax_cross_entropy(X, Y, class_weight=W)), 6) == 0.870484
    assert round(float(ce.softmax_cross_entropy(X, np.eye(3)[Y], class_weight=W)), 6) == 0.870484
    assert round(float(F.cross_entropy(t(X), t(Y), weight=t(W))), 6) == 0.870484


def test_golden_small_values():
    assert_close(ce.softmax_cross_entropy([[0.0, 0.0]], np.array([1])), np.log(2))
    assert_close(ce.categorical_cross_entropy([[0.775, 0.116, 0.039, 0.070]], np.array([0])), -np.log(0.775))
    assert_close(ce.binary_cross_entropy_with_logits([0.0], [1.0]), np.log(2))
    assert_close(ce.binary_cross_entropy([0.25], [0.0]), -np.log(0.75))
    assert_close(ce.sigmoid_focal_loss([0.0], [1.0], gamma=2.0, alpha=0.25), 0.25 * np.log(2) * 0.25)
    assert_close(ce.gan_discriminator_loss([0.0], [0.0]), 2 * np.log(2))


# ------------------------------------------------------------------------------------------ PyTorch, float64
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ["index", "soft", "weight+ignore", "smoothing", "kdim-index", "kdim-soft"])
def test_softmax_cross_entropy_matches_torch(case, reduction):
    rng = np.random.default_rng(0)
    kwargs, tkwargs = {}, {}
    if case.startswith("kdim"):
        x = rng.normal(size=(3, 4, 5, 2))  # (N, C, d1, d2) with the class axis 1
        kwargs["axis"] = 1
        target = rng.integers(0, 4, size=(3, 5, 2)) if case == "kdim-index" else ce.softmax(rng.normal(size=x.shape),
                                                                                              axis=1)
    else:
        x = rng.normal(size=(6, 4)) * 3
        target = rng.integers(0, 4, size=6)
        if case == "soft":
            target = ce.softmax(rng.normal(size=(6, 4)))
        if case == "weight+ignore":
            target[[1, 4]] = -100
            kwargs["class_weight"] = tkwargs["weight"] = np.array([0.5, 2.0, 1.0, 3.0])
        if case == "smoothing":
            kwargs["label_smoothing"] = tkwargs["label_smoothing"] = 0.2
    xt = t(x).requires_grad_()
    tkwargs = {k: (t(v) if isinstance(v, np.ndarray) else v) for k, v in tkwargs.items()}
    expected = F.cross_entropy(xt, t(target), reduction=reduction, **tkwargs)
    g_out = rng.normal(size=expected.shape)
    (expected * t(g_out)).sum().backward()
    loss, grad = ce.softmax_cross_entropy(x, target, reduction=reduction, return_grad=True, **kwargs)
    assert_close(loss, expected.detach().numpy())
    # Sample i's loss depends only on its own logits, so d sum(g_out * l) / dx = g_out_i * d l_i / dx_i.
    g_out_b = np.expand_dims(g_out, kwargs.get("axis", -1)) if reduction == "none" else g_out
    assert_close(grad * g_out_b, xt.grad.numpy())


def test_pinned_difference_mean_with_weights_and_smoothing_or_soft_targets():
    # pytorch#107680 / #104776: with class weights, PyTorch's "mean" divides the smoothing / soft-target terms by
    # sum_i w_{y_i} (or N), so one-hot and index targets disagree. Here "mean" is sum l_i / sum o_i throughout.
    tw = t(W)
    torch_index = float(F.cross_entropy(t(X), t(Y), weight=tw, label_smoothing=0.1))
    torch_onehot = float(F.cross_entropy(t(X), t(np.eye(3)[Y]), weight=tw, label_smoothing=0.1))
    assert not np.isclose(torch_index, torch_onehot, **tol("disagreement"))  # PyTorch disagrees with itself
    ours_index = float(ce.softmax_cross_entropy(X, Y, class_weight=W, label_smoothing=0.1))
    ours_onehot = float(ce.softmax_cross_entropy(X, np.eye(3)[Y], class_weight=W, label_smoothing=0.1))
    assert_close(ours_index, ours_onehot)
    assert_close(ours_index, ref.softmax_ce(X, Y, class_weight=W, label_smoothing=0.1))
    # PyTorch's soft-target "mean" divides by N, ignoring the weights:
    soft = np.eye(3)[Y]
    assert_close(float(F.cross_entropy(t(X), t(soft), weight=tw)),
                 float(ce.softmax_cross_entropy(X, soft, class_weight=W, reduction="sum")) / 2)
    # ...and the sums agree where the means differ.
    assert_close(float(F.cross_entropy(t(X), t(soft), weight=tw, reduction="sum")),
                 float(ce.softmax_cross_entropy(X, soft, class_weight=W, reduction="sum")))


def test_pinned_difference_all_ignored():
    # pytorch#70348: PyTorch returns NaN when every target is ignored; here the mean is 0 with a zero gradient.
    y = np.array([-100, -100])
    assert torch.isnan(F.cross_entropy(t(X), t(y)))
    loss, grad = ce.softmax_cross_entropy(X, y, return_grad=True)
    assert loss == 0.0
    assert not grad.any()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_family_matches_torch(reduction):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 3)) * 3
    y = rng.uniform(size=(5, 3))
    pw = np.array([0.5, 2.0, 3.0])
    xt = t(x).requires_grad_()
    expected = F.binary_cross_entropy_with_logits(xt, t(y), pos_weight=t(pw), reduction=reduction)
    expected.sum().backward()
    loss, grad = ce.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction=reduction, return_grad=True)
    assert_close(loss, expected.detach().numpy())
    assert_close(grad, xt.grad.numpy())

    p = ce.sigmoid(x)
    pt = t(p).requires_grad_()
    expected = F.binary_cross_entropy(pt, t(y), reduction=reduction)
    expected.sum().backward()
    loss, grad = ce.binary_cross_entropy(p, y, reduction=reduction, return_grad=True)
    assert_close(loss, expected.detach().numpy())
    assert_close(grad, pt.grad.numpy(), "float64-reference")


def test_pinned_differences_bce():
    # PyTorch clamps each log at -100; probabilities here are used as given.
    assert float(F.binary_cross_entropy(t([0.0]), t([1.0]))) == 100.0
    assert ce.binary_cross_entropy([0.0], [1.0]) == np.inf
    assert_close(ce.binary_cross_entropy([0.0], [1.0], eps=1e-7), -np.log(1e-7))
    # PyTorch's element weight "mean" divides by the element count; here by the total weight (semantics 5).
    x, y, w = np.array([0.3, -1.0]), np.array([1.0, 0.0]), np.array([1.0, 3.0])
    torch_mean = float(F.binary_cross_entropy_with_logits(t(x), t(y), weight=t(w)))
    ours_sum = float(ce.binary_cross_entropy_with_logits(x, y, sample_weight=w, reduction="sum"))
    assert_close(torch_mean, ours_sum / 2)
    assert_close(ce.binary_cross_entropy_with_logits(x, y, sample_weight=w), ours_sum / 4)


def test_categorical_matches_sklearn_log_loss():
    rng = np.random.default_rng(2)
    p = ce.softmax(rng.normal(size=(20, 4)))
    y = rng.integers(0, 4, size=20)
    expected = sklearn.metrics.log_loss(y, p, labels=range(4))
    assert_close(ce.categorical_cross_entropy(p, y), expected, "float64-reference")
    sw = rng.uniform(0.1, 2, size=20)
    assert_close(ce.categorical_cross_entropy(p, y, sample_weight=sw),
                 sklearn.metrics.log_loss(y, p, labels=range(4), sample_weight=sw), "float64-reference")
    assert_close(ce.softmax_cross_entropy(np.log(p), y), expected, "float64-reference")


def test_categorical_does_not_clip_and_warns_like_sklearn():
    p = np.array([[0.0, 1.0], [0.5, 0.5]])
    assert ce.categorical_cross_entropy(p, np.array([0, 1])) == np.inf  # scikit-learn clips at eps instead
    assert np.isfinite(sklearn.metrics.log_loss([0, 1], p))
    with pytest.warns(UserWarning, match=r"probs: 1 of 2 rows do not sum to 1"):
        ce.categorical_cross_entropy(np.array([[0.5, 0.4], [0.5, 0.5]]), np.array([0, 1]))
    loss = ce.categorical_cross_entropy(p, np.array([0, 1]), eps=1e-7)
    assert_close(loss, (-np.log(1e-7) - np.log(0.5)) / 2)


def test_sigmoid_focal_matches_torchvision_formula():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3)) * 3
    y = (rng.uniform(size=(4, 3)) > 0.5).astype(float)
    for reduction in REDUCTIONS:
        assert_close(ce.sigmoid_focal_loss(x, y, gamma=2.0, alpha=0.25, reduction=reduction),
                     ref.sigmoid_focal(x, y, gamma=2.0, alpha=0.25, reduction=reduction))


# ------------------------------------------------------------------------------------------ float64 reference
@given(softmax_cases())
def test_softmax_family_matches_reference(case):
    x, target, opts = case
    assert_close(ce.softmax_cross_entropy(x, target, **opts), ref.softmax_ce(x, target, **opts), "float64-reference")
    p = ce.softmax(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert_close(ce.categorical_cross_entropy(p, target, **opts),
                     ref.softmax_ce(p, target, from_probs=True, **opts), "float64-reference")
    alpha = opts.pop("class_weight")
    assert_close(ce.softmax_focal_loss(x, target, gamma=1.5, alpha=alpha, **opts),
                 ref.softmax_ce(x, target, class_weight=alpha, focal_gamma=1.5, **opts), "float64-reference")


@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 3)), elements=st.floats(-20, 20)),
       st.floats(0, 1), st.sampled_from(REDUCTIONS), st.sampled_from([0.0, 0.2]))
def test_bce_matches_reference(x, target_value, reduction, smoothing):
    y = np.full(x.shape, target_value)
    pw = np.linspace(0.5, 2, x.shape[1])
    assert_close(ce.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction=reduction,
                                                     label_smoothing=smoothing),
                 ref.bce(x, y, pos_weight=pw, reduction=reduction, label_smoothing=smoothing), "float64-reference")


# ------------------------------------------------------------------------------------------ gradients
def _check_grad(f, x):
    _, grad = f(x, return_grad=True)
    numeric = numeric_grad(lambda v: np.sum(f(v)), x)
    assert_close(grad, numeric, "finite-difference")


@given(softmax_cases())
def test_softmax_family_gradients(case):
    x, target, opts = case
    _check_grad(lambda v, **k: ce.softmax_cross_entropy(v, target, **opts, **k), x)
    alpha = opts.pop("class_weight")
    for gamma in (0.0, 0.5, 2.0):
        _check_grad(lambda v, gamma=gamma, **k: ce.softmax_focal_loss(v, target, gamma=gamma, alpha=alpha,
                                                                      **opts, **k), x)
    p = ce.softmax(x) * 0.8 + 0.1 / x.shape[1]  # inside (0, 1) so the finite differences stay in [0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _check_grad(lambda v, **k: ce.categorical_cross_entropy(v, target, **opts, **k), p)


@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 3)), elements=st.floats(-6, 6)),
       arrays(np.float64, 3, elements=st.floats(0, 1)), st.sampled_from(REDUCTIONS), st.sampled_from([0.0, 0.5, 2.0]))
def test_elementwise_gradients(x, y_row, reduction, gamma):
    y = np.broadcast_to(y_row[: x.shape[1]], x.shape).copy()
    sw = np.linspace(0.5, 1.5, x.shape[1])
    _check_grad(lambda v, **k: ce.binary_cross_entropy_with_logits(v, y, pos_weight=2.0 * sw, sample_weight=sw,
                                                                   reduction=reduction, **k), x)
    _check_grad(lambda v, **k: ce.sigmoid_focal_loss(v, y, gamma=gamma, alpha=0.3, sample_weight=sw,
                                                     reduction=reduction, **k), x)
    p = ce.sigmoid(x) * 0.9 + 0.05
    _check_grad(lambda v, **k: ce.binary_cross_entropy(v, y, pos_weight=sw, reduction=reduction, **k), p)
    _check_grad(lambda v, **k: ce.gan_generator_loss(v, reduction=reduction, **k), x)
    _check_grad(lambda v, **k: ce.gan_generator_loss(v, non_saturating=False, reduction=reduction, **k), x)


def test_gan_discriminator_gradient_and_identity():
    real, fake = np.array([0.3, -2.0]), np.array([1.0, 0.5, -0.1])
    loss, (g_real, g_fake) = ce.gan_discriminator_loss(real, fake, return_grad=True)
    assert_close(loss, np.mean(ce.softplus(-real)) + np.mean(ce.softplus(fake)))
    assert_close(g_real, numeric_grad(lambda v: ce.gan_discriminator_loss(v, fake), real), "finite-difference")
    assert_close(g_fake, numeric_grad(lambda v: ce.gan_discriminator_loss(real, v), fake), "finite-difference")
    assert_close(ce.gan_generator_loss(fake, non_saturating=False), -np.mean(ce.softplus(fake)))


# ------------------------------------------------------------------------------------------ properties
@given(softmax_cases(), st.floats(-100, 100))
def test_nonnegative_and_shift_invariant(case, c):
    x, target, opts = case
    loss = ce.softmax_cross_entropy(x, target, **opts)
    assert np.all(loss >= 0)
    assert_close(ce.softmax_cross_entropy(x + c, target, **opts), loss, "float64-reference")


@given(softmax_cases(soft=False, allow_ignore=False))
def test_one_hot_equals_index_targets(case):
    x, target, opts = case
    one_hot = np.eye(x.shape[1])[target]
    assert_close(ce.softmax_cross_entropy(x, one_hot, **opts), ce.softmax_cross_entropy(x, target, **opts))
    g1 = ce.softmax_cross_entropy(x, one_hot, return_grad=True, **opts)[1]
    g2 = ce.softmax_cross_entropy(x, target, return_grad=True, **opts)[1]
    assert_close(g1, g2)


@given(softmax_cases())
def test_mean_is_sum_over_total_weight(case):
    x, target, opts = case
    opts.pop("reduction")
    s = np.ones(x.shape[0]) if opts["sample_weight"] is None else opts["sample_weight"]
    cw = np.ones(x.shape[1]) if opts["class_weight"] is None else opts["class_weight"]
    if target.ndim == 1:
        keep = target != -100
        t1 = np.eye(x.shape[1])[np.where(keep, target, 0)] * keep[:, None]
        tt = (1 - opts["label_smoothing"]) * t1 + opts["label_smoothing"] / x.shape[1] * keep[:, None]
    else:
        tt = (1 - opts["label_smoothing"]) * target + opts["label_smoothing"] / x.shape[1]
    total = float(np.sum(s * (tt @ cw)))
    mean = ce.softmax_cross_entropy(x, target, reduction="mean", **opts)
    summed = ce.softmax_cross_entropy(x, target, reduction="sum", **opts)
    assert_close(mean, summed / total if total else 0.0, "float64")


def test_all_ignored_mean_is_zero_with_zero_gradient_everywhere():
    for f in (ce.softmax_cross_entropy, ce.softmax_focal_loss):
        loss, grad = f(X, np.array([-100, -100]), return_grad=True)
        assert loss == 0.0 and not grad.any()
    loss, grad = ce.binary_cross_entropy_with_logits(X, np.ones_like(X), sample_weight=np.zeros(3),
                                                     return_grad=True)
    assert loss == 0.0 and not grad.any()


@given(softmax_cases())
def test_focal_with_gamma_zero_is_cross_entropy(case):
    x, target, opts = case
    w = opts.pop("class_weight")
    assert_close(ce.softmax_focal_loss(x, target, gamma=0.0, alpha=w, **opts),
                 ce.softmax_cross_entropy(x, target, class_weight=w, **opts), "float64-reference")
    y = ce.softmax(x)
    assert_close(ce.sigmoid_focal_loss(x, y, gamma=0.0, reduction=opts["reduction"]),
                 ce.binary_cross_entropy_with_logits(x, y, reduction=opts["reduction"]), "float64-reference")


@given(softmax_cases(), st.sampled_from([-1, 0]))
def test_out_gives_the_same_result(case, axis):
    x, target, opts = case
    if axis == 0:  # the class axis first: transpose the layout
        x, target = x.T.copy(), (target.T.copy() if target.ndim == 2 else target)
    loss, grad = ce.softmax_cross_entropy(x, target, axis=axis, return_grad=True, **opts)
    out = np.full_like(x, np.nan)
    loss2, grad2 = ce.softmax_cross_entropy(x, target, axis=axis, return_grad=True, out=out, **opts)
    assert grad2 is out
    assert_close(loss2, loss, "exact")
    assert_close(out, grad, "exact")
    inplace = x.copy()
    loss3, _ = ce.softmax_cross_entropy(inplace, target, axis=axis, return_grad=True, out=inplace, **opts)
    assert_close(loss3, loss, "exact")
    assert_close(inplace, grad, "exact")


# ------------------------------------------------------------------------------------------ extremes and dtypes
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_float32_extremes_match_float64(smoothing):
    x64 = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [0.5, -0.5, 0.0]])
    y = np.array([0, 2, 1])
    l64, g64 = ce.softmax_cross_entropy(x64, y, label_smoothing=smoothing, reduction="none", return_grad=True)
    l32, g32 = ce.softmax_cross_entropy(x64.astype(np.float32), y, label_smoothing=smoothing, reduction="none",
                                        return_grad=True)
    assert l32.dtype == g32.dtype == np.float32
    assert np.isfinite(l32).all() and np.isfinite(g32).all()
    assert_close(l32, l64, np.float32)
    assert_close(g32, g64, np.float32)


def test_float64_extremes():
    x = np.array([[1e300, -1e300, 0.0]])
    loss, grad = ce.softmax_cross_entropy(x, np.array([1]), return_grad=True)
    assert loss == 2e300 and np.isfinite(grad).all()


def test_infinite_logits():
    x = np.array([[-np.inf, 1.0, 2.0]])
    loss, grad = ce.softmax_cross_entropy(x, np.array([2]), return_grad=True)
    assert np.isfinite(loss) and np.isfinite(grad).all() and grad[0, 0] == 0
    loss = ce.softmax_cross_entropy(x, np.array([[0.0, 0.5, 0.5]]))  # zero target on -inf logit
    assert np.isfinite(loss)
    assert ce.softmax_cross_entropy(x, np.array([0])) == np.inf
    assert ce.softmax_cross_entropy(x, np.array([2]), label_smoothing=0.1) == np.inf  # smoothing puts mass on it
    assert ce.softmax_cross_entropy([[np.inf, 0.0]], np.array([0])) == 0.0
    assert ce.softmax_cross_entropy([[np.inf, 0.0]], np.array([1])) == np.inf
    assert ce.binary_cross_entropy_with_logits([np.inf, -np.inf], [1.0, 0.0]) == 0.0
    assert np.isnan(ce.softmax_cross_entropy([[np.nan, 0.0]], np.array([1])))  # NaN propagates


def test_zero_probability_on_true_class_is_inf():
    assert ce.categorical_cross_entropy([[0.0, 1.0]], np.array([0])) == np.inf
    assert ce.binary_cross_entropy([1.0], [0.0]) == np.inf


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 2.0, 5.0])
def test_focal_gradients_finite_at_saturation(gamma):
    for dtype in (np.float32, np.float64):
        x = np.array([[1e4, -1e4, 0.0], [60.0, 0.0, -60.0]], dtype=dtype)
        loss, grad = ce.softmax_focal_loss(x, np.array([0, 0]), gamma=gamma, return_grad=True)
        assert np.isfinite(loss) and np.isfinite(grad).all()
        xb = np.array([1e4, -1e4, 40.0, -40.0], dtype=dtype)
        loss, grad = ce.sigmoid_focal_loss(xb, np.array([1.0, 0.0, 1.0, 0.0]), gamma=gamma, return_grad=True)
        assert np.isfinite(loss) and np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtypes_follow_the_contract(dtype):
    x = X.astype(dtype)
    loss, grad = ce.softmax_cross_entropy(x, Y, return_grad=True)
    assert loss.dtype == (np.float32 if dtype == np.float16 else dtype)
    assert grad.dtype == dtype
    ref_loss, ref_grad = ce.softmax_cross_entropy(x.astype(np.float64), Y, return_grad=True)
    assert_close(loss, ref_loss, dtype)
    assert_close(grad, ref_grad, dtype)
    loss, grad = ce.binary_cross_entropy_with_logits(x, np.ones_like(x), return_grad=True)
    assert grad.dtype == dtype and loss.dtype == (np.float32 if dtype == np.float16 else dtype)


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call,exc,message", [
    (lambda: ce.softmax_cross_entropy(X, np.array([1, 3])), ValueError,
     r"target has class index 3 at position \(1,\), outside \[0, 2\] for 3 classes"),
    (lambda: ce.softmax_cross_entropy(X, np.array([1, 2, 0])), ValueError,
     r"target holds class indices, so it must have the input's shape without the class axis, \(2,\)"),
    (lambda: ce.softmax_cross_entropy(X, np.array([1.0, 2.0])), ValueError,
     r"target holds floats.*convert it with target.astype\(int\)"),
    (lambda: ce.softmax_cross_entropy(X, np.ones((2, 4)) / 4), ValueError, r"must be probabilities of the input"),
    (lambda: ce.softmax_cross_entropy(X, np.array([[2.0, -1.0, 0.0]] * 2)), ValueError,
     r"target must hold probabilities in \[0, 1\]"),
    (lambda: ce.softmax_cross_entropy(X, Y, class_weight=[1, -1, 1]), ValueError,
     r"class_weight must be non-negative, but its smallest value is -1"),
    (lambda: ce.softmax_cross_entropy(X, Y, class_weight=[1, 1]), ValueError,
     r"class_weight must have shape \(3,\), but got shape \(2,\)"),
    (lambda: ce.softmax_cross_entropy(X, Y, sample_weight=[1, 2, 3]), ValueError,
     r"sample_weight must broadcast to shape \(2,\)"),
    (lambda: ce.softmax_cross_entropy(X, Y, label_smoothing=1.0), ValueError,
     r"label_smoothing must be in \[0, 1\), but got 1.0"),
    (lambda: ce.softmax_cross_entropy(X, Y, label_smoothing=-0.1), ValueError, r"label_smoothing must be in"),
    (lambda: ce.softmax_cross_entropy(X, Y, reduction="avg"), ValueError,
     r"reduction must be one of 'none', 'sum' or 'mean', but got 'avg'"),
    (lambda: ce.softmax_cross_entropy(X, Y, out=np.empty((2, 3))), ValueError, r"out= .* needs return_grad=True"),
    (lambda: ce.softmax_cross_entropy(X, Y, return_grad=True, out=np.empty((2, 3), np.float32)), ValueError,
     r"out must have the input's shape \(2, 3\) and dtype float64"),
    (lambda: ce.softmax_cross_entropy(X, Y, return_grad=True, out=[0.0]), TypeError, r"out must be a NumPy array"),
    (lambda: ce.softmax_cross_entropy(X, Y, ignore_index=None), TypeError, r"ignore_index must be an int"),
    (lambda: ce.softmax_cross_entropy(X, np.array(["a", "b"])), TypeError,
     r"target must be integer class indices or float probabilities"),
    (lambda: ce.softmax_cross_entropy(1.0, Y), ValueError, r"logits must have a class axis"),
    (lambda: ce.categorical_cross_entropy(np.array([[1.5, -0.5]]), np.array([0])), ValueError,
     r"probs must hold probabilities in \[0, 1\], but its values range from -0.5 to 1.5"),
    (lambda: ce.categorical_cross_entropy(np.array([[0.5, 0.5]]), np.array([0]), eps=0.7), ValueError,
     r"eps must be None \(no clipping\) or in \(0, 0.5\)"),
    (lambda: ce.binary_cross_entropy_with_logits([0.0, 1.0], [1.0]), ValueError,
     r"target must have the same shape as logits, \(2,\), but got \(1,\)"),
    (lambda: ce.binary_cross_entropy_with_logits([0.0], [2.0]), ValueError, r"target must hold probabilities"),
    (lambda: ce.binary_cross_entropy_with_logits([0.0], [1.0], pos_weight=[-1.0]), ValueError,
     r"pos_weight must be non-negative"),
    (lambda: ce.binary_cross_entropy([1.2], [1.0]), ValueError, r"probs must hold probabilities in \[0, 1\]"),
    (lambda: ce.softmax_focal_loss(X, Y, gamma=-1.0), ValueError, r"gamma must be a non-negative finite number"),
    (lambda: ce.sigmoid_focal_loss([0.0], [1.0], alpha=1.5), ValueError, r"alpha must hold probabilities"),
    (lambda: ce.gan_discriminator_loss([0.0], [0.0], reduction="none"), ValueError,
     r"reduction='none' does not apply"),
])
def test_bad_input(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


# ------------------------------------------------------------------ issue 21.3: half-precision soft targets
@pytest.mark.parametrize("name", ["softmax_cross_entropy", "softmax_focal_loss"])
@pytest.mark.parametrize("weighted", [False, True])
def test_half_precision_soft_targets_keep_their_mass(name, weighted):
    # the row mass of float16 targets is summed in float64: the loss equals the float64 loss on the same values
    x = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 30.0], [1.0, -2.0, 0.5]])
    t16 = np.array([[0.2, 0.2, 0.2], [0.3333, 0.3333, 0.3333], [0.1, 0.7, 0.2]], np.float16)
    kw = {"class_weight" if name == "softmax_cross_entropy" else "alpha": [0.3, 1.7, 1.1]} if weighted else {}
    fn = getattr(ce, name)
    for reduction in REDUCTIONS:
        expected = fn(x, t16.astype(np.float64), reduction=reduction, **kw)
        assert_close(fn(x, t16, reduction=reduction, **kw), expected, np.float64)
    assert_close(ce.softmax_cross_entropy(np.zeros((1, 3)), np.full((1, 3), 0.2, np.float16), reduction="none"),
                 [3 * float(np.float16(0.2)) * np.log(3)], np.float64)


# ------------------------------------------------------------------ issue 21.10: empty batch with sample weights
@pytest.mark.parametrize("name", ["softmax_cross_entropy", "softmax_focal_loss", "categorical_cross_entropy"])
@pytest.mark.parametrize("soft", [False, True])
def test_empty_batch_with_sample_weight(name, soft):
    target = np.zeros((0, 3)) if soft else np.zeros(0, int)
    fn = getattr(ce, name)
    for reduction in REDUCTIONS:
        loss, grad = fn(np.zeros((0, 3)), target, sample_weight=np.zeros(0), reduction=reduction, return_grad=True)
        assert grad.shape == (0, 3)
        if reduction == "none":
            assert loss.shape == (0,)
        else:
            assert float(loss) == 0.0
