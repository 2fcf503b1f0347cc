"""return_stats: the per-token statistics of cross_entropy (2-D and K-dim inputs) and linear_cross_entropy (every
chunk size) equal a float64 computation from the full logits, with softcap, ignored tokens and infinite logits;
they are non-differentiable, in the target's batch shape, and leave the loss and its gradient unchanged."""

import pytest
import torch
from conftest import tol
from hypothesis import given
from hypothesis import strategies as st

import crossentropy as ce
import crossentropy.torch as cet


def _reference(logits, y, ignore_index=-100, softcap=None):
    """The statistics from full float64 logits ``(..., C)`` (class dim last), by torch's own formulas."""
    z = logits.double()
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    logp = torch.log_softmax(z, -1)
    p = logp.exp()
    keep = y != ignore_index
    p_y = p.gather(-1, torch.where(keep, y, 0).unsqueeze(-1)).squeeze(-1)
    predicted = z.argmax(-1)
    return cet.TokenStats(torch.logsumexp(z, -1), -torch.where(p > 0, p * logp, 0).sum(-1),
                          torch.where(keep, p_y, 0), predicted, (predicted == y) & keep)


def _assert_stats(got, expected, dtype=torch.float64):
    assert isinstance(got, cet.TokenStats)
    for name, a, b in zip(cet.TokenStats._fields, got, expected, strict=True):
        assert a.shape == b.shape and not a.requires_grad, name
        if a.is_floating_point():
            torch.testing.assert_close(a.double(), b, **tol(dtype), msg=name)
        else:
            assert torch.equal(a, b), name


def _case(shape=(6, 9), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    batch = (shape[0],) + shape[2:]
    y = torch.randint(0, shape[1], batch, generator=g)
    y.view(-1)[[1, 4]] = -100
    return x, y


@pytest.mark.parametrize("shape", [(6, 9), (3, 9, 4, 2), (9,)], ids=["2d", "kdim", "unbatched"])
@pytest.mark.parametrize("softcap", [None, 2.0])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_stats_equal_float64_from_full_logits(shape, softcap, reduction):
    x, y = _case((6,) + shape) if len(shape) == 1 else _case(shape)
    if len(shape) == 1:  # unbatched (C,) logits and a 0-d target
        x, y = x[0], y[0]
    leaf = x.clone().requires_grad_()
    loss, stats = cet.cross_entropy(leaf, y, reduction=reduction, softcap=softcap, label_smoothing=0.1,
                                    return_stats=True)
    _assert_stats(stats, _reference(x.movedim(0 if len(shape) == 1 else 1, -1), y, softcap=softcap))
    plain = cet.cross_entropy(x.clone().requires_grad_(), y, reduction=reduction, softcap=softcap,
                              label_smoothing=0.1)
    # the plain call may run another kernel ("auto" takes torch's own for small plain calls): the float64 tier
    torch.testing.assert_close(loss, plain, **tol(torch.float64))
    loss.sum().backward()  # the statistics do not get in the way of the gradient
    assert leaf.grad is not None


def test_cross_entropy_stats_with_infinite_logits_and_low_precision():
    x, y = _case()
    x[0, 3] = float("inf")  # the limit rule: p = 1 on class 3 (target 6), entropy 0
    x[5, 1] = float("inf")  # p = 1 on the target
    x[2] = -float("inf")
    x[2, 5] = 0.0  # one finite logit: entropy 0
    x[3, :4] = -float("inf")
    _, stats = cet.cross_entropy(x, y, return_stats=True)
    expected = _reference(x, y)  # torch's log_softmax gives NaN on a +inf row: the limits are written here
    limits = {"p_target": torch.tensor([0.0, 1.0]), "entropy": torch.tensor([0.0, 0.0])}
    for name, values in limits.items():
        getattr(expected, name)[[0, 5]] = values.double()
    _assert_stats(stats, expected)
    assert int(stats.predicted[0]) == 3 and (int(y[5]), bool(stats.correct[5])) == (1, True)
    _, low = cet.cross_entropy(_case()[0].bfloat16(), y, return_stats=True)
    assert low.lse.dtype == torch.float32
    _assert_stats(low, _reference(_case()[0].bfloat16(), y), torch.bfloat16)


@given(st.integers(1, 19), st.sampled_from([None, 3.0]), st.integers(0, 50))
def test_linear_stats_equal_float64_from_full_logits_for_every_chunk_size(chunk_size, softcap, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 9, 6, generator=g, dtype=torch.float64)
    w = torch.randn(11, 6, generator=g, dtype=torch.float64)
    b = torch.randn(11, generator=g, dtype=torch.float64)
    y = torch.randint(0, 11, (2, 9), generator=g)
    y[0, 3] = y[1, 0] = -100
    expected = _reference(x @ w.T + b, y, softcap=softcap)
    for grad in (True, False):  # the autograd path and the loss-only path
        with torch.set_grad_enabled(grad):
            loss, stats = cet.linear_cross_entropy(x.clone().requires_grad_(), w, y, linear_bias=b,
                                                   softcap=softcap, chunk_size=chunk_size, return_stats=True)
        _assert_stats(stats, expected)
        torch.testing.assert_close(loss, cet.cross_entropy((x @ w.T + b).movedim(-1, 1), y, softcap=softcap),
                                   **tol("float64"))


def test_stats_need_index_targets():
    x, _ = _case()
    with pytest.raises(ce.InputValueError, match=r"return_stats=True needs class-index targets"):
        cet.cross_entropy(x, torch.softmax(x, 1), return_stats=True)


# ------------------------------------------------------------------ issue 21.25: p_target under the limit rule
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_p_target_of_a_zero_weight_target_follows_the_limit_rule(dtype):
    # p_target does not depend on the class weights: a target of weight 0 gets the limit rule's p_y, not NaN
    inf = float("inf")
    z = torch.tensor([[-inf, -inf, -inf], [inf, inf, -inf], [-inf, 0.0, 1.0], [inf, 0.0, -inf]], dtype=dtype)
    y = torch.tensor([0, 0, 0, 1])
    _, zero = cet.cross_entropy(z, y, weight=torch.tensor([0.0, 0.0, 1.0]), return_stats=True, reduction="none")
    _, one = cet.cross_entropy(z, y, return_stats=True, reduction="none")
    torch.testing.assert_close(zero.p_target, one.p_target, **tol("exact"))
    torch.testing.assert_close(zero.p_target.double(), torch.tensor([1 / 3, 1 / 2, 0.0, 0.0], dtype=torch.float64),
                               **tol(dtype))
