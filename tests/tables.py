"""A real table with text columns and missing values, built deterministically from scikit-learn's bundled wine
data (178 wines, 13 measurements, 3 cultivars): two measurements become text columns, some cells become missing,
and the cultivar becomes a text label."""

import numpy as np
import pandas as pd
from sklearn.datasets import load_wine


def wine_table(*, text_labels: bool = True) -> pd.DataFrame:
    """The wine table with ``colour`` (text, from colour intensity) and ``acidity`` (text, from malic acid, with
    missing cells) columns, NaN in 10% of the ``alcohol`` and ``magnesium`` cells, and the label in ``cultivar``
    (``"barolo"``, ``"grignolino"``, ``"barbera"``; the integers 0, 1, 2 when ``text_labels`` is false)."""
    wine = load_wine(as_frame=True)
    frame = wine.data[["alcohol", "magnesium", "flavanoids", "proline", "hue", "color_intensity", "malic_acid"]]
    frame = frame.copy()
    rng = np.random.default_rng(0)
    frame["colour"] = pd.cut(frame.pop("color_intensity"), [0, 3.5, 7, 99], labels=["pale", "ruby", "deep"])
    frame["colour"] = frame["colour"].astype(str)
    frame["acidity"] = np.where(frame.pop("malic_acid") > 2.3, "sharp", "soft").astype(object)
    frame.loc[rng.random(len(frame)) < 0.1, "acidity"] = np.nan
    for column in ("alcohol", "magnesium"):
        frame.loc[rng.random(len(frame)) < 0.1, column] = np.nan
    names = np.array(["barolo", "grignolino", "barbera"])
    frame["cultivar"] = names[wine.target] if text_labels else wine.target
    return frame
