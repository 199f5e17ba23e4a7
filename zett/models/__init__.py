"""Our own Flax (Linen) base LMs that reproduce transformers' PyTorch models.

Why Linen: parameters are plain nested dicts of arrays (pytrees). That makes the three things
the hypernetwork trainer needs trivial: freezing the base LM (it is just an argument of the loss,
never in the optimizer), swapping its embedding matrices (`load.set_embeddings` or the
`inputs_embeds=` / `output_embeddings=` call arguments) and sharding by logical axis names
(`nn.with_logical_partitioning` on every parameter; `zett.sharding` maps the names to mesh axes,
model code never names a mesh axis).

Families (one module each): `llama` (Llama 2/3, Mistral, Qwen2, Qwen3, SmolLM2), `gpt2`, `bert`
(BERT / RoBERTa / XLM-R, MLM head optional, mean pooling for sentence embeddings). `load` maps
Hugging Face safetensors ⇄ our parameter trees.

Every model has the same calling convention:

    logits = model.apply({"params": params}, input_ids, *, inputs_embeds=None,
                         attention_mask=None, output_embeddings=None, output_bias=None,
                         return_hidden=False)

`input_ids` `[batch, seq]` int; `inputs_embeds` `[batch, seq, d_model]` replaces the lookup;
`attention_mask` `[batch, seq]` (1 = real token, 0 = padding); `output_embeddings` `[vocab', d_model]`
(+ `output_bias` `[vocab']`) replaces the LM head; returns float32 logits `[batch, seq, vocab]` or
the final hidden states `[batch, seq, d_model]` with `return_hidden=True`.

Logical axis names used on parameters: "vocab", "embed", "heads", "kv_heads", "mlp", "norm"
(plus "position" for learned position tables and "type" for token-type tables).

This file also holds the few numerical primitives the three families share.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

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
        from zett.errors import ZettError

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


from zett.models.bert import Bert, mean_pool, sentence_embedding  # noqa: E402
from zett.models.gpt2 import GPT2  # noqa: E402
from zett.models.llama import Llama  # noqa: E402

__all__ = [
    "GPT2",
    "LOGICAL_AXES",
    "Bert",
    "Embedder",
    "Llama",
    "activation",
    "attention",
    "mean_pool",
    "sentence_embedding",
]
