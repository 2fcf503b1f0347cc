"""A record of how a run was made: the versions of the libraries it used, and TensorBoard scalars (training and
validation loss per epoch, the final metrics) through ``tensorboardX`` (the ``tensorboard`` extra) or, failing
that, ``torch.utils.tensorboard``.
"""

from __future__ import annotations

import platform
from pathlib import Path

#: The final metrics written as scalars under ``metrics/``.
FINAL_METRICS = ("log_loss", "log_loss_bits", "perplexity", "accuracy", "brier_score", "ece")


def run_versions(*, torch: bool = False) -> dict:
    """The versions of crossentropy, Python, NumPy and scikit-learn, and of torch when the run used it."""
    import numpy
    import sklearn

    from .. import __version__

    versions = {"crossentropy": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
                "scikit-learn": sklearn.__version__}
    if torch:
        import torch as torch_module

        versions["torch"] = torch_module.__version__
    return versions


def summary_writer_class():
    """tensorboardX's ``SummaryWriter``, else torch's; ImportError naming the extra to install when neither is."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoard logging needs tensorboardX (or torch with tensorboard): install the "
                              "extra with pip install 'crossentropy[tensorboard]'.") from None
    return SummaryWriter


class TensorBoardLog:
    """Scalars of one run in ``log_dir``: ``loss/train`` and ``loss/validation`` per epoch (step = epoch), and
    ``metrics/<name>`` for the final metrics. Raises ImportError, saying which extra to install, when no
    TensorBoard writer is available; so construct it before the work starts."""

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self._writer = summary_writer_class()(str(self.log_dir))

    def epoch(self, epoch: int, train_loss: float, validation_loss: float | None = None) -> None:
        self._writer.add_scalar("loss/train", train_loss, epoch)
        if validation_loss is not None:
            self._writer.add_scalar("loss/validation", validation_loss, epoch)

    def final(self, metrics: dict, step: int) -> None:
        for name in FINAL_METRICS:
            if name in metrics:
                self._writer.add_scalar(f"metrics/{name}", metrics[name], step)

    def close(self) -> None:
        self._writer.close()
