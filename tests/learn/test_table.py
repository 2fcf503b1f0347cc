"""TablePreprocessor: equal to scikit-learn's SimpleImputer + StandardScaler / OneHotEncoder(handle_unknown="ignore")
ColumnTransformer on a real table with text and missing values; golden values; properties (column order, unknown
categories, scale invariance); and predict_table / the file loaders built on it."""

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tables import wine_table

from crossentropy import InputValueError
from crossentropy.learn import CrossEntropyClassifier, TablePreprocessor, predict_table
from crossentropy.learn.io.data import load_array, load_labels, load_predictions

TEXT = ["colour", "acidity"]


def _sklearn_reference(X):
    numeric = [c for c in X.columns if c not in TEXT]
    return make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        (make_pipeline(SimpleImputer(strategy="most_frequent"),
                       OneHotEncoder(handle_unknown="ignore", sparse_output=False)), TEXT)).fit(X)


def test_equals_sklearn_column_transformer():
    X = wine_table().drop(columns="cultivar")
    X = X[[c for c in X.columns if c not in TEXT] + TEXT]  # the reference puts numeric columns first
    ours = TablePreprocessor().fit(X)
    reference = _sklearn_reference(X)
    new = X.sample(frac=1.0, random_state=0)
    new.loc[new.index[:5], "colour"] = "purple"  # unseen: all zeros
    assert_close(ours.transform(new), reference.transform(new))
    assert list(ours.get_feature_names_out()) == [*X.columns[:5], "colour=deep", "colour=pale", "colour=ruby",
                                                  "acidity=sharp", "acidity=soft"]


def test_golden():
    frame = pd.DataFrame({"n": [1.0, np.nan, 4.0, 3.0], "t": ["a", None, "b", "b"]})
    out = TablePreprocessor().fit(frame).transform(frame)
    # n: median 3 fills the gap -> [1, 3, 4, 3], mean 2.75, std sqrt(1.1875); t: mode "b" fills the gap
    z = (np.array([1, 3, 4, 3]) - 2.75) / np.sqrt(1.1875)
    assert_close(out, np.column_stack([z, [1, 0, 0, 0], [0, 1, 1, 1]]))


@given(st.permutations(range(7)), st.integers(0, 3))
def test_column_order_and_extra_columns_do_not_matter(order, n_extra):
    X = wine_table().drop(columns="cultivar")
    prep = TablePreprocessor().fit(X)
    shuffled = X[X.columns[list(order)]].assign(**{f"extra{i}": i for i in range(n_extra)})
    np.testing.assert_array_equal(prep.transform(shuffled), prep.transform(X))


@given(st.floats(-300, 300))
def test_scale_invariant_up_to_huge_magnitudes(log10_scale):
    x = np.array([[1.0], [2.0], [4.0], [np.nan]])
    base = TablePreprocessor().fit_transform(x)
    scaled = TablePreprocessor().fit_transform(x * 10.0**log10_scale)
    assert np.isfinite(scaled).all()
    assert_close(scaled, base, np.float32)


@pytest.mark.parametrize("frame,message", [
    (pd.DataFrame({"a": [1.0, np.inf]}), "column 'a' has an infinite value in row 1"),
    (pd.DataFrame({"a": [np.nan, np.nan]}), "column 'a' has no values at all"),
    (pd.DataFrame({"a": pd.Series([], dtype=float)}), "X has no rows"),
    (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicate column names ['a']"),
])
def test_fit_errors(frame, message):
    with pytest.raises(InputValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TablePreprocessor().fit(frame)


def test_transform_errors_name_the_column():
    prep = TablePreprocessor().fit(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}))
    with pytest.raises(InputValueError, match=r"lacks feature column\(s\) \['b'\]"):
        prep.transform(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(InputValueError, match="column 'a' held numbers in training, but row 0 holds 'oops'"):
        prep.transform(pd.DataFrame({"a": ["oops"], "b": ["x"]}))


def test_predict_table_matches_columns_by_name():
    table = wine_table(text_labels=False)
    X, y = table.drop(columns="cultivar"), table["cultivar"].to_numpy()
    model = make_pipeline(TablePreprocessor(), CrossEntropyClassifier(max_epochs=20, random_state=0)).fit(X, y)
    out = predict_table(model, X)
    assert list(out.columns) == ["predicted", "0", "1", "2"] and out["predicted"].dtype.kind == "i"
    assert_close(out[["0", "1", "2"]].to_numpy(), model.predict_proba(X))
    reordered = predict_table(model, X[X.columns[::-1]].assign(cultivar=-1))
    pd.testing.assert_frame_equal(reordered, out)


def test_loaders_keep_types_and_find_headers(tmp_path):
    (tmp_path / "p.csv").write_text("1,0\n0.2,0.8\n0.6,0.4\n")  # an integer header over probabilities
    (tmp_path / "y.csv").write_text("label\n0\n1\n")
    scores, columns, y = load_predictions(str(tmp_path / "p.csv"), str(tmp_path / "y.csv"))
    assert columns == ["1", "0"] and scores.shape == (2, 2) and y.dtype == np.int64
    (tmp_path / "q.csv").write_text("0.2,0.8\n0.6,0.4\n")
    scores, columns, y = load_predictions(str(tmp_path / "q.csv"), str(tmp_path / "y.csv"))
    assert columns is None and scores.dtype == np.float64
    (tmp_path / "t.csv").write_text("species\ncat\ndog\n")
    assert load_labels(str(tmp_path / "t.csv"), "--labels", classes=["cat", "dog"]).tolist() == ["cat", "dog"]
    (tmp_path / "u.csv").write_text("cat\ndog\n")
    assert load_labels(str(tmp_path / "u.csv"), "--labels", classes=["cat", "dog"]).tolist() == ["cat", "dog"]
    array, names = load_array(str(tmp_path / "p.csv"), "--proba")
    assert names is None and array.shape == (3, 2)  # without a row count, an all-number first row is data


def test_a_utf8_byte_order_mark_does_not_rename_the_first_column(tmp_path):
    """Issue 21 #29: Excel's "CSV UTF-8" starts with a BOM; the first header is still 'species'."""
    from crossentropy.learn.io.data import load_array, read_table

    (tmp_path / "bom.csv").write_bytes("\ufeffspecies,mass\nAdelie,3750\nGentoo,5000\n".encode())
    assert list(read_table(tmp_path / "bom.csv", "--data").columns) == ["species", "mass"]
    array, columns = load_array(str(tmp_path / "bom.csv"), "--labels")
    assert columns == ["species", "mass"] and array[:, 0].tolist() == ["Adelie", "Gentoo"]
