"""``impl="triton"`` through the public torch entries equals ``impl="reference"`` in value, gradient and stats on
an option grid, float32 and bfloat16; the losses the Triton kernels have no path for refuse it.

Without CUDA the kernels run in Triton's interpreter (``tests/conftest.py`` sets ``TRITON_INTERPRET=1``) on CPU
tensors, so the shapes are small (n <= 6, V <= 130: one or two blocks per row). The subprocess test of
``tests/test_impl.py`` covers a CPU tensor without the interpreter.
"""

from __future__ import annotations

import os

import pytest
from conftest import assert_close

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
if not (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"):
    pytest.skip("no CUDA device, and Triton was imported without TRITON_INTERPRET=1", allow_module_level=True)

import crossentropy.torch as cet  # noqa: E402
from crossentropy.rules.errors import InputValueError  # noqa: E402
from crossentropy.rules.options import SoftmaxOptions  # noqa: E402
from crossentropy.torch import _cpu  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPES = (torch.float32, torch.bfloat16)
# masked products compute a * x before discarding it: the interpreter's NumPy warns about it
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:triton.runtime.interpreter")

# (n, V, probability targets, class weights, label_smoothing, ignored rows, z_loss, softcap, reduction,
#  total_weight, return_stats)
GRID = [
    (4, 7, False, False, 0.0, False, 0.0, None, "mean", None, False),
    (5, 130, False, True, 0.1, True, 1e-2, 5.0, "mean", None, True),
    (3, 65, False, True, 0.0, True, 0.0, None, "sum", None, True),
    (6, 33, False, False, 0.2, False, 1e-3, None, "none", None, False),
    (4, 64, False, True, 0.1, True, 0.0, 30.0, "mean", 7.5, False),
    (4, 9, True, False, 0.0, False, 0.0, None, "mean", None, False),
    (3, 70, True, True, 0.1, False, 1e-2, 5.0, "sum", None, False),
    (5, 20, True, True, 0.0, False, 0.0, None, "mean", 3.0, False),
]


def _key(dtype, gradient: bool = False):
    if dtype == torch.float32:
        return "float32"
    return "low-precision-gradient" if gradient else dtype


def _close(actual, expected, key, msg=""):
    assert_close(actual.detach().double().cpu().numpy(), expected.detach().double().cpu().numpy(), key, msg)


def _inputs(case, dtype, seed):
    n, vocab, probs, weighted, _, ignored, *_ = case
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, vocab, generator=g, dtype=torch.float64) * 3).to(dtype)
    if probs:
        target = torch.softmax(torch.randn(n, vocab, generator=g, dtype=torch.float64), -1).to(dtype)
    else:
        target = torch.randint(0, vocab, (n,), generator=g)
        if ignored:
            target[1] = -100
    weight = torch.rand(vocab, generator=g, dtype=torch.float64).to(dtype) + 0.1 if weighted else None
    return x.to(DEVICE), target.to(DEVICE), None if weight is None else weight.to(DEVICE)


def _cross_entropy(case, x, target, weight, impl):
    *_, smoothing, _, z_loss, softcap, reduction, total_weight, stats = case
    leaf = x.clone().requires_grad_()
    out = cet.cross_entropy(leaf, target, weight, reduction=reduction, label_smoothing=smoothing, z_loss=z_loss,
                            softcap=softcap, total_weight=total_weight, return_stats=stats, impl=impl)
    loss, token_stats = out if stats else (out, None)
    scale = torch.linspace(0.5, 1.5, loss.numel(), dtype=loss.dtype, device=loss.device).reshape(loss.shape)
    (loss * scale).sum().backward()  # a per-token grad_output for "none"
    return loss, leaf.grad, token_stats


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GRID)
def test_cross_entropy_triton_equals_reference(case, dtype):
    x, target, weight = _inputs(case, dtype, seed=case[1])
    loss, grad, stats = _cross_entropy(case, x, target, weight, "triton")
    ref_loss, ref_grad, ref_stats = _cross_entropy(case, x, target, weight, "reference")
    assert grad.dtype == dtype
    _close(loss, ref_loss, _key(dtype), "loss")
    _close(grad, ref_grad, _key(dtype, gradient=True), "grad")
    if stats is not None:
        for name in ("lse", "entropy", "p_target"):
            _close(getattr(stats, name), getattr(ref_stats, name), _key(dtype), name)
        assert torch.equal(stats.predicted, ref_stats.predicted)
        assert torch.equal(stats.correct, ref_stats.correct)


def _linear(x, w, b, target, weight, impl, **options):
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    out = cet.linear_cross_entropy(leaves[0], leaves[1], target, linear_bias=leaves[2], weight=weight,
                                   chunk_size=2, impl=impl, **options)
    loss, stats = out if options.get("return_stats") else (out, None)
    loss.sum().backward()
    return loss, [t.grad for t in leaves], stats


def _head_case(seed: int, dtype, *, ignored: int):
    """A linear head's inputs: 5 tokens of width 8, a vocabulary of 67, token ``ignored`` marked -100; and the
    generator, for what a test draws next."""
    g = torch.Generator().manual_seed(seed)
    n, hidden, vocab = 5, 8, 67
    x, w, b = (torch.randn(*shape, generator=g).to(dtype).to(DEVICE) for shape in ((n, hidden), (vocab, hidden),
                                                                                    (vocab,)))
    target = torch.randint(0, vocab, (n,), generator=g).to(DEVICE)
    target[ignored] = -100
    return g, x, w, b, target


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [
    {"reduction": "mean", "label_smoothing": 0.1, "z_loss": 1e-2, "softcap": 20.0, "return_stats": True},
    {"reduction": "none"},
    {"reduction": "sum", "total_weight": None},
    {"reduction": "mean", "total_weight": 4.0},
])
def test_linear_cross_entropy_triton_equals_reference(options, dtype):
    g, x, w, b, target = _head_case(5, dtype, ignored=2)
    vocab = w.shape[0]
    weight = (torch.rand(vocab, generator=g) + 0.1).to(DEVICE)
    loss, grads, stats = _linear(x, w, b, target, weight, "triton", **options)
    ref_loss, ref_grads, ref_stats = _linear(x, w, b, target, weight, "reference", **options)
    _close(loss, ref_loss, _key(dtype), "loss")
    for got, ref, name in zip(grads, ref_grads, ("input", "weight", "bias"), strict=True):
        assert got.dtype == dtype
        _close(got, ref, _key(dtype, gradient=True), name)
    if stats is not None:
        for name in ("lse", "entropy", "p_target"):
            _close(getattr(stats, name), getattr(ref_stats, name), _key(dtype), name)
        assert torch.equal(stats.predicted, ref_stats.predicted)


def _distill(zs, zt, target, impl, **options):
    leaf = zs.clone().requires_grad_()
    loss = cet.distillation_loss(leaf, zt, target, impl=impl, **options)
    loss.sum().backward()
    return loss, leaf.grad


def _linear_distill(heads, target, impl, **options):
    xs, ws, bs, xt, wt = heads
    leaves = [t.clone().requires_grad_() for t in (xs, ws, bs)]
    loss = cet.linear_distillation_loss(leaves[0], leaves[1], xt, wt, target, student_bias=leaves[2], chunk_size=2,
                                        impl=impl, **options)
    loss.sum().backward()
    return loss, [t.grad for t in leaves]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [
    {"divergence": "forward_kl", "reduction": "mean"},
    {"divergence": "reverse_kl", "temperature": 2.0, "reduction": "sum"},
    {"divergence": "jsd", "beta": 0.3, "temperature": 0.5, "reduction": "none"},
])
def test_distillation_triton_equals_reference(options, dtype):
    g = torch.Generator().manual_seed(7)
    n, hidden, vocab = 5, 6, 70
    zs, zt = (torch.randn(n, vocab, generator=g).mul(3).to(dtype).to(DEVICE) for _ in range(2))
    target = torch.randint(0, vocab, (n,), generator=g).to(DEVICE)
    target[3] = -100
    loss, grad = _distill(zs, zt, target, "triton", **options)
    ref_loss, ref_grad = _distill(zs, zt, target, "reference", **options)
    _close(loss, ref_loss, _key(dtype), "loss")
    assert grad.dtype == dtype
    _close(grad, ref_grad, _key(dtype, gradient=True), "grad")
    heads = [torch.randn(*shape, generator=g).to(dtype).to(DEVICE)
             for shape in ((n, hidden), (vocab, hidden), (vocab,), (n, 4), (vocab, 4))]
    loss, grads = _linear_distill(heads, target, "triton", **options)
    ref_loss, ref_grads = _linear_distill(heads, target, "reference", **options)
    _close(loss, ref_loss, _key(dtype), "linear loss")
    for got, ref, name in zip(grads, ref_grads, ("input", "weight", "bias"), strict=True):
        _close(got, ref, _key(dtype, gradient=True), f"linear {name}")


def _logprobs(x, w, b, target, impl, upstream, **options):
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    logp, entropy = cet.linear_logprobs(leaves[0], leaves[1], target, linear_bias=leaves[2], chunk_size=2,
                                        return_entropy=True, impl=impl, **options)
    ((logp * upstream[0]).sum() + (entropy * upstream[1]).sum()).backward()
    return logp, entropy, [t.grad for t in leaves]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [{}, {"temperature": 0.7, "softcap": 5.0}])
def test_linear_logprobs_triton_equals_reference(options, dtype):
    g, x, w, b, target = _head_case(9, dtype, ignored=1)
    n = x.shape[0]
    upstream = [torch.randn(n, generator=g).to(DEVICE) for _ in range(2)]  # advantages, an entropy bonus
    logp, entropy, grads = _logprobs(x, w, b, target, "triton", upstream, **options)
    ref_logp, ref_entropy, ref_grads = _logprobs(x, w, b, target, "reference", upstream, **options)
    _close(logp, ref_logp, _key(dtype), "logp")
    _close(entropy, ref_entropy, _key(dtype), "entropy")
    for got, ref, name in zip(grads, ref_grads, ("input", "weight", "bias"), strict=True):
        assert got.dtype == dtype
        _close(got, ref, _key(dtype, gradient=True), name)


def test_losses_without_a_triton_kernel_refuse_it():
    x, y = torch.zeros(2, 5, device=DEVICE), torch.tensor([0, 1], device=DEVICE)
    with pytest.raises(InputValueError, match="impl='triton'.*Triton kernels have no path"):
        cet.softmax_focal_loss(x, y, impl="triton")
    with pytest.raises(InputValueError, match="impl='triton'.*Triton kernels have no path"):
        cet.sparse_distillation_loss(x, torch.tensor([[0], [1]], device=DEVICE), torch.full((2, 1), -0.5,
                                                                                            device=DEVICE),
                                     impl="triton")
    assert float(cet.softmax_focal_loss(x, y)) > 0  # "auto" takes the reference path
    # forward KL above rules.divergence.SCALED_ABOVE: the reference's cancellation-free form, which the kernel lacks
    # (in float32 the kernel's textbook form loses 7e-5 relative at temperature 50, everything at 1e5)
    with pytest.raises(InputValueError, match="impl='triton'.*no cancellation-free forward KL for temperature > 2"):
        cet.distillation_loss(x, x + 1, temperature=4.0, impl="triton")
    with pytest.raises(InputValueError, match="impl='triton'.*no cancellation-free forward KL"):
        cet.linear_distillation_loss(x, torch.ones(3, 5, device=DEVICE), x, torch.ones(3, 5, device=DEVICE),
                                     temperature=4.0, impl="triton")
    assert float(cet.distillation_loss(x, x, temperature=4.0, divergence="jsd", impl="triton")) == 0


def test_auto_picks_triton_for_cuda_tensors_only():
    """Under the interpreter a CPU tensor can run on Triton, but "auto" keeps the compiled kernel or the
    reference for it; a CUDA tensor gets Triton."""
    assert _cpu.softmax_kernel(SoftmaxOptions(impl="triton"), torch.zeros(2, 3, device=DEVICE)) == "triton"
    assert _cpu.softmax_kernel(SoftmaxOptions(), torch.zeros(2, 3)) in ("compiled", "reference")
    if torch.cuda.is_available():
        assert _cpu.softmax_kernel(SoftmaxOptions(), torch.zeros(2, 3, device="cuda")) == "triton"


def test_triton_under_torch_compile_is_refused_and_auto_keeps_the_reference():
    """A kernel launched from Python cannot be traced: under ``torch.compile`` "triton" raises, and "auto" (which
    would pick Triton for a CUDA tensor) takes the reference's torch ops, so ``fullgraph=True`` compiles."""
    x, y = torch.randn(3, 5, device=DEVICE), torch.tensor([0, 1, 4], device=DEVICE)

    def picked(t):
        return _cpu.softmax_kernel(SoftmaxOptions(), t) == "reference"

    assert torch.compile(picked, fullgraph=True, backend="eager")(x)
    # dynamo re-raises the InputValueError inside its own exception type, with the message kept
    with pytest.raises(Exception, match="InputValueError.*impl='triton'.*cannot run under torch.compile"):
        torch.compile(lambda t: cet.cross_entropy(t, y, impl="triton"), fullgraph=True, backend="eager")(x)
