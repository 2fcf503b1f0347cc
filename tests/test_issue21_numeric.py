"""Issue 21, the numeric items that span modules: option values beyond the float range, a bool total_weight, the
message for a negative class index, distillation over an empty vocabulary and heads of mixed dtypes."""

import numpy as np
import pytest
import torch

import crossentropy as ce
import crossentropy.torch as cet
from crossentropy import InputTypeError, InputValueError

X, Y = np.zeros((2, 3)), np.array([0, 1])


@pytest.mark.parametrize("call", [
    lambda v: ce.softmax_cross_entropy(X, Y, total_weight=v),
    lambda v: cet.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), total_weight=v),
    lambda v: ce.distillation_loss(X, X, temperature=v),
    lambda v: cet.distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), temperature=v),
])
def test_an_int_beyond_the_float_range_is_an_input_value_error(call):
    with pytest.raises(InputValueError, match=r"(total_weight|temperature) must be .* beyond the float range"):
        call(10**400)


@pytest.mark.parametrize("call", [lambda: ce.softmax_cross_entropy(X, Y, total_weight=True),
                                  lambda: cet.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]),
                                                            total_weight=True)])
def test_a_bool_total_weight_is_an_input_type_error(call):
    with pytest.raises(InputTypeError, match=r"total_weight must be a non-negative finite number, but got bool"):
        call()


@pytest.mark.parametrize("call", [lambda: ce.total_weight(np.array([2, -3])),
                                  lambda: cet.total_weight(torch.tensor([2, -3]))])
def test_a_negative_class_index_says_so(call):
    with pytest.raises(InputValueError, match=r"negative class index -3 at position \(1,\).*ignore_index=-100") as e:
        call()
    assert "4611686018427387903" not in str(e.value)


@pytest.mark.parametrize("call", [
    lambda: ce.distillation_loss(np.zeros((2, 0)), np.zeros((2, 0))),
    lambda: ce.sparse_distillation_loss(np.zeros((2, 0)), np.zeros((2, 1), int), np.zeros((2, 1))),
    lambda: cet.distillation_loss(torch.zeros(2, 0), torch.zeros(2, 0)),
    lambda: cet.sparse_distillation_loss(torch.zeros(2, 0), torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 1)),
    lambda: cet.linear_distillation_loss(torch.zeros(2, 3), torch.zeros(0, 3), torch.zeros(2, 3), torch.zeros(0, 3)),
])
def test_distillation_over_an_empty_vocabulary_is_refused(call):
    with pytest.raises(InputValueError, match=r"must score at least one class"):
        call()


def test_linear_distillation_heads_must_match_their_inputs_dtype():
    # as linear_cross_entropy (and torch's matmul): no silent cast of a bf16 input to a float32 head
    xs, ws, xt, wt = torch.zeros(2, 3).bfloat16(), torch.zeros(4, 3), torch.zeros(2, 3), torch.zeros(4, 3)
    with pytest.raises(InputTypeError, match=r"student_weight has dtype torch.float32 but student_input has dtype "
                                             r"torch.bfloat16"):
        cet.linear_distillation_loss(xs, ws, xt, wt)
    with pytest.raises(InputTypeError, match=r"teacher_weight has dtype torch.bfloat16"):
        cet.linear_distillation_loss(xt, wt, xt, wt.bfloat16())
    # a bf16 student against a float32 teacher is fine: each head matches its own input
    assert torch.isfinite(cet.linear_distillation_loss(xs, ws.bfloat16(), xt, wt))
