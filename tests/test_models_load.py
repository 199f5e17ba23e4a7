"""`load_model` reads HF directories (single / sharded safetensors, fp32 / bf16), reports bad
checkpoints as `ZettError` naming the tensor and file, and get/set_embeddings swap vocabularies."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers as tf
from safetensors.numpy import load_file, save_file

from zett.errors import ZettError
from zett.models.load import (
    config_from_hf,
    get_embeddings,
    load_model,
    params_to_hf_state,
    set_embeddings,
    with_vocab_size,
)

MODEL_ATOL = 1e-4
VOCAB = 96


def _llama(tied: bool = True):
    return tf.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tied,
    )  # fmt: skip


def _save(model, path, **kw):
    model.save_pretrained(str(path), **kw)
    return path


def _ids():
    return np.random.RandomState(0).randint(0, VOCAB, size=(2, 9))


def _torch_logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids)).logits.float().numpy()


@pytest.mark.parametrize("tied", [True, False])
def test_load_single_file_matches_torch(tmp_path, tied):
    torch.manual_seed(0)
    model = tf.LlamaForCausalLM(_llama(tied)).eval()
    loaded = load_model(_save(model, tmp_path / "m"))
    assert (loaded.family, loaded.is_decoder, loaded.has_lm_head, loaded.tied) == (
        "llama", True, True, tied,
    )  # fmt: skip
    assert ("lm_head" in loaded.params) == (not tied)
    ours = loaded.module.apply({"params": loaded.params}, jnp.asarray(_ids()))
    np.testing.assert_allclose(np.asarray(ours), _torch_logits(model, _ids()), atol=MODEL_ATOL)


def test_load_sharded_index_equals_single_file(tmp_path):
    torch.manual_seed(0)
    model = tf.GPT2LMHeadModel(
        tf.GPT2Config(
            vocab_size=VOCAB,
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_positions=32,
            bos_token_id=0,
            eos_token_id=0,
        )  # fmt: skip
    ).eval()
    sharded = _save(model, tmp_path / "sharded", max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file()
    assert len(list(sharded.glob("*.safetensors"))) > 1
    single = load_model(_save(model, tmp_path / "single"))
    many = load_model(sharded)
    for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(many.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    ours = many.module.apply({"params": many.params}, jnp.asarray(_ids()))
    np.testing.assert_allclose(np.asarray(ours), _torch_logits(model, _ids()), atol=MODEL_ATOL)


def test_bfloat16_checkpoint_and_compute(tmp_path):
    torch.manual_seed(0)
    model = tf.LlamaForCausalLM(_llama()).eval().to(torch.bfloat16)
    path = _save(model, tmp_path / "bf16")
    as_bf16 = load_model(path, dtype="bfloat16")
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(as_bf16.params))
    as_f32 = load_model(path)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(as_f32.params))
    ref = _torch_logits(model.float(), _ids())  # exact bf16 weights, float32 compute
    f32 = np.asarray(as_f32.module.apply({"params": as_f32.params}, jnp.asarray(_ids())))
    np.testing.assert_allclose(f32, ref, atol=MODEL_ATOL)
    bf16 = as_bf16.module.apply({"params": as_bf16.params}, jnp.asarray(_ids()))
    assert bf16.dtype == jnp.float32 and float(np.abs(np.asarray(bf16) - ref).max()) < 0.05


@pytest.fixture
def saved_llama(tmp_path):
    torch.manual_seed(0)
    return _save(tf.LlamaForCausalLM(_llama()).eval(), tmp_path / "m")


def test_missing_tensor_names_tensor_and_file(saved_llama):
    file = saved_llama / "model.safetensors"
    state = load_file(str(file))
    del state["model.layers.1.mlp.up_proj.weight"]
    save_file(state, str(file))
    with pytest.raises(ZettError, match=r"model\.safetensors.*model\.layers\.1\.mlp\.up_proj"):
        load_model(saved_llama)


def test_wrong_shape_names_tensor_and_file(saved_llama):
    file = saved_llama / "model.safetensors"
    state = load_file(str(file))
    state["model.layers.0.self_attn.k_proj.weight"] = np.zeros((8, 32), np.float32)
    save_file(state, str(file))
    with pytest.raises(ZettError, match=r"model\.safetensors.*k_proj\.weight.*\(8, 32\)"):
        load_model(saved_llama)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model_type": "t5"}, "model_type 't5' is unsupported"),
        ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}}, "yarn"),
    ],
)
def test_unsupported_configs_are_user_errors(saved_llama, change, message):
    cfg_file = saved_llama / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.update(change)
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(ZettError, match=message):
        load_model(saved_llama)


def test_not_a_model_dir(tmp_path):
    with pytest.raises(ZettError, match="config.json"):
        load_model(tmp_path)


def test_set_embeddings_with_a_new_vocabulary_size(saved_llama):
    loaded = load_model(saved_llama)
    inp, out, bias = get_embeddings(loaded, loaded.params)
    assert inp.shape == (VOCAB, 32) and out is None and bias is None  # tied llama
    new_vocab = 150
    new_inp = np.random.RandomState(0).randn(new_vocab, 32).astype(np.float32)
    new_params = set_embeddings("llama", loaded.params, new_inp)
    assert loaded.params["embed_tokens"]["embedding"].shape == (VOCAB, 32)  # not mutated
    module = with_vocab_size(loaded.module, new_vocab)
    ids = jnp.asarray([[0, 149, 120, 3]])
    logits = module.apply({"params": new_params}, ids)
    hidden = module.apply({"params": new_params}, ids, return_hidden=True)
    assert logits.shape == (1, 4, new_vocab)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(hidden) @ new_inp.T, atol=1e-4)
    # the export follows the params' vocabulary and transformers loads it
    state = params_to_hf_state("llama", loaded.hf_config, new_params)
    cfg = _llama()
    cfg.vocab_size = new_vocab
    fresh = tf.LlamaForCausalLM(cfg).eval()
    fresh.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    np.testing.assert_allclose(_torch_logits(fresh, np.asarray(ids)), logits, atol=MODEL_ATOL)
    with pytest.raises(ValueError, match="output_emb"):
        set_embeddings("llama", loaded.params, new_inp, output_emb=new_inp)


def test_bert_embeddings_include_output_bias():
    hf_config = tf.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                              num_attention_heads=4, intermediate_size=48, tie_word_embeddings=False)  # fmt: skip
    module = config_from_hf(hf_config)
    params = jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 3), jnp.int32))["params"]
    inp, out, bias = get_embeddings("bert", params)
    assert inp.shape == out.shape == (VOCAB, 32) and bias.shape == (VOCAB,)
    new = set_embeddings("bert", params, inp[:10], out[:10] * 2, bias[:10] + 1)
    a, b, c = get_embeddings("bert", new)
    assert a.shape == (10, 32)
    np.testing.assert_allclose(np.asarray(b), np.asarray(out[:10] * 2))
    np.testing.assert_allclose(np.asarray(c), np.asarray(bias[:10] + 1))
