"""Composition targets: base tokens written as two or more *other* base tokens.

The hypernetwork's job is to compose an embedding from the embeddings of pieces. The base
vocabulary already holds tens of thousands of worked examples of that job: every base token
that the base tokenizer could also write as ≥ 2 of its other tokens has a real, trained
embedding — the answer — and a decomposition — the question. Training on them needs no LM
at all (`zett.train.step.compose_loss_fn`), so it is a cheap first stage and a cheap
auxiliary term during LM training.

Where the decompositions come from, per base family:

- **BPE** (byte-level or SentencePiece-style): a token's *merge parents*, the two tokens the
  earliest merge that produces it joins. `sample_pieces` expands each parent into its own
  parents at random (probability `expand_p`, recursively, ≤ `max_pieces`), so one token
  yields many decompositions, like the varied tokenizations of sampled target vocabularies.
- **WordPiece / Unigram / others**: the segmentation of the token's string into the fewest
  other tokens of the vocabulary (WordPiece: continuation pieces carry the `##` prefix;
  Unigram: ties broken by the summed piece scores), with the token itself excluded. These
  have no tree to expand, so they always give the same pieces.

Special, added and single-piece tokens have no composition and are left out, and so are
tokens the base's pre-tokenizer would split (never emitted whole, e.g. BERT's `[unused0]`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import tokenizers

from zett.tokenizers.surface import tokenizer_layout


@dataclass
class Compositions:
    """token_ids int64 [K]: base tokens that have a composition; parents[k]: the pieces of
    token_ids[k] (≥ 2 base ids); children: base id → its parents (for recursive expansion,
    BPE only; empty otherwise)."""

    token_ids: np.ndarray
    parents: list[tuple[int, ...]]
    children: dict[int, tuple[int, ...]]
    family: str

    def __len__(self) -> int:
        return len(self.token_ids)

    def split(self, valid_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(train, valid) row indices into token_ids; a token's split is a stable function of
        its id (crc32), so it does not change with the vocabulary size or the seed."""
        h = np.array([zlib.crc32(int(t).to_bytes(8, "little")) for t in self.token_ids])
        valid = (h % 10_000) < int(round(valid_fraction * 10_000))
        return np.flatnonzero(~valid), np.flatnonzero(valid)


def _merge_pair(m) -> tuple[str, str] | None:
    if isinstance(m, str):
        parts = m.split(" ")
        return (parts[0], parts[1]) if len(parts) == 2 else None
    if isinstance(m, list | tuple) and len(m) == 2:
        return str(m[0]), str(m[1])
    return None


def _bpe_parents(model: dict, vocab: dict[str, int], skip: set[int]) -> dict[int, tuple[int, ...]]:
    out: dict[int, tuple[int, ...]] = {}
    for m in model.get("merges") or []:
        pair = _merge_pair(m)
        if pair is None:
            continue
        a, b = pair
        child = vocab.get(a + b)
        ia, ib = vocab.get(a), vocab.get(b)
        if child is None or ia is None or ib is None or child in skip or child in out:
            continue
        if child in (ia, ib):
            continue
        out[child] = (ia, ib)
    return out


def _fewest_pieces(
    text: str, self_id: int, vocab: dict[str, int], cont_prefix: str, scores: dict[int, float]
) -> tuple[int, ...] | None:
    """Segmentation of `text` into the fewest vocab tokens other than `self_id`.

    With `cont_prefix` (WordPiece) pieces after the first are looked up as prefix + substring.
    Among equally short segmentations the one with the highest summed score wins.
    """
    n = len(text)
    inf = (1 << 30, 0.0)
    best: list[tuple[int, float]] = [inf] * (n + 1)  # (pieces, -score) to reach position i
    back: list[tuple[int, int]] = [(-1, -1)] * (n + 1)
    best[0] = (0, 0.0)
    for i in range(n):
        if best[i] == inf:
            continue
        for j in range(i + 1, n + 1):
            key = text[i:j] if i == 0 or not cont_prefix else cont_prefix + text[i:j]
            tid = vocab.get(key)
            if tid is None or tid == self_id:
                continue
            cand = (best[i][0] + 1, best[i][1] - scores.get(tid, 0.0))
            if cand < best[j]:
                best[j], back[j] = cand, (i, tid)
    if best[n] == inf or best[n][0] < 2:
        return None
    pieces, pos = [], n
    while pos > 0:
        i, tid = back[pos]
        pieces.append(tid)
        pos = i
    return tuple(reversed(pieces))


def compositions(tok: tokenizers.Tokenizer, max_chars: int = 48) -> Compositions:
    """Every base token of `tok` with a composition into ≥ 2 other base tokens."""
    layout = tokenizer_layout(tok)
    model = layout["config"]["model"]
    vocab = tok.get_vocab(with_added_tokens=False)
    skip = {int(i) for i in tok.get_added_tokens_decoder()}  # special and added tokens
    mtype = model.get("type") or ("BPE" if "merges" in model else "WordPiece")
    children: dict[int, tuple[int, ...]] = {}
    if mtype == "BPE" and model.get("merges"):
        children = _bpe_parents(model, vocab, skip)
        parents = dict(children)
    else:
        cont = layout["prefix"] if mtype == "WordPiece" else ""
        scores: dict[int, float] = {}
        if mtype == "Unigram" and isinstance(model.get("vocab"), list):
            scores = {i: float(s) for i, (_, s) in enumerate(model["vocab"])}
        parents = {}
        pre = tok.pre_tokenizer
        # continuation pieces of a WordPiece vocab, keyed without their prefix
        shifted = {t[len(cont) :]: i for t, i in vocab.items() if cont and t.startswith(cont)}
        for s, tid in vocab.items():
            if tid in skip or len(s) < 2 or len(s) > max_chars:
                continue
            text = s[len(cont) :] if cont and s.startswith(cont) else s
            if pre is not None and len(pre.pre_tokenize_str(text)) != 1:
                continue  # never emitted as one token (e.g. BERT's "[unused0]")
            if cont and s.startswith(cont) and len(s) > len(cont):
                # a continuation token: every piece is a continuation piece
                pieces = _fewest_pieces(s[len(cont) :], tid, shifted, "", {})
            else:
                pieces = _fewest_pieces(s, tid, vocab, cont, scores)
            if pieces is not None:
                parents[tid] = pieces
    ids = np.array(sorted(parents), dtype=np.int64)
    return Compositions(ids, [parents[int(i)] for i in ids], children, mtype)


def expand(
    pieces: tuple[int, ...],
    children: dict[int, tuple[int, ...]],
    rng: np.random.Generator,
    expand_p: float,
    max_pieces: int,
) -> list[int]:
    """Replace pieces by their parents with probability `expand_p` each, recursively, while
    the result stays within `max_pieces`."""
    out: list[int] = []
    todo = list(reversed(pieces))
    while todo:
        p = todo.pop()
        sub = children.get(p)
        room = max_pieces - len(out) - len(todo) - 1  # extra pieces we may still add
        if sub is not None and len(sub) - 1 <= room and rng.random() < expand_p:
            todo.extend(reversed(sub))
        else:
            out.append(p)
    return out


def sample_pieces(
    comp: Compositions,
    rows: np.ndarray,
    rng: np.random.Generator,
    expand_p: float,
    max_pieces: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pieces of the tokens comp.token_ids[rows]: (ids int32 [n, max_pieces] 0-padded,
    lengths int32 [n]). Parents longer than max_pieces are cut (only non-BPE segmentations
    can be)."""
    ids = np.zeros((len(rows), max_pieces), dtype=np.int32)
    lengths = np.zeros(len(rows), dtype=np.int32)
    for k, r in enumerate(rows):
        pieces = expand(comp.parents[int(r)], comp.children, rng, expand_p, max_pieces)
        pieces = pieces[:max_pieces]
        ids[k, : len(pieces)] = pieces
        lengths[k] = len(pieces)
    return ids, lengths
