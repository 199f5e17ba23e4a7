"""The hypernetwork: predict a new token's embeddings from how the old tokenizer splits it.

For every token of a new vocabulary we have its decomposition into ≤ P pieces of the base
(old) tokenizer (`zett.tokenizers.decompose`). The pieces are embedded with the *frozen*
base embedding matrices, standardized per dimension (the affine "rescaler"), run through a
small pre-LN transformer encoder, and the first position's output is projected to a
correction that is added to the **mean of the piece embeddings** (FVT):

    e_in(t)  = mean_p E_in[piece_p(t)]  + σ_in  ⊙ W_in  · h_0(t)
    e_out(t) = mean_p E_out[piece_p(t)] + σ_out ⊙ W_out · h_0(t)      (separate_out_head)
    b(t)     = w_b · h_0(t) [+ λ · log p_unigram(t)]                  (bias, use_unigram_bias)

`W_in`, `W_out`, `w_b` and `λ` start at zero, so at step 0 the prediction *is* the FVT
baseline, and training only has to learn what FVT gets wrong. A base token whose
decomposition is itself (one piece) is reproduced exactly at step 0, which is what the
identity warm-up of the paper trains towards; with `copy_single` it stays exact (the
correction is masked on one-piece rows). Measured on SmolLM2 after compose pretraining:
single-piece rows off by a standardized MSE of only 0.004 cost 0.16 bits per byte on
llama2-tokenized text (1.971 vs 1.809 with them copied), so exactness there matters.
`correct_fragments` exempts one-piece tokens whose piece is a fragment of a character (a
lone UTF-8 byte): the base model rarely sees those alone, and under a tokenizer that splits
Cyrillic into bytes they are most of the text (74% of Russian tokens under local-de-16k).

The base matrices are arguments, not parameters: they stay frozen and are never copied into
the hypernet's parameter tree (so its checkpoint is small and gradients touch only it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import flax.linen as nn
import jax
import jax.numpy as jnp

from zett.config import HypernetConfig


@dataclass(frozen=True)
class HypernetDims:
    """Resolved sizes: config zeros replaced by the base model's numbers."""

    d_model: int  # base embedding width
    hidden: int
    heads: int
    mlp: int
    layers: int
    max_pieces: int


def resolve_dims(cfg: HypernetConfig, d_model: int, base_heads: int) -> HypernetDims:
    hidden = cfg.hidden_dim or d_model
    heads = cfg.num_heads or base_heads
    if hidden % heads:
        # Fall back to the largest divisor of `hidden` not above the requested count.
        heads = max(h for h in range(1, heads + 1) if hidden % h == 0)
    return HypernetDims(
        d_model=d_model,
        hidden=hidden,
        heads=heads,
        mlp=int(round(cfg.mlp_ratio * hidden)),
        layers=cfg.num_layers,
        max_pieces=cfg.max_pieces,
    )


def rescaler_stats(
    base_in: jax.Array, base_out: jax.Array | None = None
) -> tuple[tuple[jax.Array, jax.Array], ...]:
    """(mean [D], std [D]) per frozen table, the rescaler's statistics. Compute them once per
    base and pass them as `stats=` (they cost a pass over the [V, D] tables per call)."""
    tables = [base_in] if base_out is None else [base_in, base_out]
    out = []
    for t in tables:
        t = jax.lax.stop_gradient(jnp.asarray(t, jnp.float32))
        out.append((t.mean(0), t.std(0) + 1e-6))
    return tuple(out)


def _dense(
    features: int, name: str, axes: tuple[str | None, str | None], zero: bool = False
) -> nn.Dense:
    init = nn.initializers.zeros if zero else nn.initializers.lecun_normal()
    return nn.Dense(
        features,
        name=name,
        kernel_init=nn.with_logical_partitioning(init, axes),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axes[1],)),
    )


def copied_rows(cfg: HypernetConfig, piece_ids, piece_lengths, complete=None):
    """[N] bool, numpy or jax like `piece_lengths`: rows whose prediction is their mean of
    pieces with no correction. With `copy_single` these are the tokens of one base piece,
    which keep that piece's row exactly, and the empty ones (zeros); without it, none.
    With `correct_fragments` a one-piece token is copied only where its piece is whole
    UTF-8 text: `complete` is bool [V_base] (`SurfaceForms.complete_text` of the base)."""
    if not cfg.copy_single:
        return piece_lengths < 0
    rows = piece_lengths <= 1
    if cfg.correct_fragments:
        if complete is None:
            raise ValueError("correct_fragments needs the base's complete_text mask")
        rows = rows & ((piece_lengths == 0) | complete[piece_ids[:, 0]])
    return rows


class EncoderLayer(nn.Module):
    """Pre-LN transformer layer over the pieces of one token: [tokens, pieces, hidden].

    `first_only`: compute only position 0's output ([tokens, 1, hidden]), all positions still
    serving as keys and values. The hypernet reads only position 0 after its last layer, so
    there the other positions' queries, MLP and residuals are wasted work: with ~3 pieces a
    token this saves about a third of a 2-layer hypernet's FLOPs, same result.
    """

    dims: HypernetDims
    dtype: jnp.dtype = jnp.float32
    first_only: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        d = self.dims
        kv = nn.LayerNorm(name="ln_attn", dtype=self.dtype)(x)
        if self.first_only:
            x = x[:, :1]
        h = kv[:, : x.shape[1]]
        attn_mask = mask[:, None, None, :]  # [tokens, 1, 1, pieces]: keys that exist
        h = nn.MultiHeadDotProductAttention(
            num_heads=d.heads,
            qkv_features=d.hidden,
            name="attn",
            dtype=self.dtype,
            kernel_init=nn.with_logical_partitioning(
                nn.initializers.lecun_normal(), ("hyper_embed", "hyper_heads")
            ),
        )(h, kv, mask=attn_mask)
        x = x + h
        h = nn.LayerNorm(name="ln_mlp", dtype=self.dtype)(x)
        h = _dense(d.mlp, "mlp_in", ("hyper_embed", "hyper_mlp"))(h)
        h = nn.gelu(h)
        h = _dense(d.hidden, "mlp_out", ("hyper_mlp", "hyper_embed"))(h)
        return x + h


class VocabAttention(nn.Module):
    """One attention layer across the tokens of a vocabulary: [tokens, hidden] → same.

    The `vocab_attention` ablation: lets a token's prediction depend on which other tokens
    the vocabulary has (e.g. whether a longer merge exists). Cost is O(tokens²).
    """

    dims: HypernetDims
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, h: jax.Array, vocab_mask: jax.Array) -> jax.Array:
        z = nn.LayerNorm(name="ln", dtype=self.dtype)(h)[None]
        z = nn.MultiHeadDotProductAttention(
            num_heads=self.dims.heads, name="attn", dtype=self.dtype
        )(z, z, mask=vocab_mask[None, None, None, :])
        return h + z[0]


class Hypernet(nn.Module):
    """Predicts (input embeddings [N, D], output embeddings [N, D] | None, bias [N] | None).

    Args of `__call__`:
      piece_ids: [N, P] int32 base-tokenizer ids of each new token's pieces (0-padded).
      piece_lengths: [N] int32 number of valid pieces (0 for an empty token).
      base_in: [V, D] frozen base input embeddings.
      base_out: [V, D] frozen base output embeddings, or None when the base ties them.
      unigram_logprobs: [N] target tokenizer's log-probs (used by `prior_input` /
        `use_unigram_bias`), or None.
      vocab_mask: [N] bool, which rows are real tokens (the rest is static-shape padding).
      stats: `rescaler_stats(base_in, base_out)`, or None to compute them here.
      complete: [V] bool, base tokens that are whole UTF-8 text (`correct_fragments`).
    """

    cfg: HypernetConfig
    dims: HypernetDims
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(
        self,
        piece_ids: jax.Array,
        piece_lengths: jax.Array,
        base_in: jax.Array,
        base_out: jax.Array | None = None,
        unigram_logprobs: jax.Array | None = None,
        vocab_mask: jax.Array | None = None,
        stats: tuple | None = None,
        complete: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
        cfg, d = self.cfg, self.dims
        n, p = piece_ids.shape
        mask = jnp.arange(p)[None, :] < piece_lengths[:, None]  # [N, P]
        maskf = mask.astype(jnp.float32)[..., None]
        denom = jnp.maximum(maskf.sum(1), 1.0)  # [N, 1]

        sources = [base_in] if base_out is None else [base_in, base_out]
        if stats is None:
            stats = rescaler_stats(base_in, base_out)
        pieces, means, stds, fvt = [], [], [], []
        for table, (mu, sigma) in zip(sources, stats):
            table = jax.lax.stop_gradient(table.astype(jnp.float32))
            mu, sigma = jax.lax.stop_gradient(mu), jax.lax.stop_gradient(sigma)
            emb = jnp.take(table, piece_ids, axis=0)  # [N, P, D]
            fvt.append((emb * maskf).sum(1) / denom)  # mean of pieces, [N, D]
            pieces.append((emb - mu) / sigma)
            means.append(mu)
            stds.append(sigma)
        x = jnp.concatenate(pieces, axis=-1).astype(self.dtype)  # [N, P, D or 2D]

        x = _dense(d.hidden, "in_proj", ("hyper_in", "hyper_embed"))(x)
        pos = cast(  # `param` returns the unboxed array, not the LogicallyPartitioned box
            jax.Array,
            self.param(
                "pos_emb",
                nn.with_logical_partitioning(nn.initializers.normal(0.02), (None, "hyper_embed")),
                (d.max_pieces, d.hidden),
            ),
        )
        x = x + pos[None, :p].astype(self.dtype)  # p ≤ max_pieces (callers may trim)
        if cfg.prior_input:
            if unigram_logprobs is None:
                raise ValueError("prior_input needs unigram_logprobs")
            prior = _dense(d.hidden, "prior_proj", (None, "hyper_embed"))(
                unigram_logprobs[:, None].astype(self.dtype)
            )
            x = x.at[:, 0].add(prior)
        # An empty token (length 0, e.g. an id gap) still attends to position 0, so its
        # output does not depend on how many padding positions the caller passes.
        attn_mask = mask.at[:, 0].set(True)
        for i in range(d.layers):
            last = i == d.layers - 1
            x = EncoderLayer(d, self.dtype, first_only=last, name=f"layer_{i}")(x, attn_mask)
        h = nn.LayerNorm(name="ln_final", dtype=self.dtype)(x[:, 0])  # [N, hidden]
        if cfg.vocab_attention:
            vm = jnp.ones((n,), bool) if vocab_mask is None else vocab_mask
            h = VocabAttention(d, self.dtype, name="vocab_attn")(h, vm)
        h = h.astype(jnp.float32)

        copied = copied_rows(cfg, piece_ids, piece_lengths, complete)
        copied = copied.astype(jnp.float32)[:, None]
        keep = 1.0 - copied if cfg.copy_single else 1.0
        delta_in = _dense(d.d_model, "out_in", ("hyper_embed", "embed"), zero=True)(h)
        pred_in = fvt[0] + stds[0] * delta_in * keep
        pred_out = None
        if cfg.separate_out_head or base_out is not None:
            k = 1 if base_out is not None else 0
            delta_out = _dense(d.d_model, "out_out", ("hyper_embed", "embed"), zero=True)(h)
            pred_out = fvt[k] + stds[k] * delta_out * keep
        bias = None
        if cfg.use_unigram_bias:
            if unigram_logprobs is None:
                raise ValueError("use_unigram_bias needs unigram_logprobs")
            bias = _dense(1, "out_bias", ("hyper_embed", None), zero=True)(h)[:, 0]
            scale = self.param("unigram_scale", nn.initializers.zeros, ())
            bias = bias + scale * unigram_logprobs.astype(jnp.float32)
        return pred_in, pred_out, bias


def build_hypernet(
    cfg: HypernetConfig, d_model: int, base_heads: int, bf16: bool = False
) -> Hypernet:
    dims = resolve_dims(cfg, d_model, base_heads)
    return Hypernet(cfg, dims, jnp.bfloat16 if bf16 else jnp.float32)


def init_hypernet(
    model: Hypernet,
    rng: jax.Array,
    base_in: jax.Array,
    base_out: jax.Array | None = None,
    n_tokens: int = 8,
) -> dict:
    """Initialize on a dummy vocabulary; returns the plain (unboxed) parameter tree."""
    p = model.dims.max_pieces
    ids = jnp.zeros((n_tokens, p), jnp.int32)
    lengths = jnp.ones((n_tokens,), jnp.int32)
    logp = jnp.zeros((n_tokens,), jnp.float32)
    complete = jnp.ones(base_in.shape[:1], bool)  # any mask: the parameters do not depend on it
    variables = model.init(rng, ids, lengths, base_in, base_out, logp, None, None, complete)
    return nn.meta.unbox(variables["params"])


def untrained_hypernet(
    cfg: HypernetConfig,
    base_in: jax.Array,
    base_out: jax.Array | None,
    base_heads: int,
    seed: int = 0,
    bf16: bool = False,
) -> tuple[Hypernet, dict]:
    """(module, params) of a fresh hypernet for a base with frozen tables `base_in` /
    `base_out` [V, D] (None: tied): sized by `resolve_dims`, initialized from `seed`."""
    module = build_hypernet(cfg, int(base_in.shape[1]), base_heads, bf16=bf16)
    return module, init_hypernet(module, jax.random.PRNGKey(seed), base_in, base_out)
