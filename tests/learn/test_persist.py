"""Models saved as npz + JSON load back, without pickle, to identical predictions."""

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from crossentropy.learn import CrossEntropyClassifier
from crossentropy.learn.cnn import CNNClassifier
from crossentropy.learn.persist import load_model, save_model


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
