"""The one training loop of the torch models (CNN, BiLSTM tagger, fastText-style text classifier), their optimizers,
their loss and their thread setting.

``fit_network`` runs ``epochs`` passes: for each batch ``(inputs, targets, size)`` that ``batches()`` yields, one
optimizer step on ``loss(network(*inputs), targets)``; the epoch's training loss is the ``size``-weighted mean of the
batch losses. After each epoch, the loss on ``validation`` (when given) is recorded and the weights of the best epoch
are kept and restored at the end; ``callback(epoch, train_loss, validation_loss)`` is called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ...constants import IGNORE_INDEX
from ...rules.errors import InputValueError
from ...torch import cross_entropy, softmax_focal_loss
from ..choices import CLASS_WEIGHTS, LOSSES
from .base import BestWeights

TORCH_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
IGNORE = IGNORE_INDEX  # the target of padded positions: ignore_index of the loss

# The parameters the torch models share, checked the scikit-learn way (each model adds its own).
TORCH_CONSTRAINTS: dict = {
    "epochs": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "optimizer": [StrOptions(set(TORCH_OPTIMIZERS))],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "loss": [StrOptions(set(LOSSES))],
    "gamma": [Interval(Real, 0, None, closed="left")],
    "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    "class_weight": [None, StrOptions(set(CLASS_WEIGHTS))],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "random_state": [None, Interval(Integral, 0, None, closed="left")],
    "num_threads": [None, Interval(Integral, 1, None, closed="left")],
    "callback": [None, callable],
}


def torch_optimizer(name: str, parameters, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    """The torch optimizer ``name`` (adam, adamw or sgd) of the torch models, in torch's fused form (one kernel per
    step for all parameters: on the text model's 2**15 x 64 embedding, 1.5 ms a step against 19 ms for the
    per-tensor loop, on one CPU thread)."""
    if name not in TORCH_OPTIMIZERS:
        raise InputValueError(f"the torch models support optimizer adam, adamw or sgd, but got {name!r}.")
    return TORCH_OPTIMIZERS[name](parameters, lr=learning_rate, weight_decay=weight_decay, fused=True)


def torch_loss(model, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """``model.loss`` ("cross_entropy" or "focal", with the model's ``gamma`` and ``label_smoothing``) of
    ``logits`` against ``targets``; ``weight`` weighs the classes, targets equal to ``IGNORE`` are left out."""
    if model.loss == "focal":
        return softmax_focal_loss(logits, targets, gamma=model.gamma, alpha=weight, ignore_index=IGNORE,
                                  label_smoothing=model.label_smoothing)
    return cross_entropy(logits, targets, weight, ignore_index=IGNORE, label_smoothing=model.label_smoothing)


@contextmanager
def torch_threads(n: int | None):
    """torch's intra-op thread count set to ``n`` inside the block (unchanged for None), restored after it."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_network(network: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: Callable,
                batches: Callable[[], Iterable[tuple[tuple, torch.Tensor, int]]], *, epochs: int,
                validation: tuple[tuple, torch.Tensor] | None = None,
                callback: Callable | None = None) -> tuple[list[float], list[float], float, int]:
    """Train ``network`` (module doc); return the training and validation loss curves, the best validation loss and
    its epoch (inf and ``epochs`` without validation).

    >>> net = torch.nn.Linear(2, 2)
    >>> x, y = torch.eye(2), torch.tensor([0, 1])
    >>> opt = torch_optimizer("sgd", net.parameters(), 0.5, 0.0)
    >>> curve, _, _, _ = fit_network(net, opt, cross_entropy, lambda: [((x,), y, 2)], epochs=3)
    >>> curve[0] > curve[-1]
    True
    """
    loss_curve, validation_curve, best, best_epoch = [], [], BestWeights(), epochs
    for epoch in range(epochs):
        network.train()
        total, count = 0.0, 0
        for inputs, targets, size in batches():
            optimizer.zero_grad()
            value = loss(network(*inputs), targets)
            value.backward()
            optimizer.step()
            total += float(value.detach()) * size
            count += size
        loss_curve.append(total / count)
        validation_loss = None
        if validation is not None:
            network.eval()
            with torch.no_grad():
                validation_loss = float(loss(network(*validation[0]), validation[1]))
            validation_curve.append(validation_loss)
            best_epoch = epoch + 1 if validation_loss < best.loss else best_epoch
            best.update(validation_loss, lambda: {k: v.clone() for k, v in network.state_dict().items()})
        if callback is not None:
            callback(epoch + 1, loss_curve[-1], validation_loss)
    if best.weights is not None:
        network.load_state_dict(best.weights)
    return loss_curve, validation_curve, best.loss, best_epoch
