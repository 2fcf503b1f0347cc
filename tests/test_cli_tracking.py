"""train --log-dir: the TensorBoard scalars read back (the event files parsed record by record) equal the run's
loss curves and final metrics; metrics.json records versions and the command; a missing extra is exit 2 and
leaves no run directory."""

import json
import struct
import sys

import numpy as np
import pytest
from clirun import fails, run
from conftest import assert_close


def read_scalars(log_dir) -> dict:
    """{tag: [(step, value), ...]} from every TFRecord event file under ``log_dir``."""
    from tensorboardX.proto import event_pb2

    scalars: dict = {}
    for path in sorted(p for p in log_dir.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4  # length, its CRC, the record, its CRC
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_tensorboard_scalars_read_back(tmp_path):
    pytest.importorskip("tensorboardX")
    logs, out = tmp_path / "logs", tmp_path / "run"
    argv = ["train", "--data", "wine", "--epochs", "12", "--out", str(out), "--log-dir", str(logs), "--quiet"]
    proc = run(*argv)
    assert f"TensorBoard scalars to {logs}" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    scalars = read_scalars(logs)
    train = scalars["loss/train"]
    assert [s for s, _ in train] == list(range(1, metrics["epochs"] + 1))
    # TensorBoard stores scalars as float32
    assert_close([v for _, v in train], np.float32(metrics["loss_curve"]), np.float32)
    assert_close([v for _, v in scalars["loss/validation"]], np.float32(metrics["validation_loss_curve"]),
                 np.float32)
    for name in ("log_loss", "accuracy", "ece", "brier_score", "perplexity", "log_loss_bits"):
        [(step, value)] = scalars[f"metrics/{name}"]
        assert step == metrics["epochs"]
        assert_close(value, np.float32(metrics[name]), np.float32)
    assert metrics["command"] == ["crossentropy", *argv]
    assert set(metrics["versions"]) == {"crossentropy", "python", "numpy", "scikit-learn"}  # no torch: not used
    import sklearn

    import crossentropy

    assert metrics["versions"]["crossentropy"] == crossentropy.__version__
    assert metrics["versions"]["scikit-learn"] == sklearn.__version__
    assert metrics["versions"]["numpy"] == np.__version__


def test_cnn_run_records_torch_version(tmp_path):
    torch = pytest.importorskip("torch")
    run("train", "--data", "digits", "--model", "cnn", "--epochs", "1", "--out", str(tmp_path / "cnn"), "--quiet")
    metrics = json.loads((tmp_path / "cnn" / "metrics.json").read_text())
    assert metrics["versions"]["torch"] == torch.__version__


def test_missing_tensorboard_extra_is_exit_2_and_leaves_nothing(tmp_path, monkeypatch):
    for name in ("tensorboardX", "tensorboard"):  # neither writer can be imported
        monkeypatch.setitem(sys.modules, name, None)
    message = fails("train", "--data", "iris", "--epochs", "2", "--out", str(tmp_path / "run"), "--log-dir",
                    str(tmp_path / "logs"), "--quiet", message="--log-dir")
    assert "pip install 'crossentropy[tensorboard]'" in message
    assert not (tmp_path / "run").exists() and not (tmp_path / "logs").exists()
