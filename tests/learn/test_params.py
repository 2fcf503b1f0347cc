"""Every estimator of crossentropy.learn checks its parameters the scikit-learn way (``_parameter_constraints``,
checked when ``fit`` starts): a typo is an error that names the parameter, never a silent default."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from crossentropy.learn.models.base import check_params
from crossentropy.learn.models.cnn import CNNClassifier
from crossentropy.learn.models.estimator import CrossEntropyClassifier
from crossentropy.learn.models.tagger import TokenTagger
from crossentropy.learn.models.text_model import FastTextClassifier
from crossentropy.rules.errors import InputValueError

IMAGES = np.random.default_rng(0).random((20, 16)), np.arange(20) % 2
TEXTS = ["good day", "bad day"] * 10, np.arange(20) % 2
SENTENCES = [["a", "b"]] * 4, [["O", "B-X"]] * 4
ESTIMATORS = [(CrossEntropyClassifier, IMAGES), (CNNClassifier, IMAGES), (FastTextClassifier, TEXTS),
              (TokenTagger, SENTENCES)]


@pytest.mark.parametrize("cls,data", ESTIMATORS, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("param,value", [("loss", "cross_entropyy"), ("optimizer", "adamm"), ("gamma", -1.0),
                                         ("label_smoothing", 1.5), ("class_weight", "balancd")])
def test_a_typo_in_a_parameter_is_an_error_naming_it(cls, data, param, value):
    """The CNN once trained cross-entropy for any unknown loss name (issue 22)."""
    with pytest.raises(InvalidParameterError, match=f"The '{param}' parameter of {cls.__name__} must be"):
        cls(**{param: value}).fit(*data)


@pytest.mark.parametrize("cls,data", ESTIMATORS[1:], ids=lambda v: getattr(v, "__name__", ""))
def test_the_epoch_count_must_be_positive(cls, data):
    key = "max_epochs" if cls is CrossEntropyClassifier else "epochs"
    with pytest.raises(InvalidParameterError, match=f"The '{key}' parameter of {cls.__name__} must be an int"):
        cls(**{key: 0}).fit(*data)


def test_check_params_raises_the_library_error_with_its_origin():
    with pytest.raises(InputValueError, match="model.json params: The `loss` parameter of TokenTagger"):
        check_params(TokenTagger(loss="hinge"), "model.json params: ")
    tagger = TokenTagger()
    assert check_params(tagger) is tagger
