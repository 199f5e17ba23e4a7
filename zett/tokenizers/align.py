"""Align two tokenizations of one text into chunks that both sides tokenize whole (pure NumPy).

Cross-tokenizer distillation (`zett nshot --objective distill`, approximate likelihood
matching) compares a teacher and a student that tokenize the *same* text differently. Where
both tokenizations have a token boundary at the same byte, the text can be cut: between two
such cuts lies a chunk that each side covers with a whole number of its own tokens, so each
side's log-likelihood of that chunk is a sum of its token log-probs and the two are
comparable.

Input per side: the tokens' `[start, end)` offsets into the text. `tokenizers` gives
character offsets for `str` input; `byte_offsets` turns them into UTF-8 byte offsets (the
unit everything here works in). Rules, in the order they are applied:

* **Units.** Tokens are taken in order and grouped into units. A token opens a new unit
  when its span is non-empty and starts at or after the current unit's end; otherwise it
  joins the current unit (extending its end). So tokens whose spans overlap — byte-fallback
  tokens (`<0xE4>` `<0xB8>` `<0xAD>`) or byte-level pieces of one character, which all
  carry the same character span — form one unit, and no cut ever falls inside a character.
  Empty-span tokens (special tokens, a lone prepended `▁`) join the current unit, or the
  first unit when they come before any non-empty token.
* **Cuts.** The cut between two consecutive units is the *end* of the earlier one. Bytes an
  offset list skips (WordPiece / whitespace-splitting pre-tokenizers drop spaces, a
  `trim_offsets` post-processor drops a leading space) therefore belong to the *following*
  unit: a unit owns `[previous cut, its cut)`. Bytes before the first unit belong to the
  first unit and bytes after the last one to the last unit, so every side's units tile
  `[0, n_bytes)` exactly.
* **Chunks.** The chunk boundaries are `0`, `n_bytes` and every cut both sides have. Each
  chunk holds a contiguous range of whole units on each side, given as a `[start, end)`
  range of token indices.

If either side has no tokens (or the text is empty) there are no chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Alignment:
    """Chunks of one text: `bounds[i]:bounds[i+1]` is chunk `i` in bytes; `a[i]` / `b[i]` the
    `[start, end)` token indices of that chunk on side a / side b."""

    bounds: np.ndarray  # [n_chunks + 1] int64, bounds[0] = 0, bounds[-1] = n_bytes
    a: np.ndarray  # [n_chunks, 2] int64
    b: np.ndarray  # [n_chunks, 2] int64

    @property
    def n_chunks(self) -> int:
        return int(self.a.shape[0])


def byte_offsets(text: str, char_offsets: Sequence[Sequence[int]]) -> np.ndarray:
    """`[n, 2]` UTF-8 byte offsets of character `[start, end)` offsets into `text`."""
    lengths = np.fromiter((len(c.encode("utf-8")) for c in text), dtype=np.int64, count=len(text))
    cum = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    offs = np.asarray(char_offsets, dtype=np.int64).reshape(-1, 2)
    return cum[np.clip(offs, 0, len(text))]


def units(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group tokens into units (module docstring). Returns `(first_token, end_byte)` per unit:
    unit `k` is tokens `first_token[k]:first_token[k+1]` and its content ends at `end_byte[k]`."""
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    first: list[int] = []
    ends: list[int] = []
    for i, (s, e) in enumerate(offsets.tolist()):
        if e > s and (not ends or s >= ends[-1]):
            first.append(i)
            ends.append(e)
        elif ends:
            ends[-1] = max(ends[-1], e)
    if first:
        first[0] = 0  # leading empty tokens join the first unit
    return np.asarray(first, dtype=np.int64), np.asarray(ends, dtype=np.int64)


def align(offsets_a: np.ndarray, offsets_b: np.ndarray, n_bytes: int) -> Alignment:
    """Chunks of a text of `n_bytes` bytes tokenized as `offsets_a` and `offsets_b` (byte
    offsets, `[n, 2]` each; see the module docstring for the rules)."""
    offsets_a = np.asarray(offsets_a, dtype=np.int64).reshape(-1, 2)
    offsets_b = np.asarray(offsets_b, dtype=np.int64).reshape(-1, 2)
    first_a, end_a = units(offsets_a)
    first_b, end_b = units(offsets_b)
    if n_bytes <= 0 or not len(first_a) or not len(first_b):
        empty = np.zeros((0, 2), dtype=np.int64)
        return Alignment(np.zeros(1, dtype=np.int64), empty, empty.copy())
    # cut after unit k (k < last) = its end; the last unit runs to n_bytes
    cuts_a = np.minimum(end_a[:-1], n_bytes)
    cuts_b = np.minimum(end_b[:-1], n_bytes)
    common = np.intersect1d(cuts_a, cuts_b)
    common = common[(common > 0) & (common < n_bytes)]
    bounds = np.concatenate([[0], common, [n_bytes]]).astype(np.int64)

    def ranges(first: np.ndarray, cuts: np.ndarray, n_tokens: int) -> np.ndarray:
        # a chunk ending at common cut c ends after the unit whose cut is c
        unit_end = np.searchsorted(cuts, common) + 1  # units [.., unit_end) precede the cut
        starts_u = np.concatenate([[0], unit_end])
        ends_u = np.concatenate([unit_end, [len(first)]])
        tok = np.concatenate([first, [n_tokens]])
        return np.stack([tok[starts_u], tok[ends_u]], axis=1).astype(np.int64)

    return Alignment(
        bounds,
        ranges(first_a, cuts_a, len(offsets_a)),
        ranges(first_b, cuts_b, len(offsets_b)),
    )


def align_encodings(text: str, enc_a, enc_b) -> Alignment:
    """`align` for two `tokenizers.Encoding`s (or anything with `.offsets` in characters) of
    `text`, e.g. `Tokenizer.encode(text, add_special_tokens=False)`."""
    n_bytes = len(text.encode("utf-8"))
    return align(byte_offsets(text, enc_a.offsets), byte_offsets(text, enc_b.offsets), n_bytes)
