"""Our Llama-family Linen model reproduces transformers' PyTorch logits, and exports back.

Each tiny config is built and randomly initialised in PyTorch (as transformers' own tests do),
converted with `params_from_hf_state`, and compared on a right-padded batch at the valid
positions only. The export test loads `params_to_hf_state` into a *fresh* torch model with
`load_state_dict(strict=True)` and requires the original logits back.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers as tf

from zett.models.load import config_from_hf, load_model, params_from_hf_state, params_to_hf_state

MODEL_ATOL = 1e-4  # whole model, float32
REAL_MODEL_ATOL = 1e-3  # 30 layers, larger activations
VOCAB = 128

BASE = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    rms_norm_eps=1e-6,
)
LLAMA3_ROPE = dict(
    rope_type="llama3",
    rope_theta=500000.0,
    factor=8.0,
    low_freq_factor=1.0,
    high_freq_factor=4.0,
    original_max_position_embeddings=32,
)
CONFIGS = {
    "llama_untied_gqa": lambda: tf.LlamaConfig(**BASE, tie_word_embeddings=False),
    "llama_tied_biases": lambda: tf.LlamaConfig(
        **BASE, tie_word_embeddings=True, attention_bias=True, mlp_bias=True
    ),
    "llama3_rope_scaling": lambda: tf.LlamaConfig(**BASE, rope_parameters=LLAMA3_ROPE),
    "mistral_sliding_window": lambda: tf.MistralConfig(**BASE, sliding_window=4),
    "qwen2_qkv_bias": lambda: tf.Qwen2Config(**BASE, tie_word_embeddings=True),
    "qwen3_qk_norm": lambda: tf.Qwen3Config(**BASE, head_dim=24, tie_word_embeddings=False),
}


def _torch_model(hf_config, seed: int = 0):
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(hf_config).eval()
    with torch.no_grad():  # give norms/biases non-trivial values so they are really tested
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def _batch(seq: int = 40):
    rng = np.random.RandomState(1)
    ids = rng.randint(0, VOCAB, size=(2, seq))
    mask = np.ones((2, seq), dtype=np.int64)
    mask[1, seq - 9 :] = 0  # right padding
    return ids, mask


def _torch_logits(model, ids, mask) -> np.ndarray:
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
    return out.logits.float().numpy()


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def case(request):
    hf_config = CONFIGS[request.param]()
    model = _torch_model(hf_config)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    params = params_from_hf_state("llama", hf_config, state)
    module = config_from_hf(hf_config)
    ids, mask = _batch()
    apply = jax.jit(module.apply)
    ours = np.asarray(apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask)))
    return dict(hf_config=hf_config, model=model, params=params, module=module, ids=ids,
                mask=mask, ours=ours, ref=_torch_logits(model, ids, mask), apply=apply)  # fmt: skip


def test_logits_match_transformers(case):
    valid = case["mask"].astype(bool)
    assert case["ours"].dtype == np.float32
    assert case["ours"].shape == (2, case["ids"].shape[1], VOCAB)
    np.testing.assert_allclose(case["ours"][valid], case["ref"][valid], atol=MODEL_ATOL, rtol=0)


def test_export_roundtrip_into_fresh_torch_model(case):
    state = params_to_hf_state("llama", case["hf_config"], case["params"])
    fresh = _torch_model(case["hf_config"], seed=123)  # different weights until loaded
    fresh.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    again = _torch_logits(fresh, case["ids"], case["mask"])
    valid = case["mask"].astype(bool)
    np.testing.assert_allclose(again[valid], case["ref"][valid], atol=1e-6, rtol=0)


def test_inputs_embeds_and_output_embeddings_are_drop_in(case):
    params, ids, mask = case["params"], jnp.asarray(case["ids"]), jnp.asarray(case["mask"])
    table = params["embed_tokens"]["embedding"]
    head = params["lm_head"]["embedding"] if "lm_head" in params else table
    via_embeds = case["apply"]({"params": params}, inputs_embeds=table[ids], attention_mask=mask)
    via_head = case["apply"]({"params": params}, ids, attention_mask=mask, output_embeddings=head)
    np.testing.assert_allclose(np.asarray(via_embeds), case["ours"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.asarray(via_head), case["ours"], atol=1e-6, rtol=0)


def test_output_embeddings_of_another_size_and_bias():
    hf_config = CONFIGS["llama_untied_gqa"]()
    model = _torch_model(hf_config)
    params = params_from_hf_state("llama", hf_config, {k: v.numpy() for k, v in model.state_dict().items()})  # fmt: skip
    module = config_from_hf(hf_config)
    ids, mask = _batch(12)
    rng = np.random.RandomState(0)
    new_head, bias = rng.randn(300, 64).astype(np.float32), rng.randn(300).astype(np.float32)
    hidden = module.apply({"params": params}, jnp.asarray(ids), return_hidden=True)
    logits = module.apply(
        {"params": params}, jnp.asarray(ids), output_embeddings=new_head, output_bias=bias
    )
    assert logits.shape == (2, 12, 300)
    np.testing.assert_allclose(
        np.asarray(logits), np.asarray(hidden) @ new_head.T + bias, atol=1e-4, rtol=1e-5
    )


def test_remat_and_bfloat16_compute():
    hf_config = CONFIGS["qwen3_qk_norm"]()
    model = _torch_model(hf_config)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    params = params_from_hf_state("llama", hf_config, state)
    ids = jnp.asarray(_batch(16)[0])

    def loss(p, module):
        return module.apply({"params": p}, ids).mean()

    plain = jax.grad(loss)(params, config_from_hf(hf_config))
    remat = jax.grad(loss)(params, config_from_hf(hf_config, remat=True))
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(remat)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    ref = config_from_hf(hf_config).apply({"params": params}, ids)
    bf16 = config_from_hf(hf_config, dtype=jnp.bfloat16).apply({"params": params}, ids)
    assert bf16.dtype == jnp.float32  # logits are float32 even with bf16 compute
    assert float(jnp.abs(bf16 - ref).max()) < 0.1  # bf16 has ~3 significant digits
    assert float(jnp.abs(bf16 - ref).max()) > 0  # and really did compute in bf16


PARAGRAPH = (
    "The history of astronomy spans thousands of years. Early civilizations watched the sky "
    "to track seasons, plan harvests and navigate the seas. Later, telescopes revealed moons "
    "around Jupiter and the phases of Venus, changing how people understood our place in space. "
    "Modern observatories now measure distant galaxies with remarkable precision."
)


@pytest.mark.slow
def test_smollm2_matches_pytorch_and_says_paris(smollm2_dir):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(smollm2_dir / "tokenizer.json"))
    loaded = load_model(smollm2_dir)
    assert loaded.family == "llama" and loaded.tied and loaded.is_decoder
    apply = jax.jit(loaded.module.apply)

    ids = np.array([tok.encode(PARAGRAPH).ids])
    assert 50 <= ids.shape[1] <= 70
    torch_model = tf.AutoModelForCausalLM.from_pretrained(str(smollm2_dir)).eval()
    ref = _torch_logits(torch_model, ids, np.ones_like(ids))
    ours = np.asarray(apply({"params": loaded.params}, jnp.asarray(ids)))
    np.testing.assert_allclose(ours, ref, atol=REAL_MODEL_ATOL, rtol=0)

    # greedy decoding without a KV cache: a fixed-size right-padded buffer, one compile
    prompt = tok.encode("The capital of France is").ids
    steps, buf = 6, np.zeros((1, len(prompt) + 6), dtype=np.int32)
    buf[0, : len(prompt)] = prompt
    for n in range(len(prompt), len(prompt) + steps):
        logits = apply({"params": loaded.params}, jnp.asarray(buf))
        buf[0, n] = int(jnp.argmax(logits[0, n - 1]))
    text = tok.decode(buf[0, len(prompt) :].tolist())
    assert " Paris" in text, text
