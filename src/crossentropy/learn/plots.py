"""Matplotlib figures for evaluation reports (Agg backend: files only, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reliability(bins: dict, ece: float, path: Path) -> Path:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration and bin counts."""
    conf = np.asarray(bins["confidence"], dtype=float)
    acc = np.asarray(bins["accuracy"], dtype=float)
    count = np.asarray(bins["count"], dtype=float)
    n_bins = len(count)
    centers = (np.arange(n_bins) + 0.5) / n_bins
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfectly calibrated")
    filled = count > 0
    top.bar(centers[filled], acc[filled], width=1 / n_bins, edgecolor="black", alpha=0.7, label="accuracy")
    top.plot(conf[filled], acc[filled], "o-", color="tab:red", label="mean confidence -> accuracy")
    top.set_ylabel("accuracy")
    top.set_title(f"Reliability diagram (ECE = {ece:.4f}, {n_bins} bins)")
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centers, count, width=1 / n_bins, edgecolor="black", color="tab:blue")
    bottom.set_xlabel("top-1 confidence")
    bottom.set_ylabel("samples")
    bottom.set_xlim(0, 1)
    return _save(fig, path)


def confusion(matrix: np.ndarray, names: list[str], path: Path) -> Path:
    size = max(4.0, 0.45 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 6 else 0)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > threshold else "black")
    return _save(fig, path)


def loss_curve(train: list[float], validation: list[float], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(train) + 1)
    ax.plot(epochs, train, label="training cross-entropy")
    if validation:
        ax.plot(np.arange(1, len(validation) + 1), validation, label="validation cross-entropy")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_yscale("log")
    ax.set_title("Loss curve")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
