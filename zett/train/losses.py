"""Pure loss functions of hypernetwork training (jit- and property-test-friendly).

Every loss returns `(sum, count)` so micro-batches, devices and chunks combine exactly:
the mean is `sum / count` only after everything is added up. Logits are float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NEG_INF = -1e9


def token_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Negative log-likelihood of `targets` [...]: logits [..., V] → nats [...]."""
    logz = jax.nn.logsumexp(logits.astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(logits.astype(jnp.float32), targets[..., None], axis=-1)[..., 0]
    return logz - picked


def causal_lm_loss(
    logits: jax.Array, input_ids: jax.Array, attention_mask: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Next-token loss of a decoder. logits [B, T, V], ids/mask [B, T] → (Σ nats, #predicted).

    Position t predicts token t+1; a prediction counts when both positions are real tokens.
    """
    nll = token_nll(logits[:, :-1], input_ids[:, 1:])
    valid = (attention_mask[:, 1:] * attention_mask[:, :-1]).astype(jnp.float32)
    return (nll * valid).sum(), valid.sum()


def masked_lm_loss(
    logits: jax.Array, labels: jax.Array, label_mask: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """MLM loss of an encoder. logits [B, T, V], labels/label_mask [B, T] (1 where masked)."""
    nll = token_nll(logits, labels)
    w = label_mask.astype(jnp.float32)
    return (nll * w).sum(), w.sum()


def sentence_agreement_loss(
    pooled_new: jax.Array, pooled_ref: jax.Array, row_mask: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Label-free objective for sentence encoders: 1 − cos(new, reference) per text.

    pooled_* [B, D] are L2-normalised sentence embeddings (`zett.models.sentence_embedding`)
    of the same texts under the new tokenizer (predicted embeddings) and the original one
    (frozen reference).
    """
    cos = (pooled_new * jax.lax.stop_gradient(pooled_ref)).sum(-1)
    w = row_mask.astype(jnp.float32)
    return ((1.0 - cos) * w).sum(), w.sum()


def aux_embedding_loss(
    pred: jax.Array,
    shared_idx: jax.Array,
    target: jax.Array,
    shared_mask: jax.Array,
    scale: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """MSE between predicted and original embeddings of tokens both vocabularies share.

    pred [N, D] predicted rows; shared_idx [S] rows of `pred`; target [S, D] the base
    embeddings of the same tokens; shared_mask [S] which of the S slots are real;
    scale [D] (optional) divides the error per dimension — pass the base embeddings'
    std so the loss is in standardized units and `lw` means the same for every model
    (raw embedding values are ~1e-2, which would make the MSE vanish next to the LM loss).
    Returns (Σ per-token mean-squared error, #shared tokens).
    """
    diff = jnp.take(pred, shared_idx, axis=0) - jax.lax.stop_gradient(target)
    if scale is not None:
        diff = diff / jax.lax.stop_gradient(scale)
    per_token = jnp.mean(jnp.square(diff.astype(jnp.float32)), axis=-1)
    w = shared_mask.astype(jnp.float32)
    return (per_token * w).sum(), w.sum()


def vocab_bias(bias: jax.Array | None, vocab_mask: jax.Array) -> jax.Array:
    """Output-layer bias [N] that removes static-shape padding rows from the softmax."""
    pad = jnp.where(vocab_mask, 0.0, NEG_INF)
    return pad if bias is None else bias.astype(jnp.float32) + pad


def safe_div(total: jax.Array, count: jax.Array) -> jax.Array:
    return total / jnp.maximum(count, 1.0)
