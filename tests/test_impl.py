"""The ``impl=`` switch: "reference" (the rules layer's code) and "compiled" (the C kernel) agree on the whole
option grid, NumPy and torch, at the dtype tiers; an impl that cannot run an input is an InputValueError naming
``impl``, never a silent fallback; "native" (torch's own fused kernels) equals the reference where it applies and
is what "auto" takes for small plain calls; "triton" on a CPU tensor without Triton's interpreter is refused, and
"auto" never picks it there (tests/torch/test_triton_impl.py holds "triton" to "reference")."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import crossentropy as ce
import crossentropy.torch as cet
from crossentropy.kernels import compiled
from crossentropy.rules.errors import InputValueError
from crossentropy.rules.options import SoftmaxOptions
from crossentropy.torch._cpu import softmax_kernel
from crossentropy.torch._native import native_reason

needs_kernel = pytest.mark.skipif(not compiled.AVAILABLE, reason="the compiled kernel is not built")


@st.composite
def grids(draw):
    """One point of the option grid: shape, targets (index or probability), weights, every scalar option."""
    n, k = draw(st.integers(1, 6)), draw(st.integers(1, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    index = draw(st.booleans())
    if index:
        target = rng.integers(0, k, n)
        ignored = draw(st.booleans())
        if ignored:
            target[rng.random(n) < 0.3] = -100
    else:
        target = rng.dirichlet(np.ones(k), n)
    reduction = draw(st.sampled_from(["none", "sum", "mean"]))
    return {
        "x": rng.normal(0, 3, (n, k)),
        "target": target,
        "weight": rng.uniform(0.1, 2.0, k) if draw(st.booleans()) else None,
        "label_smoothing": draw(st.sampled_from([0.0, 0.1])),
        "z_loss": draw(st.sampled_from([0.0, 1e-2])),
        "softcap": draw(st.sampled_from([None, 5.0])),
        "reduction": reduction,
        "total_weight": 7.5 if reduction == "mean" and draw(st.booleans()) else None,
        "return_stats": index and draw(st.booleans()),
    }


def _numpy(g, dtype, impl):
    out = ce.softmax_cross_entropy(g["x"].astype(dtype), g["target"], class_weight=g["weight"],
                                   label_smoothing=g["label_smoothing"], z_loss=g["z_loss"], softcap=g["softcap"],
                                   reduction=g["reduction"], total_weight=g["total_weight"],
                                   return_stats=g["return_stats"], return_grad=True, impl=impl)
    return [np.asarray(a, dtype=np.float64) for a in (out[0], out[1], *(out[2] if g["return_stats"] else ()))]


def _torch(g, dtype, impl):
    x = torch.tensor(g["x"], dtype=dtype, requires_grad=True)
    target = torch.tensor(g["target"]) if g["target"].dtype.kind == "i" else torch.tensor(g["target"], dtype=dtype)
    weight = None if g["weight"] is None else torch.tensor(g["weight"], dtype=dtype)
    out = cet.cross_entropy(x, target, weight, reduction=g["reduction"], label_smoothing=g["label_smoothing"],
                            z_loss=g["z_loss"], softcap=g["softcap"], total_weight=g["total_weight"],
                            return_stats=g["return_stats"], impl=impl)
    loss, stats = out if g["return_stats"] else (out, ())
    loss.sum().backward()
    return [t.detach().double().numpy() for t in (loss, x.grad, *stats)]


@needs_kernel
@settings(max_examples=60, deadline=None)
@given(grids(), st.sampled_from([np.float32, np.float64]))
def test_numpy_reference_and_compiled_agree(g, dtype):
    for a, b in zip(_numpy(g, dtype, "reference"), _numpy(g, dtype, "compiled"), strict=True):
        assert_close(a, b, dtype)


@needs_kernel
@settings(max_examples=60, deadline=None)
@given(grids(), st.sampled_from([torch.float32, torch.float64, torch.bfloat16]))
def test_torch_reference_and_compiled_agree(g, dtype):
    key = "low-precision-gradient" if dtype == torch.bfloat16 else dtype
    for a, b in zip(_torch(g, dtype, "reference"), _torch(g, dtype, "compiled"), strict=True):
        assert_close(a, b, key)


TRITON_ON_CPU = """
import torch
import crossentropy.torch as cet
from crossentropy.rules.errors import InputValueError
from crossentropy.torch import _cpu
from crossentropy.rules.options import SoftmaxOptions
x, y = torch.zeros(2, 3), torch.tensor([0, 1])
for call in (lambda: cet.cross_entropy(x, y, impl="triton"),
             lambda: cet.linear_cross_entropy(torch.zeros(2, 4), torch.zeros(3, 4), y, impl="triton"),
             lambda: cet.distillation_loss(x, x, impl="triton")):
    try:
        call()
    except InputValueError as e:
        print("refused:", e)
print("auto:", _cpu.softmax_kernel(SoftmaxOptions(), x))
print("loss:", float(cet.cross_entropy(x, y)))
"""


def test_triton_on_a_cpu_tensor_without_the_interpreter():
    """In a fresh process without TRITON_INTERPRET: impl="triton" on a CPU tensor is an InputValueError naming
    impl (whether or not Triton is installed), and "auto" never picks Triton there."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", TRITON_ON_CPU], env=env, capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    refused = [line for line in lines if line.startswith("refused: impl='triton' cannot run this input")]
    assert len(refused) == 3, out.stdout + out.stderr
    reason = "TRITON_INTERPRET is not set" if importlib.util.find_spec("triton") else "Triton is not installed"
    assert all(reason in line for line in refused), out.stdout
    assert lines[-2] in ("auto: compiled", "auto: reference")
    assert_close(float(lines[-1].removeprefix("loss: ")), np.log(3), torch.float32)


def test_triton_on_numpy_input_is_refused():
    with pytest.raises(InputValueError, match="impl='triton'.*take torch tensors, not ndarray"):
        ce.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), impl="triton")


def test_compiled_without_a_compiled_path_is_refused():
    x, y = torch.zeros(2, 3), torch.tensor([0, 1])
    with pytest.raises(InputValueError, match="impl='compiled'.*no path"):
        cet.softmax_focal_loss(x, y, impl="compiled")
    with pytest.raises(InputValueError, match="impl='compiled'.*no path"):
        ce.softmax_focal_loss(np.zeros((2, 3)), np.array([0, 1]), impl="compiled")
    with pytest.raises(InputValueError, match="impl='compiled'.*no path"):
        ce.categorical_cross_entropy(np.full((2, 3), 1 / 3), np.array([0, 1]), impl="compiled")
    with pytest.raises(InputValueError, match="impl='compiled'.*no path"):
        cet.distillation_loss(x, x, impl="compiled")


def test_an_unknown_impl_names_the_argument():
    with pytest.raises(InputValueError, match="impl must be one of 'auto', 'compiled', 'reference', 'triton' or "
                                              "'native'"):
        cet.CrossEntropyLoss(impl="fast")
    with pytest.raises(InputValueError, match="impl must be one of"):
        ce.softmax_cross_entropy(np.zeros((1, 2)), np.array([0]), impl="c")


@needs_kernel
def test_compiled_on_a_device_other_than_the_cpu_is_refused():
    x, y = torch.zeros(2, 3, device="meta"), torch.zeros(2, dtype=torch.long, device="meta")
    with pytest.raises(InputValueError, match="impl='compiled'.*runs on the CPU, but the input is on meta"):
        cet.cross_entropy(x, y, impl="compiled")
    with pytest.raises(InputValueError, match="impl='compiled'.*on meta"):
        cet.linear_cross_entropy(torch.zeros(2, 4, device="meta"), torch.zeros(3, 4, device="meta"), y,
                                 impl="compiled")


def test_the_kernel_not_built_is_refused(monkeypatch):
    monkeypatch.setattr(compiled, "AVAILABLE", False)
    with pytest.raises(InputValueError, match="impl='compiled'.*not built"):
        cet.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), impl="compiled")
    with pytest.raises(InputValueError, match="impl='compiled'.*not built"):
        ce.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), impl="compiled")
    assert_close(float(cet.cross_entropy(torch.zeros(2, 2), torch.tensor([0, 1]))), np.log(2), torch.float32)


@st.composite
def plain_calls(draw):
    """The calls torch's own kernels run with the rules' numbers: index targets (some ignored, or all), label
    smoothing, every reduction, total_weight."""
    n, k = draw(st.integers(0, 6)), draw(st.integers(1, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    target = rng.integers(0, k, n)
    target[rng.random(n) < draw(st.sampled_from([0.0, 0.3, 1.0]))] = -100
    reduction = draw(st.sampled_from(["none", "sum", "mean"]))
    return {"x": rng.normal(0, 3, (n, k)), "target": target, "weight": None,
            "label_smoothing": draw(st.sampled_from([0.0, 0.1])), "z_loss": 0.0, "softcap": None,
            "reduction": reduction, "return_stats": False,
            "total_weight": draw(st.sampled_from([None, 0.0, 7.5])) if reduction == "mean" else None}


@settings(max_examples=60, deadline=None)
@given(plain_calls(), st.sampled_from([torch.float32, torch.float64]))
def test_torch_native_equals_reference(g, dtype):
    for a, b in zip(_torch(g, dtype, "reference"), _torch(g, dtype, "native"), strict=True):
        assert_close(a, b, dtype)


def test_native_mean_of_every_target_ignored_is_zero_where_torch_gives_nan():
    x, y = torch.zeros(3, 4, requires_grad=True), torch.full((3,), -100)
    assert torch.isnan(torch.nn.functional.cross_entropy(x, y))
    loss = cet.cross_entropy(x, y, impl="native")
    loss.backward()
    assert float(loss.detach()) == 0.0 and not x.grad.any()


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"weight": torch.ones(3)}, "no class or sample weights"),
    ({"sample_weight": torch.ones(2)}, "no class or sample weights"),
    ({"z_loss": 1e-4}, "z_loss"),
    ({"softcap": 5.0}, "softcap"),
    ({"return_stats": True}, "return_stats"),
    ({"return_lse": True}, "return_lse"),
])
def test_native_refuses_what_torch_computes_otherwise(kwargs, reason):
    with pytest.raises(InputValueError, match=f"impl='native' cannot run this input:.*{reason}"):
        cet.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), impl="native", **kwargs)


def test_native_refuses_probabilities_half_precision_and_infinite_logits():
    with pytest.raises(InputValueError, match="impl='native'.*index targets"):
        cet.cross_entropy(torch.zeros(2, 3), torch.full((2, 3), 1 / 3), impl="native")
    with pytest.raises(InputValueError, match="impl='native'.*not torch.bfloat16"):
        cet.cross_entropy(torch.zeros(2, 3, dtype=torch.bfloat16), torch.tensor([0, 1]), impl="native")
    x = torch.tensor([[float("inf"), 0.0, 0.0]])
    with pytest.raises(InputValueError, match="impl='native'.*limit rule"):
        cet.cross_entropy(x, torch.tensor([0]), impl="native")
    assert float(cet.cross_entropy(x, torch.tensor([0]))) == 0.0  # auto: the limit rule, on another kernel
    with pytest.raises(InputValueError, match="impl='native'.*only the torch cross_entropy"):
        cet.softmax_focal_loss(torch.zeros(2, 3), torch.tensor([0, 1]), impl="native")
    with pytest.raises(InputValueError, match="impl='native'"):
        ce.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), impl="native")


def test_auto_takes_native_for_small_plain_calls_only(monkeypatch):
    monkeypatch.setattr(compiled, "PREFERRED", True)  # as without CROSSENTROPY_KERNEL=numpy
    options, t = SoftmaxOptions(), torch.tensor([0, 1])
    small, big = torch.zeros(2, 3), torch.zeros(2, 1 << 16)
    plain = native_reason(small, t, options, weighted=False, return_lse=False)
    assert plain is None
    assert softmax_kernel(options, small, native=plain) == "native"
    assert softmax_kernel(options, big, native=native_reason(big, t, options, weighted=False,
                                                             return_lse=False)) != "native"
    weighted = native_reason(small, t, options, weighted=True, return_lse=False)
    assert softmax_kernel(options, small, native=weighted) != "native"
    monkeypatch.setattr(compiled, "PREFERRED", False)  # CROSSENTROPY_KERNEL=numpy: auto runs the reference
    assert softmax_kernel(options, small, native=plain) == "reference"


def test_auto_picks_triton_only_for_a_gpu_input_and_only_while_preferred(monkeypatch):
    """``kernels.dispatch.select``: "auto" takes Triton when it can run a GPU input, never a CPU one; under
    ``forced_fallback()`` (as under ``CROSSENTROPY_KERNEL=numpy``) it takes the reference on every device, while an
    explicit impl still runs its kernel."""
    from crossentropy.kernels import dispatch
    from crossentropy.rules.options import SoftmaxOptions

    monkeypatch.setattr(compiled, "PREFERRED", True)  # as without CROSSENTROPY_KERNEL=numpy
    auto, triton = SoftmaxOptions(), SoftmaxOptions(impl="triton")
    assert dispatch.select(auto, compiled="on cuda", triton=None, gpu=True) == "triton"
    assert dispatch.select(auto, compiled=None, triton=None, gpu=False) == "compiled"
    assert dispatch.select(auto, compiled="not built", triton=None, gpu=False) == "reference"
    assert dispatch.select(auto, compiled="on cuda", triton="no Triton", gpu=True) == "reference"
    with compiled.forced_fallback():
        assert dispatch.select(auto, compiled=None, triton=None, gpu=True) == "reference"
        assert dispatch.select(triton, compiled=None, triton=None, gpu=False) == "triton"
