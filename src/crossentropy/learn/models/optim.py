"""NumPy optimizers and learning-rate schedules, small enough to read in one sitting.

Each optimizer updates a list of parameter arrays in place from their gradients: ``opt.step(params, grads)``.
``weight_decay`` is L2 added to the gradient (coupled) for all but AdamW, whose decay is decoupled
(Loshchilov & Hutter, 2019). Decay applies only to the arrays listed in ``decay`` (weights, not biases).
"""

from __future__ import annotations

import math

import numpy as np

from ...rules.errors import InputValueError

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "step")


class Optimizer:
    """Base class: ``lr`` may be changed between steps (by a schedule)."""

    def __init__(self, lr: float, weight_decay: float = 0.0):
        if not lr > 0:
            raise InputValueError(f"learning_rate must be positive, but got {lr}.")
        if not weight_decay >= 0:
            raise InputValueError(f"weight_decay must be non-negative, but got {weight_decay}.")
        self.lr, self.weight_decay, self.t = lr, weight_decay, 0
        self.state: list[dict] | None = None

    def step(self, params: list[np.ndarray], grads: list[np.ndarray], decay: list[bool] | None = None) -> None:
        if self.state is None:
            self.state = [{} for _ in params]
        self.t += 1
        decay = decay or [True] * len(params)
        for p, g, s, d in zip(params, grads, self.state, decay, strict=True):
            self._update(p, g + self.weight_decay * p if d and self._coupled else g, s)
            if d and not self._coupled and self.weight_decay:
                p -= self.lr * self.weight_decay * p

    _coupled = True

    def _update(self, p: np.ndarray, g: np.ndarray, s: dict) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """``p -= lr * g``."""

    def _update(self, p, g, s):
        p -= self.lr * g


class Momentum(Optimizer):
    """Heavy-ball momentum: ``v = beta v + g;  p -= lr v``."""

    def __init__(self, lr: float, weight_decay: float = 0.0, beta: float = 0.9):
        super().__init__(lr, weight_decay)
        self.beta = beta

    def _update(self, p, g, s):
        v = s.setdefault("v", np.zeros_like(p))
        v *= self.beta
        v += g
        p -= self.lr * v


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction."""

    def __init__(self, lr: float, weight_decay: float = 0.0, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, p, g, s):
        m = s.setdefault("m", np.zeros_like(p))
        v = s.setdefault("v", np.zeros_like(p))
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        lr_t = self.lr * math.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        denom = np.sqrt(v)
        denom += self.eps
        p -= lr_t * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p -= lr * weight_decay * p`` beside the Adam step."""

    _coupled = False


class RMSProp(Optimizer):
    """``v = rho v + (1 - rho) g^2;  p -= lr g / (sqrt(v) + eps)``."""

    def __init__(self, lr: float, weight_decay: float = 0.0, rho: float = 0.9, eps: float = 1e-8):
        super().__init__(lr, weight_decay)
        self.rho, self.eps = rho, eps

    def _update(self, p, g, s):
        v = s.setdefault("v", np.zeros_like(p))
        v += (1 - self.rho) * (g * g - v)
        p -= self.lr * g / (np.sqrt(v) + self.eps)


def make_optimizer(name: str, lr: float, weight_decay: float = 0.0) -> Optimizer:
    classes = {"sgd": SGD, "momentum": Momentum, "adam": Adam, "adamw": AdamW, "rmsprop": RMSProp}
    if name not in classes:
        raise InputValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, but got {name!r}.")
    return classes[name](lr, weight_decay)


def scheduled_lr(schedule: str, base_lr: float, epoch: int, total_epochs: int) -> float:
    """The learning rate for ``epoch`` (0-based) of ``total_epochs``.

    * ``constant``: ``base_lr``;
    * ``cosine``: ``base_lr * (1 + cos(pi * epoch / total_epochs)) / 2`` (Loshchilov & Hutter, 2017);
    * ``step``: ``base_lr * 0.1 ** (epoch // step)`` with ``step = max(1, total_epochs // 3)``.

    >>> scheduled_lr("cosine", 1.0, 5, 10)
    0.5
    """
    if schedule == "constant":
        return base_lr
    if schedule == "cosine":
        return base_lr * (1 + math.cos(math.pi * min(epoch, total_epochs) / total_epochs)) / 2
    if schedule == "step":
        return base_lr * 0.1 ** (epoch // max(1, total_epochs // 3))
    raise InputValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, but got {schedule!r}.")
