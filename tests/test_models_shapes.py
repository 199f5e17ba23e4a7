"""Real-size models built abstractly (`jax.eval_shape`, no memory): parameter counts equal the
published ones and transformers' own count (torch model on the `meta` device), every shape
matches the torch checkpoint after layout conversion, and every parameter carries logical axis
names (what the sharding module maps to mesh axes)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers as tf

from zett.models import LOGICAL_AXES
from zett.models.load import _entries, config_from_hf

REAL_CONFIGS = {
    "llama3_8b": (
        lambda: tf.LlamaConfig(
            vocab_size=128256,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=8192,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        ),  # fmt: skip
        tf.AutoModelForCausalLM,
        8_030_261_248,
    ),
    "mistral_7b_v0_1": (
        lambda: tf.MistralConfig(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            sliding_window=4096,
            tie_word_embeddings=False,
        ),  # fmt: skip
        tf.AutoModelForCausalLM,
        7_241_732_096,
    ),
    "qwen3_8b": (
        lambda: tf.Qwen3Config(
            vocab_size=151936,
            hidden_size=4096,
            intermediate_size=12288,
            num_hidden_layers=36,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=128,
            rms_norm_eps=1e-6,
            tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        ),  # fmt: skip
        tf.AutoModelForCausalLM,
        8_190_735_360,
    ),
    # The published 278,043,648 is XLMRobertaModel (encoder + pooler, no MLM head); with the
    # MLM head instead of the pooler it is 278,295,186 (torch's count is the reference there).
    "xlmr_base": (lambda: _xlmr("XLMRobertaModel"), tf.AutoModel, 278_043_648),
    "xlmr_base_mlm": (lambda: _xlmr("XLMRobertaForMaskedLM"), tf.AutoModelForMaskedLM, 278_295_186),
}


def _xlmr(architecture: str):
    return tf.XLMRobertaConfig(
        vocab_size=250002, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, architectures=[architecture],
    )  # fmt: skip


@pytest.fixture(scope="module", params=sorted(REAL_CONFIGS))
def real(request):
    factory, auto_cls, published = REAL_CONFIGS[request.param]
    hf_config = factory()
    module = config_from_hf(hf_config)
    boxed = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 1), jnp.int32))["params"]
    with torch.device("meta"):
        torch_model = auto_cls.from_config(hf_config)
    return dict(hf_config=hf_config, module=module, boxed=boxed, published=published,
                torch_model=torch_model)  # fmt: skip


def _count(tree) -> int:
    return sum(math.prod(x.shape) for x in jax.tree.leaves(nn.meta.unbox(tree)))


def test_parameter_count_matches_published_and_torch(real):
    ours = _count(real["boxed"])
    torch_count = sum(p.numel() for p in real["torch_model"].parameters())  # tied counted once
    assert ours == torch_count
    assert ours == real["published"]


def test_every_tensor_shape_matches_torch_after_layout_conversion(real):
    params = nn.meta.unbox(real["boxed"])
    torch_shapes = {k: tuple(v.shape) for k, v in real["torch_model"].state_dict().items()}
    for hf_key, path, kind in _entries(real["module"], real["hf_config"].model_type):
        leaf = params
        for k in path:
            leaf = leaf[k]
        want = torch_shapes[hf_key][::-1] if kind == "linear" else torch_shapes[hf_key]
        assert leaf.shape == want, hf_key


def test_every_parameter_has_logical_axis_names(real):
    leaves = jax.tree.leaves(real["boxed"], is_leaf=lambda x: isinstance(x, nn.Partitioned))
    assert leaves and all(isinstance(x, nn.LogicallyPartitioned) for x in leaves)
    for box in leaves:
        assert len(box.names) == box.value.ndim
        assert set(box.names) <= set(LOGICAL_AXES), box.names
        assert len(set(box.names)) == len(box.names)  # a spec may not repeat a mesh axis
    specs = nn.get_partition_spec(real["boxed"])
    assert jax.tree.leaves(specs, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))


def test_init_then_plain_apply_on_tiny_model():
    """Params from `init` unbox to plain dicts that `apply` accepts directly."""
    hf_config = tf.LlamaConfig(
        vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=1,
    )  # fmt: skip
    module = config_from_hf(hf_config)
    ids = jnp.arange(6, dtype=jnp.int32)[None]
    params = nn.meta.unbox(module.init(jax.random.key(0), ids))["params"]
    assert isinstance(params["embed_tokens"]["embedding"], jax.Array)
    logits = module.apply({"params": params}, ids)
    assert logits.shape == (1, 6, 50) and bool(np.isfinite(np.asarray(logits)).all())
