"""Every core/torch reproducer of issue 12, fixed or pinned as documented in docs/semantics.md.

The estimator / persistence / CLI items (#3, #9, #11-#18, #20, #19's CLI messages) belong to other branches; the
fuzzers in this folder check their invariants.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close

import crossentropy as ce
import crossentropy.torch as cet

INF = np.inf


def test_1_smoothing_with_zero_class_weight_and_infinite_logit_is_finite():
    x, y, w = [[0.0, -INF, 1.0]], [0], [1.0, 0.0, 1.0]
    value = ce.softmax_cross_entropy(x, y, class_weight=w, label_smoothing=0.1)
    one_hot = ce.softmax_cross_entropy(x, [[1.0, 0.0, 0.0]], class_weight=w, label_smoothing=0.1)
    assert np.isfinite(value)
    assert_close(value, one_hot)
    f64 = torch.float64
    t = cet.cross_entropy(torch.tensor(x, dtype=f64), torch.tensor(y), weight=torch.tensor(w, dtype=f64),
                          label_smoothing=0.1)
    assert_close(t, value)


def test_1_all_zero_class_weights_give_zero_in_both_backends():
    x = [[0.0, -INF, 1.0]]
    assert ce.softmax_cross_entropy(x, [0], class_weight=[0.0, 0.0, 0.0]) == 0.0
    assert float(cet.cross_entropy(torch.tensor(x), torch.tensor([0]), weight=torch.zeros(3))) == 0.0


@pytest.mark.parametrize("x, t, alpha", [(-INF, 1.0, 0.0), (INF, 0.0, 1.0)])
def test_2_sigmoid_focal_alpha_zero_or_one_on_infinite_logit_is_zero(x, t, alpha):
    assert ce.sigmoid_focal_loss([x], [t], alpha=alpha) == 0.0
    assert float(cet.sigmoid_focal_loss(torch.tensor([x]), torch.tensor([t]), alpha=alpha)) == 0.0


@pytest.mark.parametrize("kw", [{"sample_weight": [1e-50] * 3}, {"class_weight": [1e39] * 4}])
def test_4_float32_weighted_mean_is_scale_invariant(kw):
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    plain = ce.softmax_cross_entropy(x, [0, 1, 2])
    assert_close(ce.softmax_cross_entropy(x, [0, 1, 2], **kw), plain, np.float32)


def test_4_entropy_normalize_does_not_overflow():
    assert_close(ce.entropy([1e308, 1e308], normalize=True), math.log(2))
    assert_close(ce.entropy([1e-320, 1e-320], normalize=True), math.log(2))  # subnormal counts
    expected = ce.kl_divergence([0.5, 0.5], [0.25, 0.75])
    assert_close(ce.kl_divergence([1e308, 1e308], [1.0, 3.0], normalize=True), expected)


def test_4_entropy_normalize_refuses_infinite_counts():
    with pytest.raises(ce.InputValueError, match="p has an infinite value"):
        ce.entropy([INF, 1.0], normalize=True)


def test_4_gaussian_kl_at_the_ends_of_the_float_range():
    expected = 0.5 * (math.log(1e300) - math.log(1e-300) + 1e-300 / 1e300 - 1.0)  # about 690.3
    assert_close(ce.gaussian_kl(0.0, 1e-300, 0.0, 1e300), expected)
    assert 690 < expected < 691


@pytest.mark.parametrize("method", ["balanced", "effective_number"])
@pytest.mark.parametrize("labels", [[], np.array([], dtype=np.int64)])
def test_5_class_weights_of_no_labels_is_an_error(labels, method):
    with pytest.raises(ce.InputValueError, match="labels is empty"):
        ce.class_weights(labels, n_classes=3, method=method)


def test_5_partly_overlapping_out_is_refused_and_out_logits_works():
    buf = np.zeros((2, 4))
    with pytest.raises(ce.InputValueError, match="out overlaps"):
        ce.softmax_cross_entropy(buf[:, :3], [0, 1], out=buf[:, 1:], return_grad=True)
    x = np.array([[1.0, 2.0, 3.0]])
    _, expected = ce.softmax_cross_entropy(x, [0], return_grad=True)
    _, g = ce.softmax_cross_entropy(x, [0], return_grad=True, out=x)
    assert g is x
    assert_close(g, expected, "exact")


@pytest.mark.parametrize("kw", [{"softcap": float("inf")}, {"z_loss": float("inf")}])
def test_5_infinite_softcap_or_z_loss_is_refused(kw):
    with pytest.raises(ce.InputValueError, match=next(iter(kw))):
        cet.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), **kw)


@pytest.mark.parametrize("full", [False, True])
def test_5_poisson_zero_log_zero(full):
    # log_input=False, count 0 at rate 0 with eps=0: 0 log 0 = 0; the loss is x = 0 and the gradient 1.
    loss, grad = ce.poisson_nll([0.0, 2.0], [0.0, 0.0], log_input=False, eps=0.0, full=full, reduction="sum",
                                return_grad=True)
    assert_close(loss, 2.0)
    assert_close(grad, [1.0, 1.0])
    x = torch.tensor([0.0, 2.0], dtype=torch.float64, requires_grad=True)
    t_loss = cet.poisson_nll_loss(x, torch.zeros(2, dtype=torch.float64), log_input=False, eps=0.0, full=full,
                                  reduction="sum")
    t_loss.backward()
    assert_close(t_loss.detach(), 2.0)
    assert_close(x.grad, [1.0, 1.0])
    # PyTorch gives NaN here (0 * log 0); this is a documented difference.
    assert math.isnan(float(F.poisson_nll_loss(torch.zeros(1), torch.zeros(1), log_input=False, eps=0.0)))


def test_5_poisson_negative_rate_same_error_in_both_backends():
    with pytest.raises(ce.InputValueError) as a:
        ce.poisson_nll([-1.0], [1.0], log_input=False)
    with pytest.raises(ce.InputValueError) as b:
        cet.poisson_nll_loss(torch.tensor([-1.0]), torch.tensor([1.0]), log_input=False)
    assert str(a.value) == str(b.value)
    assert "input must be a non-negative rate" in str(a.value)


def test_6_empty_elementwise_mean_is_zero_in_both():
    assert ce.binary_cross_entropy_with_logits(np.zeros(0), np.zeros(0)) == 0.0
    assert float(cet.binary_cross_entropy_with_logits(torch.zeros(0), torch.zeros(0))) == 0.0


def test_7_pinned_difference_soft_targets_not_summing_to_one():
    # docs/semantics.md: "mean" divides by the target mass sum_i o_i, PyTorch by N. Scaling the targets by c
    # leaves our "mean" unchanged and multiplies PyTorch's by c. No warning: targets of any mass are meaningful.
    x = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[0.2, 0.2, 0.2], [0.5, 0.5, 0.5]], dtype=torch.float64)
    rows = -(t * torch.log_softmax(x, 1)).sum(1)
    ours_np = ce.softmax_cross_entropy(x.numpy(), t.numpy())
    ours_t = cet.cross_entropy(x, t)
    assert_close(ours_np, rows.sum() / t.sum(), "float64-reference")
    assert_close(ours_t, ours_np, "float64-reference")
    assert_close(F.cross_entropy(x, t), rows.mean(), "float64-reference")
    assert not np.isclose(ours_np, float(F.cross_entropy(x, t)))
    assert_close(ce.softmax_cross_entropy(x.numpy(), t.numpy() / 2), ours_np, "float64-reference")
    assert_close(F.cross_entropy(x, t / 2), F.cross_entropy(x, t) / 2, "float64-reference")
    assert_close(ce.softmax_cross_entropy(x.numpy(), t.numpy(), reduction="sum"), rows.sum(), "float64-reference")


def test_8_double_backward():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 3])
    assert torch.autograd.gradgradcheck(lambda z: cet.cross_entropy(z, y, label_smoothing=0.1), (x,))


@pytest.mark.parametrize("shape, tshape, kind", [
    ((0, 0), (0,), "classes"), ((2, 0), (2,), "classes"), ((0, 3), (0,), "ok"), ((2, 3, 0), (2, 0), "ok"),
    ((0, 3, 4), (0, 4), "ok"), ((0, 0, 5), (0, 5), "classes"),
])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_10_degenerate_shapes(shape, tshape, kind, reduction):
    x, y = np.zeros(shape), np.zeros(tshape, dtype=np.int64)
    tx, ty = torch.zeros(shape, requires_grad=True), torch.zeros(tshape, dtype=torch.long)
    if kind == "classes":
        with pytest.raises(ce.InputValueError, match="0 classes") as a:
            ce.softmax_cross_entropy(x, y, axis=1, reduction=reduction)
        with pytest.raises(ce.InputValueError, match="0 classes"):
            cet.cross_entropy(tx, ty, reduction=reduction)
        assert "at least one class is needed" in str(a.value)
        return
    value, grad = ce.softmax_cross_entropy(x, y, axis=1, reduction=reduction, return_grad=True)
    t_value = cet.cross_entropy(tx, ty, reduction=reduction)
    t_value.sum().backward()
    assert grad.shape == shape and tuple(tx.grad.shape) == shape
    if reduction == "none":
        assert np.shape(value) == tshape and tuple(t_value.shape) == tshape
    else:
        assert value == 0.0 and float(t_value.detach()) == 0.0


def test_19_focal_alpha_message_and_numpy_int_threads():
    for fn, args in [(ce.softmax_focal_loss, (np.zeros((2, 3)), [0, 1])),
                     (cet.softmax_focal_loss, (torch.zeros(2, 3), torch.tensor([0, 1])))]:
        with pytest.raises(ce.InputValueError, match="^alpha must be non-negative"):
            fn(*args, alpha=[1.0, -1.0, 1.0])
    before = ce.get_num_threads()
    try:
        ce.set_num_threads(np.int64(2))
        assert ce.get_num_threads() == 2
    finally:
        ce.set_num_threads(before)


# ----------------------------------------------------------------------------------- found by the fuzz suite
def test_fuzz_found_weights_beyond_the_compute_dtype_are_refused_for_sum():
    x = np.array([[0.0, 1.0], [3e38, 0.0]], dtype=np.float32)
    w = [0.5, 1e300]
    with pytest.raises(ce.InputValueError, match="beyond the largest float32"):
        ce.softmax_cross_entropy(x, [0, 1], class_weight=w, reduction="sum")
    with pytest.raises(ce.InputValueError, match="beyond the largest float32"):
        cet.cross_entropy(torch.from_numpy(x), torch.tensor([0, 1]), weight=torch.tensor(w, dtype=torch.float64),
                          reduction="sum")
    assert np.isfinite(ce.softmax_cross_entropy(x, [0, 1], class_weight=w))  # "mean" normalises them


def test_fuzz_found_overflow_rounds_to_inf_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ce.softmax_cross_entropy([[1.7e308, -1.7e308]], [1], reduction="sum") == INF
        _, g = ce.binary_cross_entropy(np.float16(6e-8), np.float16(1.0), reduction="sum", return_grad=True)
        assert g == -INF  # -1 / 6e-8 is beyond float16's range
        assert ce.gaussian_kl(-1e200, 1.0, 1e200, 1.0) == INF
        assert_close(ce.gaussian_entropy(1e308), 0.5 * (math.log(2 * math.pi * math.e) + math.log(1e308)))


def test_fuzz_found_empty_axis_logsumexp_and_softmax():
    assert_close(ce.logsumexp(np.zeros((3, 0))), [-INF] * 3)
    assert ce.softmax(np.zeros((3, 0))).shape == (3, 0)


@pytest.mark.parametrize("log_input, x", [(True, INF), (True, 3e38), (False, INF)])
def test_fuzz_found_poisson_at_an_infinite_rate_is_inf_in_both(log_input, x):
    loss, grad = ce.poisson_nll(np.array([x], np.float32), np.array([3.0], np.float32), log_input=log_input,
                                reduction="sum", return_grad=True)
    xt = torch.tensor([x], dtype=torch.float32, requires_grad=True)
    t_loss = cet.poisson_nll_loss(xt, torch.tensor([3.0]), log_input=log_input, reduction="sum")
    t_loss.backward()
    assert loss == INF and float(t_loss.detach()) == INF
    assert_close(xt.grad, grad, np.float32)
    assert not np.isnan(grad).any()


def test_fuzz_found_torch_checks_eps_and_reads_sequences_in_float64():
    for fn, args in [(cet.poisson_nll_loss, (torch.zeros(2), torch.ones(2))),
                     (cet.gaussian_nll_loss, (torch.zeros(2), torch.ones(2), torch.ones(2)))]:
        with pytest.raises(ce.InputValueError, match="^eps must be"):
            fn(*args, eps=-1.0)
    x, y = torch.zeros(2, 3), torch.tensor([0, 1])
    assert_close(cet.softmax_focal_loss(x, y, alpha=[1e39, 1e39, 1e39]), cet.softmax_focal_loss(x, y), np.float32)
    with pytest.raises(ce.InputValueError, match="weight must be non-negative"):
        cet.binary_cross_entropy_with_logits(torch.zeros(2), torch.ones(2), weight=[1.0, -1e-310])
