"""rules/options.py: the options objects check every field once, keep the checked values, and are shared."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossentropy.constants import DIVERGENCES, IGNORE_INDEX, IMPLS, REDUCTIONS
from crossentropy.rules.errors import InputTypeError, InputValueError
from crossentropy.rules.options import DistillationOptions, FocalOptions, SoftmaxOptions


def test_defaults_are_the_public_defaults():
    o = SoftmaxOptions()
    assert (o.reduction, o.label_smoothing, o.ignore_index, o.z_loss, o.softcap, o.return_stats, o.chunk_size,
            o.impl) == ("mean", 0.0, IGNORE_INDEX, 0.0, None, False, None, "auto")
    assert DistillationOptions().temperature == 1.0 and FocalOptions().gamma == 2.0


def test_frozen_and_public_names():
    o = SoftmaxOptions(label_smoothing=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.label_smoothing = 0.2
    assert {f.name for f in dataclasses.fields(DistillationOptions)} >= {"divergence", "beta", "temperature"}
    assert "label_smoothing" in {f.name for f in dataclasses.fields(FocalOptions)}


def test_checked_values_are_kept():
    o = SoftmaxOptions(label_smoothing=0, z_loss=1, softcap=30)
    assert type(o.label_smoothing) is float and type(o.z_loss) is float and type(o.softcap) is float


@pytest.mark.parametrize(("fields", "error", "message"), [
    ({"reduction": "avg"}, InputValueError, "reduction must be one of 'none', 'sum' or 'mean'"),
    ({"label_smoothing": 1.0}, InputValueError, r"label_smoothing must be in \[0, 1\)"),
    ({"label_smoothing": "0.1"}, InputTypeError, "label_smoothing must be a float"),
    ({"ignore_index": 1.5}, InputTypeError, "ignore_index must be an int"),
    ({"z_loss": -1.0}, InputValueError, "z_loss must be a non-negative finite number"),
    ({"softcap": 0.0}, InputValueError, "softcap must be None"),
    ({"return_stats": 1}, InputTypeError, "return_stats must be True or False"),
    ({"chunk_size": 0}, InputValueError, "chunk_size must be a positive int"),
    ({"impl": "gpu"}, InputValueError, "impl must be one of 'auto', 'compiled', 'reference', 'triton' or 'native'"),
])
def test_each_field_is_checked_with_its_message(fields, error, message):
    with pytest.raises(error, match=message):
        SoftmaxOptions(**fields)
    with pytest.raises(error, match=message):
        SoftmaxOptions.of(**fields)


def test_distillation_and_focal_checks():
    with pytest.raises(InputValueError, match="divergence must be one of"):
        DistillationOptions(divergence="kl")
    with pytest.raises(InputValueError, match=r"beta must be in \(0, 1\)"):
        DistillationOptions(beta=1.0)
    with pytest.raises(InputValueError, match="temperature must be"):
        DistillationOptions(temperature=0.0)
    with pytest.raises(InputValueError, match="gamma must be a non-negative"):
        FocalOptions(gamma=-1.0)


def test_of_returns_one_object_per_fields_and_keeps_types_apart():
    a = SoftmaxOptions.of(reduction="sum", label_smoothing=0.1)
    assert SoftmaxOptions.of(reduction="sum", label_smoothing=0.1) is a
    assert a == SoftmaxOptions(reduction="sum", label_smoothing=0.1)
    with pytest.raises(InputTypeError, match="return_stats"):  # True == 1, but 1 is not a flag
        SoftmaxOptions.of(return_stats=1)
    assert SoftmaxOptions.of(return_stats=True).return_stats is True


def test_unhashable_fields_are_checked_not_cached():
    with pytest.raises(InputTypeError, match="label_smoothing"):
        SoftmaxOptions.of(label_smoothing=[0.1])


@given(st.sampled_from(REDUCTIONS), st.floats(0, 0.999), st.integers(-1000, 1000), st.floats(0, 1e3),
       st.one_of(st.none(), st.floats(1e-3, 1e3)), st.sampled_from(IMPLS))
def test_every_valid_point_is_accepted_unchanged(reduction, smoothing, ignore, z_loss, softcap, impl):
    o = SoftmaxOptions.of(reduction=reduction, label_smoothing=smoothing, ignore_index=ignore, z_loss=z_loss,
                          softcap=softcap, impl=impl)
    assert (o.reduction, o.label_smoothing, o.ignore_index, o.z_loss, o.softcap, o.impl) == \
        (reduction, smoothing, ignore, z_loss, softcap, impl)


@given(st.sampled_from(DIVERGENCES), st.floats(0.01, 0.99), st.floats(0.01, 100))
def test_distillation_points(divergence, beta, temperature):
    o = DistillationOptions.of(divergence=divergence, beta=beta, temperature=temperature)
    assert (o.divergence, o.beta, o.temperature) == (divergence, beta, temperature)
    assert o.normalize(None) and not o.normalize(3.0)
