"""Our BERT / RoBERTa / XLM-R encoders reproduce transformers (MLM logits or hidden states),
export back, and give all-MiniLM-L6-v2's sentence embeddings."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers as tf

from zett.models import sentence_embedding
from zett.models.load import config_from_hf, load_model, params_from_hf_state, params_to_hf_state

MODEL_ATOL = 1e-4  # whole model, float32
VOCAB = 120
SMALL = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=96,
    max_position_embeddings=64,
)
CASES = {
    # name: (config factory, torch class, has MLM head)
    "bert_mlm": (lambda: tf.BertConfig(**SMALL), tf.BertForMaskedLM, True),
    "bert_mlm_untied": (
        lambda: tf.BertConfig(**SMALL, tie_word_embeddings=False, hidden_act="gelu_new"),
        tf.BertForMaskedLM,
        True,
    ),
    "roberta_mlm": (
        lambda: tf.RobertaConfig(**SMALL, pad_token_id=1, type_vocab_size=1),
        tf.RobertaForMaskedLM,
        True,
    ),
    "xlmr_mlm": (
        lambda: tf.XLMRobertaConfig(**SMALL, pad_token_id=1, type_vocab_size=1),
        tf.XLMRobertaForMaskedLM,
        True,
    ),
    "bert_base_no_head": (lambda: tf.BertConfig(**SMALL), tf.BertModel, False),
}


def _torch_model(cls, hf_config, seed: int = 0):
    torch.manual_seed(seed)
    model = cls(hf_config).eval()
    with torch.no_grad():  # non-trivial LayerNorm / bias values
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def _torch_out(model, ids, mask, has_head):
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
    return (out.logits if has_head else out.last_hidden_state).numpy()


def _batch(pad_id: int):
    rng = np.random.RandomState(1)
    ids = rng.randint(3, VOCAB, size=(3, 20))
    mask = np.ones_like(ids)
    mask[1, 12:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = pad_id  # RoBERTa derives positions from the pad id
    return ids, mask


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    factory, cls, has_head = CASES[request.param]
    hf_config = factory()
    model = _torch_model(cls, hf_config)
    params = params_from_hf_state("bert", hf_config, {k: v.numpy() for k, v in model.state_dict().items()})  # fmt: skip
    module = config_from_hf(hf_config, has_lm_head=has_head)
    ids, mask = _batch(hf_config.pad_token_id)
    apply = jax.jit(module.apply, static_argnames="return_hidden")
    ours = np.asarray(
        apply(
            {"params": params},
            jnp.asarray(ids),
            attention_mask=jnp.asarray(mask),
            return_hidden=not has_head,
        )  # fmt: skip
    )
    return dict(hf_config=hf_config, cls=cls, has_head=has_head, params=params, ids=ids,
                mask=mask, ours=ours, apply=apply,
                ref=_torch_out(model, ids, mask, has_head))  # fmt: skip


def test_outputs_match_transformers(case):
    valid = case["mask"].astype(bool)
    assert case["ours"].shape == case["ref"].shape
    np.testing.assert_allclose(case["ours"][valid], case["ref"][valid], atol=MODEL_ATOL, rtol=0)


def test_export_roundtrip_into_fresh_torch_model(case):
    state = params_to_hf_state("bert", case["hf_config"], case["params"])
    fresh = _torch_model(case["cls"], case["hf_config"], seed=5)
    fresh.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    again = _torch_out(fresh, case["ids"], case["mask"], case["has_head"])
    valid = case["mask"].astype(bool)
    np.testing.assert_allclose(again[valid], case["ref"][valid], atol=1e-6, rtol=0)


def test_inputs_embeds_and_output_embeddings_are_drop_in(case):
    params, ids, mask = case["params"], jnp.asarray(case["ids"]), jnp.asarray(case["mask"])
    table = params["word_embeddings"]["embedding"]
    hidden = not case["has_head"]
    via_embeds = case["apply"](
        {"params": params}, inputs_embeds=table[ids], attention_mask=mask, return_hidden=hidden
    )
    valid = case["mask"].astype(bool)  # with inputs_embeds RoBERTa positions come from the mask
    np.testing.assert_allclose(np.asarray(via_embeds)[valid], case["ours"][valid], atol=1e-6)
    if case["has_head"]:
        head = params["mlm_head"].get("decoder", {}).get("embedding", table)
        via_head = case["apply"](
            {"params": params}, ids, attention_mask=mask, output_embeddings=head,
            output_bias=params["mlm_head"]["bias"],
        )  # fmt: skip
        np.testing.assert_allclose(np.asarray(via_head), case["ours"], atol=1e-6, rtol=0)


def test_no_head_needs_output_embeddings():
    hf_config = tf.BertConfig(**SMALL)
    module = config_from_hf(hf_config, has_lm_head=False)
    params = jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]
    assert "pooler" in params and "mlm_head" not in params
    with pytest.raises(ValueError, match="no MLM head"):
        module.apply({"params": params}, jnp.zeros((1, 4), jnp.int32))


SENTENCES = [
    "A man is eating food.",
    "The new movie is awesome and everyone should watch it this weekend.",
    "Zero-shot tokenizer transfer swaps the vocabulary of a language model.",
    "Berlin",
]


@pytest.mark.slow
def test_minilm_sentence_embeddings_match_pytorch(minilm_dir):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(SENTENCES)
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc])
    assert mask.min() == 0  # the batch really is padded

    loaded = load_model(minilm_dir)
    assert loaded.family == "bert" and not loaded.has_lm_head and not loaded.is_decoder
    hidden = loaded.module.apply(
        {"params": loaded.params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask),
        return_hidden=True,
    )  # fmt: skip
    ours = np.asarray(sentence_embedding(hidden, jnp.asarray(mask)))

    model = tf.AutoModel.from_pretrained(str(minilm_dir)).eval()
    with torch.no_grad():
        h = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state
    m = torch.tensor(mask, dtype=torch.float32)[..., None]
    ref = ((h * m).sum(1) / m.sum(1)).numpy()
    ref = ref / np.linalg.norm(ref, axis=-1, keepdims=True)
    cosine = (ours * ref).sum(-1)
    assert cosine.min() >= 0.9999, cosine
    # and the embeddings are not trivially similar to each other
    assert (ours @ ours.T)[np.triu_indices(len(SENTENCES), 1)].max() < 0.9
