"""The Llama decoder family: Llama 2/3, Mistral, Qwen2, Qwen3, SmolLM2 in one Linen module.

They differ only in switches: grouped-query attention (`num_kv_heads`), q/k/v biases (Qwen2),
an o-projection / MLP bias (some Llama configs), RMSNorm on queries and keys per head (Qwen3),
RoPE scaling (`rope_type` "llama3" or "linear"), a sliding window (Mistral) and tied or untied
embeddings. Everything else is the same pre-norm block: RMSNorm → attention → residual,
RMSNorm → SwiGLU MLP → residual, final RMSNorm, LM head.

Numerics follow transformers: RMSNorm in float32 then cast back, rotate-half RoPE with
`cos`/`sin` computed in float32, attention softmax in float32.
"""

from __future__ import annotations

import dataclasses
import math

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
    lm_logits,
    logical,
    padding_mask,
)


def rope_inv_freq(
    head_dim: int,
    theta: float,
    rope_type: str = "default",
    factor: float = 1.0,
    low_freq_factor: float = 1.0,
    high_freq_factor: float = 4.0,
    original_max_position: int = 8192,
) -> jax.Array:
    """Inverse frequencies `[head_dim // 2]` of rotary embeddings, with Llama-3 / linear scaling.

    Llama-3 scaling keeps high frequencies (wavelength < original_context / high_freq_factor),
    divides low frequencies (wavelength > original_context / low_freq_factor) by `factor` and
    interpolates smoothly in between.
    """
    inv = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    if rope_type == "linear":
        return inv / factor
    if rope_type != "llama3":
        return inv
    low_wavelen = original_max_position / low_freq_factor
    high_wavelen = original_max_position / high_freq_factor
    wavelen = 2 * math.pi / inv
    scaled = jnp.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (original_max_position / wavelen - low_freq_factor) / (
        high_freq_factor - low_freq_factor
    )
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return jnp.where(medium, smoothed, scaled)


def rope_cos_sin(positions: jax.Array, inv_freq: jax.Array) -> tuple[jax.Array, jax.Array]:
    """positions `[batch, seq]` → cos, sin `[batch, seq, head_dim]` (float32, halves repeated)."""
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq
    emb = jnp.concatenate([freqs, freqs], axis=-1)
    return jnp.cos(emb), jnp.sin(emb)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotate-half RoPE on x `[batch, seq, heads, head_dim]` (transformers' layout, not interleaved)."""
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    cos = cos[:, :, None, :].astype(x.dtype)
    sin = sin[:, :, None, :].astype(x.dtype)
    return x * cos + rotated * sin


class RMSNorm(nn.Module):
    """x / rms(x) · weight over the last axis, computed in float32 (as transformers does)."""

    eps: float
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        weight = self.param("scale", logical(nn.initializers.ones, "norm"), (x.shape[-1],))
        x32 = x.astype(jnp.float32)
        x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return weight.astype(self.dtype) * x32.astype(self.dtype)


class LlamaAttention(nn.Module):
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    qkv_bias: bool
    o_bias: bool
    qk_norm: bool
    eps: float
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x, mask, cos, sin):
        """x `[batch, seq, d_model]`, mask `[batch, 1, seq, seq]` → `[batch, seq, d_model]`."""
        b, s, _ = x.shape
        q_size, kv_size = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        q = dense(q_size, ("embed", "heads"), self.qkv_bias, self.dtype, "q_proj")(x)
        k = dense(kv_size, ("embed", "kv_heads"), self.qkv_bias, self.dtype, "k_proj")(x)
        v = dense(kv_size, ("embed", "kv_heads"), self.qkv_bias, self.dtype, "v_proj")(x)
        q = q.reshape(b, s, self.num_heads, self.head_dim)
        k = k.reshape(b, s, self.num_kv_heads, self.head_dim)
        v = v.reshape(b, s, self.num_kv_heads, self.head_dim)
        if self.qk_norm:
            q = RMSNorm(self.eps, self.dtype, name="q_norm")(q)
            k = RMSNorm(self.eps, self.dtype, name="k_norm")(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        out = attention(q, k, v, mask, scale=self.head_dim**-0.5).reshape(b, s, q_size)
        return dense(self.hidden_size, ("heads", "embed"), self.o_bias, self.dtype, "o_proj")(out)


class LlamaMLP(nn.Module):
    hidden_size: int
    intermediate_size: int
    act: str
    mlp_bias: bool
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x):
        """SwiGLU: down(act(gate(x)) · up(x)); `[batch, seq, d_model]` in and out."""
        gate = dense(
            self.intermediate_size, ("embed", "mlp"), self.mlp_bias, self.dtype, "gate_proj"
        )
        up = dense(self.intermediate_size, ("embed", "mlp"), self.mlp_bias, self.dtype, "up_proj")
        down = dense(self.hidden_size, ("mlp", "embed"), self.mlp_bias, self.dtype, "down_proj")
        return down(activation(self.act)(gate(x)) * up(x))


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    """Architecture of a Llama-family model (what `load.config_from_hf` reads from config.json)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float = 1e-6
    hidden_act: str = "silu"
    rope_theta: float = 10000.0
    rope_type: str = "default"
    rope_factor: float = 1.0
    rope_low_freq_factor: float = 1.0
    rope_high_freq_factor: float = 4.0
    rope_original_max_position: int = 8192
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    sliding_window: int | None = None
    tie_word_embeddings: bool = False


class LlamaBlock(nn.Module):
    cfg: LlamaConfig
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x, mask, cos, sin):
        c, dt = self.cfg, self.dtype
        attn = LlamaAttention(
            c.num_heads,
            c.num_kv_heads,
            c.head_dim,
            c.hidden_size,
            c.qkv_bias,
            c.o_bias,
            c.qk_norm,
            c.rms_norm_eps,
            dt,
            name="self_attn",
        )
        mlp = LlamaMLP(c.hidden_size, c.intermediate_size, c.hidden_act, c.mlp_bias, dt, name="mlp")
        x = x + attn(RMSNorm(c.rms_norm_eps, dt, name="input_norm")(x), mask, cos, sin)
        return x + mlp(RMSNorm(c.rms_norm_eps, dt, name="post_attn_norm")(x))


class Llama(nn.Module):
    """Decoder-only LM of the Llama family; see `zett.models` for the calling convention.

    Parameters: `embed_tokens.embedding` `[vocab, d]`, `layers_{i}` blocks, `norm.scale` `[d]` and,
    when untied, `lm_head.embedding` `[vocab, d]` (stored vocab-major like the input matrix, so
    both swap the same way). `dtype` is the compute dtype; parameters keep their own dtype.
    `remat` recomputes each block's activations in the backward pass (jax.checkpoint).
    """

    config: LlamaConfig
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

        `position_ids` `[batch, seq]` defaults to 0..seq-1 for every row, as transformers does
        in a plain forward call (so pad on the right, or pass positions for left padding).
        """
        c = self.config
        embed = Embedder(c.vocab_size, c.hidden_size, dtype=self.dtype, name="embed_tokens")
        x = embed_inputs(embed, input_ids, inputs_embeds)
        b, s, _ = x.shape
        if position_ids is None:
            position_ids = default_positions(b, s)
        inv_freq = rope_inv_freq(
            c.head_dim,
            c.rope_theta,
            c.rope_type,
            c.rope_factor,
            c.rope_low_freq_factor,
            c.rope_high_freq_factor,
            c.rope_original_max_position,
        )
        cos, sin = rope_cos_sin(position_ids, inv_freq)
        mask = causal_mask(s, c.sliding_window) & padding_mask(attention_mask, b, s)
        block = nn.remat(LlamaBlock) if self.remat else LlamaBlock
        for i in range(c.num_layers):
            x = block(c, self.dtype, name=f"layers_{i}")(x, mask, cos, sin)
        x = RMSNorm(c.rms_norm_eps, self.dtype, name="norm")(x)
        if return_hidden:
            return x
        return lm_logits(
            x,
            embed if c.tie_word_embeddings else None,
            vocab_size=c.vocab_size,
            output_embeddings=output_embeddings,
            output_bias=output_bias,
        )
