"""Fuzz area 3, tampered model files: ``crossentropy.learn.models.persist.save_model`` / ``load_model``.

A small fitted ``CrossEntropyClassifier`` (alone, after a ``StandardScaler``, after a ``TablePreprocessor``, and
after one that drops an ID column and a column by name)
and a small ``TokenTagger`` are saved, then their ``model.npz`` / ``model.json`` are truncated, bit-flipped,
emptied, given wrong-shape, wrong-dtype (float16 and float32 included) or object arrays, missing or extra members,
and edited JSON (keys deleted, values of the wrong type, ``classes`` shortened, any value at any depth replaced by
one of the wrong kind or range such as ``true``, ``Infinity`` or ``NaN`` (issue 21 #30), a value nested 100,000
deep), and any string value renamed (``test_fuzz_string_values_renamed``).

Invariants: ``load_model`` raises an InputError (a ValueError or TypeError), or returns a model that predicts
exactly what the saved one did (``predict_proba`` then raising anything but an InputError is a failure too);
nothing is ever unpickled (``pickle.load`` / ``pickle.loads`` are replaced by tripwires).

Every failure fails the test (issue 12 #11 is fixed); ``KNOWN`` would list a tamper kind's accepted, reported
failures, and is empty.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import shutil
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
from crossentropy.learn.models.persist import load_model, save_model

# Tamper kind -> accepted outcomes (an exception type name, or "predicts differently"); none since issue 12 #11.
KNOWN_ITEM = "#11"
KNOWN: dict = {}
ARRAY_KINDS = ("wrong shape", "wrong dtype", "object array", "missing array", "extra array")
JSON_KINDS = ("delete key", "wrong type", "shorter classes", "wrong leaf", "deep nesting")
WRONG_VALUES = (None, "x", -1, 0, 1e308, float("inf"), float("nan"), True, [], {}, [[1, 2], [3]], 2.5, 10**9)
BYTE_KINDS = ("truncate npz", "flip bits npz", "empty npz", "truncate json", "flip bits json", "empty json")


class Unpickled(Exception):
    """Raised by the tripwires: something tried to unpickle."""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name -> (directory, the data it predicts on, its predictions, a function of a loaded model giving them)."""
    from tables import wine_table

    from crossentropy.learn import TablePreprocessor
    from crossentropy.learn.models.tagger import TokenTagger
    from crossentropy.learn.samples.ner import generate

    X, y = load_iris(return_X_y=True)
    table = wine_table()
    tx, ty = table.drop(columns="cultivar"), table["cultivar"]
    with_id = tx.assign(row_id=[f"r{i}" for i in range(len(tx))])
    sentences = generate(40, seed=0)
    tokens, tags = [[t for t, _ in s] for s in sentences], [[g for _, g in s] for s in sentences]
    fitted = {
        "classifier": (CrossEntropyClassifier((4,), max_epochs=3, random_state=0).fit(X, y), X),
        "scaler + classifier": (make_pipeline(StandardScaler(), CrossEntropyClassifier((4,), max_epochs=3,
                                                                                        random_state=0)).fit(X, y), X),
        "table + classifier": (make_pipeline(TablePreprocessor(), CrossEntropyClassifier((4,), max_epochs=3,
                                                                                          random_state=0)).fit(tx, ty),
                               tx),
        # a column dropped as an ID and one by name: their reasons are leaves of model.json to tamper with
        "dropping table + classifier": (make_pipeline(TablePreprocessor(drop_columns=["alcohol"]),
                                                      CrossEntropyClassifier((4,), max_epochs=3, random_state=0)
                                                      ).fit(with_id, ty), with_id),
        "tagger": (TokenTagger(epochs=1, embedding_dim=8, hidden_size=4).fit(tokens, tags), tokens[:8]),
    }
    models = {}
    for name, (model, data) in fitted.items():
        d = tmp_path_factory.mktemp(name.replace(" + ", "-"))
        model.save(d) if name == "tagger" else save_model(model, d)
        models[name] = (d, data, _predictions(model, data))
    return models


def _predictions(model, data):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(data), model.predict(data)
    return model.predict(data)


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return all(np.array_equal(x, z) for x, z in zip(a, b, strict=True))
    return a == b


def _kind(value) -> str:
    """The JSON kind of a value (a bool is not a number)."""
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def _leaves(node, path=()):
    """The path of every value inside a JSON document (containers included)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*path, key)
        yield from _leaves(value, (*path, key))


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
            options = [a.astype(str), a.astype(np.complex128), np.zeros(a.shape, bool), a.astype(np.int8),
                       a.astype(np.float16), a.astype(np.float32 if a.dtype == np.float64 else np.float64)]
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
            key = "classes" if "classes" in info else "tags"
            info[key] = info[key][:-1]
            what = f"{key} shortened by one"
        elif kind == "wrong leaf":
            paths = list(_leaves(info))
            path = paths[int(rng.integers(len(paths)))]
            node = info
            for key in path[:-1]:
                node = node[key]
            # A value of another JSON kind, or a non-finite number: a same-kind finite edit is a different valid
            # model (no checksum is kept), which may rightly predict differently.
            wrong = [v for v in WRONG_VALUES if _kind(v) != _kind(node[path[-1]])
                     or isinstance(v, float) and not math.isfinite(v)]
            node[path[-1]] = wrong[int(rng.integers(len(wrong)))]
            what = f"value at {list(path)} set to {node[path[-1]]!r}"
        elif kind == "deep nesting":
            depth = int(rng.integers(2_000, 100_001))
            info["metadata"] = "DEEP"
            what = f"a value nested {depth} deep"
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
        if kind == "deep nesting":
            new_meta = new_meta.replace('"DEEP"', "[" * depth + "]" * depth)
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "model.npz").write_bytes(new_npz)
    (dst / "model.json").write_bytes(new_meta.encode("utf-8", errors="surrogateescape"))
    return what


def test_fuzz_tampered_model_files(saved, tmp_path, monkeypatch):
    a = area("model files")
    since = len(a.failures)

    def tripwire(*args, **kwargs):
        raise Unpickled("something tried to unpickle")
    monkeypatch.setattr(pickle, "load", tripwire)
    monkeypatch.setattr(pickle, "loads", tripwire)
    kinds = BYTE_KINDS + ARRAY_KINDS + JSON_KINDS
    names = sorted(saved)
    known: dict = {}
    for i in range(count(0.004, least=len(kinds) * len(names))):
        rng = rng_for("persist", i)
        kind = kinds[i % len(kinds)]
        name = names[(i // len(kinds)) % len(names)]
        src, data, expected = saved[name]
        dst = tmp_path / f"case{i}"
        what = _tamper(rng, kind, src, dst)
        a.cases += 1
        label = f"load_model(dir) after {what} ({name})"
        outcome = None
        try:
            if not _same(_predictions(load_model(dst), data), expected):
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


def _string_leaves(node, path=()):
    """The path of every string value inside a JSON document."""
    for leaf in _leaves(node, path):
        value = node
        for key in leaf:
            value = value[key]
        if isinstance(value, str):
            yield leaf


def test_fuzz_string_values_renamed(saved, tmp_path):
    """Each string of model.json (a class, a column name, a column's kind, a dropped column's reason, a word of a
    tagger's vocabulary...) set to one the model never had: ``load_model`` raises an InputError, or returns a model
    whose predictions come back or raise an InputError (a renamed class or word is a different valid model, which
    may predict differently). Up to 1% of the budget per model, in a shuffled order of its strings."""
    a = area("model files")
    since = len(a.failures)
    for name in sorted(saved):
        src, data, _ = saved[name]
        info = json.loads((src / "model.json").read_text())
        paths = list(_string_leaves(info))
        order = rng_for("persist strings", name).permutation(len(paths))
        for i in order[:count(0.01, least=5)]:
            path = paths[i]
            tampered = json.loads((src / "model.json").read_text())
            node = tampered
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = "renamed" if node[path[-1]] != "renamed" else "other"
            dst = tmp_path / f"{name.replace(' + ', '-')}-{i}"
            shutil.copytree(src, dst)
            (dst / "model.json").write_text(json.dumps(tampered))
            a.cases += 1
            try:
                _predictions(load_model(dst), data)
            except InputError as exc:
                if isinstance(exc, (ValueError, TypeError)):
                    continue
                a.fail(f"load_model(dir) after {list(path)} renamed ({name})", type(exc).__name__)
            except Exception as exc:  # noqa: BLE001 -- the failure being looked for
                a.fail(f"load_model(dir) after {list(path)} renamed ({name}): {exc}"[:200], type(exc).__name__)
    a.check(since)


def test_fuzz_model_files_are_zip_archives_without_pickles(saved):
    """The saved archive holds only .npy members, each readable with allow_pickle=False."""
    for d, _, _ in saved.values():
        with zipfile.ZipFile(d / "model.npz") as z:
            assert all(n.endswith(".npy") for n in z.namelist())
        assert all(v.dtype != object for v in np.load(d / "model.npz", allow_pickle=False).values())
