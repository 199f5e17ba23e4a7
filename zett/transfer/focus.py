"""FOCUS (Dobler & de Melo, EMNLP 2023), simplified to stay fast and dependency-free.

FOCUS initializes a new vocabulary from an old one: tokens both vocabularies share keep their
old embedding; every other token gets a combination of the *shared* tokens' old embeddings,
weighted by how similar the tokens are in an auxiliary static embedding space learned on
text tokenized with the *new* tokenizer:

    e(t) = Σ_s w_s(t) · E_base[s],   w(t) = sparsemax( cos(a_t, a_s) for shared s )

The paper trains fastText on the target-language corpus. We replace fastText by the classic
count-based equivalent of word2vec (Levy & Goldberg 2014): positive PMI of token
co-occurrences within a ±`window` token window, against the `n_contexts` most frequent
tokens as contexts (smoothed context distribution, exponent 0.75), reduced with an SVD to
`dim` dimensions. It runs in seconds with numpy on a few MB of text and needs no training
loop. Tokens seen fewer than `min_count` times get no auxiliary vector: they are neither
anchors nor initialized by FOCUS, and fall back to FVT (the paper falls back to random).

Sparsemax (Martins & Astudillo 2016) is exact on the `top_k` most similar anchors whenever
its support is smaller than `top_k` (the threshold depends only on the support).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tokenizers

from zett.data.corpus import load_corpus, texts_for
from zett.errors import ZettError
from zett.tokenizers.surface import plain_copy

DEFAULTS = {
    "window": 5,  # tokens on each side that count as co-occurring
    "n_contexts": 2048,  # most frequent tokens used as context columns
    "dim": 64,  # auxiliary embedding width after the SVD
    "min_count": 3,  # occurrences needed for an auxiliary vector
    "top_k": 64,  # most similar anchors kept per token before sparsemax
    "focus_bytes": 2_000_000,  # corpus bytes per language when no `texts` option is given
}


def sparsemax(z: np.ndarray) -> np.ndarray:
    """Row-wise sparsemax of z [N, K]: the Euclidean projection onto the simplex (sparse)."""
    z = np.asarray(z, dtype=np.float64)
    srt = -np.sort(-z, axis=1)
    cums = np.cumsum(srt, axis=1)
    ks = np.arange(1, z.shape[1] + 1)
    support = 1 + ks * srt > cums  # [N, K], true on a prefix
    k = support.sum(1)  # ≥ 1 always
    tau = (cums[np.arange(len(z)), k - 1] - 1) / k
    return np.maximum(z - tau[:, None], 0.0)


def corpus_texts(options: dict[str, Any]) -> list[str]:
    """`options["texts"]`, else the prepared corpus's train split (every language)."""
    texts = options.get("texts")
    if texts is not None:
        return list(texts)
    try:
        ds = load_corpus(options.get("corpus", "default"))
    except ZettError as e:
        raise ZettError(f"focus needs text for its auxiliary embeddings: {e}") from None
    langs = options.get("focus_langs") or sorted(set(ds["train"]["lang"]))
    per_lang = int(options.get("focus_bytes", DEFAULTS["focus_bytes"]))
    return [t for lang in langs for t in texts_for("train", lang, per_lang, ds)]


def cooccurrence(
    sequences: list[np.ndarray], n_vocab: int, window: int, n_contexts: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token counts [V] int64, context ids [C] (most frequent first) and the sparse
    co-occurrence as int64 [3, M] rows (token id, context column, count), over every
    offset 1..window in both directions."""
    counts = np.zeros(n_vocab, np.int64)
    for ids in sequences:
        np.add.at(counts, ids, 1)
    contexts = np.argsort(-counts, kind="stable")[: min(n_contexts, int((counts > 0).sum()))]
    column = np.full(n_vocab, -1, np.int64)
    column[contexts] = np.arange(len(contexts))
    keys = []
    for ids in sequences:
        for off in range(1, window + 1):
            if len(ids) <= off:
                break
            for a, b in ((ids[:-off], ids[off:]), (ids[off:], ids[:-off])):
                col = column[b]
                keep = col >= 0
                keys.append(a[keep] * len(contexts) + col[keep])
    flat = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    uniq, n = np.unique(flat, return_counts=True)
    c = max(len(contexts), 1)
    return counts, contexts, np.stack([uniq // c, uniq % c, n])


def aux_embeddings(
    tok: tokenizers.Tokenizer, n_vocab: int, texts: list[str], options: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(seen ids [N], unit-norm auxiliary vectors [N, dim]) from PPMI + SVD on `texts`."""
    cfg = {k: options.get(k, v) for k, v in DEFAULTS.items()}
    encs = plain_copy(tok).encode_batch(texts, add_special_tokens=False)
    seqs = [np.asarray(e.ids, np.int64) for e in encs if len(e.ids) > 1]
    seqs = [s[s < n_vocab] for s in seqs]
    if not seqs:
        raise ZettError("focus: the texts are empty after tokenization; give more text")
    counts, contexts, (rows, cols, n) = cooccurrence(
        seqs, n_vocab, int(cfg["window"]), int(cfg["n_contexts"])
    )
    seen = np.flatnonzero(counts >= int(cfg["min_count"]))
    if len(seen) == 0:
        raise ZettError(f"focus: no token occurs {cfg['min_count']}+ times; give more text")
    compact = np.full(n_vocab, -1, np.int64)
    compact[seen] = np.arange(len(seen))
    keep = compact[rows] >= 0
    rows, cols, n = compact[rows[keep]], cols[keep], n[keep].astype(np.float64)
    # PPMI with the context distribution smoothed (^0.75), as word2vec's negative sampling
    row_tot = np.bincount(rows, weights=n, minlength=len(seen))
    ctx_tot = np.bincount(cols, weights=n, minlength=len(contexts)) ** 0.75
    pmi = np.log(n * ctx_tot.sum() / (row_tot[rows] * ctx_tot[cols]))
    m = np.zeros((len(seen), len(contexts)), np.float32)
    m[rows, cols] = np.maximum(pmi, 0.0)
    # SVD through the small [C, C] Gram matrix: vectors = U · S^½ = M V S^-½
    evals, evecs = np.linalg.eigh(m.T.astype(np.float64) @ m)
    dim = min(int(cfg["dim"]), len(contexts))
    top = np.argsort(-evals)[:dim]
    vecs = (m @ evecs[:, top]) / np.sqrt(np.maximum(evals[top], 1e-12)) ** 0.5
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    return seen, vecs.astype(np.float32)


def focus_weights(
    tok: tokenizers.Tokenizer, n_vocab: int, shared_t: np.ndarray, options: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids [N] non-shared target tokens with an aux vector, atoms [N, k] positions in
    `shared_t`, coef [N, k] sparsemax weights, rows summing to 1)."""
    texts = corpus_texts(options)
    seen, vecs = aux_embeddings(tok, n_vocab, texts, options)
    where = np.full(n_vocab, -1, np.int64)
    where[seen] = np.arange(len(seen))
    shared_t = np.asarray(shared_t, np.int64)
    anchor_pos = np.flatnonzero(where[shared_t] >= 0)  # positions in shared_t
    if len(anchor_pos) == 0:
        raise ZettError("focus: no shared token occurs in the texts; give more text")
    anchors = vecs[where[shared_t[anchor_pos]]]  # [A, dim]
    ids = np.setdiff1d(seen, shared_t)
    k = min(int(options.get("top_k", DEFAULTS["top_k"])), len(anchor_pos))
    atoms = np.zeros((len(ids), k), np.int64)
    coef = np.zeros((len(ids), k), np.float32)
    for s in range(0, len(ids), 4096):
        sims = vecs[where[ids[s : s + 4096]]] @ anchors.T  # [B, A] cosine
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else None
        if top is None:
            top = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        picked = np.take_along_axis(sims, top, axis=1)
        atoms[s : s + len(sims)] = anchor_pos[top]
        coef[s : s + len(sims)] = sparsemax(picked)
    return ids.astype(np.int64), atoms, coef
