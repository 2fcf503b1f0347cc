"""crossentropy.integrations.transformers against transformers itself: causal_lm_loss equals ForCausalLMLoss in
value and gradient; patch(model) gives each tiny random model family the loss and parameter gradients of the
unpatched model, the same generate() output, and Trainer's gradient accumulation the gradient of one full batch."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close, tol
from hypothesis import given
from hypothesis import strategies as st

transformers = pytest.importorskip("transformers")
from transformers.loss.loss_utils import ForCausalLMLoss, fixed_cross_entropy  # noqa: E402

from crossentropy.integrations.transformers import (  # noqa: E402
    SUPPORTED_MODEL_TYPES,
    causal_lm_loss,
    compute_loss_func,
    patch,
    unpatch,
)
from crossentropy.rules.errors import InputTypeError, InputValueError  # noqa: E402

V = 97
TINY = {"vocab_size": V, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8}
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {}),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {"final_logit_softcapping": 2.0, "query_pre_attn_scalar": 8}),
    "cohere": ("CohereConfig", "CohereForCausalLM", {"logit_scale": 0.5}),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", {"num_local_experts": 4, "num_experts_per_tok": 2,
                                                        "output_router_logits": True}),
    "qwen2_moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM", {"num_experts": 4, "num_experts_per_tok": 2,
                                                             "moe_intermediate_size": 16,
                                                             "shared_expert_intermediate_size": 32,
                                                             "output_router_logits": True}),
    "qwen3_moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM", {"num_experts": 4, "num_experts_per_tok": 2,
                                                             "moe_intermediate_size": 16,
                                                             "output_router_logits": True}),
}
MOE = ("mixtral", "qwen2_moe", "qwen3_moe")


def tiny_model(family="llama", dtype=torch.float64, seed=0, **overrides):
    config_name, model_name, extra = FAMILIES[family]
    config = getattr(transformers, config_name)(**{**TINY, **extra, **overrides})
    config._attn_implementation = "eager"
    config._experts_implementation = "eager"  # the grouped matmul of the MoE experts has no float64
    torch.manual_seed(seed)
    return getattr(transformers, model_name)(config).to(dtype).train()


def batch(seed=1, shape=(2, 7), ignored=((0, 2), (1, 5))):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, shape, generator=g)
    labels = ids.clone()
    for i, j in ignored:
        labels[i, j] = -100
    return ids, labels


def hf_shift(labels):
    return F.pad(labels, (0, 1), value=-100)[..., 1:].contiguous()


def loss_and_grads(model, **inputs):
    model.zero_grad(set_to_none=True)
    out = model(**inputs)
    out.loss.backward()
    return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def reference_loss(model, ids, labels, **inputs):
    """The unpatched model's float64 logits through torch's own cross-entropy (plus the MoE router loss)."""
    out = model(input_ids=ids, **inputs)
    loss = F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), hf_shift(labels).reshape(-1))
    if getattr(out, "aux_loss", None) is not None:
        loss = loss + model.router_aux_loss_coef * out.aux_loss
    return loss


def assert_same_grads(grads, ref_grads, key):
    assert grads.keys() == ref_grads.keys() and grads
    for name, g in grads.items():
        assert_close(g.float(), ref_grads[name].float(), key, err_msg=name)


# --------------------------------------------------------------------------------------------- causal_lm_loss
def _logits(dtype=torch.float64, seed=3, shape=(2, 6, 11)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).requires_grad_()


def _labels(seed=4, shape=(2, 6), vocab=11):
    y = torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))
    y[0, 1] = y[1, 4] = -100
    return y


def test_causal_lm_loss_golden():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]])
    labels = torch.tensor([[-100, 1, 0]])  # targets after the shift: 1, 0, ignored
    expected = math.log1p(math.exp(2.0))  # -log softmax([2, 0])[1] = -log softmax([0, 2])[0]
    assert_close(causal_lm_loss(logits, labels, 2).item(), expected, torch.float32)
    assert_close(causal_lm_loss(logits, labels, 2, num_items_in_batch=5).item(), 2 * expected / 5, torch.float32)


@pytest.mark.parametrize("count", [None, 7, "tensor"])
@pytest.mark.parametrize("given_shift", [False, True])
def test_causal_lm_loss_equals_for_causal_lm_loss(count, given_shift):
    """float32 logits: HF and we compute in float32; the float64 tier against HF's own reduction in float64."""
    labels = _labels()
    shift = hf_shift(_labels(seed=9)) if given_shift else None
    n = torch.tensor(7) if count == "tensor" else count
    for dtype, hf in ((torch.float32, ForCausalLMLoss), (torch.float64, None)):
        ours_in, hf_in = _logits(dtype), _logits(dtype)
        ours = causal_lm_loss(ours_in, labels, 11, num_items_in_batch=n, shift_labels=shift)
        if hf is None:  # ForCausalLMLoss casts float64 logits to float32 (pinned below): its reduction in float64
            targets = hf_shift(labels) if shift is None else shift
            ref = fixed_cross_entropy(hf_in.reshape(-1, 11), targets.reshape(-1), n)
            key = "float64-reference"
        else:
            ref = hf(hf_in, labels, 11, num_items_in_batch=n, shift_labels=shift)
            key = torch.float32
        assert ours.dtype == dtype
        assert_close(ours.item(), ref.item(), key)
        ours.backward()
        ref.backward()
        assert_close(ours_in.grad, hf_in.grad, key)


def test_causal_lm_loss_low_precision_is_float32_like_transformers():
    logits = _logits(torch.bfloat16)
    ours, ref = causal_lm_loss(logits, _labels(), 11), ForCausalLMLoss(logits, _labels(), 11)
    assert ours.dtype == ref.dtype == torch.float32
    assert_close(ours.item(), ref.item(), torch.float32)


def test_causal_lm_loss_keeps_float64_where_transformers_casts_to_float32():
    """Documented difference: ForCausalLMLoss computes float64 logits in float32; we keep float64."""
    logits = _logits()
    assert ForCausalLMLoss(logits, _labels(), 11).dtype == torch.float32
    assert causal_lm_loss(logits, _labels(), 11).dtype == torch.float64


def test_causal_lm_loss_all_ignored_is_a_connected_zero_where_transformers_gives_nan():
    logits, labels = _logits(), torch.full((2, 6), -100)
    assert torch.isnan(ForCausalLMLoss(logits, labels, 11))
    loss = causal_lm_loss(logits, labels, 11)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0
    assert math.isinf(ForCausalLMLoss(logits, _labels(), 11, num_items_in_batch=0).item())  # sum / 0
    assert causal_lm_loss(logits, _labels(), 11, num_items_in_batch=0).item() == 0.0


def test_causal_lm_loss_gradcheck():
    labels = _labels()
    assert torch.autograd.gradcheck(lambda z: causal_lm_loss(z, labels, 11, num_items_in_batch=5), (_logits(),))


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(0, 10_000))
def test_micro_batches_with_num_items_sum_to_the_full_batch_mean(sizes, seed):
    """The gradient-accumulation property: sum over micro-batches of causal_lm_loss(..., N) with N the token count of
    the whole batch equals the loss of the whole batch."""
    rows = sum(sizes)
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, 5, 7, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 7, (rows, 5), generator=g)
    labels[torch.rand(rows, 5, generator=g) < 0.3] = -100
    n = hf_shift(labels).ne(-100).sum()
    parts = sum(causal_lm_loss(z, y, 7, num_items_in_batch=n)
                for z, y in zip(logits.split(sizes), labels.split(sizes), strict=True))
    assert_close(parts.item(), causal_lm_loss(logits, labels, 7).item(), "float64-reference")


def test_causal_lm_loss_as_model_loss_function():
    model, (ids, labels) = tiny_model(dtype=torch.float32), batch()
    before = model(input_ids=ids, labels=labels).loss
    model.loss_function = causal_lm_loss
    assert_close(model(input_ids=ids, labels=labels).loss.item(), before.item(), torch.float32)


def test_importing_crossentropy_does_not_import_transformers():
    import subprocess
    import sys

    code = ("import sys, crossentropy, crossentropy.torch, crossentropy.integrations\n"
            "assert 'transformers' not in sys.modules, 'transformers imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_causal_lm_loss_bad_logits():
    with pytest.raises(InputTypeError, match="logits must be a floating-point tensor"):
        causal_lm_loss(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long), 3)


@pytest.mark.parametrize("bad, match", [
    ({"labels": _labels().float()}, "labels must be an integer tensor"),
    ({"shift_labels": torch.zeros(2, 6, dtype=torch.bool)}, "shift_labels must be an integer tensor"),
    ({"labels": _labels()[:, :4]}, r"labels must give one target per position .* shape \(2, 4\)"),
    ({"num_items_in_batch": -2}, "num_items_in_batch must be a non-negative"),
    ({"num_items_in_batch": torch.tensor(-2)}, "num_items_in_batch must be non-negative"),
    ({"num_items_in_batch": torch.tensor([3, 4])}, "num_items_in_batch must be a number or a 0-d"),
    ({"num_items_in_batch": "7"}, "num_items_in_batch"),
])
def test_causal_lm_loss_bad_labels_and_counts_name_their_argument(bad, match):
    kw = {"labels": _labels(), **bad}
    with pytest.raises((InputValueError, InputTypeError), match=match):
        causal_lm_loss(_logits(), vocab_size=11, **kw)


def test_compute_loss_func_needs_logits():
    with pytest.raises(InputValueError, match="outputs.logits"):
        compute_loss_func({"logits": None}, _labels())


# --------------------------------------------------------------------------------------------- patch
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_patch_float64_equals_unpatched(family):
    assert FAMILIES.keys() == SUPPORTED_MODEL_TYPES
    model, (ids, labels) = tiny_model(family), batch()
    model.zero_grad(set_to_none=True)
    ref = reference_loss(model, ids, labels)
    ref.backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    out, grads = loss_and_grads(patch(model), input_ids=ids, labels=labels)
    assert out.logits is None and out.loss.dtype == torch.float64
    assert_close(out.loss.item(), ref.item(), "float64-reference")
    assert_same_grads(grads, ref_grads, "float64-reference")
    if family in MOE:
        assert out.aux_loss is not None and out.router_logits is not None


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"gemma2"}))
def test_patch_bfloat16_equals_unpatched(family):
    """The loss at the bfloat16 tier, and each parameter's gradient within the low-precision-gradient tier of the
    unpatched one as a whole (its norm). Each of the two is about 1% from the float64 model's gradient (bfloat16
    weights and activations), and they round differently (the patched chunks keep the logits and their gradient in
    float32 where transformers rounds them to bfloat16), so small entries differ by more than the elementwise
    bfloat16 tier."""
    model, (ids, labels) = tiny_model(family, torch.bfloat16), batch()
    ref, ref_grads = loss_and_grads(model, input_ids=ids, labels=labels)
    out, grads = loss_and_grads(patch(model), input_ids=ids, labels=labels)
    assert out.loss.dtype == ref.loss.dtype == torch.float32
    assert_close(out.loss.item(), ref.loss.item(), torch.bfloat16)
    assert grads.keys() == ref_grads.keys() and grads
    for name, g in grads.items():
        expected = ref_grads[name].double()
        assert (g.double() - expected).norm() <= tol("low-precision-gradient")["rtol"] * expected.norm(), name


def test_patch_bfloat16_softcap_is_closer_to_float64_than_transformers():
    """Gemma 2 in bfloat16: transformers rounds the logits to bfloat16 before and after its tanh cap, we cap the
    float32 logits; against the float64 model our loss and gradients are the closer ones (the softcap families
    differ from the unpatched model by that rounding, more than the bfloat16 tier allows on small gradients)."""
    ids, labels = batch()
    exact = tiny_model("gemma2")
    exact.zero_grad(set_to_none=True)
    ref = reference_loss(exact, ids, labels)
    ref.backward()
    ref_grads = torch.cat([p.grad.flatten() for p in exact.parameters() if p.grad is not None])
    model = tiny_model("gemma2", torch.bfloat16)
    errors = []
    for _ in range(2):  # unpatched, then patched
        out, grads = loss_and_grads(model, input_ids=ids, labels=labels)
        grads = torch.cat([g.flatten() for g in grads.values()]).double()
        errors.append((abs(out.loss.item() - ref.item()), (grads - ref_grads).norm().item()))
        patch(model)
    assert errors[1][0] <= errors[0][0] and errors[1][1] <= errors[0][1]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generate_and_eval_without_labels_unchanged(family):
    model, (ids, _) = tiny_model(family, torch.float32), batch()
    model.eval()
    before = model.generate(ids, max_new_tokens=4, do_sample=False)
    logits = model(input_ids=ids).logits
    patch(model)
    assert torch.equal(model.generate(ids, max_new_tokens=4, do_sample=False), before)
    assert torch.equal(model(input_ids=ids).logits, logits)


def test_unpatch_restores_the_forward():
    model = tiny_model()
    original = model.forward
    patch(model)
    assert model.forward != original
    patch(model)  # a second patch replaces the first
    assert unpatch(model) is model and "forward" not in model.__dict__ and model.forward == original
    assert unpatch(model) is model  # not patched: a no-op
    model.forward = lambda *a, **k: "mine"  # an instance forward of someone else's comes back too
    unpatch(patch(model))
    assert model.forward() == "mine"


@pytest.mark.parametrize("count", [5, "tensor"])
def test_patch_num_items_in_batch_and_shift_labels(count):
    model, (ids, labels) = tiny_model(), batch()
    shift = hf_shift(batch(seed=7)[1])
    n = torch.tensor(5) if count == "tensor" else count
    logits = model(input_ids=ids).logits
    ref = F.cross_entropy(logits.reshape(-1, V), shift.reshape(-1), reduction="sum") / 5
    loss = patch(model)(input_ids=ids, labels=labels, shift_labels=shift, num_items_in_batch=n).loss
    assert_close(loss.item(), ref.item(), "float64-reference")


@pytest.mark.parametrize("keep", [3, "positions"])
def test_patch_logits_to_keep(keep):
    model, (ids, labels) = tiny_model(), batch()
    keep = torch.tensor([1, 4, 6]) if keep == "positions" else keep
    ref, ref_grads = loss_and_grads(model, input_ids=ids, labels=labels[:, :3], logits_to_keep=keep)
    out, grads = loss_and_grads(patch(model), input_ids=ids, labels=labels[:, :3], logits_to_keep=keep)
    assert_close(out.loss.item(), ref.loss.item(), torch.float32)  # transformers' loss is float32 for float64
    assert_same_grads(grads, ref_grads, torch.float32)


def test_patch_keeps_the_signature_and_positional_labels():
    import inspect

    model, (ids, labels) = tiny_model(), batch()
    ref = reference_loss(model, ids, labels)
    signature = inspect.signature(model.forward)
    patch(model)
    assert inspect.signature(model.forward) == signature  # what Trainer and generate() inspect
    names = list(signature.parameters)
    args = [None] * names.index("labels")
    args[names.index("input_ids")] = ids
    assert_close(model(*args, labels).loss.item(), ref.item(), "float64-reference")


@pytest.mark.parametrize("case", ["bias", "tied", "return_tuple", "cohere_bias"])
def test_patch_head_bias_tied_embeddings_and_tuples(case):
    family = "cohere" if case == "cohere_bias" else "llama"
    model, (ids, labels) = tiny_model(family, tie_word_embeddings=case == "tied"), batch()
    if case in ("bias", "cohere_bias"):  # cohere: (h @ W.T + b) * logit_scale
        model.lm_head = torch.nn.Linear(32, V, bias=True, dtype=torch.float64)
    if case == "tied":
        assert model.lm_head.weight is model.model.embed_tokens.weight
    model.zero_grad(set_to_none=True)
    ref = reference_loss(model, ids, labels)
    ref.backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    patch(model)
    if case == "return_tuple":
        loss = model(input_ids=ids, labels=labels, return_dict=False)[0]
        assert_close(loss.item(), ref.item(), "float64-reference")
        return
    out, grads = loss_and_grads(model, input_ids=ids, labels=labels)
    assert_close(out.loss.item(), ref.item(), "float64-reference")
    assert_same_grads(grads, ref_grads, "float64-reference")
    assert ("lm_head.bias" in grads) == (case in ("bias", "cohere_bias"))


def test_patch_moe_without_router_loss():
    model, (ids, labels) = tiny_model("qwen3_moe", output_router_logits=False), batch()
    ref = reference_loss(model, ids, labels)
    out = patch(model)(input_ids=ids, labels=labels)
    assert out.aux_loss is None
    assert_close(out.loss.item(), ref.item(), "float64-reference")
    with_aux = model(input_ids=ids, labels=labels, output_router_logits=True)
    assert_close((with_aux.loss - model.router_aux_loss_coef * with_aux.aux_loss).item(), ref.item(),
                 "float64-reference")


def test_patch_metrics():
    model, (ids, labels) = tiny_model(), batch()
    logits = model(input_ids=ids).logits.reshape(-1, V)
    targets = hf_shift(labels).reshape(-1)
    valid = targets != -100
    logp = logits.log_softmax(-1)
    out = patch(model, metrics=True)(input_ids=ids, labels=labels)
    assert out.num_valid.item() == valid.sum().item() == 10
    assert out.num_correct.item() == ((logits.argmax(-1) == targets) & valid).sum().item()
    assert_close(out.entropy_sum.item(), -(logp.exp() * logp).sum(-1)[valid].sum().item(), "float64-reference")
    assert not hasattr(patch(model)(input_ids=ids, labels=labels), "num_valid")


def test_patch_all_ignored_is_a_connected_zero():
    model, (ids, _) = tiny_model(), batch()
    labels = torch.full_like(ids, -100)
    assert torch.isnan(model(input_ids=ids, labels=labels).loss)
    out, grads = loss_and_grads(patch(model), input_ids=ids, labels=labels)
    assert out.loss.item() == 0.0
    assert all(torch.count_nonzero(g) == 0 for g in grads.values())


def test_patch_refuses_unsupported_models_and_heads():
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=V, n_embd=16, n_layer=1, n_head=2))
    with pytest.raises(InputValueError, match="GPT2LMHeadModel"):
        patch(gpt2)
    model = tiny_model()
    model.lm_head = torch.nn.Sequential(torch.nn.Linear(32, V))
    with pytest.raises(InputValueError, match="lm_head to be an nn.Linear"):
        patch(model)
    assert "forward" not in model.__dict__
    ids, labels = batch()
    with pytest.raises(InputValueError, match="one target per position"):
        patch(tiny_model())(input_ids=ids, labels=labels[:, :3])


# --------------------------------------------------------------------------------------------- PEFT
@pytest.mark.parametrize("head", ["modules_to_save", "disabled"])
def test_patch_peft_lora_with_modules_to_save(head):
    peft = pytest.importorskip("peft")  # here, so that a missing PEFT skips only the PEFT tests
    ids, labels = batch()
    config = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"],
                             init_lora_weights=False)
    model = peft.get_peft_model(tiny_model(), config)
    with torch.no_grad():  # the trained copy differs from the original head
        model.base_model.model.lm_head.modules_to_save["default"].weight.mul_(1.5)
    if head == "disabled":  # the original head and no LoRA: nothing trainable takes part, the loss must match
        with model.disable_adapter():
            ref = reference_loss(model, ids, labels)
            out = patch(model)(input_ids=ids, labels=labels)
        assert_close(out.loss.item(), ref.item(), "float64-reference")
        with torch.no_grad():
            assert abs(model(input_ids=ids, labels=labels).loss.item() - ref.item()) > tol("float64")["rtol"]
    else:
        model.zero_grad(set_to_none=True)
        ref = reference_loss(model, ids, labels)
        ref.backward()
        ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        out, grads = loss_and_grads(patch(model), input_ids=ids, labels=labels)
        assert out.logits is None and "base_model.model.lm_head.modules_to_save.default.weight" in grads
        assert_close(out.loss.item(), ref.item(), "float64-reference")
        assert_same_grads(grads, ref_grads, "float64-reference")
    assert unpatch(model).get_base_model().__dict__.get("forward") is None


def test_patch_refuses_lora_on_the_head():
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(tiny_model(), peft.LoraConfig(r=4, target_modules=["q_proj", "lm_head"]))
    with pytest.raises(InputValueError, match="LoRA"):
        patch(model)


# --------------------------------------------------------------------------------------------- Trainer
def _dataset():
    """8 sequences with different numbers of ignored labels, so the micro-batches' token counts differ."""
    rows = []
    for i in range(8):
        ids, labels = batch(seed=10 + i, shape=(1, 9), ignored=[(0, j) for j in range(i)])
        rows.append({"input_ids": ids[0], "labels": labels[0]})
    return rows


def _full_batch_grads(model, rows):
    ids = torch.stack([r["input_ids"] for r in rows])
    labels = torch.stack([r["labels"] for r in rows])
    _, grads = loss_and_grads(model, input_ids=ids, labels=labels)
    return grads


class _Grads(transformers.TrainerCallback):
    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _train_one_step(model, tmp_path, **trainer_kwargs):
    args = transformers.TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2,
                                          gradient_accumulation_steps=4, max_steps=1, learning_rate=0.0,
                                          max_grad_norm=0.0, use_cpu=True, report_to=[], save_strategy="no",
                                          dataloader_num_workers=0)
    grads = _Grads()
    transformers.Trainer(model=model, args=args, train_dataset=_dataset(), callbacks=[grads],
                         **trainer_kwargs).train()
    return grads.grads


@pytest.mark.parametrize("how", ["patch", "compute_loss_func"])
def test_trainer_gradient_accumulation_equals_one_full_batch(how, tmp_path):
    rows = _dataset()
    full = _full_batch_grads(patch(tiny_model()), rows)
    model = tiny_model()
    if how == "patch":
        accumulated = _train_one_step(patch(model), tmp_path)
    else:
        accumulated = _train_one_step(model, tmp_path, compute_loss_func=compute_loss_func)
    assert_same_grads(accumulated, full, "gradient-accumulation")


def test_a_per_micro_batch_mean_would_fail_the_accumulation_test():
    """The GA x bug class: averaging each micro-batch over its own tokens and summing (what a loss that ignores
    num_items_in_batch does when Trainer no longer divides by the steps) is far from the full-batch gradient, so
    the test above can tell."""
    rows = _dataset()
    full = _full_batch_grads(patch(tiny_model()), rows)
    model = patch(tiny_model())
    model.zero_grad(set_to_none=True)
    for start in range(0, 8, 2):
        part = rows[start:start + 2]
        model(input_ids=torch.stack([r["input_ids"] for r in part]),
              labels=torch.stack([r["labels"] for r in part])).loss.backward()
    wrong = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    ratio = wrong["lm_head.weight"].norm() / full["lm_head.weight"].norm()
    assert ratio > 2  # about 4x
    with pytest.raises(AssertionError):
        assert_same_grads(wrong, full, "gradient-accumulation")
    assert tol("gradient-accumulation")["rtol"] == 1e-9


# --------------------------------------------------------------------------------------------- README
def _readme_blocks(section="### Hugging Face transformers"):
    from pathlib import Path

    text = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    body = text.split(section, 1)[1].split("\n#", 1)[0]
    return [block.split("```", 1)[0] for block in body.split("```python\n")[1:]]


def test_readme_hugging_face_recipe_runs(tmp_path, monkeypatch, capsys):
    blocks = _readme_blocks()
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert "accuracy" in capsys.readouterr().out


def test_trainer_evaluate_gives_the_unpatched_eval_loss(tmp_path):
    """Evaluation with labels takes the patched loss (transformers' own is float32 for a float64 model); no logits
    come back to predict()."""
    args = transformers.TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=4, use_cpu=True,
                                          report_to=[], save_strategy="no")
    model, rows = tiny_model(), _dataset()
    before = transformers.Trainer(model=model, args=args, eval_dataset=rows).evaluate()["eval_loss"]
    trainer = transformers.Trainer(model=patch(model), args=args, eval_dataset=rows)
    assert_close(trainer.evaluate()["eval_loss"], before, torch.float32)
    assert trainer.predict(rows).predictions == ()
