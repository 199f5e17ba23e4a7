"""GPT-2 in Linen: learned absolute positions, pre-LayerNorm blocks, gelu_new MLP, tied head.

transformers stores GPT-2's projections as `Conv1D` weights `[in, out]` with q, k and v fused
in one `c_attn`; `load.py` splits that into our `q_proj` / `k_proj` / `v_proj` (so each can be
sharded over heads) and keeps the `[in, out]` layout, which is already Flax's kernel layout.
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
    causal_mask,
    default_positions,
    dense,
    embed_inputs,
    layer_norm,
    lm_logits,
    padding_mask,
)


@dataclasses.dataclass(frozen=True)
class GPT2Config:
    """Architecture of a GPT-2 model (from config.json's n_embd, n_layer, ...)."""

    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    n_inner: int
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    scale_attn_weights: bool = True
    tie_word_embeddings: bool = True


class GPT2Block(nn.Module):
    cfg: GPT2Config
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        """x `[batch, seq, d]`, mask `[batch, 1, seq, seq]` → `[batch, seq, d]`."""
        c, dt = self.cfg, self.dtype
        b, s, d = x.shape
        head_dim = d // c.n_head
        h = layer_norm(c.layer_norm_epsilon, dt, "ln_1")(x)
        q, k, v = (
            dense(d, ("embed", "heads"), True, dt, name)(h).reshape(b, s, c.n_head, head_dim)
            for name in ("q_proj", "k_proj", "v_proj")
        )
        scale = head_dim**-0.5 if c.scale_attn_weights else 1.0
        out = attention(q, k, v, mask, scale).reshape(b, s, d)
        x = x + dense(d, ("heads", "embed"), True, dt, "c_proj")(out)
        h = layer_norm(c.layer_norm_epsilon, dt, "ln_2")(x)
        h = activation(c.activation_function)(
            dense(c.n_inner, ("embed", "mlp"), True, dt, "c_fc")(h)
        )
        return x + dense(d, ("mlp", "embed"), True, dt, "mlp_proj")(h)


class GPT2(nn.Module):
    """GPT-2 LM; see `zett.models` for the calling convention.

    Parameters: `wte.embedding` `[vocab, d]`, `wpe.embedding` `[n_positions, d]`, `layers_{i}`,
    `ln_f`, and `lm_head.embedding` `[vocab, d]` only when untied (GPT-2 checkpoints are tied).
    """

    config: GPT2Config
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
        position_ids: jax.Array | None = None,
    ) -> jax.Array:
        """Logits `[batch, seq, vocab]` float32 (or hidden `[batch, seq, d]`).

        Position embeddings are added to `inputs_embeds` too (they replace only the token lookup).
        `position_ids` defaults to 0..seq-1 per row, as in transformers.
        """
        c = self.config
        wte = Embedder(c.vocab_size, c.n_embd, dtype=self.dtype, name="wte")
        wpe = Embedder(c.n_positions, c.n_embd, ("position", "embed"), self.dtype, name="wpe")
        x = embed_inputs(wte, input_ids, inputs_embeds)
        b, s, _ = x.shape
        if position_ids is None:
            position_ids = default_positions(b, s)
        x = x + wpe(position_ids)
        mask = causal_mask(s) & padding_mask(attention_mask, b, s)
        block = nn.remat(GPT2Block) if self.remat else GPT2Block
        for i in range(c.n_layer):
            x = block(c, self.dtype, name=f"layers_{i}")(x, mask)
        x = layer_norm(c.layer_norm_epsilon, self.dtype, "ln_f")(x)
        if return_hidden:
            return x
        return lm_logits(
            x,
            wte if c.tie_word_embeddings else None,
            vocab_size=c.vocab_size,
            output_embeddings=output_embeddings,
            output_bias=output_bias,
        )
