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

from zett.hypernet.model import Hypernet, copied_rows, rescaler_stats


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
    complete: np.ndarray | jax.Array | None = None,
) -> PredictedEmbeddings:
    """Embeddings for every row of a decomposition ([V, P] ids, [V] lengths).

    `complete`: bool [V_base], the base tokens that are whole UTF-8 text
    (`SurfaceForms.complete_text`); needed by hypernets trained with `correct_fragments`.

    Rows the hypernet would not change are filled directly instead of being run: with
    `copy_single` (and no per-row bias or cross-row attention) a token of one base piece
    gets exactly that piece's rows and an empty token zeros, so only rows of >= 2 pieces
    go through the network (Qwen3 under SmolLM2: 39k of its 151k rows are single pieces).
    """
    cfg = hypernet.cfg
    v = piece_ids.shape[0]
    logp = np.zeros(v, np.float32) if unigram_logprobs is None else unigram_logprobs
    complete_np = None if complete is None else np.asarray(complete, bool)
    direct = copied_rows(cfg, piece_ids, piece_lengths, complete_np)
    complete_arg = None if complete_np is None else jnp.asarray(complete_np)
    if cfg.use_unigram_bias or cfg.vocab_attention or not direct.any():
        # a predicted bias, or attention across rows, makes every row depend on the net
        return _run_blocks(
            hypernet, params, piece_ids, piece_lengths, logp, base_in, base_out, block, progress,
            complete_arg,
        )  # fmt: skip

    d_model = int(base_in.shape[1])
    pred_in = np.zeros((v, d_model), np.float32)
    has_out = cfg.separate_out_head or base_out is not None
    pred_out = np.zeros((v, d_model), np.float32) if has_out else None
    single = np.flatnonzero(direct & (piece_lengths == 1))  # the empty rows stay zero
    if single.size:
        first = piece_ids[single, 0]
        pred_in[single] = np.asarray(jnp.take(base_in, first, axis=0), np.float32)
        if pred_out is not None:
            table = base_in if base_out is None else base_out
            pred_out[single] = np.asarray(jnp.take(table, first, axis=0), np.float32)
    run_rows = np.flatnonzero(~direct)
    if run_rows.size:
        net = _run_blocks(
            hypernet,
            params,
            piece_ids[run_rows],
            piece_lengths[run_rows],
            logp[run_rows],
            base_in,
            base_out,
            block,
            progress,
            complete_arg,
        )
        pred_in[run_rows] = net.input
        if pred_out is not None and net.output is not None:
            pred_out[run_rows] = net.output
    return PredictedEmbeddings(input=pred_in, output=pred_out, bias=None)


def _run_blocks(
    hypernet: Hypernet,
    params: dict,
    piece_ids: np.ndarray,
    piece_lengths: np.ndarray,
    logp: np.ndarray,
    base_in: jax.Array,
    base_out: jax.Array | None,
    block: int,
    progress: bool,
    complete: jax.Array | None = None,
) -> PredictedEmbeddings:
    """The jitted hypernet over all rows, in fixed-size blocks of similar piece counts."""
    v = piece_ids.shape[0]
    block = max(1, min(block, v))
    # Sort by piece count so each block only runs as many piece positions as its longest
    # token needs (most tokens have 1-3 pieces; P is 7): ~2-3x less work than padding all.
    order = np.argsort(piece_lengths, kind="stable")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(v)
    ids_sorted, len_sorted, lp_sorted = piece_ids[order], piece_lengths[order], logp[order]

    stats = rescaler_stats(base_in, base_out)  # once, not per block

    # The base tables are arguments, not closed-over constants: a 113 MB constant (SmolLM2's
    # table) is baked into every compiled width and doubles its compile time.
    @jax.jit
    def run(p, ids, lengths, lp, mask, stats, table_in, table_out, complete):
        return hypernet.apply(
            {"params": p}, ids, lengths, table_in, table_out, lp, mask, stats, complete
        )

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
        a, b, c = run(
            params, jnp.asarray(ids), jnp.asarray(lengths), jnp.asarray(lp), mask, stats,
            base_in, base_out, complete,
        )  # fmt: skip
        outs_in.append(np.asarray(a[: e - s]))
        if b is not None:
            outs_out.append(np.asarray(b[: e - s]))
        if c is not None:
            outs_b.append(np.asarray(c[: e - s]))

    def unsort(parts: list[np.ndarray]) -> np.ndarray | None:
        return np.concatenate(parts)[inverse] if parts else None

    pred_in = cast(np.ndarray, unsort(outs_in))  # a vocabulary has a token: >= 1 block ran
    return PredictedEmbeddings(input=pred_in, output=unsort(outs_out), bias=unsort(outs_b))
