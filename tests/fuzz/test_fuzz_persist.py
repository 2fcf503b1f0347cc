"""Fuzz area 3, tampered model files: ``crossentropy.learn.persist.save_model`` / ``load_model``.

A small fitted ``CrossEntropyClassifier`` (alone, and after a ``StandardScaler``) is saved, then its
``model.npz`` / ``model.json`` are truncated, bit-flipped, emptied, given wrong-shape, wrong-dtype or object
arrays, missing or extra members, and edited JSON (keys deleted, values of the wrong type, ``classes`` shortened).

Invariants: ``load_model`` raises an InputError (a ValueError or TypeError), or returns a model that predicts
exactly what the saved one did (``predict_proba`` then raising anything but an InputError is a failure too);
nothing is ever unpickled (``pickle.load`` / ``pickle.loads`` are replaced by tripwires).

Every failure fails the test (issue 12 #11 is fixed); ``KNOWN`` would list a tamper kind's accepted, reported
failures, and is empty.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fuzzkit import area, count, rng_for
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from crossentropy import InputError
from crossentropy.learn import CrossEntropyClassifier
from crossentropy.learn.persist import load_model, save_model

# Tamper kind -> accepted outcomes (an exception type name, or "predicts differently"); none since issue 12 #11.
KNOWN_ITEM = "#11"
KNOWN: dict = {}
ARRAY_KINDS = ("wrong shape", "wrong dtype", "object array", "missing array", "extra array")
JSON_KINDS = ("delete key", "wrong type", "shorter classes")
BYTE_KINDS = ("truncate npz", "flip bits npz", "empty npz", "truncate json", "flip bits json", "empty json")


class Unpickled(Exception):
    """Raised by the tripwires: something tried to unpickle."""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    X, y = load_iris(return_X_y=True)
    models = {}
    for scaled in (False, True):
        clf = CrossEntropyClassifier((4,), max_epochs=3, random_state=0)
        model = make_pipeline(StandardScaler(), clf) if scaled else clf
        model.fit(X, y)
        d = tmp_path_factory.mktemp(f"model-{scaled}")
        save_model(model, d)
        models[scaled] = (d, model.predict_proba(X), model.predict(X))
    return X, models


def _tamper(rng, kind: str, src: Path, dst: Path) -> str:
    """Write a tampered copy of the model in ``src`` into ``dst``; return a one-line description."""
    npz, meta = (src / "model.npz").read_bytes(), (src / "model.json").read_text()
    new_npz, new_meta, what = npz, meta, kind
    if kind in BYTE_KINDS:
        data = bytearray(npz if kind.endswith("npz") else meta.encode())
        if kind.startswith("truncate"):
            cut = int(rng.integers(0, len(data)))
            data, what = data[:cut], f"{kind} to {cut} of {len(data)} bytes"
        elif kind.startswith("flip"):
            spots = rng.integers(0, len(data), int(rng.integers(1, 9)))
            for s in spots:
                data[s] ^= 1 << int(rng.integers(0, 8))
            what = f"{kind} at bytes {sorted(spots.tolist())}"
        else:
            data = bytearray()
        if kind.endswith("npz"):
            new_npz = bytes(data)
        else:
            new_meta = bytes(data).decode("utf-8", errors="surrogateescape")
    elif kind in ARRAY_KINDS:
        arrays = dict(np.load(io.BytesIO(npz), allow_pickle=False))
        name = sorted(arrays)[int(rng.integers(len(arrays)))]
        a = arrays[name]
        if kind == "wrong shape":
            options = [a[..., :-1] if a.ndim and a.shape[-1] > 1 else np.zeros((2, 2)), a.reshape(-1)[:1],
                       np.stack([a, a]), a.T if a.ndim == 2 else a[None]]
            arrays[name] = options[int(rng.integers(len(options)))]
        elif kind == "wrong dtype":
            options = [a.astype(str), a.astype(np.complex128), np.zeros(a.shape, bool), a.astype(np.int8)]
            arrays[name] = options[int(rng.integers(len(options)))]
        elif kind == "object array":
            arrays[name] = np.array([{"x": 1}, None], dtype=object)
        elif kind == "missing array":
            del arrays[name]
        else:
            arrays["coef.99"] = np.ones((2, 2))
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # object arrays are pickled here: exactly what load_model must refuse to read
        new_npz, what = buf.getvalue(), f"{kind}: {name} {a.shape} {a.dtype}"
    else:
        info = json.loads(meta)
        if kind == "shorter classes":
            info["classes"] = info["classes"][:-1]
            what = "classes shortened by one"
        else:
            holder = info["params"] if rng.random() < 0.3 else info
            key = sorted(holder)[int(rng.integers(len(holder)))]
            if kind == "delete key":
                del holder[key]
                what = f"deleted key {key!r}"
            else:
                values = [None, "x", -1, 1e308, [], {}, True, [[1, 2], [3]], 2.5]
                holder[key] = values[int(rng.integers(len(values)))]
                what = f"key {key!r} set to {holder[key]!r}"
        new_meta = json.dumps(info)
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "model.npz").write_bytes(new_npz)
    (dst / "model.json").write_bytes(new_meta.encode("utf-8", errors="surrogateescape"))
    return what


def test_fuzz_tampered_model_files(saved, tmp_path, monkeypatch):
    X, models = saved
    a = area("model files")
    since = len(a.failures)

    def tripwire(*args, **kwargs):
        raise Unpickled("something tried to unpickle")
    monkeypatch.setattr(pickle, "load", tripwire)
    monkeypatch.setattr(pickle, "loads", tripwire)
    kinds = BYTE_KINDS + ARRAY_KINDS + JSON_KINDS
    known: dict = {}
    for i in range(count(0.004, least=len(kinds))):
        rng = rng_for("persist", i)
        kind = kinds[i % len(kinds)]
        scaled = bool((i // len(kinds)) % 2)
        src, expected, labels = models[scaled]
        dst = tmp_path / f"case{i}"
        what = _tamper(rng, kind, src, dst)
        a.cases += 1
        label = f"load_model(dir) after {what} ({'scaler + ' if scaled else ''}classifier)"
        outcome = None
        try:
            model = load_model(dst)
            if not (np.array_equal(model.predict_proba(X), expected) and np.array_equal(model.predict(X), labels)):
                outcome = "predicts differently"
        except Unpickled:
            a.fail(label, "load_model unpickled")
            continue
        except InputError as exc:
            if not isinstance(exc, (ValueError, TypeError)):
                outcome = type(exc).__name__
        except Exception as exc:  # noqa: BLE001 -- the failure being looked for
            outcome = type(exc).__name__
            label += f": {exc}"[:200]
        if outcome is None:
            continue
        if outcome not in KNOWN.get(kind, ()):
            a.fail(label, f"{outcome} (not an InputError, and not a known failure)")
        else:
            known.setdefault((kind, outcome), [0, label])[0] += 1
    a.known.extend(f"issue 12 {KNOWN_ITEM}: {k[1]} x{n}, e.g. {label}" for k, (n, label) in sorted(known.items()))
    a.check(since)


def test_fuzz_model_files_are_zip_archives_without_pickles(saved):
    """The saved archive holds only .npy members, each readable with allow_pickle=False."""
    _, models = saved
    for d, _, _ in models.values():
        with zipfile.ZipFile(d / "model.npz") as z:
            assert all(n.endswith(".npy") for n in z.namelist())
        assert all(v.dtype != object for v in np.load(d / "model.npz", allow_pickle=False).values())
