"""Numerical primitives and Flax (Linen) blocks the base-model families share.

Activations by transformers' names, logical-axis initializers, softmax attention, padding /
causal masks, float32 logit projection, the embedding table (`Embedder`, readable whole for
tied heads), `dense` and `layer_norm` with logical axis names. `llama`, `gpt2` and `bert`
build their blocks from these; `LOGICAL_AXES` lists every logical name a parameter may carry
(`zett.sharding` maps them to mesh axes).

The two ends of every family are written here once, because the hypernetwork trainer swaps
both: `embed_inputs` (token lookup, or the `inputs_embeds=` that replace it) and `lm_logits`
(the LM head: the input table when tied, an own table when untied, or the
`output_embeddings=` / `output_bias=` passed in its place). `default_positions` is the
0..seq-1 position ids all three families fall back to.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from zett.errors import ZettError

LOGICAL_AXES = ("vocab", "embed", "heads", "kv_heads", "mlp", "norm", "position", "type")


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation transformers calls `name` (ACT2FN), as a JAX function.

    `gelu` is the exact erf form; `gelu_new` / `gelu_pytorch_tanh` the tanh approximation.
    """
    table: dict[str, Callable[[jax.Array], jax.Array]] = {
        "silu": jax.nn.silu,
        "swish": jax.nn.silu,
        "gelu": lambda x: jax.nn.gelu(x, approximate=False),
        "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
        "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
        "gelu_fast": lambda x: jax.nn.gelu(x, approximate=True),
        "relu": jax.nn.relu,
    }
    if name not in table:
        raise ZettError(
            f"config.json: activation {name!r} is unsupported; use one of {sorted(table)}"
        )
    return table[name]


def logical(init: Callable, *axes: str) -> Callable:
    """An initializer whose parameter carries logical axis names (one per dimension)."""
    return nn.with_logical_partitioning(init, axes)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, scale: float) -> jax.Array:
    """Softmax attention with grouped-query support; softmax in float32.

    q `[batch, seq, heads, head_dim]`, k/v `[batch, seq, kv_heads, head_dim]` (heads a multiple of
    kv_heads), mask bool `[batch, 1, seq_q, seq_k]` (True = may attend). Rows with no allowed key
    (padding queries) get a uniform distribution instead of NaN; their outputs are garbage that
    callers must ignore. Returns `[batch, seq, heads, head_dim]`.
    """
    return jax.nn.dot_product_attention(q, k, v, mask=mask, scale=scale)


def padding_mask(attention_mask: jax.Array | None, batch: int, seq: int) -> jax.Array:
    """Key mask `[batch, 1, 1, seq]` (True = real token) from a `[batch, seq]` 0/1 mask."""
    if attention_mask is None:
        return jnp.ones((batch, 1, 1, seq), dtype=bool)
    return attention_mask.astype(bool)[:, None, None, :]


def causal_mask(seq: int, sliding_window: int | None = None) -> jax.Array:
    """`[1, 1, seq, seq]` bool: query i may see key j iff j <= i (and i - j < window)."""
    i = jnp.arange(seq)[:, None]
    j = jnp.arange(seq)[None, :]
    allowed = j <= i
    if sliding_window is not None:
        allowed &= (i - j) < sliding_window
    return allowed[None, None]


def project_logits(
    hidden: jax.Array, matrix: jax.Array, bias: jax.Array | None = None
) -> jax.Array:
    """Float32 logits `[batch, seq, vocab]` = hidden `[batch, seq, d]` · matrix `[vocab, d]`ᵀ + bias.

    The matrix is cast to the hidden states' compute dtype; accumulation is float32, so bfloat16
    compute still yields float32 logits.
    """
    logits = jnp.einsum(
        "bsd,vd->bsv", hidden, matrix.astype(hidden.dtype), preferred_element_type=jnp.float32
    )
    if bias is not None:
        logits = logits + bias.astype(jnp.float32)
    return logits


class Embedder(nn.Module):
    """A `[num, features]` lookup table that can also be read whole (for tied LM heads)."""

    num: int
    features: int
    axes: tuple[str, str] = ("vocab", "embed")
    dtype: jnp.dtype = jnp.float32

    def setup(self) -> None:
        init = logical(nn.initializers.normal(0.02), *self.axes)
        self.embedding = self.param("embedding", init, (self.num, self.features))

    def __call__(self, ids: jax.Array) -> jax.Array:
        """ids `[...]` → `[..., features]` in the compute dtype."""
        return jnp.take(self.embedding, ids, axis=0).astype(self.dtype)

    def matrix(self) -> jax.Array:
        return self.embedding


def embed_inputs(
    table: Embedder, input_ids: jax.Array | None, inputs_embeds: jax.Array | None
) -> jax.Array:
    """Token embeddings `[batch, seq, d]` in the table's compute dtype.

    `inputs_embeds` `[batch, seq, d]`, when given, replace the lookup (they win over
    `input_ids`; the table is then not read); otherwise `table(input_ids)`.
    """
    if inputs_embeds is not None:
        return inputs_embeds.astype(table.dtype)
    if input_ids is None:
        raise ValueError("pass input_ids or inputs_embeds")
    return table(input_ids)


def default_positions(batch: int, seq: int) -> jax.Array:
    """Position ids `[batch, seq]`: 0..seq-1 in every row (transformers' plain-forward default)."""
    return jnp.broadcast_to(jnp.arange(seq), (batch, seq))


def lm_logits(
    hidden: jax.Array,
    tied: Embedder | jax.Array | None,
    *,
    vocab_size: int,
    output_embeddings: jax.Array | None = None,
    output_bias: jax.Array | None = None,
    untied_name: str = "lm_head",
) -> jax.Array:
    """Float32 logits `[batch, seq, vocab]` of an LM head over hidden `[batch, seq, d]`.

    With `output_embeddings` `[vocab', d]` (+ `output_bias` `[vocab']`), those replace the
    head: how the hypernetwork trainer scores a new vocabulary. Otherwise the matrix is
    `tied` (the input `Embedder`, read whole only here, or its matrix) or, when `tied` is
    None, the head's own `[vocab_size, d]` `Embedder` named `untied_name`, created in the
    calling module (parameter `<caller>/<untied_name>/embedding`, vocab-major like the input
    table, so both swap the same way); `output_bias` is added in either case.
    Call from inside a compact method.
    """
    if output_embeddings is None:
        if tied is None:
            tied = Embedder(vocab_size, hidden.shape[-1], dtype=hidden.dtype, name=untied_name)
        output_embeddings = tied.matrix() if isinstance(tied, Embedder) else tied
    return project_logits(hidden, output_embeddings, output_bias)


def dense(features: int, axes: tuple[str, str], use_bias: bool, dtype, name: str) -> nn.Dense:
    """`nn.Dense` with logical names on kernel `[in, out]` and bias `[out]`."""
    return nn.Dense(
        features,
        use_bias=use_bias,
        dtype=dtype,
        kernel_init=logical(nn.initializers.normal(0.02), *axes),
        bias_init=logical(nn.initializers.zeros, axes[1]),
        name=name,
    )


def layer_norm(eps: float, dtype, name: str) -> nn.LayerNorm:
    """LayerNorm with logical names on scale/bias `[d]`; statistics in float32."""
    return nn.LayerNorm(
        epsilon=eps,
        dtype=dtype,
        scale_init=logical(nn.initializers.ones, "norm"),
        bias_init=logical(nn.initializers.zeros, "norm"),
        name=name,
    )
