"""Matplotlib figures for evaluation reports. Each function returns a ``matplotlib.figure.Figure`` drawn on its own
Agg canvas, so importing or calling this module never changes the global backend (no ``matplotlib.use``, no
pyplot); :func:`save` writes a figure to a file.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WRAP = 20  # class names longer than this wrap onto several lines on plot axes


def _figure(**kwargs) -> Figure:
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path) -> Path:
    """Write ``fig`` to ``path`` (the format follows the suffix) and return the path."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)


_AXES = {"positive": ("predicted P(positive)", "observed frequency of positive"),
         "top_label": ("top-1 confidence", "accuracy"),
         "class": ("predicted P(class)", "observed frequency")}


def _reliability_axes(top, bottom, bins: dict, kind: str, *, legend: bool) -> None:
    """The diagonal, bars and a line through the non-empty bins only (broken at empty ones), and bin counts."""
    conf = np.asarray(bins["confidence"], dtype=float)
    acc = np.asarray(bins["accuracy"], dtype=float)
    count = np.asarray(bins["count"], dtype=float)
    n_bins = len(count)
    centers = (np.arange(n_bins) + 0.5) / n_bins
    filled = count > 0
    x_label, y_label = _AXES[kind]
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfectly calibrated")
    top.bar(centers[filled], acc[filled], width=1 / n_bins, edgecolor="black", alpha=0.7, label=y_label)
    # NaN at empty bins breaks the line, so it never jumps across a gap
    top.plot(np.where(filled, conf, np.nan), np.where(filled, acc, np.nan), "o-", color="tab:red",
             label="mean prediction -> observed")
    top.set_ylabel(y_label)
    top.set_ylim(0, 1)
    if legend:
        top.legend(loc="upper left", fontsize=8)
    bottom.bar(centers[filled], count[filled], width=1 / n_bins, edgecolor="black", color="tab:blue")
    bottom.set_xlabel(x_label)
    bottom.set_ylabel("samples")
    bottom.set_xlim(0, 1)


def reliability(bins: dict, ece: float) -> Figure:
    """The reliability diagram of ``bins`` (from ``reliability_curves``): P(positive) against the frequency of the
    positive class for binary problems, else top-1 confidence against accuracy; the diagonal is perfect
    calibration, empty bins are skipped, and the lower panel counts samples per bin."""
    fig = _figure(figsize=(5, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    _reliability_axes(top, bottom, bins, bins.get("kind", "top_label"), legend=True)
    top.set_title(f"Reliability diagram (ECE = {ece:.4f}, {len(bins['count'])} bins)")
    return fig


def reliability_per_class(bins: dict, names: list[str]) -> Figure:
    """One small reliability diagram per class: P(class) against how often the sample is of that class."""
    per_class = bins["per_class"]
    cols = min(5, len(per_class))
    rows = -(-len(per_class) // cols)
    fig = _figure(figsize=(2.6 * cols, 3.0 * rows), layout="constrained")
    grid = fig.add_gridspec(2 * rows, cols, height_ratios=[3, 1] * rows)
    for k, (name, class_bins) in enumerate(zip(names, per_class, strict=True)):
        r, c = divmod(k, cols)
        top = fig.add_subplot(grid[2 * r, c])
        bottom = fig.add_subplot(grid[2 * r + 1, c], sharex=top)
        _reliability_axes(top, bottom, class_bins, "class", legend=False)
        top.set_title(f"class {name}", fontsize=9)
        top.tick_params(labelbottom=False)
        for ax in (top, bottom):
            ax.xaxis.label.set_fontsize(8)
            ax.yaxis.label.set_fontsize(8)
            ax.tick_params(labelsize=7)
    fig.suptitle("Reliability per class")
    return fig


def confusion(matrix: np.ndarray, names: list[str]) -> Figure:
    """The confusion matrix, true classes down, predicted across. Names longer than ``WRAP`` characters wrap onto
    several lines; the predicted-class names stand upright (rotated 90 degrees) once any line of them is longer
    than four characters, and the figure grows with the longest line, so that no two names overlap whatever their
    length (constrained layout: no "tight layout not applied" warning)."""
    shown = [textwrap.fill(str(n), WRAP) or " " for n in names]
    longest = max((len(line) for n in shown for line in n.splitlines()), default=1)
    upright = len(names) > 6 or longest > 4
    cells = 0.45 * len(names)
    margin = 0.09 * longest  # inches taken by the longest line of a name (about 6.5 points a character)
    fig = _figure(figsize=(max(4.0, cells + 2 + margin), max(4.0, cells + 1.5 + (margin if upright else 0))),
                  layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks(range(len(names)), shown, rotation=90 if upright else 0)
    ax.set_yticks(range(len(names)), shown)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > threshold else "black")
    return fig


def loss_curve(train: list[float], validation: list[float], *, loss_name: str = "cross-entropy") -> Figure:
    """Training (and validation) loss per epoch, labelled by the loss that was trained (e.g. "focal loss")."""
    fig = _figure(figsize=(6, 4))
    ax = fig.subplots()
    epochs = np.arange(1, len(train) + 1)
    ax.plot(epochs, train, label=f"training {loss_name}")
    if validation:
        ax.plot(np.arange(1, len(validation) + 1), validation, label=f"validation {loss_name}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{loss_name} (nats)")
    ax.set_yscale("log")
    ax.set_title(f"Loss curve ({loss_name})")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig
