"""Random cases for every public NumPy function: a ``Case`` holds the call (function, arrays, options), whether
the mathematics is finite there, and which arguments it names. The torch fuzzer maps the same cases onto
``crossentropy.torch``.

Modes:
* ``"finite"``: moderate finite inputs and valid options, where every function's result is finite (the condition
  per family is in its generator's docstring);
* ``"extreme"``: values at the ends of the dtype's range, subnormals, +-inf and NaN sprinkled into logits,
  targets, weights and variances (``fuzzkit.extremes``);
* ``"bad"``: one argument made invalid; the InputError must name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from fuzzkit import REDUCTIONS, extremes, moderate, sprinkle

import crossentropy as ce


@dataclass
class Case:
    name: str
    fn: object
    args: list
    kw: dict = field(default_factory=dict)
    finite: bool = False
    bad: str | None = None
    names: tuple = ()
    grad: bool = False
    inf_may_nan: bool = False  # an indeterminate form of infinite inputs (inf - inf, inf / inf) is NaN

    def run(self):
        return self.fn(*self.args, **self.kw)

    def upcast(self) -> Case:
        """The same call on float64 copies of every floating array: the reference for float16/32 results."""
        def up(v):
            return v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
        return Case(self.name, self.fn, [up(v) for v in self.args], {k: up(v) for k, v in self.kw.items()},
                    self.finite, self.bad, self.names, self.grad, self.inf_may_nan)

    def __repr__(self) -> str:
        def show(v):
            return f"np.array({v.tolist()!r}, dtype=np.{v.dtype})" if isinstance(v, np.ndarray) else repr(v)
        parts = [show(v) for v in self.args] + [f"{k}={show(v)}" for k, v in self.kw.items()]
        return f"ce.{self.name}({', '.join(parts)})"


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _softmax(rng, shape, axis, scale=1.0):
    z = rng.standard_normal(shape) * scale
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ------------------------------------------------------------------------------------------- softmax family
SOFTMAX = ("softmax_cross_entropy", "softmax_focal_loss", "categorical_cross_entropy")


def softmax_family(rng, dtype, mode: str, name: str | None = None, *, class_axis: int | None = None) -> Case:
    """Finite when: finite logits (probabilities > 0 for categorical), finite non-negative weights, any options."""
    name = name or _pick(rng, SOFTMAX)
    k, n = int(rng.integers(1, 7)), int(rng.integers(1, 9))
    ndim = _pick(rng, (2, 2, 2, 3, 1))
    shape = {1: (k,), 2: (n, k), 3: (n, k, int(rng.integers(1, 4)))}[ndim]
    axis = class_axis if class_axis is not None else (1 if ndim == 3 else -1)
    ax = axis % ndim
    batch = shape[:ax] + shape[ax + 1:]
    if name == "categorical_cross_entropy":
        first = _softmax(rng, shape, ax).astype(dtype)
    else:
        first = moderate(rng, shape, dtype, scale=_pick(rng, (0.01, 1.0, 3.0, 30.0)))
    kw: dict = {"axis": axis, "reduction": _pick(rng, REDUCTIONS)}
    ignore = _pick(rng, (-100, -1, k - 1))
    if rng.random() < 0.6:
        target = rng.integers(0, k, size=batch)
        if rng.random() < 0.3 and target.size:
            target[rng.random(batch) < 0.3] = ignore
            kw["ignore_index"] = ignore
    else:
        target = _softmax(rng, shape, ax).astype(_pick(rng, (dtype, np.float64)))
    weight_name = "alpha" if name == "softmax_focal_loss" else "class_weight"
    if rng.random() < 0.5:
        w = rng.uniform(0, 5, k) * (rng.random(k) < 0.8)
        kw[weight_name] = float(w[0]) if name == "softmax_focal_loss" and rng.random() < 0.3 else w
    if rng.random() < 0.4:
        kw["sample_weight"] = rng.uniform(0, 5, batch) * (rng.random(batch) < 0.8)
    if rng.random() < 0.4:
        kw["label_smoothing"] = float(_pick(rng, (0.0, 0.05, 0.3, 0.99)))
    if name == "softmax_focal_loss":
        kw["gamma"] = float(_pick(rng, (0.0, 0.5, 1.0, 2.0, 3.7)))
    if name == "categorical_cross_entropy" and rng.random() < 0.3:
        kw["eps"] = 1e-7
    if kw["reduction"] == "mean" and rng.random() < 0.2:
        kw["total_weight"] = float(rng.uniform(0.5, 10))
    grad = bool(rng.random() < 0.6)
    if grad:
        kw["return_grad"] = True
    case = Case(name, getattr(ce, name), [first, target], kw, finite=True, grad=grad,
                names=("logits", "probs", "target", weight_name, "sample_weight", "total_weight", "axis"))
    if mode == "extreme":
        pool = extremes(dtype)
        case.finite = False
        case.args[0] = sprinkle(rng, first, pool, _pick(rng, (0.1, 0.3, 1.0)))
        if target.dtype.kind == "f" and rng.random() < 0.5:
            case.args[1] = sprinkle(rng, target, extremes(target.dtype), 0.2)
        for key in (weight_name, "sample_weight"):
            if isinstance(kw.get(key), np.ndarray) and rng.random() < 0.5:
                kw[key] = sprinkle(rng, kw[key], np.concatenate([extremes(np.float64), [1e300, 1e-300]]), 0.3)
    elif mode == "bad":
        _make_bad(rng, case, {
            "reduction": "avg", "label_smoothing": _pick(rng, (-0.1, 1.5, float("nan"))),
            "ignore_index": 1.5, "axis": _pick(rng, (5, 1.0)),
            weight_name: _pick(rng, (-np.ones(k), np.ones(k + 1), np.full(k, np.inf))),
            "sample_weight": _pick(rng, (-np.ones(batch), np.ones(sum(shape) + 7))),
            "target": _pick(rng, (np.full(batch, k + 3), np.full(batch, 0.5), np.ones(shape) * 2.0)),
            "total_weight": -1.0,
        } | ({"gamma": -1.0} if name == "softmax_focal_loss" else {})
          | ({"eps": _pick(rng, (-1.0, 0.7))} if name == "categorical_cross_entropy" else {}))
    return case


def _make_bad(rng, case: Case, bad: dict) -> None:
    key = _pick(rng, sorted(bad))
    value = bad[key]
    if key == "target":
        case.args[1] = value
    else:
        case.kw[key] = value
        if key == "total_weight":
            case.kw["reduction"] = "mean"
    case.bad, case.finite = key, False


# ------------------------------------------------------------------------------------------- element-wise
ELEMENTWISE = ("binary_cross_entropy_with_logits", "binary_cross_entropy", "sigmoid_focal_loss")


def elementwise(rng, dtype, mode: str, name: str | None = None) -> Case:
    """Finite when: finite logits (probabilities strictly inside (0, 1) for BCE), targets in [0, 1], finite
    non-negative weights, any options."""
    name = name or _pick(rng, ELEMENTWISE)
    shape = _pick(rng, ((5,), (3, 4), (2, 3, 2), ()))
    if name == "binary_cross_entropy":
        first = rng.uniform(0.02, 0.98, shape).astype(dtype)
    else:
        first = moderate(rng, shape, dtype, scale=_pick(rng, (0.01, 1.0, 3.0, 30.0)))
    target = _pick(rng, (lambda: rng.integers(0, 2, shape).astype(dtype), lambda: rng.random(shape).astype(dtype)))()
    target = np.asarray(target, dtype=dtype)
    kw: dict = {"reduction": _pick(rng, REDUCTIONS)}
    if rng.random() < 0.4:
        kw["sample_weight"] = rng.uniform(0, 3, shape) * (rng.random(shape) < 0.8)
    if rng.random() < 0.3 and name != "sigmoid_focal_loss":
        kw["pos_weight"] = rng.uniform(0, 4, shape[-1:] if shape else ())
    if rng.random() < 0.3:
        kw["label_smoothing"] = float(_pick(rng, (0.0, 0.1, 0.99)))
    if name == "sigmoid_focal_loss":
        kw["gamma"] = float(_pick(rng, (0.0, 0.5, 2.0)))
        kw["alpha"] = _pick(rng, (None, 0.0, 0.25, 1.0))
    if name == "binary_cross_entropy" and rng.random() < 0.3:
        kw["eps"] = 1e-7
    grad = bool(rng.random() < 0.6)
    if grad:
        kw["return_grad"] = True
    case = Case(name, getattr(ce, name), [first, target], kw, finite=True, grad=grad,
                names=("logits", "probs", "target", "sample_weight", "pos_weight", "alpha"))
    if mode == "extreme":
        case.finite = False
        case.args[0] = sprinkle(rng, np.asarray(first), extremes(dtype), _pick(rng, (0.2, 1.0)))
        if rng.random() < 0.4:
            case.args[1] = sprinkle(rng, target, extremes(dtype), 0.3)
        if isinstance(kw.get("sample_weight"), np.ndarray) and rng.random() < 0.5:
            kw["sample_weight"] = sprinkle(rng, kw["sample_weight"], extremes(np.float64), 0.3)
    elif mode == "bad":
        bad = {"reduction": "mean ", "label_smoothing": 2.0, "target": np.full(shape, 1.5),
               "sample_weight": -np.ones(shape), "pos_weight": np.ones((7,))}
        if name == "sigmoid_focal_loss":
            bad = {k: v for k, v in bad.items() if k != "pos_weight"} | {"gamma": -2.0, "alpha": 1.5}
        if name == "binary_cross_entropy":
            bad["probs"] = np.full(shape, 1.5)
        key = _pick(rng, sorted(bad))
        if key == "probs":
            case.args[0], case.bad, case.finite = bad[key], key, False
        else:
            _make_bad(rng, case, {key: bad[key]})
    return case


# ------------------------------------------------------------------------------------------- likelihoods
def likelihood(rng, dtype, mode: str, name: str | None = None) -> Case:
    """Finite when: Poisson with finite log-rates (or rates > 0, or eps > 0) and finite counts; Gaussian with
    finite input and target and finite variances (clamped at eps > 0)."""
    name = name or _pick(rng, ("poisson_nll", "gaussian_nll"))
    shape = _pick(rng, ((6,), (3, 4), ()))
    x = moderate(rng, shape, dtype)
    kw: dict = {"reduction": _pick(rng, REDUCTIONS), "full": bool(rng.random() < 0.5)}
    if name == "poisson_nll":
        t = rng.poisson(3, shape).astype(dtype)
        kw["log_input"] = bool(rng.random() < 0.6)
        if not kw["log_input"]:
            x = np.abs(x) * (rng.random(shape) < 0.8)
            kw["eps"] = 1e-3 if dtype == np.float16 else _pick(rng, (1e-8, 1e-3))  # t / eps within float16
        args = [x, t]
    else:
        t = moderate(rng, shape, dtype)
        var = rng.uniform(0.01, 4, _pick(rng, (shape, ()))).astype(dtype)
        args = [x, t, var]
    grad = bool(rng.random() < 0.5)
    if grad:
        kw["return_grad"] = True
    case = Case(name, getattr(ce, name), args, kw, finite=True, grad=grad, names=("input", "target", "var", "eps"),
                inf_may_nan=True)
    if mode == "extreme":
        case.finite = False
        for i in range(len(args)):
            if rng.random() < 0.6:
                case.args[i] = sprinkle(rng, np.asarray(args[i]), extremes(dtype), 0.4)
        if name == "poisson_nll" and rng.random() < 0.3:
            kw["eps"] = 0.0
    elif mode == "bad":
        bad = {"reduction": "total", "eps": -1.0}
        if name == "gaussian_nll":
            bad |= {"var": _pick(rng, (-np.ones(shape), np.ones((9, 9))))}
        else:
            bad |= {"target": -np.ones(shape)} | ({} if kw["log_input"] else {"input": -np.ones(shape)})
        key = _pick(rng, sorted(bad))
        if key in ("target", "input", "var"):
            case.args[{"input": 0, "target": 1, "var": 2}[key]] = bad[key]
            case.bad, case.finite = key, False
        else:
            _make_bad(rng, case, {key: bad[key]})
    return case


# ------------------------------------------------------------------------------------------- information
INFORMATION = ("entropy", "cross_entropy", "kl_divergence", "js_divergence", "perplexity")
GAUSSIAN = ("gaussian_entropy", "gaussian_cross_entropy", "gaussian_kl")


def information(rng, dtype, mode: str) -> Case:
    """Finite when: distributions with q > 0 wherever p > 0 (every entry > 0 here), or counts with
    normalize=True; Gaussians with finite means and finite positive variances."""
    name = _pick(rng, INFORMATION + GAUSSIAN)
    shape = _pick(rng, ((4,), (3, 5), (2, 3, 2)))
    kw: dict = {}
    if name in GAUSSIAN:
        var = [rng.uniform(0.01, 10, shape).astype(dtype) for _ in range(2)]
        mu = [moderate(rng, shape, dtype) for _ in range(2)]
        args = [var[0]] if name == "gaussian_entropy" else [mu[0], var[0], mu[1], var[1]]
        names = ("var", "var_p", "var_q", "mu_p", "mu_q", "base")
    else:
        ax = _pick(rng, tuple(range(-len(shape), len(shape))))
        kw["axis"] = ax
        kw["normalize"] = bool(rng.random() < 0.4)
        scale = float(10.0 ** rng.uniform(-300, 300)) if kw["normalize"] and dtype == np.float64 else 1.0
        p = _softmax(rng, shape, ax) * scale
        q = _softmax(rng, shape, ax) * scale
        args = [p.astype(dtype)] + ([] if name == "entropy" or (name == "perplexity" and rng.random() < 0.5)
                                    else [q.astype(dtype)])
        names = ("p", "q", "axis", "base")
        if not kw["normalize"] and dtype == np.float16:
            kw["normalize"] = True  # float16 rounding leaves sums further from 1 than its sqrt(eps)
    if name != "perplexity" and rng.random() < 0.4:
        kw["base"] = _pick(rng, (2, 10, 0.5))
    case = Case(name, getattr(ce, name), args, kw, finite=True, names=names, inf_may_nan=name in GAUSSIAN)
    if mode == "extreme":
        case.finite = False
        case.args = [sprinkle(rng, a, extremes(dtype), _pick(rng, (0.2, 1.0))) for a in args]
        if name not in GAUSSIAN and rng.random() < 0.5:
            kw["normalize"] = True
    elif mode == "bad":
        bad = {} if name == "perplexity" else {"base": _pick(rng, (1, -2.0, 0))}
        if name in GAUSSIAN:
            bad["var" if name == "gaussian_entropy" else "var_q"] = -np.ones(shape)
        else:
            bad |= {"axis": 7, "p": -np.ones(shape)}
        key = _pick(rng, sorted(bad))
        if key in ("p", "var", "var_q"):
            case.args[{"p": 0, "var": 0, "var_q": 3}[key]] = bad[key]
            case.bad, case.finite = key, False
        else:
            _make_bad(rng, case, {key: bad[key]})
    return case


# ------------------------------------------------------------------------------------------- primitives
PRIMITIVES = ("logsumexp", "log_softmax", "softmax", "sigmoid", "softplus", "log_sigmoid", "xlogy")


def primitive(rng, dtype, mode: str) -> Case:
    """Finite when: finite input (softplus / logsumexp of values below the dtype's max minus log K), and for
    xlogy y > 0."""
    name = _pick(rng, PRIMITIVES)
    shape = _pick(rng, ((5,), (3, 4), (2, 2, 3)))
    x = moderate(rng, shape, dtype, scale=_pick(rng, (1.0, 30.0)))
    args = [x, np.abs(moderate(rng, shape, dtype)) + dtype(0.1)] if name == "xlogy" else [x]
    kw = {"axis": _pick(rng, (-1, 0))} if name in ("logsumexp", "log_softmax", "softmax") else {}
    # xlogy is SciPy's: NaN for y < 0 (outside log's domain) and for an infinite x times log 1 = 0.
    case = Case(name, getattr(ce, name), args, kw, finite=True, names=("x", "y", "axis"), inf_may_nan=name == "xlogy")
    if mode == "extreme":
        case.finite = False
        case.args = [sprinkle(rng, a, extremes(dtype), _pick(rng, (0.2, 1.0))) for a in args]
        if name == "xlogy":
            case.args[1] = np.abs(case.args[1])
    elif mode == "bad":
        if kw:
            _make_bad(rng, case, {"axis": _pick(rng, (4, 0.5))})
        else:
            case.args[0] = np.array(["a", "b"])
            case.bad, case.finite = "x", False
    return case


# ------------------------------------------------------------------------------------------- label helpers
def helper(rng, dtype, mode: str) -> Case:
    """Finite always for valid input: class weights of non-empty labels, one-hot, smoothed labels."""
    name = _pick(rng, ("class_weights", "one_hot", "smooth_labels"))
    k = int(rng.integers(1, 6))
    labels = rng.integers(0, k, int(rng.integers(1, 12)))
    if name == "class_weights":
        kw = {"n_classes": _pick(rng, (None, k, k + 2)), "method": _pick(rng, ("balanced", "effective_number"))}
        if kw["method"] == "effective_number":
            kw["beta"] = float(_pick(rng, (0.0, 0.5, 0.999, 1 - 1e-12)))
        case = Case(name, ce.class_weights, [labels], kw, finite=True, names=("labels", "n_classes", "beta"))
        bad = {"labels": _pick(rng, (np.array([]), labels.astype(float), -labels - 1)), "method": "inverse",
               "n_classes": 0} | ({"beta": 1.0} if kw["method"] == "effective_number" else {})
    elif name == "one_hot":
        case = Case(name, ce.one_hot, [labels, k], {}, finite=True, names=("index", "n_classes"))
        bad = {"index": _pick(rng, (labels + k, labels.astype(float)))}
    else:
        t = np.eye(k, dtype=dtype)[labels]
        case = Case(name, ce.smooth_labels, [t, float(rng.uniform(0, 1))], {}, finite=True,
                    names=("target", "label_smoothing"))
        bad = {"label_smoothing": _pick(rng, (-0.5, 2.0))}
    if mode == "extreme":
        case.finite = False
        if name == "smooth_labels":
            case.args[0] = sprinkle(rng, case.args[0], extremes(dtype), 0.3)
    elif mode == "bad":
        key = _pick(rng, sorted(bad))
        if key in ("labels", "index"):
            case.args[0], case.bad, case.finite = bad[key], key, False
        elif key == "label_smoothing":
            case.args[1], case.bad, case.finite = bad[key], key, False
        else:
            _make_bad(rng, case, {key: bad[key]})
    return case


FAMILIES = {"softmax": softmax_family, "elementwise": elementwise, "likelihood": likelihood,
            "information": information, "primitive": primitive, "helper": helper}
