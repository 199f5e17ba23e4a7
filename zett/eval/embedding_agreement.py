"""Agreement of sentence embeddings before and after tokenizer transfer (encoders).

all-MiniLM-L6-v2 has no MLM head, so bits per byte does not apply. A transferred encoder is
good when, for the same sentence, its embedding (new model + new tokenizer) matches the
original's (original model + original tokenizer). Sentence embeddings are what
sentence-transformers computes for MiniLM: mean of the last hidden states over real tokens
(mask-weighted, special tokens included), L2-normalised.

Three numbers, all from `[n, d]` unit-norm matrices `orig` and `new`:
- `mean_cosine`: mean over sentences of `cos(new_i, orig_i)`.
- `top1` / `mrr`: retrieval of the same sentence -- query `new_i` against all `orig_j`; the
  right key is `j = i`. Measures whether the transferred embedding is closer to its own
  sentence's original embedding than to any other sentence's.
- `halves_top1` / `halves_mrr` (the harder, paraphrase-ish pair): query with the new
  embedding of a sentence's first half (by words) against the original embeddings of every
  sentence's second half; `reference_halves_*` is the same with the original model on both
  sides, the ceiling to compare against (two halves of a sentence share topic, not words).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from zett.assets import resolve_model_dir
from zett.errors import ZettError

MIN_SENTENCES = 2
_MIN_WORDS_TO_SPLIT = 4


def retrieval_ranks(queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """1-based rank of key `i` for query `i` by cosine (`queries`, `keys`: `[n, d]`, unit norm).

    Ties count against the right key (a key scoring equal to the right one ranks ahead of
    it), so a collapsed model that maps everything to one vector gets rank n, not 1.
    """
    scores = queries @ keys.T  # [n, n]
    right = np.diag(scores)[:, None]
    others = scores >= right
    np.fill_diagonal(others, False)
    return 1 + others.sum(axis=1)


def agreement_scores(orig: np.ndarray, new: np.ndarray) -> dict[str, float]:
    """Mean cosine, top-1 and MRR of same-sentence retrieval for `[n, d]` unit-norm rows."""
    if orig.shape != new.shape or orig.shape[0] < MIN_SENTENCES:
        raise ZettError(
            f"need two [n, d] embedding sets with n >= {MIN_SENTENCES}, "
            f"got {orig.shape} and {new.shape}"
        )
    ranks = retrieval_ranks(new, orig)
    return {
        "mean_cosine": float(np.mean(np.sum(orig * new, axis=1))),
        "top1": float(np.mean(ranks == 1)),
        "mrr": float(np.mean(1.0 / ranks)),
    }


def split_halves(sentences: list[str]) -> tuple[list[str], list[str]]:
    """First and second half (by whitespace words) of each sentence with >= 4 words."""
    firsts, seconds = [], []
    for s in sentences:
        words = s.split()
        if len(words) >= _MIN_WORDS_TO_SPLIT:
            mid = len(words) // 2
            firsts.append(" ".join(words[:mid]))
            seconds.append(" ".join(words[mid:]))
    return firsts, seconds


def sentence_embeddings(
    model: Any, tokenizer: Any, sentences: list[str], batch_size: int = 32, max_length: int = 256
) -> np.ndarray:
    """Mean-pooled, L2-normalised last hidden states: `[n_sentences, hidden]` float32.

    Pooling: `sum_t h[b, t] * mask[b, t] / sum_t mask[b, t]` over `[batch, seq, hidden]`.
    """
    import torch

    device = next(model.parameters()).device
    out = []
    model.eval()
    with torch.no_grad():
        for b in range(0, len(sentences), batch_size):
            enc = tokenizer(
                sentences[b : b + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            enc = {k: v.to(device) for k, v in enc.items() if k != "token_type_ids"}
            hidden = model(**enc).last_hidden_state.float()  # [batch, seq, hidden]
            mask = enc["attention_mask"].unsqueeze(-1).float()  # [batch, seq, 1]
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            out.append(pooled.cpu().numpy())
    return np.concatenate(out, axis=0).astype(np.float32)


def load_encoder(model_dir: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """Encoder (`AutoModel`, float32, eval) and tokenizer from a HF directory, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_dir(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), dtype=torch.float32, local_files_only=True)
    return model.to(device).eval(), tokenizer


def embedding_agreement_models(
    orig: tuple[Any, Any], new: tuple[Any, Any], sentences: list[str], batch_size: int = 32
) -> dict[str, float]:
    """`embedding_agreement` on loaded `(model, tokenizer)` pairs (module docstring)."""
    sentences = [s for s in sentences if s.strip()]
    if len(sentences) < MIN_SENTENCES:
        raise ZettError(f"embedding agreement needs >= {MIN_SENTENCES} non-empty sentences")
    e_orig = sentence_embeddings(*orig, sentences, batch_size)
    e_new = sentence_embeddings(*new, sentences, batch_size)
    result = agreement_scores(e_orig, e_new)
    result["n_sentences"] = len(sentences)
    firsts, seconds = split_halves(sentences)
    if len(firsts) >= MIN_SENTENCES:
        keys = sentence_embeddings(*orig, seconds, batch_size)
        for prefix, q_model in (("halves_", new), ("reference_halves_", orig)):
            ranks = retrieval_ranks(sentence_embeddings(*q_model, firsts, batch_size), keys)
            result[prefix + "top1"] = float(np.mean(ranks == 1))
            result[prefix + "mrr"] = float(np.mean(1.0 / ranks))
        result["n_halves"] = len(firsts)
    return result


def embedding_agreement(
    orig_model_dir: str | Path,
    new_model_dir: str | Path,
    sentences: list[str],
    batch_size: int = 32,
    device: str = "cpu",
) -> dict[str, float]:
    """Agreement of the transferred encoder in `new_model_dir` with `orig_model_dir`.

    Each model is used with the tokenizer saved beside it. Returns `mean_cosine`, `top1`,
    `mrr` (same-sentence retrieval, new queries vs original keys), `halves_top1`,
    `halves_mrr`, `reference_halves_top1`, `reference_halves_mrr`, `n_sentences`, `n_halves`.
    """
    orig = load_encoder(orig_model_dir, device)
    new = load_encoder(new_model_dir, device)
    return embedding_agreement_models(orig, new, sentences, batch_size)
