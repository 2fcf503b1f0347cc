"""crossentropy.torch: agreement with torch.nn.functional where the semantics agree, the pinned differences,
gradcheck for every function and option, low-precision gradients, z-loss/softcap formulas, torch.compile, the
NumPy core, CUDA (skipped without a GPU) and bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close, tol
from hypothesis import given
from hypothesis import strategies as st

import crossentropy as ce
import crossentropy.torch as cet

REDUCTIONS = ["none", "sum", "mean"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DT = {torch.float32: np.float32, torch.float64: np.float64}


def _case(kind, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (6, 5) if not kind.startswith("kdim") else (3, 5, 4, 2)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 3).to(dtype=dtype, device=device)
    batch = (shape[0],) + shape[2:]
    if kind.endswith("soft"):
        target = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), 1).to(dtype=dtype, device=device)
    else:
        target = torch.randint(0, 5, batch, generator=g).to(device)
    kw = {}
    if kind == "weight+ignore":
        target.view(-1)[[1, 4]] = -100
        kw["weight"] = torch.tensor([0.5, 2.0, 1.0, 3.0, 0.1], dtype=dtype, device=device)
    if kind == "smoothing":
        kw["label_smoothing"] = 0.2
    return x, target, kw


def _loss_and_grad(fn, x, target, reduction, g_out_seed=1, **kw):
    leaf = x.detach().clone().requires_grad_()
    loss = fn(leaf, target, reduction=reduction, **kw)
    gen = torch.Generator().manual_seed(g_out_seed)
    g_out = torch.randn(loss.shape, generator=gen, dtype=torch.float64).to(loss.dtype).to(x.device)
    (grad,) = torch.autograd.grad(loss, leaf, g_out)
    return loss.detach(), grad


# ------------------------------------------------------------------------------------------ agreement
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", ["index", "soft", "weight+ignore", "smoothing", "kdim-index", "kdim-soft"])
def test_cross_entropy_equals_torch(kind, reduction, dtype, device):
    x, target, kw = _case(kind, dtype, device)
    ours = _loss_and_grad(cet.cross_entropy, x, target, reduction, **kw)
    theirs = _loss_and_grad(F.cross_entropy, x, target, reduction, **kw)
    t = tol(DT[dtype])
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=t["rtol"], atol=t["atol"])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_family_equals_torch(reduction, dtype, device):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(4, 3, generator=g, dtype=torch.float64) * 3).to(dtype=dtype, device=device)
    y = torch.rand(4, 3, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    pw = torch.tensor([0.5, 2.0, 3.0], dtype=dtype, device=device)
    t = tol(DT[dtype])
    pairs = [
        (lambda a, b, reduction: cet.binary_cross_entropy_with_logits(a, b, reduction=reduction, pos_weight=pw),
         lambda a, b, reduction: F.binary_cross_entropy_with_logits(a, b, reduction=reduction, pos_weight=pw), x),
        (cet.binary_cross_entropy, F.binary_cross_entropy, torch.sigmoid(x)),
        (cet.poisson_nll_loss, F.poisson_nll_loss, x),
        (lambda a, b, reduction: cet.poisson_nll_loss(a.abs(), b, log_input=False, full=True, reduction=reduction),
         lambda a, b, reduction: F.poisson_nll_loss(a.abs(), b, log_input=False, full=True, reduction=reduction), x),
        (lambda a, b, reduction: cet.gaussian_nll_loss(a, b, b + 0.1, full=True, reduction=reduction),
         lambda a, b, reduction: F.gaussian_nll_loss(a, b, b + 0.1, full=True, reduction=reduction), x),
    ]
    for ours_fn, torch_fn, inp in pairs:
        ours = _loss_and_grad(ours_fn, inp, y, reduction)
        theirs = _loss_and_grad(torch_fn, inp, y, reduction)
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b, rtol=t["rtol"], atol=t["atol"])


def test_modules_equal_functional():
    x, y, kw = _case("weight+ignore", torch.float64, "cpu")
    torch.testing.assert_close(cet.CrossEntropyLoss(**kw)(x, y), F.cross_entropy(x, y, **kw))
    torch.testing.assert_close(cet.CrossEntropyLoss(z_loss=1e-3, softcap=5.0)(x, y),
                               cet.cross_entropy(x, y, z_loss=1e-3, softcap=5.0))
    p, t = torch.sigmoid(x), torch.rand_like(x)
    pw = torch.full((5,), 2.0, dtype=torch.float64)
    torch.testing.assert_close(cet.BCEWithLogitsLoss(pos_weight=pw)(x, t), nn_bce_logits(x, t, pw))
    torch.testing.assert_close(cet.BCELoss()(p, t), torch.nn.BCELoss()(p, t))
    torch.testing.assert_close(cet.PoissonNLLLoss()(x, t), torch.nn.PoissonNLLLoss()(x, t))
    torch.testing.assert_close(cet.GaussianNLLLoss()(x, t, t + 1), torch.nn.GaussianNLLLoss()(x, t, t + 1))
    torch.testing.assert_close(cet.SoftmaxFocalLoss(gamma=0.0)(x, y.clamp(min=0)), F.cross_entropy(x, y.clamp(min=0)))
    torch.testing.assert_close(cet.SigmoidFocalLoss(gamma=0.0)(x, t), F.binary_cross_entropy_with_logits(x, t))
    assert "reduction='sum'" in repr(cet.CrossEntropyLoss(reduction="sum"))


def nn_bce_logits(x, t, pw):
    return torch.nn.BCEWithLogitsLoss(pos_weight=pw)(x, t)


# ------------------------------------------------------------------------------------------ pinned differences
def test_pinned_difference_weighted_mean_with_smoothing_and_soft_targets():
    x = torch.tensor([[2.3, 2.1, 4.5], [4.2, 3.2, 5.1]], dtype=torch.float64)
    y = torch.tensor([1, 2])
    w = torch.tensor([25.0, 25.0, 100.0], dtype=torch.float64)
    one_hot = F.one_hot(y, 3).double()
    assert round(float(cet.cross_entropy(x, y, w)), 6) == round(float(cet.cross_entropy(x, one_hot, w)), 6) == 0.870484
    # pytorch#107680 / #104776: PyTorch's index and one-hot "mean" disagree with weights and smoothing...
    assert not np.isclose(float(F.cross_entropy(x, y, w, label_smoothing=0.1)),
                          float(F.cross_entropy(x, one_hot, w, label_smoothing=0.1)), **tol("disagreement"))
    # ...and ours agree, and equal the NumPy core.
    ours = float(cet.cross_entropy(x, y, w, label_smoothing=0.1))
    assert_close(ours, float(cet.cross_entropy(x, one_hot, w, label_smoothing=0.1)), x.dtype)
    assert_close(ours, float(ce.softmax_cross_entropy(x.numpy(), y.numpy(), class_weight=w.numpy(),
                                                      label_smoothing=0.1)), x.dtype)


def test_pinned_difference_all_ignored():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    y = torch.full((3,), -100)
    assert torch.isnan(F.cross_entropy(x, y))  # pytorch#70348
    loss = cet.cross_entropy(x, y)
    loss.backward()
    assert float(loss.detach()) == 0.0 and not x.grad.any()


def test_pinned_difference_elementwise_weight_mean_and_bce_clamp():
    x, t = torch.tensor([0.3, -1.0], dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64)
    w = torch.tensor([1.0, 3.0], dtype=torch.float64)
    ours_sum = cet.binary_cross_entropy_with_logits(x, t, w, reduction="sum")
    torch.testing.assert_close(F.binary_cross_entropy_with_logits(x, t, w), ours_sum / 2)  # PyTorch: / count
    torch.testing.assert_close(cet.binary_cross_entropy_with_logits(x, t, w), ours_sum / 4)  # here: / sum(w)
    zero, one = torch.tensor([0.0]), torch.tensor([1.0])
    assert float(F.binary_cross_entropy(zero, one)) == 100.0
    assert float(cet.binary_cross_entropy(zero, one)) == float("inf")


# ------------------------------------------------------------------------------------------ gradcheck
@pytest.mark.parametrize("kind", ["index", "soft", "weight+ignore", "smoothing", "kdim-index", "kdim-soft"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("extras", [{}, {"z_loss": 0.01}, {"softcap": 4.0}, {"z_loss": 0.1, "softcap": 2.0}])
def test_gradcheck_cross_entropy(kind, reduction, extras):
    x, target, kw = _case(kind, torch.float64, "cpu")
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda v: cet.cross_entropy(v, target, reduction=reduction, **kw, **extras), (x,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_gradcheck_other_losses(reduction, gamma):
    x, y, kw = _case("weight+ignore", torch.float64, "cpu")
    x.requires_grad_()
    t = torch.rand(x.shape, dtype=torch.float64)
    w = torch.rand(x.shape, dtype=torch.float64) + 0.1
    checks = [
        lambda v: cet.softmax_focal_loss(v, y, gamma=gamma, alpha=kw["weight"], reduction=reduction,
                                         label_smoothing=0.1),
        lambda v: cet.sigmoid_focal_loss(v, t, gamma=gamma, alpha=0.25, reduction=reduction, weight=w),
        lambda v: cet.binary_cross_entropy_with_logits(v, t, w, reduction, pos_weight=w, label_smoothing=0.1),
        lambda v: cet.binary_cross_entropy(torch.sigmoid(v), t, w, reduction),
        lambda v: cet.poisson_nll_loss(v, t * 3, full=True, reduction=reduction),
        lambda v: cet.gaussian_nll_loss(v, t, w, full=True, reduction=reduction),
    ]
    for fn in checks:
        assert torch.autograd.gradcheck(fn, (x,))
    var = w.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda v: cet.gaussian_nll_loss(x.detach(), t, v, reduction=reduction), (var,))


# ------------------------------------------------------------------------------------------ low precision
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("device", DEVICES)
def test_low_precision_true_class_gradient(dtype, device):
    # p_true = 0.999 over a 1000-class row: the true-class gradient p - 1 = -0.001 cancels badly in bf16
    # (Liger-Kernel PR #1329); built in float32 it is accurate.
    z = torch.zeros(8, 1000, dtype=torch.float64)
    z[:, 0] = float(np.log(0.999 * 999 / 0.001))
    y = torch.zeros(8, dtype=torch.long, device=device)
    x = z.to(dtype).to(device).requires_grad_()
    loss = cet.cross_entropy(x, y)
    loss.backward()
    x64 = x.detach().double().requires_grad_()
    loss64 = cet.cross_entropy(x64, y)
    loss64.backward()
    assert loss.dtype == torch.float32 and x.grad.dtype == dtype
    assert_close(x.grad[:, 0].double(), x64.grad[:, 0], "low-precision-gradient")
    assert_close(float(loss.detach()), float(loss64.detach()), "low-precision-gradient")
    torch.testing.assert_close(x.grad.double(), x64.grad, **tol("low-precision-gradient"))


# ------------------------------------------------------------------------------------------ extras
@given(st.floats(0.0, 0.1), st.one_of(st.none(), st.floats(0.5, 30.0)), st.sampled_from(REDUCTIONS))
def test_z_loss_and_softcap_equal_reference_formulas(z, cap, reduction):
    x, y, kw = _case("weight+ignore", torch.float64, "cpu", seed=7)
    leaf = x.clone().requires_grad_()
    loss, lse = cet.cross_entropy(leaf, y, reduction=reduction, z_loss=z, softcap=cap, return_lse=True, **kw)
    ref_leaf = x.clone().requires_grad_()
    zc = ref_leaf if cap is None else cap * torch.tanh(ref_leaf / cap)
    ce_rows = F.cross_entropy(zc, y, reduction="none", **kw)
    keep = y != -100
    w_tok = torch.where(keep, kw["weight"][y.clamp(min=0)], torch.zeros(()))
    ref_lse = torch.logsumexp(zc, 1)
    rows = ce_rows + z * w_tok * ref_lse**2
    ref = {"none": rows, "sum": rows.sum(), "mean": rows.sum() / w_tok.sum()}[reduction]
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(lse, ref_lse.detach())
    g = torch.randn(loss.shape, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad(loss, leaf, g)[0], torch.autograd.grad(ref, ref_leaf, g)[0])


def test_return_lse_shapes():
    x, y, _ = _case("kdim-index", torch.float32, "cpu")
    loss, lse = cet.cross_entropy(x, y, reduction="none", return_lse=True)
    assert loss.shape == lse.shape == y.shape
    loss, lse = cet.cross_entropy(x[0, :, 0, 0], y[0, 0, 0], return_lse=True)  # unbatched (C,)
    assert loss.shape == lse.shape == ()
    torch.testing.assert_close(loss, F.cross_entropy(x[0, :, 0, 0], y[0, 0, 0]))


def test_torch_compile_fullgraph_cpu():
    x = torch.randn(16, 10, requires_grad=True)
    y = torch.randint(0, 10, (16,))
    y[0] = -100

    def step(a, b):
        return cet.cross_entropy(a, b, label_smoothing=0.1, z_loss=1e-3, softcap=20.0)

    compiled = torch.compile(step, fullgraph=True)
    loss = compiled(x, y)
    (g_compiled,) = torch.autograd.grad(loss, x)
    loss_eager = step(x, y)
    (g_eager,) = torch.autograd.grad(loss_eager, x)
    torch.testing.assert_close(loss, loss_eager)
    torch.testing.assert_close(g_compiled, g_eager)


@given(st.integers(1, 6), st.integers(1, 6), st.sampled_from(REDUCTIONS), st.sampled_from([0.0, 0.3]))
def test_agrees_with_numpy_core(n, k, reduction, smoothing):
    rng = np.random.default_rng(n * 10 + k)
    x = rng.normal(size=(n, k)) * 4
    y = rng.integers(0, k, n)
    w = rng.uniform(0.1, 2, k)
    loss_np, grad_np = ce.softmax_cross_entropy(x, y, class_weight=w, label_smoothing=smoothing,
                                                reduction=reduction, return_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    loss_t = cet.cross_entropy(xt, torch.tensor(y), torch.tensor(w), reduction=reduction, label_smoothing=smoothing)
    loss_t.sum().backward()
    assert_close(loss_t.detach().numpy(), loss_np)
    assert_close(xt.grad.numpy(), grad_np)
    p = rng.uniform(size=(n, k))
    t = rng.uniform(size=(n, k))
    assert_close(cet.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(t), reduction=reduction).numpy(),
                 ce.binary_cross_entropy_with_logits(x, t, reduction=reduction))
    assert_close(cet.sigmoid_focal_loss(torch.tensor(x), torch.tensor(t), 2.0, 0.25, reduction).numpy(),
                 ce.sigmoid_focal_loss(x, t, gamma=2.0, alpha=0.25, reduction=reduction))
    assert_close(cet.softmax_focal_loss(torch.tensor(x), torch.tensor(y), 1.5, torch.tensor(w),
                                        reduction=reduction).numpy(),
                 ce.softmax_focal_loss(x, y, gamma=1.5, alpha=w, reduction=reduction))
    assert_close(cet.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction=reduction).numpy(),
                 ce.binary_cross_entropy(p, t, reduction=reduction))


def test_focal_gradients_finite_at_saturation():
    for gamma in (0.0, 0.3, 1.0, 2.0):
        x = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
        cet.softmax_focal_loss(x, torch.tensor([0]), gamma=gamma).backward()
        assert torch.isfinite(x.grad).all()
        xb = torch.tensor([1e4, -1e4, 40.0], requires_grad=True)
        cet.sigmoid_focal_loss(xb, torch.tensor([1.0, 0.0, 1.0]), gamma=gamma).backward()
        assert torch.isfinite(xb.grad).all()


def _every_loss(impl: str):
    """name -> (a function of CUDA leaves returning a loss, the leaves' shapes): every torch loss, with the impl
    it takes (focal, sparse distillation and the element-wise losses have no Triton path: "auto" there)."""
    n, vocab, hidden = 64, 1000, 32
    y = torch.randint(0, vocab, (n,), device="cuda")
    y[3] = -100
    t = torch.rand(n, vocab, device="cuda")
    teacher = torch.randn(n, vocab, device="cuda")
    top = torch.topk(teacher.log_softmax(-1), 8, dim=-1)
    softmax_impl, other = impl, "auto" if impl == "triton" else impl
    return {
        "cross_entropy": (lambda x: cet.cross_entropy(x, y, label_smoothing=0.1, z_loss=1e-4, impl=softmax_impl),
                          [(n, vocab)]),
        "cross_entropy stats": (lambda x: cet.cross_entropy(x, y, weight=t[0], softcap=30.0, return_stats=True,
                                                            impl=softmax_impl)[0], [(n, vocab)]),
        "cross_entropy probabilities": (lambda x: cet.cross_entropy(x, t.softmax(-1), impl=softmax_impl),
                                        [(n, vocab)]),
        "softmax_focal_loss": (lambda x: cet.softmax_focal_loss(x, y, impl=other), [(n, vocab)]),
        "linear_cross_entropy": (lambda h, w: cet.linear_cross_entropy(h, w, y, chunk_size=16, z_loss=1e-4,
                                                                       return_stats=True, impl=softmax_impl)[0],
                                 [(n, hidden), (vocab, hidden)]),
        "distillation_loss": (lambda x: cet.distillation_loss(x, teacher, y, divergence="jsd", impl=softmax_impl),
                              [(n, vocab)]),
        "sparse_distillation_loss": (lambda x: cet.sparse_distillation_loss(x, top.indices, top.values, y,
                                                                            impl=other), [(n, vocab)]),
        "linear_distillation_loss": (lambda h, w: cet.linear_distillation_loss(
            h, w, h.detach(), w.detach() * 2, y, chunk_size=16, impl=softmax_impl), [(n, hidden), (vocab, hidden)]),
        "binary_cross_entropy_with_logits": (lambda x: cet.binary_cross_entropy_with_logits(x, t), [(n, vocab)]),
        "binary_cross_entropy": (lambda x: cet.binary_cross_entropy(x.sigmoid(), t), [(n, vocab)]),
        "sigmoid_focal_loss": (lambda x: cet.sigmoid_focal_loss(x, t, alpha=0.25), [(n, vocab)]),
        "poisson_nll_loss": (lambda x: cet.poisson_nll_loss(x, t), [(n, vocab)]),
        "gaussian_nll_loss": (lambda x: cet.gaussian_nll_loss(x, t, torch.ones_like(t)), [(n, vocab)]),
    }


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("impl", ["auto", "reference", "triton"])
def test_cuda_no_host_sync(impl):
    """Every loss, forward and backward, on CUDA under ``set_sync_debug_mode("error")``: nothing reads a device
    value on the host (Triton's kernels included)."""
    if impl == "triton":
        pytest.importorskip("triton")
    for name, (loss_of, shapes) in _every_loss(impl).items():
        leaves = [torch.randn(*shape, device="cuda", requires_grad=True) for shape in shapes]
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            loss = loss_of(*leaves)
            loss.backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert all(torch.isfinite(leaf.grad).all() for leaf in leaves), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    x = torch.randn(64, 1000, device="cuda")
    y = torch.randint(0, 1000, (64,), device="cuda")
    assert_close(float(cet.cross_entropy(x, y, label_smoothing=0.1, z_loss=1e-4)),
                 float(cet.cross_entropy(x.cpu(), y.cpu(), label_smoothing=0.1, z_loss=1e-4)), torch.float32)


# ------------------------------------------------------------------------------------------ bad input
X = torch.randn(2, 3)


@pytest.mark.parametrize("call,exc,message", [
    (lambda: cet.cross_entropy(X, torch.tensor([0, 3])), ValueError,
     r"target has class index 3 at position \(1,\), outside \[0, 2\] for 3 classes"),
    (lambda: cet.cross_entropy(X, torch.tensor([0, 1, 2])), ValueError,
     r"target holds class indices, so it must have the input's shape without dim 1, \(2,\)"),
    (lambda: cet.cross_entropy(X, torch.rand(2, 4)), ValueError, r"target holds probabilities, so it must have"),
    (lambda: cet.cross_entropy(X, torch.full((2, 3), 2.0)), ValueError, r"target must hold probabilities in \[0, 1\]"),
    (lambda: cet.cross_entropy(X.numpy(), torch.tensor([0, 1])), TypeError, r"input must be a torch.Tensor"),
    (lambda: cet.cross_entropy(torch.ones(2, 3, dtype=torch.long), torch.tensor([0, 1])), TypeError,
     r"input must be a floating-point tensor, but got dtype torch.int64"),
    (lambda: cet.cross_entropy(X, torch.tensor([0, 1]), torch.ones(2)), ValueError,
     r"weight must have shape \(3,\), one weight per class"),
    (lambda: cet.cross_entropy(X, torch.tensor([0, 1]), -torch.ones(3)), ValueError, r"weight must be non-negative"),
    (lambda: cet.cross_entropy(X, torch.tensor([0, 1]), reduction="avg"), ValueError,
     r"reduction must be one of 'none', 'sum' or 'mean', but got 'avg'"),
    (lambda: cet.cross_entropy(X, torch.tensor([0, 1]), label_smoothing=1.0), ValueError,
     r"label_smoothing must be in \[0, 1\)"),
    (lambda: cet.cross_entropy(X, torch.tensor([0, 1]), z_loss=-1.0), ValueError, r"z_loss must be a non-negative"),
    (lambda: cet.cross_entropy(X, torch.tensor([0, 1]), softcap=0.0), ValueError,
     r"softcap must be None \(no cap\) or a positive finite number"),
    (lambda: cet.cross_entropy(X, torch.tensor([True, False])), TypeError, r"target must be class indices"),
    (lambda: cet.cross_entropy(torch.tensor(1.0), torch.tensor(0)), ValueError, r"input must have a class dim"),
    (lambda: cet.binary_cross_entropy_with_logits(X, torch.rand(2, 2)), ValueError,
     r"target must have the same shape as input, \(2, 3\), but got \(2, 2\)"),
    (lambda: cet.binary_cross_entropy_with_logits(X, torch.rand(2, 3), pos_weight=torch.ones(4)), ValueError,
     r"pos_weight must broadcast to the input's shape"),
    (lambda: cet.binary_cross_entropy(X.abs() + 1, torch.rand(2, 3)), ValueError,
     r"input must hold probabilities in \[0, 1\]"),
    (lambda: cet.sigmoid_focal_loss(X, torch.rand(2, 3), alpha=2.0), ValueError,
     r"alpha must hold probabilities in \[0, 1\]"),
    (lambda: cet.softmax_focal_loss(X, torch.tensor([0, 1]), gamma=-1.0), ValueError, r"gamma must be a non-negative"),
    (lambda: cet.poisson_nll_loss(X, -torch.ones(2, 3)), ValueError, r"target must hold non-negative counts"),
    (lambda: cet.gaussian_nll_loss(X, X, torch.ones(3)), ValueError, r"var must have the input's shape"),
    (lambda: cet.CrossEntropyLoss(reduction="avg"), ValueError, r"reduction must be one of"),
])
def test_bad_input(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_infinite_and_nan_logits_match_the_numpy_core():
    x = np.array([[np.inf, 0.0, np.inf], [-np.inf, -np.inf, -np.inf], [-np.inf, 1.0, 2.0], [1.0, 2.0, 3.0]])
    y = np.array([0, 1, 2, 1])
    xt = torch.tensor(x, requires_grad=True)
    loss = cet.cross_entropy(xt, torch.tensor(y), reduction="none")
    loss.sum().backward()
    ref_loss, ref_grad = ce.softmax_cross_entropy(x, y, reduction="none", return_grad=True)
    assert_close(loss.detach().numpy(), ref_loss)
    assert_close(xt.grad.numpy(), ref_grad)
    xn = torch.tensor([[float("nan"), 0.0], [0.0, 1.0]], requires_grad=True)
    loss = cet.cross_entropy(xn, torch.tensor([1, 1]), reduction="none")
    loss.sum().backward()
    assert torch.isnan(loss[0]) and torch.isnan(xn.grad[0]).all() and torch.isfinite(xn.grad[1]).all()


# ------------------------------------------------------------------------------------------ double backward
def _double_backward_cases():
    g = torch.Generator().manual_seed(3)
    y = torch.tensor([0, 2, -100, 4])
    w = torch.rand(5, generator=g, dtype=torch.float64)
    t = torch.rand(4, 5, generator=g, dtype=torch.float64)
    pw = torch.rand(5, generator=g, dtype=torch.float64) + 0.5
    return {
        "cross_entropy": lambda x: cet.cross_entropy(x, y, w, label_smoothing=0.1, z_loss=0.01, softcap=3.0),
        "cross_entropy-none-soft": lambda x: cet.cross_entropy(x, t.softmax(1), reduction="none"),
        "softmax_focal": lambda x: cet.softmax_focal_loss(x, y, gamma=2.0, alpha=w),
        "bce_with_logits": lambda x: cet.binary_cross_entropy_with_logits(x, t, pos_weight=pw),
        "sigmoid_focal": lambda x: cet.sigmoid_focal_loss(x, t, alpha=0.25),
        "bce": lambda x: cet.binary_cross_entropy(torch.sigmoid(x), t),
    }


@pytest.mark.parametrize("name", list(_double_backward_cases()))
def test_double_backward_matches_finite_differences(name):
    """Issue 12 #8: F.cross_entropy passes gradgradcheck, so ours must too (backward is itself differentiable)."""
    fn = _double_backward_cases()[name]
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


# ------------------------------------------------------------------ issue 21.3: half-precision soft targets
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("weighted", [False, True])
def test_half_precision_soft_targets_keep_their_mass(half, weighted):
    # the row mass of half-precision targets is summed in float32: the loss equals the one on float32 copies
    x = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 30.0], [1.0, -2.0, 0.5]])
    t = torch.tensor([[0.2, 0.2, 0.2], [0.3333, 0.3333, 0.3333], [0.1, 0.7, 0.2]]).to(half)
    kw = {"weight": torch.tensor([0.3, 1.7, 1.1])} if weighted else {}
    for reduction in REDUCTIONS:
        expected = cet.cross_entropy(x, t.float(), reduction=reduction, **kw)
        assert_close(cet.cross_entropy(x, t, reduction=reduction, **kw), expected, torch.float32)


# ------------------------------------------------------------------ issue 21.4: Poisson NLL gradient to the target
@pytest.mark.parametrize("log_input", [True, False])
def test_poisson_nll_gradient_to_the_target_at_zero_counts(log_input):
    # d/dt (exp(x) - t x) = -x (and -log(x + eps)), at t = 0 too: the gradient equals PyTorch's autograd
    grads = []
    for fn in (F.poisson_nll_loss, cet.poisson_nll_loss):
        x = torch.tensor([2.0, 0.5, 1.5, 0.0], dtype=torch.float64, requires_grad=True)
        t = torch.tensor([0.0, 0.0, 3.0, 0.0], dtype=torch.float64, requires_grad=True)
        fn(x, t, log_input=log_input, reduction="sum").backward()
        grads.append((x.grad, t.grad))
    assert_close(grads[1][0], grads[0][0], "float64-reference")
    assert_close(grads[1][1], grads[0][1], "float64-reference")
    # full=True: Stirling's term is 0 for t <= 1, so the zero counts keep the same gradient (PyTorch's is NaN there)
    x = torch.tensor([2.0, 0.5, 1.5], dtype=torch.float64)
    t = torch.tensor([0.0, 0.0, 3.0], dtype=torch.float64, requires_grad=True)
    cet.poisson_nll_loss(x, t, log_input=log_input, full=True, reduction="sum").backward()
    assert_close(t.grad[:2], -(x[:2] if log_input else torch.log(x[:2] + 1e-8)), "float64-reference")


# ------------------------------------------------------------------ issue 21.8: gaussian_nll_loss shapes
@pytest.mark.parametrize(("shape", "tshape", "vshape"), [
    ((5,), (1,), (5,)), ((4, 3), (4, 3), (1, 3)), ((4, 3), (4, 3), (4, 1)), ((4, 3), (4, 3), (4,)),
    ((4, 3), (1, 3), (4, 3)), ((4, 3), (3,), None), ((3, 3), (3,), (3,)), ((2, 3, 4), (2, 1, 4), (2, 3, 1)),
])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gaussian_nll_broadcasts_as_torch(shape, tshape, vshape, reduction):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(tshape, generator=g, dtype=torch.float64)
    v = 0.5 if vshape is None else torch.rand(vshape, generator=g, dtype=torch.float64) + 0.1
    ours = cet.gaussian_nll_loss(x, t, v, reduction=reduction)
    native = F.gaussian_nll_loss(x, t, v, reduction=reduction)
    assert_close(ours.detach(), native.detach(), "float64-reference")
    assert_close(torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(native.sum(), x)[0],
                 "float64-reference")
    numpy = ce.gaussian_nll(x.detach().numpy(), t.numpy(), v if vshape is None else v.numpy(), reduction=reduction)
    assert_close(numpy, native.detach(), "float64-reference")


@pytest.mark.parametrize(("shape", "tshape", "vshape", "name"), [
    ((4, 3), (4, 3), (4, 2), "var"), ((4, 3), (4, 3), (1, 1), "var"), ((4, 3), (5, 3), (4, 3), "target"),
    ((3,), (2, 3), (3,), "target"),
])
def test_gaussian_nll_refuses_shapes_that_do_not_fit(shape, tshape, vshape, name):
    x, t, v = torch.zeros(shape), torch.zeros(tshape), torch.ones(vshape)
    for call in (lambda: cet.gaussian_nll_loss(x, t, v), lambda: ce.gaussian_nll(x.numpy(), t.numpy(), v.numpy())):
        with pytest.raises(ce.InputValueError, match=rf"^{name} must"):
            call()
