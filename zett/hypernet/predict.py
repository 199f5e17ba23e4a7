"""Run a hypernetwork over a whole target vocabulary (shared by transfer and training eval).

The vocabulary is processed in fixed-size blocks (the last one padded) so the jitted
hypernet compiles once whatever the vocabulary size; a tqdm bar shows progress on large
vocabularies (Qwen3: 151k tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from zett.hypernet.model import Hypernet, rescaler_stats


@dataclass
class PredictedEmbeddings:
    input: np.ndarray  # [V, D] float32
    output: np.ndarray | None  # [V, D] float32, None when the prediction is tied
    bias: np.ndarray | None  # [V] float32 or None


def predict_vocab(
    hypernet: Hypernet,
    params: dict,
    piece_ids: np.ndarray,
    piece_lengths: np.ndarray,
    base_in: jax.Array,
    base_out: jax.Array | None = None,
    unigram_logprobs: np.ndarray | None = None,
    block: int = 4096,
    progress: bool = True,
) -> PredictedEmbeddings:
    """Embeddings for every row of a decomposition ([V, P] ids, [V] lengths)."""
    v = piece_ids.shape[0]
    block = max(1, min(block, v))
    logp = np.zeros(v, np.float32) if unigram_logprobs is None else unigram_logprobs
    # Sort by piece count so each block only runs as many piece positions as its longest
    # token needs (most tokens have 1-3 pieces; P is 7): ~2-3x less work than padding all.
    order = np.argsort(piece_lengths, kind="stable")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(v)
    ids_sorted, len_sorted, lp_sorted = piece_ids[order], piece_lengths[order], logp[order]

    stats = rescaler_stats(base_in, base_out)  # once, not per block

    @jax.jit
    def run(p, ids, lengths, lp, mask, stats):
        return hypernet.apply({"params": p}, ids, lengths, base_in, base_out, lp, mask, stats)

    outs_in, outs_out, outs_b = [], [], []
    starts = range(0, v, block)
    for s in tqdm(starts, desc="hypernet", unit="block", disable=not progress or len(starts) < 2):
        e = min(s + block, v)
        pad = block - (e - s)
        width = int(max(1, len_sorted[s:e].max()))  # a few distinct widths → few compiles
        ids = np.pad(ids_sorted[s:e, :width], ((0, pad), (0, 0)))
        lengths = np.pad(len_sorted[s:e], (0, pad))
        lp = np.pad(lp_sorted[s:e], (0, pad)).astype(np.float32)
        mask = np.arange(block) < (e - s)
        a, b, c = run(params, jnp.asarray(ids), jnp.asarray(lengths), jnp.asarray(lp), mask, stats)
        outs_in.append(np.asarray(a[: e - s]))
        if b is not None:
            outs_out.append(np.asarray(b[: e - s]))
        if c is not None:
            outs_b.append(np.asarray(c[: e - s]))

    def unsort(parts: list[np.ndarray]) -> np.ndarray | None:
        return np.concatenate(parts)[inverse] if parts else None

    pred_in = cast(np.ndarray, unsort(outs_in))  # a vocabulary has a token: >= 1 block ran
    return PredictedEmbeddings(input=pred_in, output=unsort(outs_out), bias=unsort(outs_b))
