"""Naive float64 references, written from the formulas row by row, independent of the library's code."""

from __future__ import annotations

import math

import numpy as np


def log_softmax_row(z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    m = max(z)
    return z - (m + math.log(sum(math.exp(v - m) for v in z)))


def smoothed(t_row, e: float) -> np.ndarray:
    t = np.asarray(t_row, dtype=np.float64)
    return (1 - e) * t + e / t.size


def softmax_ce(logits, target, *, class_weight=None, sample_weight=None, ignore_index=-100, label_smoothing=0.0,
               reduction="mean", focal_gamma=None, from_probs=False):
    """Per DESIGN.md semantics 4, on 2-D (N, K) inputs; index or probability targets."""
    x = np.asarray(logits, dtype=np.float64)
    n, k = x.shape
    w = np.ones(k) if class_weight is None else np.asarray(class_weight, dtype=np.float64)
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    target = np.asarray(target)
    losses, weights = [], []
    for i in range(n):
        if target.ndim == 1:
            if target[i] == ignore_index:
                losses.append(0.0)
                weights.append(0.0)
                continue
            t = np.zeros(k)
            t[target[i]] = 1.0
        else:
            t = target[i].astype(np.float64)
        t = smoothed(t, label_smoothing)
        logp = np.log(x[i]) if from_probs else log_softmax_row(x[i])
        li = 0.0
        for c in range(k):
            if t[c] == 0 or w[c] == 0:
                continue
            focal = 1.0 if focal_gamma is None else (1 - math.exp(logp[c])) ** focal_gamma
            li += w[c] * t[c] * focal * -logp[c]
        losses.append(s[i] * li)
        weights.append(s[i] * float(np.dot(w, t)))
    return reduce(np.array(losses), np.array(weights), reduction)


def reduce(losses: np.ndarray, weights: np.ndarray, reduction: str):
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    total = weights.sum()
    return 0.0 if total == 0 else losses.sum() / total


def bce(x, t, *, pos_weight=1.0, sample_weight=None, label_smoothing=0.0, reduction="mean", from_probs=False):
    x = np.asarray(x, dtype=np.float64)
    t = (1 - label_smoothing) * np.asarray(t, dtype=np.float64) + label_smoothing / 2
    pw = np.broadcast_to(np.asarray(pos_weight, dtype=np.float64), x.shape)
    out = np.empty(x.shape)
    for i in np.ndindex(x.shape):
        if from_probs:
            lp, lq = math.log(x[i]) if x[i] > 0 else -math.inf, math.log1p(-x[i]) if x[i] < 1 else -math.inf
        else:
            lp = -math.log1p(math.exp(-x[i])) if x[i] > -30 else x[i]
            lq = -math.log1p(math.exp(x[i])) if x[i] < 30 else -x[i]
        a, b = pw[i] * t[i], 1 - t[i]
        out[i] = -((a * lp if a else 0.0) + (b * lq if b else 0.0))
    o = np.ones(x.shape) if sample_weight is None else np.broadcast_to(sample_weight, x.shape).astype(float)
    return reduce((o * out).reshape(-1), o.reshape(-1), reduction) if reduction != "none" else o * out


def sigmoid_focal(x, t, *, gamma, alpha=None, reduction="mean"):
    """torchvision.ops.sigmoid_focal_loss, written out in float64."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    p = 1 / (1 + np.exp(-x))
    ce = bce(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return reduce(loss.reshape(-1), np.ones(loss.size), reduction) if reduction != "none" else loss


def distillation(student, teacher, target=None, *, divergence="forward_kl", beta=0.5, tau=1.0, ignore_index=-100,
                 reduction="mean"):
    """The distillation loss from ``torch.log_softmax`` in float64 with the definitions spelled out (vocabulary
    last); differentiable by autograd, so its gradient is the reference gradient. Tensors in, a tensor out."""
    import torch

    def kl(lp, lq):  # sum p (log p - log q), with 0 log 0 = 0
        p = lp.exp()
        return torch.where(p > 0, p * (lp - lq), torch.zeros_like(p)).sum(-1)

    ls, lt = torch.log_softmax(student / tau, -1), torch.log_softmax(teacher / tau, -1)
    if divergence == "forward_kl":
        per = kl(lt, ls)
    elif divergence == "reverse_kl":
        per = kl(ls, lt)
    else:
        lm = torch.log(beta * lt.exp() + (1 - beta) * ls.exp())
        per = beta * kl(lt, lm) + (1 - beta) * kl(ls, lm)
    per = per * tau**2
    kept = torch.ones_like(per, dtype=torch.bool) if target is None else target != ignore_index
    per = torch.where(kept, per, torch.zeros_like(per))
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    count = kept.sum()
    return per.sum() / count if count > 0 else per.sum() * 0


def distillation_np(student, teacher, target=None, **options):
    """``distillation`` on NumPy arrays: ``(loss, gradient of its sum w.r.t. student)``, both float64 NumPy."""
    import torch

    s = torch.tensor(np.asarray(student, dtype=np.float64), requires_grad=True)
    t = torch.tensor(np.asarray(teacher, dtype=np.float64))
    y = None if target is None else torch.as_tensor(np.asarray(target))
    loss = distillation(s, t, y, **options)
    loss.sum().backward()
    return loss.detach().numpy(), s.grad.numpy()


def brute_force_temperature(logits, target, sample_weight=None) -> float:
    """The T minimising the weighted mean cross-entropy of softmax(logits / T) (SciPy's logsumexp, not the
    library's): a grid of 1201 points over log T in [-6, 6], then SciPy's bounded Brent search between the
    neighbours of the best grid point."""
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(target)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    zy = z[np.arange(len(y)), y]

    def loss(log_t: float) -> float:
        t = math.exp(log_t)
        return float(np.sum(w * (logsumexp(z / t, axis=1) - zy / t)) / np.sum(w))

    grid = np.linspace(-6, 6, 1201)
    best = int(np.argmin([loss(v) for v in grid]))
    bounds = (grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)])
    return math.exp(minimize_scalar(loss, bounds=bounds, method="bounded", options={"xatol": 1e-12}).x)
