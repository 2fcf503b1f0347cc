"""Hugging Face transformers: a drop-in causal-LM loss, and a patch that computes a causal LM's training loss from
its final hidden states with ``linear_cross_entropy``, never materialising the logits.

* ``causal_lm_loss(logits, labels, vocab_size, num_items_in_batch=None, ignore_index=-100, shift_labels=None)``:
  the contract of ``transformers.loss.loss_utils.ForCausalLMLoss`` (assignable to ``model.loss_function``)::

      targets = shift_labels, or labels shifted left by one and padded with ignore_index
      loss    = sum_i CE(logits_i, targets_i) / N,   N = num_items_in_batch, or the count of valid targets

  with an all-ignored batch (``N == 0``) giving 0, still connected to the graph (transformers gives NaN).
* ``patch(model)`` / ``unpatch(model)``: with ``labels`` the patched forward returns
  ``linear_cross_entropy(h, lm_head.weight, targets, linear_bias=lm_head.bias, softcap=..., total_weight=N)`` of the
  final hidden states ``h`` (``h`` and the bias times ``logit_scale`` where the family has one), plus the MoE router
  loss where the model adds it, and ``logits=None``; without labels it is the model's own forward.
* ``compute_loss_func(outputs, labels, num_items_in_batch=None)``: ``causal_lm_loss`` of ``outputs.logits``, for
  ``Trainer(compute_loss_func=...)``.

docs/semantics.md ("Hugging Face transformers") lists the differences from transformers' own loss.
"""

from __future__ import annotations

import functools
import inspect
import sys

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast, MoeCausalLMOutputWithPast
from transformers.modeling_utils import slice_logits_to_keep

from ..rules.errors import InputTypeError, InputValueError
from ..rules.options import check_nonnegative
from ..torch import cross_entropy, linear_cross_entropy

#: ``config.model_type`` of the causal-LM families whose head ``patch`` reproduces (a ``model.model`` base model
#: returning ``last_hidden_state``, an ``nn.Linear`` ``lm_head``, then at most a ``logit_scale`` product and a
#: ``final_logit_softcapping`` tanh cap), each tested on a tiny random config.
SUPPORTED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "cohere",
                                   "mixtral", "qwen2_moe", "qwen3_moe"})

#: The attribute under which ``patch`` remembers the forward it replaced.
_PATCH_ATTRIBUTE = "_crossentropy_patch"


def _targets(labels, shift_labels, ignore_index: int, rows: int, device) -> torch.Tensor:
    """The flat next-token targets: ``shift_labels`` as given, else ``labels`` shifted left by one (token t predicts
    label t + 1), the last position ``ignore_index``; one per row of logits (or kept hidden state)."""
    name = "labels" if shift_labels is None else "shift_labels"
    given = labels if shift_labels is None else shift_labels
    if not torch.is_tensor(given) or given.is_floating_point() or given.is_complex() or given.dtype == torch.bool:
        raise InputTypeError(f"{name} must be an integer tensor of token ids ({ignore_index} for a token to ignore), "
                             f"but got {given.dtype if torch.is_tensor(given) else type(given).__name__}.")
    if shift_labels is None:
        given = nn.functional.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    if given.numel() != rows:
        raise InputValueError(f"{name} must give one target per position of the logits (per kept position with "
                              f"logits_to_keep): {rows} positions, but {name} has shape {tuple(given.shape)}. Pass "
                              f"{name} of the shape of the input ids (or of the kept positions).")
    return given.reshape(-1).to(device)


def _item_count(num_items_in_batch, device):
    """``num_items_in_batch`` as ``total_weight``: None, a non-negative number, or a 0-d tensor moved to
    ``device``."""
    if num_items_in_batch is None:
        return None
    if not torch.is_tensor(num_items_in_batch):
        return check_nonnegative(num_items_in_batch, "num_items_in_batch")
    if num_items_in_batch.dim() != 0 or num_items_in_batch.is_complex() or num_items_in_batch.dtype == torch.bool:
        raise InputValueError(f"num_items_in_batch must be a number or a 0-d real tensor (the token count of the "
                              f"whole accumulated batch), but got a {num_items_in_batch.dtype} tensor of shape "
                              f"{tuple(num_items_in_batch.shape)}.")
    if num_items_in_batch.device.type == "cpu" and not torch.compiler.is_compiling() and num_items_in_batch < 0:
        raise InputValueError(f"num_items_in_batch must be non-negative (a token count), but got "
                              f"{num_items_in_batch.item()}.")
    return num_items_in_batch.to(device)


def causal_lm_loss(logits, labels, vocab_size: int, num_items_in_batch=None, ignore_index: int = -100,
                   shift_labels=None, **kwargs):
    """Next-token cross-entropy with the contract of transformers' ``ForCausalLMLoss``::

        targets = shift_labels if given, else labels[..., 1:] padded with ignore_index at the end
        loss = sum_i -log softmax(logits_i)[targets_i] / N
        N = num_items_in_batch if given, else the number of targets != ignore_index (0 / 0 = 0)

    that is, ``cross_entropy(logits.float().view(-1, vocab_size), targets.view(-1), reduction="sum") / N`` for
    half-precision logits (float32 and float64 logits keep their dtype). Extra keyword arguments (the model's
    forward passes its own) are ignored, as transformers does. Assign it to ``model.loss_function``.

    >>> logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]], requires_grad=True)
    >>> labels = torch.tensor([[-100, 1, 0]])
    >>> round(causal_lm_loss(logits, labels, vocab_size=2).item(), 4)  # mean of -log p(1 | z_0), -log p(0 | z_1)
    2.1269
    >>> causal_lm_loss(logits, torch.full((1, 3), -100), vocab_size=2)  # doctest: +ELLIPSIS
    tensor(0., grad_fn=<...>)
    """
    if not torch.is_tensor(logits) or not logits.is_floating_point():
        raise InputTypeError(f"logits must be a floating-point tensor of shape (..., vocab_size), but got "
                             f"{type(logits).__name__ if not torch.is_tensor(logits) else logits.dtype}.")
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()  # as transformers does: the loss of half-precision logits in float32
    logits = logits.reshape(-1, vocab_size)
    targets = _targets(labels, shift_labels, ignore_index, logits.shape[0], logits.device)
    return cross_entropy(logits, targets, ignore_index=ignore_index,
                         total_weight=_item_count(num_items_in_batch, logits.device))


def compute_loss_func(outputs, labels, num_items_in_batch=None):
    """``causal_lm_loss`` of a causal LM's ``outputs.logits``, for ``transformers.Trainer(compute_loss_func=...)``,
    which calls it with the labels it took out of the batch and the token count of the whole accumulated batch::

        compute_loss_func(outputs, labels, num_items_in_batch) = causal_lm_loss(outputs.logits, labels,
                                                                                outputs.logits.shape[-1], N)

    Trainer does not divide such a loss by the accumulation steps, so the sum over micro-batches is the mean over
    the tokens of the whole batch. A MoE model's router loss is not added (its coefficient is the model's): use
    ``patch`` for MoE models.

    >>> from types import SimpleNamespace
    >>> out = SimpleNamespace(logits=torch.tensor([[[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]]))
    >>> round(compute_loss_func(out, torch.tensor([[-100, 1, 0]]), num_items_in_batch=4).item(), 4)  # sum / 4
    1.0635
    """
    logits = outputs["logits"] if isinstance(outputs, dict) else getattr(outputs, "logits", None)
    if logits is None:
        raise InputValueError("compute_loss_func needs outputs.logits, but the model returned none. Trainer removes "
                              "the labels before the forward, so an unpatched model returns its logits; a model "
                              "patched with crossentropy.integrations.transformers.patch computes its loss "
                              "itself: do not pass compute_loss_func with it.")
    return causal_lm_loss(logits, labels, logits.shape[-1], num_items_in_batch=num_items_in_batch)


# --------------------------------------------------------------------------------------------- patch / unpatch
def _causal_lm(model):
    """The causal LM inside ``model`` (a PEFT model wraps it), checked to be of a supported family."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(inner, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES or not isinstance(getattr(inner, "model", None), nn.Module) \
            or not isinstance(getattr(inner, "lm_head", None), nn.Module):
        raise InputValueError(f"patch supports the causal LMs of the families {sorted(SUPPORTED_MODEL_TYPES)} "
                              f"(a base model `model.model` and a linear `model.lm_head`), but got "
                              f"{type(inner).__name__} (model_type {model_type!r}). Train it with its own loss, "
                              f"or with Trainer(compute_loss_func=crossentropy.integrations.transformers."
                              f"compute_loss_func).")
    return inner


def _head(lm_head: nn.Module) -> nn.Linear:
    """The linear layer that ``lm_head`` applies: itself, or under PEFT's ``ModulesToSaveWrapper`` the active
    adapter's copy (the original when adapters are disabled), as the wrapper's own forward picks it."""
    if hasattr(lm_head, "modules_to_save") and hasattr(lm_head, "original_module"):
        active = lm_head.active_adapters
        if lm_head.disable_adapters or not active or active[0] not in lm_head.modules_to_save:
            lm_head = lm_head.original_module
        else:
            lm_head = lm_head.modules_to_save[active[0]]
    if not isinstance(lm_head, nn.Linear):
        raise InputValueError(f"patch needs lm_head to be an nn.Linear (or PEFT's ModulesToSaveWrapper around one), "
                              f"but it is {type(lm_head).__name__}. An adapter on the head (LoRA) changes its weight "
                              f"inside its own forward: train the head with modules_to_save instead, or leave the "
                              f"model unpatched.")
    return lm_head


def _head_loss(model, hidden, labels, shift_labels, num_items_in_batch, ignore_index: int, metrics: bool):
    """The loss of ``model``'s head on the hidden states (and, with ``metrics``, the token metrics)."""
    head = _head(model.lm_head)
    bias, scale = head.bias, getattr(model, "logit_scale", None)
    if scale is not None:  # Cohere: logits = lm_head(h) * logit_scale = (h * logit_scale) @ W.T + bias * logit_scale
        hidden = hidden * scale
        bias = None if bias is None else bias * scale
    rows = hidden.reshape(-1, hidden.shape[-1])
    targets = _targets(labels, shift_labels, ignore_index, rows.shape[0], rows.device)
    out = linear_cross_entropy(rows, head.weight, targets, linear_bias=bias, ignore_index=ignore_index,
                               softcap=getattr(model.config, "final_logit_softcapping", None),
                               total_weight=_item_count(num_items_in_batch, rows.device), return_stats=metrics)
    if not metrics:
        return out, {}
    loss, stats = out
    valid = targets != ignore_index
    return loss, {"num_valid": valid.sum(), "num_correct": stats.correct.sum(),
                  "entropy_sum": torch.where(valid, stats.entropy, 0).sum()}


def _patched_forward(model, original, metrics: bool):
    """The forward that ``patch`` installs: ``original`` without labels; with labels, the base model, then the loss
    of the head through ``linear_cross_entropy`` (see the module docstring)."""
    signature = inspect.signature(original)
    var_keyword = next((p.name for p in signature.parameters.values() if p.kind == p.VAR_KEYWORD), None)
    moe = "output_router_logits" in signature.parameters
    family = sys.modules[original.__module__]  # where the model's forward, and its router loss, are written

    @functools.wraps(original)
    def forward(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        params = dict(bound.arguments)
        params.update(params.pop(var_keyword, {}))
        labels = params.pop("labels", None)
        if labels is None:
            return original(*args, **kwargs)
        logits_to_keep = params.pop("logits_to_keep", 0)
        return_dict = params.pop("return_dict", None)
        if moe:
            params["output_router_logits"] = model.config.output_router_logits \
                if params.get("output_router_logits") is None else params["output_router_logits"]
        outputs = model.model(**params)
        hidden = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        loss, extra = _head_loss(model, hidden, labels, params.get("shift_labels"),
                                 params.get("num_items_in_batch"), params.get("ignore_index", -100), metrics)
        fields = {"loss": loss, "logits": None, "past_key_values": outputs.past_key_values,
                  "hidden_states": outputs.hidden_states, "attentions": outputs.attentions}
        if moe:
            aux_loss = None
            if params["output_router_logits"]:
                aux_loss = family.load_balancing_loss_func(outputs.router_logits, model.num_experts,
                                                           model.num_experts_per_tok, params.get("attention_mask"))
                loss = loss + model.router_aux_loss_coef * aux_loss.to(loss.device)
            result = MoeCausalLMOutputWithPast(**{**fields, "loss": loss}, aux_loss=aux_loss,
                                               router_logits=outputs.router_logits)
        else:
            result = CausalLMOutputWithPast(**fields)
        for name, value in extra.items():
            setattr(result, name, value)
        if return_dict is None:
            return_dict = getattr(model.config, "return_dict", True)
        return result if return_dict else result.to_tuple()

    return forward


def patch(model, *, metrics: bool = False):
    """Make ``model`` (a causal LM of a family in ``SUPPORTED_MODEL_TYPES``, or a PEFT model around one) compute its
    training loss from the final hidden states without logits; returns ``model``. With ``labels`` the forward
    returns::

        loss   = linear_cross_entropy(h * logit_scale, lm_head.weight, targets,
                                      linear_bias=lm_head.bias * logit_scale, softcap=config.final_logit_softcapping,
                                      total_weight=num_items_in_batch)
                 (+ router_aux_loss_coef * aux_loss for a MoE model with output_router_logits)
        logits = None

    with ``h`` the base model's last hidden states cut by ``logits_to_keep`` and ``targets`` the labels shifted as
    ``causal_lm_loss`` does (``shift_labels`` when given). The head is read where its forward would read it: a tied
    embedding gets the gradient, PEFT's ``ModulesToSaveWrapper`` gives its active copy. Without labels the model's
    own forward runs (``generate``, evaluation without labels). With ``metrics=True`` the output also carries
    ``num_valid`` (targets != ignore_index), ``num_correct`` (argmax == target) and ``entropy_sum`` (the sum of the
    predictive entropies of the valid tokens): sums, so they add over micro-batches and ranks. ``patch`` of a
    patched model replaces the patch; ``unpatch`` restores the forward.

    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
    ...                                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    >>> ids = torch.randint(0, 64, (2, 8))
    >>> before = model(input_ids=ids, labels=ids).loss
    >>> out = patch(model)(input_ids=ids, labels=ids)
    >>> out.logits is None, bool(torch.allclose(out.loss, before))
    (True, True)
    >>> unpatch(model)(input_ids=ids).logits.shape
    torch.Size([2, 8, 64])
    """
    inner = _causal_lm(model)
    _head(inner.lm_head)
    unpatch(model)
    previous = inner.__dict__.get("forward")
    setattr(inner, _PATCH_ATTRIBUTE, (previous,))
    inner.forward = _patched_forward(inner, inner.forward, metrics)
    return model


def unpatch(model):
    """Restore the forward that ``patch`` replaced (a no-op on a model that is not patched); returns ``model``."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    saved = inner.__dict__.pop(_PATCH_ATTRIBUTE, None)
    if saved is None:
        return model
    previous, = saved
    if previous is None:
        del inner.forward
    else:
        inner.forward = previous
    return model
