"""Fuzz area 4, the numeric edge classes of issue 21: one generator per class, each against an independent
reference (a float64 computation, PyTorch, SciPy, a limit), through ``fuzzkit.call`` (InputErrors only, no
RuntimeWarning from crossentropy's code).

Classes: half-precision soft targets; the Poisson NLL's gradient to zero counts; Gaussian NLL broadcasting; empty
batches with sample weights; half-precision top-k teachers; forward KL at large temperatures; perplexity meters
near the float range; ``fit_temperature`` at extreme weight and logit scales; information measures broadcasting;
option values beyond the float range; ``p_target`` of a zero-weight target under the limit rule; bf16
``linear_cross_entropy`` gradients against torch's chunked path.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F
from conftest import tol
from fuzzkit import area, arrays_in, call, count, rng_for

import crossentropy as ce
import crossentropy.torch as cet

SHARE = 0.002  # of the budget, per class


def _close(actual, expected, key) -> bool:
    return all(np.allclose(a, e, equal_nan=True, **tol(key)) for a, e in zip(arrays_in(actual), arrays_in(expected),
                                                                             strict=True))


def test_fuzz_half_precision_soft_targets():
    a = area("issue 21")
    since = len(a.failures)
    for i in range(count(SHARE, least=12)):
        rng = rng_for("half-targets", i)
        n, k = int(rng.integers(1, 6)), int(rng.integers(2, 9))
        x = rng.standard_normal((n, k)) * float(rng.choice([0.1, 3.0, 30.0]))
        t = rng.dirichlet(np.ones(k) * float(rng.choice([0.2, 1.0, 5.0])), size=n)
        kw = {"reduction": ("none", "sum", "mean")[i % 3]}
        if i % 2:
            kw["class_weight"] = rng.uniform(0.1, 3.0, k)
        t16 = t.astype(np.float16)
        got = call(a, f"half soft targets, case {i}", lambda x=x, t=t16, kw=kw: ce.softmax_cross_entropy(x, t, **kw))
        if not isinstance(got, Exception):
            expected = ce.softmax_cross_entropy(x, t16.astype(np.float64), **kw)
            if not _close(got, expected, "float64"):
                a.fail(f"float16 targets, case {i}", f"{got} differs from the float64 targets' {expected}")
        half = (torch.float16, torch.bfloat16)[i % 2]
        tk = {"reduction": kw["reduction"]} | ({"weight": torch.tensor(kw["class_weight"], dtype=torch.float32)}
                                               if "class_weight" in kw else {})
        xt, tt = torch.tensor(x, dtype=torch.float32), torch.tensor(t).to(half)
        got = call(a, f"torch {half} soft targets, case {i}", lambda x=xt, t=tt, kw=tk: cet.cross_entropy(x, t, **kw))
        if not isinstance(got, Exception) and not _close(got, cet.cross_entropy(xt, tt.float(), **tk), "float32"):
            a.fail(f"torch {half} targets, case {i}", "differs from the float32 targets' loss")
    a.check(since)


def test_fuzz_poisson_gradient_to_the_target():
    a = area("issue 21")
    since = len(a.failures)
    for i in range(count(SHARE, least=12)):
        rng = rng_for("poisson-target", i)
        shape = (int(rng.integers(1, 8)),)
        log_input = bool(i % 2)
        x = rng.standard_normal(shape) * 2 if log_input else rng.uniform(0.05, 5.0, shape)
        t = np.where(rng.random(shape) < 0.5, 0.0, rng.integers(0, 6, shape).astype(float))
        grads = []
        for fn in (F.poisson_nll_loss, cet.poisson_nll_loss):
            xx, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
            out = call(a, f"poisson_nll_loss({x.tolist()}, {t.tolist()}, log_input={log_input})",
                       lambda f=fn, xx=xx, tt=tt, li=log_input: torch.autograd.grad(
                           f(xx, tt, log_input=li, reduction="sum"), (xx, tt)))
            grads.append(out)
        if not any(isinstance(g, Exception) for g in grads) and not _close(grads[1], grads[0], "float64-reference"):
            a.fail(f"poisson x={x.tolist()} t={t.tolist()} log_input={log_input}",
                   f"gradients {grads[1]} differ from PyTorch's {grads[0]}")
    a.check(since)


def test_fuzz_gaussian_nll_shapes():
    a = area("issue 21")
    since = len(a.failures)
    for i in range(count(SHARE, least=18)):
        rng = rng_for("gaussian-shapes", i)
        shape = tuple(int(v) for v in rng.integers(1, 4, int(rng.integers(1, 4))))
        options = [shape, (*shape[:-1], 1), shape[:-1]]
        tshape, vshape = options[int(rng.integers(3))], options[int(rng.integers(3))]
        x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(i))
        t = torch.randn(tshape, dtype=torch.float64, generator=torch.Generator().manual_seed(i + 1))
        v = 0.7 if i % 5 == 0 else torch.rand(vshape, dtype=torch.float64) + 0.1
        reduction = ("none", "sum", "mean")[i % 3]
        try:
            native = F.gaussian_nll_loss(x, t, v, reduction=reduction)
            fits = F.gaussian_nll_loss(x, t, v, reduction="none").shape == x.shape
        except (ValueError, RuntimeError):
            native, fits = None, False
        broadcast = native is not None and fits  # a target enlarging the loss is refused (docs/semantics.md)
        got = call(a, f"gaussian_nll_loss shapes {shape}, {tshape}, {vshape}",
                   lambda x=x, t=t, v=v, r=reduction: cet.gaussian_nll_loss(x, t, v, reduction=r))
        numpy = call(a, f"gaussian_nll shapes {shape}, {tshape}, {vshape}",
                     lambda x=x, t=t, v=v, r=reduction: ce.gaussian_nll(x.numpy(), t.numpy(),
                                                                        v if isinstance(v, float) else v.numpy(),
                                                                        reduction=r))
        for name, value in (("torch", got), ("numpy", numpy)):
            if broadcast and (isinstance(value, Exception) or not _close(value, native, "float64-reference")):
                a.fail(f"gaussian {name} {shape}, {tshape}, {vshape}", f"{value} where PyTorch gives {native}")
            if not broadcast and not isinstance(value, Exception):
                a.fail(f"gaussian {name} {shape}, {tshape}, {vshape}", "accepted shapes that do not fit the input")
    a.check(since)


def test_fuzz_empty_batches_with_sample_weight():
    a = area("issue 21")
    since = len(a.failures)
    for i, name in enumerate(("softmax_cross_entropy", "softmax_focal_loss", "categorical_cross_entropy") * 3):
        k = (3, 1, 0)[i // 3]
        target = np.zeros((0, k)) if i % 2 else np.zeros(0, int)
        for reduction in ("none", "sum", "mean"):
            got = call(a, f"ce.{name}(np.zeros((0, {k})), {target.shape} targets, sample_weight=np.zeros(0))",
                       lambda n=name, t=target, r=reduction, k=k: getattr(ce, n)(np.zeros((0, k)), t,
                                                                          sample_weight=np.zeros(0), reduction=r),
                       nan_ok=False)
            if not isinstance(got, Exception) and reduction != "none" and float(got) != 0.0:
                a.fail(f"{name} empty batch", f"{reduction} is {got}, not 0")
    a.check(since)


def test_fuzz_half_precision_topk_teachers():
    a = area("issue 21")
    since = len(a.failures)
    for i in range(count(SHARE, least=12)):
        g = torch.Generator().manual_seed(i)
        vocab = int(torch.randint(2, 80, (1,), generator=g))
        k = int(torch.randint(1, vocab + 1, (1,), generator=g))
        dtype = (torch.bfloat16, torch.float16)[i % 2]
        lp = torch.log_softmax((torch.randn(3, vocab, generator=g) * 4).to(dtype), -1).topk(k, -1)
        call(a, f"sparse_distillation_loss, {dtype} top-{k} of a log_softmax over {vocab}",
             lambda v=vocab, t=lp: cet.sparse_distillation_loss(torch.randn(3, v), t.indices, t.values),
             finite=True)
    a.check(since)


def test_fuzz_forward_kl_at_large_temperatures():
    a = area("issue 21")
    since = len(a.failures)
    for i in range(count(SHARE, least=12)):
        rng = rng_for("forward-kl-tau", i)
        tau = float(10.0 ** rng.uniform(0, 300))
        s = rng.standard_normal((2, int(rng.integers(2, 30)))) * float(rng.choice([0.1, 3.0, 30.0]))
        t = rng.standard_normal(s.shape) * float(rng.choice([0.1, 3.0, 30.0]))
        exact = ce.distillation_loss(s, t, temperature=tau, reduction="none")
        for dtype in (np.float32, np.float64):
            got = call(a, f"distillation_loss(float {dtype.__name__}, temperature={tau:g})",
                       lambda d=dtype, s=s, t=t, tau=tau: ce.distillation_loss(s.astype(d), t.astype(d),
                                                                                temperature=tau,
                                                            reduction="none"), finite=True)
            torch_got = call(a, f"torch distillation_loss({dtype.__name__}, temperature={tau:g})",
                             lambda d=dtype, s=s, t=t, tau=tau: cet.distillation_loss(torch.from_numpy(s.astype(d)),
                                                                   torch.from_numpy(t.astype(d)), temperature=tau,
                                                                   reduction="none"), finite=True)
            # the float64 result on the float32-rounded logits is the reference of the float32 one
            reference = exact if dtype == np.float64 else ce.distillation_loss(
                s.astype(dtype).astype(np.float64), t.astype(dtype).astype(np.float64), temperature=tau,
                reduction="none")
            for name, value in (("numpy", got), ("torch", torch_got)):
                if not isinstance(value, Exception) and not _close(value, reference, dtype):
                    a.fail(f"forward_kl {name} {dtype.__name__} tau={tau:g}", f"{value} vs float64 {reference}")
        if tau > 1e12:  # the limit: half the variance of t - s under the uniform student
            limit = (t - s).var(-1) / 2
            if not _close(exact, limit, "float64-reference"):
                a.fail(f"forward_kl tau={tau:g}", f"{exact} is not the limit {limit}")
    a.check(since)


def test_fuzz_perplexity_meter_near_the_float_range():
    a = area("issue 21")
    since = len(a.failures)
    for i in range(count(SHARE, least=12)):
        rng = rng_for("meter-range", i)
        values = (10.0 ** rng.uniform(-300, 308, int(rng.integers(2, 9)))).tolist()
        cut = int(rng.integers(1, len(values)))
        meter = call(a, f"PerplexityMeter().update({values})",
                     lambda v=values, c=cut: ce.PerplexityMeter().update(v[:c]).merge(
                         ce.PerplexityMeter().update(v[c:])).result(ci=0.95)["nll_std"])
        if isinstance(meter, Exception):
            continue
        top = max(values)
        expected = statistics.stdev([v / top for v in values])
        if not math.isclose(meter / top, expected, rel_tol=tol("float64-reference")["rtol"], abs_tol=1e-300):
            a.fail(f"PerplexityMeter {values}", f"nll_std {meter} vs {expected * top}")
    a.check(since)


def test_fuzz_fit_temperature_scales():
    a = area("issue 21")
    since = len(a.failures)
    for i in range(count(SHARE, least=8)):
        rng = rng_for("fit-scale", i)
        y = rng.integers(0, 3, 40)
        z = rng.standard_normal((40, 3)) + float(rng.uniform(0.5, 3)) * np.eye(3)[y]
        w = rng.uniform(0.2, 2.0, 40)
        plain = ce.fit_temperature(z, y, sample_weight=w)
        c = float(10.0 ** rng.uniform(-300, 300))
        scaled_w = call(a, f"fit_temperature(sample_weight * {c:g})",
                        lambda c=c, z=z, y=y, w=w: ce.fit_temperature(z, y, sample_weight=w * c))
        scaled_z = call(a, f"fit_temperature(logits * {c:g})",
                        lambda c=c, z=z, y=y, w=w: ce.fit_temperature(z * c, y, sample_weight=w) / c)
        for name, value in (("weights", scaled_w), ("logits", scaled_z)):
            if not isinstance(value, Exception) and not _close(value, plain, "minimizer"):
                a.fail(f"fit_temperature {name} * {c:g}", f"{value} vs {plain}")
    a.check(since)


def test_fuzz_information_measures_broadcast():
    a = area("issue 21")
    since = len(a.failures)
    for i in range(count(SHARE, least=8)):
        rng = rng_for("info-broadcast", i)
        k = int(rng.integers(1, 6))
        shapes = [(k,), (3, k), (1, k), (2, 3, k), (2, 1, k)]
        ps, qs = shapes[int(rng.integers(5))], shapes[int(rng.integers(5))]
        p, q = rng.dirichlet(np.ones(k), size=ps[:-1]), rng.dirichlet(np.ones(k), size=qs[:-1])
        got = call(a, f"kl_divergence shapes {ps} and {qs}", lambda p=p, q=q: ce.kl_divergence(p, q), finite=True)
        if not isinstance(got, Exception) and not _close(got, scipy.stats.entropy(p, q, axis=-1),
                                                         "float64-reference"):
            a.fail(f"kl_divergence shapes {ps} and {qs}", "differs from scipy.stats.entropy")
    a.check(since)


def test_fuzz_option_values_beyond_the_float_range():
    a = area("issue 21")
    since = len(a.failures)
    x, y = np.zeros((2, 3)), np.array([0, 1])
    for value in (10**400, -(10**400), True, False):
        for name, fn in (
            ("total_weight", lambda v: ce.softmax_cross_entropy(x, y, total_weight=v)),
            ("total_weight", lambda v: cet.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), total_weight=v)),
            ("temperature", lambda v: ce.distillation_loss(x, x, temperature=v)),
            ("temperature", lambda v: cet.distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), temperature=v)),
            ("label_smoothing", lambda v: ce.softmax_cross_entropy(x, y, label_smoothing=v)),
            ("z_loss", lambda v: cet.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), z_loss=v)),
        ):
            call(a, f"{name}={value!r}", lambda f=fn, v=value: f(v), bad=name)
    for target in ([2, -3], [-5], [0, -101]):
        call(a, f"total_weight({target})", lambda t=target: ce.total_weight(np.array(t)), bad="negative class index")
    a.check(since)


def test_fuzz_p_target_of_zero_weight_targets():
    a = area("issue 21")
    since = len(a.failures)
    inf = float("inf")
    for i in range(count(SHARE, least=12)):
        rng = rng_for("p-target-limit", i)
        k = int(rng.integers(1, 6))
        z = rng.choice(np.array([-inf, inf, 0.0, 1.0, -2.0]), size=(4, k))
        y = torch.from_numpy(rng.integers(0, k, 4))
        w = torch.from_numpy(rng.choice([0.0, 1.0], k))
        dtype = (torch.bfloat16, torch.float32, torch.float64)[i % 3]
        zt = torch.tensor(z).to(dtype)
        got = call(a, f"cross_entropy({z.tolist()}, {y.tolist()}, weight={w.tolist()}, return_stats=True)",
                   lambda zt=zt, y=y, w=w: cet.cross_entropy(zt, y, weight=w.to(torch.float32), return_stats=True,
                                                             reduction="none")[1].p_target, nan_ok=False)
        plain = cet.cross_entropy(zt, y, return_stats=True, reduction="none")[1].p_target
        if not isinstance(got, Exception) and not _close(got, plain, dtype):
            a.fail(f"p_target {z.tolist()} {y.tolist()} w={w.tolist()}", f"{got} vs unweighted {plain}")
    a.check(since)


def _gradient_error(fn, x, w, y, exact, **kw) -> list[float]:
    """The relative error of ``fn``'s gradients to ``x`` and ``w`` against ``exact``."""
    leaves = [x.clone().requires_grad_(), w.clone().requires_grad_()]
    grads = torch.autograd.grad(fn(*leaves, y, **kw), leaves)
    return [float((p.double() - e).norm() / e.norm()) for p, e in zip(grads, exact, strict=True)]


def test_fuzz_bf16_linear_gradients():
    a = area("issue 21")
    since = len(a.failures)
    for i in range(count(SHARE / 4, least=3)):
        g = torch.Generator().manual_seed(i)
        n, d, v = (int(t) for t in torch.randint(8, 96, (3,), generator=g))
        x, w = torch.randn(n, d, generator=g).bfloat16(), (torch.randn(v, d, generator=g) * 0.5).bfloat16()
        y = torch.randint(0, v, (n,), generator=g)
        leaves = [x.double().requires_grad_(), w.double().requires_grad_()]
        exact = torch.autograd.grad(F.cross_entropy(leaves[0] @ leaves[1].T, y), leaves)

        ours = _gradient_error(cet.linear_cross_entropy, x, w, y, exact,
                               chunk_size=int(torch.randint(1, n + 1, (1,), generator=g)))
        native = _gradient_error(F.linear_cross_entropy, x, w, y, exact,
                                 options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=16))
        a.cases += 1
        if any(o > e * (1 + tol("float32")["rtol"]) for o, e in zip(ours, native, strict=True)):
            a.fail(f"bf16 linear_cross_entropy n={n} d={d} v={v}", f"gradient errors {ours}, torch's {native}")
    a.check(since)
