"""Models saved as npz + JSON load back, without pickle, to identical predictions."""

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from crossentropy.learn import CrossEntropyClassifier
from crossentropy.learn.models.cnn import CNNClassifier
from crossentropy.learn.models.persist import load_model, save_model


def test_mlp_round_trip_with_string_labels(tmp_path):
    X, y = load_iris(return_X_y=True)
    y = np.array(["setosa", "versicolor", "virginica"])[y]
    model = make_pipeline(StandardScaler(), CrossEntropyClassifier(max_epochs=20, random_state=0)).fit(X, y)
    save_model(model, tmp_path, metadata={"dataset": "iris"})
    loaded = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with np.load(tmp_path / "model.npz", allow_pickle=False) as arrays:
        assert all(a.dtype != object for a in arrays.values())


def test_bare_classifier_and_cnn_round_trip(tmp_path):
    X, y = load_digits(return_X_y=True)
    clf = CrossEntropyClassifier(hidden_layer_sizes=(), max_epochs=5, random_state=0).fit(X[:300], y[:300])
    (tmp_path / "a").mkdir()
    save_model(clf, tmp_path / "a")
    np.testing.assert_array_equal(load_model(tmp_path / "a").predict_proba(X[:50]), clf.predict_proba(X[:50]))
    cnn = CNNClassifier(epochs=1).fit(X[:300] / 16, y[:300])
    (tmp_path / "b").mkdir()
    save_model(cnn, tmp_path / "b")
    np.testing.assert_allclose(load_model(tmp_path / "b").predict_proba(X[:50] / 16), cnn.predict_proba(X[:50] / 16))


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"has no saved model \(.*model.json is missing\)"):
        load_model(tmp_path)


def test_saving_into_a_missing_directory_is_a_clear_error(tmp_path):
    """Issue 21 #14: an InputValueError naming the directory, as load_model gives, and nothing written."""
    from crossentropy import InputValueError

    X, y = load_iris(return_X_y=True)
    clf = CrossEntropyClassifier(hidden_layer_sizes=(), max_epochs=2, random_state=0).fit(X, y)
    with pytest.raises(InputValueError, match=r"directory .*no/such/dir does not exist; create it first"):
        save_model(clf, tmp_path / "no" / "such" / "dir")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputValueError, match=r"file is not a directory"):
        save_model(clf, tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ------------------------------------------------------------------------------------ issue 12 #11: tampered files
def _saved_table_model(directory):
    import pandas as pd
    from tables import wine_table

    from crossentropy.learn import TablePreprocessor

    table = wine_table()
    X, y = table.drop(columns="cultivar"), table["cultivar"]
    model = make_pipeline(TablePreprocessor(), CrossEntropyClassifier(hidden_layer_sizes=(8,), max_epochs=5,
                                                                      random_state=0)).fit(X, y)
    save_model(model, directory)
    return model, pd.DataFrame(X)


def _edit_json(key_path, value):
    import json

    def edit(d):
        info = json.loads((d / "model.json").read_text())
        node = info
        for key in key_path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[key_path[-1]]
        else:
            node[key_path[-1]] = value(node[key_path[-1]]) if callable(value) else value
        (d / "model.json").write_text(json.dumps(info))
    return edit


def _edit_npz(key, value):
    def edit(d):
        with np.load(d / "model.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        if value is _DELETE:
            del arrays[key]
        else:
            arrays[key] = value(arrays[key])
        np.savez(d / "model.npz", **arrays)
    return edit


def _write(name, data):
    def edit(d):
        (d / name).write_bytes(data(d / name) if callable(data) else data)
    return edit


_DELETE = object()

TAMPERINGS = {
    "empty npz file": (_write("model.npz", b""), "damaged or not a crossentropy model"),
    "truncated npz": (_write("model.npz", lambda p: p.read_bytes()[:100]), "damaged or not a crossentropy model"),
    "garbage npz": (_write("model.npz", b"PK\x03\x04garbage" * 10), "damaged or not a crossentropy model"),
    "empty json": (_write("model.json", b""), "is not valid JSON"),
    "json list": (_write("model.json", b"[1, 2]"), "is not a crossentropy model file"),
    "no kind": (_edit_json(["kind"], _DELETE), "no valid 'kind'"),
    "unknown kind": (_edit_json(["kind"], "Forest"), "unknown model kind 'Forest'"),
    "no classes": (_edit_json(["classes"], _DELETE), "no valid 'classes'"),
    "shortened classes": (_edit_json(["classes"], lambda c: c[:2]), "has shape (8, 3), but the model needs (8, 1)"),
    "duplicate classes": (_edit_json(["classes"], lambda c: [c[0]] * 3), "at least two distinct labels"),
    "object classes": (_edit_json(["classes"], lambda c: [{"a": 1}] * 3), "at least two distinct labels"),
    "intercept shape (1,)": (_edit_npz("intercept.1", lambda a: a[:1]), "'intercept.1' has shape (1,)"),
    "coef transposed": (_edit_npz("coef.0", lambda a: a.T), "'coef.0' has shape (8, 10), but the model needs (10, 8)"),
    "missing coef": (_edit_npz("coef.1", _DELETE), "lacks the array 'coef.1'"),
    "NaN weight": (_edit_npz("coef.0", lambda a: a * np.nan), "holds NaN or inf"),
    "text array": (_edit_npz("coef.0", lambda a: a.astype(str)), "non-numeric arrays"),
    "n_layers": (_edit_json(["n_layers"], 3), "says 3 layers"),
    "n_layers text": (_edit_json(["n_layers"], "2"), "no valid 'n_layers'"),
    "hidden sizes": (_edit_json(["params", "hidden_layer_sizes"], [9]), "but the model needs (10, 9)"),
    "unknown param": (_edit_json(["params", "frobnicate"], 1), "params do not fit CrossEntropyClassifier"),
    "n_features_in": (_edit_json(["n_features_in"], 11), "makes 10 features, but the classifier takes 11"),
    "scale shape": (_edit_npz("table.scale", lambda a: a[:-1]), "centers and scales have shapes"),
    "zero scale": (_edit_npz("table.scale", lambda a: a * 0), "a scale that is not positive"),
    "column kind": (_edit_json(["preprocessing", "columns", 0, "kind"], "date"), "column 0 is malformed"),
    "no categories": (_edit_json(["preprocessing", "columns", 5, "categories"], []), "inconsistent fill value"),
    "dropped column": (_edit_json(["preprocessing", "columns"], lambda c: c[:-1]), "describes 6 columns"),
    "preprocessing kind": (_edit_json(["preprocessing", "kind"], "PCA"), "unknown preprocessing 'PCA'"),
    "no loss curve": (_edit_json(["loss_curve"], _DELETE), "no valid 'loss_curve'"),
    # issue 21 #30: values of the right JSON type but the wrong kind, dtype or range
    "fill true": (_edit_json(["preprocessing", "columns", 0, "fill"], True), "inconsistent fill value"),
    "fill inf": (_edit_json(["preprocessing", "columns", 0, "fill"], float("inf")), "inconsistent fill value"),
    "fill nan": (_edit_json(["preprocessing", "columns", 0, "fill"], float("nan")), "inconsistent fill value"),
    "fill not a category": (_edit_json(["preprocessing", "columns", 5, "fill"], "mauve"), "inconsistent fill value"),
    "repeated category": (_edit_json(["preprocessing", "columns", 5, "categories"], lambda c: [c[0], *c]),
                          "inconsistent fill value"),
    "float16 center": (_edit_npz("table.center", lambda a: a.astype(np.float16)), "must be float64 (as saved)"),
    "float32 scale": (_edit_npz("table.scale", lambda a: a.astype(np.float32)), "must be float64 (as saved)"),
    "one-hot column scaled": (_edit_npz("table.scale", lambda a: a * 2), "inconsistent fill value"),
    "loss curve inf": (_edit_json(["loss_curve"], lambda c: [*c, float("inf")]), "list of finite numbers"),
    "loss curve text": (_edit_json(["loss_curve"], lambda c: ["1.0"]), "list of finite numbers"),
    "max_epochs negative": (_edit_json(["params", "max_epochs"], -1), "params do not fit CrossEntropyClassifier"),
    "loss name": (_edit_json(["params", "loss"], "hinge"), "params do not fit CrossEntropyClassifier"),
    "nested 100,000 deep": (_write("model.json", b"[" * 100_000 + b"]" * 100_000), "nests its values too deeply"),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_tampered_files_are_clear_errors(tmp_path, name):
    from crossentropy import InputValueError

    model, X = _saved_table_model(tmp_path)
    np.testing.assert_array_equal(load_model(tmp_path).predict_proba(X), model.predict_proba(X))
    edit, message = TAMPERINGS[name]
    edit(tmp_path)
    with pytest.raises(InputValueError) as info:
        load_model(tmp_path)
    assert message in str(info.value)


def test_tampered_cnn_weights(tmp_path):
    from crossentropy import InputValueError

    X, y = load_digits(return_X_y=True)
    cnn = CNNClassifier(epochs=1).fit(X[:200] / 16, y[:200])
    save_model(cnn, tmp_path)
    _edit_npz("net.0.weight", lambda a: a[:3])(tmp_path)
    with pytest.raises(InputValueError, match="does not hold this CNN's weights"):
        load_model(tmp_path)
    save_model(cnn, tmp_path)
    _edit_json(["side"], 7)(tmp_path)
    with pytest.raises(InputValueError, match="images of side 7, but 64 features"):
        load_model(tmp_path)


def test_version_1_files_still_load(tmp_path):
    """Files written before the "preprocessing" record (a "scaled" flag) load to the same predictions."""
    import json

    X, y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), CrossEntropyClassifier(max_epochs=5, random_state=0)).fit(X, y)
    save_model(model, tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    del info["preprocessing"]
    info.update(version=1, scaled=True)
    (tmp_path / "model.json").write_text(json.dumps(info))
    np.testing.assert_array_equal(load_model(tmp_path).predict_proba(X), model.predict_proba(X))
