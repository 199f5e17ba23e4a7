"""Our GPT-2 reproduces transformers' GPT2LMHeadModel logits, and exports back (Conv1D layout,
fused c_attn split and re-fused)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers as tf

from zett.models.load import config_from_hf, params_from_hf_state, params_to_hf_state

MODEL_ATOL = 1e-4  # whole model, float32
VOCAB = 128


def _config(tied: bool):
    return tf.GPT2Config(
        vocab_size=VOCAB,
        n_positions=64,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=tied,
    )


def _torch_model(hf_config, seed: int = 0):
    torch.manual_seed(seed)
    model = tf.GPT2LMHeadModel(hf_config).eval()
    with torch.no_grad():  # non-trivial LayerNorm / bias values
        for name, p in model.named_parameters():
            if "ln_" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def _torch_logits(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()


@pytest.fixture(scope="module", params=[True, False], ids=["tied", "untied"])
def case(request):
    hf_config = _config(request.param)
    model = _torch_model(hf_config)
    params = params_from_hf_state("gpt2", hf_config, {k: v.numpy() for k, v in model.state_dict().items()})  # fmt: skip
    module = config_from_hf(hf_config)
    rng = np.random.RandomState(1)
    ids = rng.randint(0, VOCAB, size=(2, 24))
    mask = np.ones_like(ids)
    mask[0, 17:] = 0
    apply = jax.jit(module.apply)
    ours = np.asarray(apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask)))
    return dict(hf_config=hf_config, params=params, ids=ids, mask=mask, ours=ours, apply=apply,
                ref=_torch_logits(model, ids, mask))  # fmt: skip


def test_logits_match_transformers(case):
    valid = case["mask"].astype(bool)
    assert case["ours"].shape == (2, 24, VOCAB) and case["ours"].dtype == np.float32
    np.testing.assert_allclose(case["ours"][valid], case["ref"][valid], atol=MODEL_ATOL, rtol=0)


def test_export_roundtrip_into_fresh_torch_model(case):
    state = params_to_hf_state("gpt2", case["hf_config"], case["params"])
    assert state["transformer.h.0.attn.c_attn.weight"].shape == (64, 192)  # Conv1D [in, 3*out]
    fresh = _torch_model(case["hf_config"], seed=7)
    fresh.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    valid = case["mask"].astype(bool)
    again = _torch_logits(fresh, case["ids"], case["mask"])
    np.testing.assert_allclose(again[valid], case["ref"][valid], atol=1e-6, rtol=0)


def test_inputs_embeds_and_output_embeddings_are_drop_in(case):
    params, ids, mask = case["params"], jnp.asarray(case["ids"]), jnp.asarray(case["mask"])
    table = params["wte"]["embedding"]
    head = params["lm_head"]["embedding"] if "lm_head" in params else table
    via_embeds = case["apply"]({"params": params}, inputs_embeds=table[ids], attention_mask=mask)
    via_head = case["apply"]({"params": params}, ids, attention_mask=mask, output_embeddings=head)
    np.testing.assert_allclose(np.asarray(via_embeds), case["ours"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.asarray(via_head), case["ours"], atol=1e-6, rtol=0)


def test_hub_style_keys_without_transformer_prefix():
    """Original GPT-2 hub files name tensors `h.0.attn...`, `wte.weight` (no `transformer.`)."""
    hf_config = _config(True)
    model = _torch_model(hf_config)
    state = {k.removeprefix("transformer."): v.numpy() for k, v in model.transformer.state_dict().items()}  # fmt: skip
    params = params_from_hf_state("gpt2", hf_config, state)
    ref = params_from_hf_state("gpt2", hf_config, {k: v.numpy() for k, v in model.state_dict().items()})  # fmt: skip
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref)):
        np.testing.assert_array_equal(a, b)
