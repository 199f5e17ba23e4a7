"""BERT / RoBERTa / XLM-R encoders in Linen, with the MLM head when the checkpoint has one.

Post-LayerNorm blocks with bidirectional attention over non-padding keys. RoBERTa and XLM-R
number positions from `pad_token_id + 1` and give padding the position `pad_token_id`; we
derive those positions from the attention mask (or from `input_ids != pad` without one), which
equals transformers' `create_position_ids_from_input_ids` whenever padding carries the pad id.

Sentence-embedding models such as all-MiniLM-L6-v2 have no MLM head: their embedding is the
masked mean of the last hidden states, L2-normalised (`sentence_embedding`, built on the
plain `masked_mean`).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from zett.models.layers import (
    Embedder,
    activation,
    attention,
    default_positions,
    dense,
    embed_inputs,
    layer_norm,
    lm_logits,
    logical,
    padding_mask,
    project_logits,
)


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Architecture of a BERT-style encoder (RoBERTa/XLM-R: `roberta_positions=True`)."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    roberta_positions: bool = False
    has_lm_head: bool = True
    head_act: str = "gelu"
    tie_word_embeddings: bool = True
    has_pooler: bool = False


def masked_mean(hidden: jax.Array, attention_mask: jax.Array | None) -> jax.Array:
    """Masked mean over the sequence in float32, not normalised (`sentence_embedding` is).

    hidden `[batch, seq, d]`, mask `[batch, seq]` 0/1 (None = every position) → `[batch, d]`.
    """
    hidden = hidden.astype(jnp.float32)
    if attention_mask is None:
        return hidden.mean(axis=1)
    m = attention_mask.astype(jnp.float32)[..., None]
    return (hidden * m).sum(axis=1) / jnp.maximum(m.sum(axis=1), 1e-9)


def sentence_embedding(hidden: jax.Array, attention_mask: jax.Array | None) -> jax.Array:
    """Sentence-transformers embedding: L2-normalised masked mean `[batch, d]` (float32)."""
    pooled = masked_mean(hidden, attention_mask)
    # max(‖x‖, 1e-12) written as sqrt(max(‖x‖², 1e-24)): the same value, but a row with no
    # tokens (x = 0) gets a zero gradient instead of NaN (‖x‖'s derivative at 0 is 0/0).
    sq = jnp.sum(pooled * pooled, axis=-1, keepdims=True)
    return pooled / jnp.sqrt(jnp.maximum(sq, 1e-24))


def roberta_position_ids(mask: jax.Array, pad_token_id: int) -> jax.Array:
    """mask `[batch, seq]` 0/1 → positions: pad_id+1, pad_id+2, … on tokens, pad_id on padding."""
    mask = mask.astype(jnp.int32)
    return jnp.cumsum(mask, axis=1) * mask + pad_token_id


class BertLayer(nn.Module):
    cfg: BertConfig
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        """x `[batch, seq, d]`, key mask `[batch, 1, 1, seq]` → `[batch, seq, d]`."""
        c, dt = self.cfg, self.dtype
        b, s, d = x.shape
        head_dim = d // c.num_heads
        q, k, v = (
            dense(d, ("embed", "heads"), True, dt, name)(x).reshape(b, s, c.num_heads, head_dim)
            for name in ("query", "key", "value")
        )
        ctx = attention(q, k, v, mask, head_dim**-0.5).reshape(b, s, d)
        x = layer_norm(c.layer_norm_eps, dt, "attn_norm")(
            x + dense(d, ("heads", "embed"), True, dt, "attn_out")(ctx)
        )
        h = activation(c.hidden_act)(
            dense(c.intermediate_size, ("embed", "mlp"), True, dt, "intermediate")(x)
        )
        h = dense(d, ("mlp", "embed"), True, dt, "output")(h)
        return layer_norm(c.layer_norm_eps, dt, "output_norm")(x + h)


class MLMHead(nn.Module):
    """transform (dense → act → LayerNorm) then the vocabulary projection with its bias."""

    cfg: BertConfig
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x, tied_matrix, output_embeddings, output_bias):
        c, dt = self.cfg, self.dtype
        h = activation(c.head_act)(dense(c.hidden_size, ("embed", "mlp"), True, dt, "dense")(x))
        h = layer_norm(c.layer_norm_eps, dt, "layer_norm")(h)
        if output_embeddings is None:  # the model's own head: its bias, not output_bias
            output_bias = self.param(
                "bias", logical(nn.initializers.zeros, "vocab"), (c.vocab_size,)
            )
        return lm_logits(
            h,
            tied_matrix if c.tie_word_embeddings else None,
            vocab_size=c.vocab_size,
            output_embeddings=output_embeddings,
            output_bias=output_bias,
            untied_name="decoder",
        )


class Bert(nn.Module):
    """BERT-family encoder; see `zett.models` for the calling convention.

    Parameters: `word_embeddings`, `position_embeddings`, `token_type_embeddings` (each
    `.embedding`), `embeddings_norm`, `layers_{i}`, `mlm_head` (`dense`, `layer_norm`, `bias` `[vocab]`, and
    `decoder.embedding` `[vocab, d]` only when untied) when `has_lm_head`, `pooler` when
    `has_pooler` (kept only so exported checkpoints round-trip; the pooled output is unused).

    With `output_embeddings`, the MLM transform is applied and then the given matrix with
    `output_bias` (None = no bias: the model's own bias belongs to the model's vocabulary).
    Without an MLM head, logits need `output_embeddings` (or use `return_hidden=True`).
    """

    config: BertConfig
    dtype: jnp.dtype = jnp.float32
    remat: bool = False

    @nn.compact
    def __call__(
        self,
        input_ids: jax.Array | None = None,
        *,
        inputs_embeds: jax.Array | None = None,
        attention_mask: jax.Array | None = None,
        output_embeddings: jax.Array | None = None,
        output_bias: jax.Array | None = None,
        return_hidden: bool = False,
        token_type_ids: jax.Array | None = None,
        position_ids: jax.Array | None = None,
    ) -> jax.Array:
        c, dt = self.config, self.dtype
        word = Embedder(c.vocab_size, c.hidden_size, dtype=dt, name="word_embeddings")
        x = embed_inputs(word, input_ids, inputs_embeds)
        b, s, _ = x.shape
        if position_ids is None:
            if c.roberta_positions:
                if attention_mask is not None:
                    tokens = attention_mask
                elif input_ids is not None:
                    tokens = input_ids != c.pad_token_id
                else:
                    tokens = jnp.ones((b, s), jnp.int32)
                position_ids = roberta_position_ids(tokens, c.pad_token_id)
            else:
                position_ids = default_positions(b, s)
        if token_type_ids is None:
            token_type_ids = jnp.zeros((b, s), jnp.int32)
        pos = Embedder(c.max_position_embeddings, c.hidden_size, ("position", "embed"), dt,
                       name="position_embeddings")  # fmt: skip
        types = Embedder(c.type_vocab_size, c.hidden_size, ("type", "embed"), dt,
                         name="token_type_embeddings")  # fmt: skip
        x = x + types(token_type_ids) + pos(position_ids)
        x = layer_norm(c.layer_norm_eps, dt, "embeddings_norm")(x)
        mask = padding_mask(attention_mask, b, s)
        layer = nn.remat(BertLayer) if self.remat else BertLayer
        for i in range(c.num_layers):
            x = layer(c, dt, name=f"layers_{i}")(x, mask)
        if c.has_pooler and self.is_initializing():
            dense(c.hidden_size, ("embed", "mlp"), True, dt, "pooler")(x[:, 0])
        headless = not c.has_lm_head and output_embeddings is None
        if return_hidden or (headless and self.is_initializing()):
            return x
        if c.has_lm_head:
            return MLMHead(c, dt, name="mlm_head")(x, word.matrix(), output_embeddings, output_bias)
        if output_embeddings is None:
            raise ValueError(
                "this encoder has no MLM head: pass output_embeddings or return_hidden"
            )
        return project_logits(x, output_embeddings, output_bias)
