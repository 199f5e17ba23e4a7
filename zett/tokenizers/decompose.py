"""Decompose every token of a target vocabulary into pieces of the base tokenizer.

The hypernetwork sees a target token only through its base pieces, so the pieces must be
what the base tokenizer would produce for that token's text *in context*: a begins-word
target token (`Ġthe`, `▁the`, WordPiece `the`; canonical `b" the"`) is encoded as the base
encodes a word after a space (`Ġthe`, `▁the`, `the`), a word-internal one (`ing`, `##ing`)
without any prefix space (`ing`, `##ing`). Two base conventions would break that if used
as-is, so a *raw* copy of the base tokenizer is built once:

- prefix spaces are switched off (Llama-2's `Prepend("▁")` normalizer, Metaspace
  `prepend_scheme`, ByteLevel `add_prefix_space`); the canonical bytes already carry the
  space where one belongs;
- no post-processor (no bos), no padding, no truncation.

Bytes that are not valid UTF-8 cannot go through `encode`: a byte-level base maps the whole
token through the byte map and runs its model directly; a SentencePiece base with byte
fallback uses `<0xNN>`; otherwise the base's model unk token. A WordPiece base has no spaces
in its tokens: begins-word targets are encoded as words, continuation targets use greedy
longest-match over `##` pieces for their first word, whitespace-only targets become [UNK].

**Neutral rows.** Some target tokens have no meaningful base pieces; they get *no* pieces
(length 0, `Decomposition.neutral`), and every consumer gives such a row the *mean of the
base embeddings* (FVT's mean of zero pieces; `zett.transfer.baselines.finish` for every
method, the hypernet's included):

- a special target token with a base counterpart (same content, or same role: bos, eos,
  unk, pad, chat markers; see `special.py`) is that one base special token; a special token
  *without* one (Llama-3's `<|reserved_special_token_5|>`, Whisper's `<|0.02|>`) is
  neutral, not its text split into `<`, `|`, `res`, ...;
- bytes the base cannot express at all (SmolLM2's byte-level vocabulary has no 0xC0 or
  0xF5-0xFF, and no unk token) are neutral rather than some other token's row (they used to
  borrow `<|endoftext|>`'s); a base with a model unk token (BERT's [UNK]) still uses it,
  also for text its normalizer deletes entirely (control characters);
- ids with no token (gaps in the id space) are neutral too.

`max_pieces=None` keeps every piece (the baselines: FVT is the mean of *all* pieces; long
Indic or CJK tokens can exceed 16 byte-level pieces); an int truncates (the hypernet's
fixed piece positions) and counts the truncated tokens.

Results are cached per base tokenizer (keyed by canonical bytes), so the training sampler,
which decomposes overlapping vocabularies every step, only pays for new tokens.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import tokenizers

from zett.tokenizers.special import match_special, roles_and_contents
from zett.tokenizers.surface import (
    IMPLICIT_SPACE_KINDS,
    SurfaceForms,
    attach_attribute,
    bytes_to_bytelevel,
    tokenizer_layout,
)

_INVALID_RUN = re.compile(r"[\udc80-\udcff]+")
CACHE_LIMIT = 4_000_000


@dataclass
class Decomposition:
    """ids: int32 [V, P] base ids, padded with 0 (P = max_pieces, or the longest token's
    piece count when max_pieces is None); lengths: int32 [V], 0 exactly for the neutral rows
    (see the module docstring); n_truncated: how many tokens had more than max_pieces."""

    ids: np.ndarray
    lengths: np.ndarray
    n_truncated: int

    @property
    def neutral(self) -> np.ndarray:
        """bool [V]: rows without base pieces, to be given the mean base embedding."""
        return self.lengths == 0


class _Base:
    """Everything decompose needs about one base tokenizer, built once and cached on it."""

    def __init__(self, tok: tokenizers.Tokenizer):
        layout = tokenizer_layout(tok)
        self.kind = layout["kind"]
        self.byte_level = layout["byte_level"]
        self.byte_fallback = layout["byte_fallback"]
        self.prefix = layout["prefix"]
        config = layout["config"]
        self.raw = tokenizers.Tokenizer.from_str(json.dumps(_raw_config(config)))
        self.vocab = tok.get_vocab(with_added_tokens=False)
        unk = config["model"].get("unk_token")
        unk_id = config["model"].get("unk_id")
        self.unk = self.vocab.get(unk) if isinstance(unk, str) else unk_id
        self.max_chars = int(config["model"].get("max_input_chars_per_word") or 100)
        self.roles, self.contents = roles_and_contents(tok)
        self.cache: dict[bytes, tuple[int, ...]] = {}


def _raw_config(config: dict) -> dict:
    """The base's tokenizer.json without prefix spaces, bos/eos, padding or truncation."""

    def strip(part: Any) -> Any:
        if not isinstance(part, dict):
            return part
        if part.get("type") == "Prepend":
            return None
        if part.get("type") == "Metaspace":
            part = {**part, "prepend_scheme": "never", "add_prefix_space": False}
        if part.get("type") == "ByteLevel":
            part = {**part, "add_prefix_space": False}
        for key in ("normalizers", "pretokenizers"):
            if key in part:
                subs = [s for s in (strip(x) for x in part[key]) if s is not None]
                part = {**part, key: subs}
        return part

    config = dict(config)
    config["normalizer"] = strip(config.get("normalizer"))
    config["pre_tokenizer"] = strip(config.get("pre_tokenizer"))
    config["post_processor"] = None
    config["padding"] = None
    config["truncation"] = None
    return config


def _base_info(tok: tokenizers.Tokenizer) -> _Base:
    info = getattr(tok, "_zett_base", None)
    if info is None:
        info = _Base(tok)
        with contextlib.suppress(AttributeError):  # no attributes: no cache
            attach_attribute(tok, "_zett_base", info)
    return info


def _greedy_continuation(base: _Base, word: str) -> list[int]:
    """WordPiece's longest-match-first over `##` pieces only, for a word-internal target."""
    if len(word) > base.max_chars:
        return [base.unk] if base.unk is not None else []
    out, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start and base.prefix + word[start:end] not in base.vocab:
            end -= 1
        if end == start:
            return [base.unk] if base.unk is not None else []
        out.append(base.vocab[base.prefix + word[start:end]])
        start = end
    return out


def _undecodable(base: _Base, data: bytes) -> list[int]:
    """Pieces for bytes that are not valid UTF-8 (see the module docstring)."""
    if base.byte_level:
        return [t.id for t in base.raw.model.tokenize(bytes_to_bytelevel(data))]
    if base.byte_fallback:
        ids = [base.vocab.get(f"<0x{b:02X}>") for b in data]
        if all(i is not None for i in ids):
            return ids  # type: ignore[return-value]
    return [base.unk] if base.unk is not None else []


def _wordpiece_fix(base: _Base, text: str, enc: tokenizers.Encoding) -> list[int]:
    """A WordPiece base's ids for `text`, with a word-internal first word re-split into
    `##` pieces when `text` does not start with whitespace (the target continues a word)."""
    ids = list(enc.ids)
    if not ids and text.strip() == "" and text:
        return [base.unk] if base.unk is not None else []
    if not ids or text[:1].isspace() or enc.offsets[0][0] != 0:
        return ids
    words = enc.word_ids
    n_first = sum(1 for w in words if w == words[0])
    if ids[0] == base.unk:
        return ids
    first = "".join(
        t[len(base.prefix) :] if k and t.startswith(base.prefix) else t
        for k, t in enumerate(enc.tokens[:n_first])
    )
    pre = base.raw.pre_tokenizer
    if pre is not None and pre.pre_tokenize_str("a" + first)[0][0] == "a":
        return ids  # the base splits this word off anyway (punctuation, CJK): not glued
    return _greedy_continuation(base, first) + ids[n_first:]


def _encode_many(base: _Base, texts: list[bytes]) -> list[tuple[int, ...]]:
    """Base pieces of each canonical byte string (no caching here)."""
    out: list[tuple[int, ...] | None] = [None] * len(texts)
    batch_idx, batch_str = [], []
    for k, data in enumerate(texts):
        s = data.decode("utf-8", errors="surrogateescape")
        if not _INVALID_RUN.search(s):
            batch_idx.append(k)
            batch_str.append(s)
        elif base.byte_level:
            out[k] = tuple(_undecodable(base, data))
        else:
            pieces: list[int] = []
            pos = 0
            for m in _INVALID_RUN.finditer(s):
                if m.start() > pos:
                    pieces += _encode_many(base, [s[pos : m.start()].encode()])[0]
                pieces += _undecodable(base, m.group().encode("utf-8", "surrogateescape"))
                pos = m.end()
            if pos < len(s):
                pieces += _encode_many(base, [s[pos:].encode()])[0]
            out[k] = tuple(pieces)
    encs = base.raw.encode_batch(batch_str, add_special_tokens=False)
    wordpiece = base.kind in IMPLICIT_SPACE_KINDS
    for k, s, enc in zip(batch_idx, batch_str, encs):
        out[k] = tuple(_wordpiece_fix(base, s, enc) if wordpiece else enc.ids)
    # text the base cannot express at all: its model unk, else () = neutral (SmolLM2 has no
    # 0xF5 byte and no unk token)
    unk: tuple[int, ...] = () if base.unk is None else (base.unk,)
    done = cast("list[tuple[int, ...]]", out)  # every slot was set above
    return [o if o or not t else unk for o, t in zip(done, texts)]


def decompose(
    target: SurfaceForms, base_tok: tokenizers.Tokenizer, max_pieces: int | None
) -> Decomposition:
    """Base pieces of every target token: ids int32 [V, P], lengths int32 [V].

    `max_pieces=None`: no truncation, P = the longest decomposition (at least 1).
    """
    if max_pieces is not None and max_pieces < 1:
        raise ValueError(f"max_pieces must be >= 1, got {max_pieces}")
    base = _base_info(base_tok)
    special = match_special(target.roles, roles_and_contents(target)[1], base.roles, base.contents)
    canon = target.canonical()
    # special tokens without a base counterpart are neutral: no pieces, no text lookup
    text_ids = [i for i, c in enumerate(canon) if c and not target.is_special[i]]
    todo = sorted({canon[i] for i in text_ids} - base.cache.keys())
    if len(base.cache) + len(todo) > CACHE_LIMIT:
        base.cache.clear()
    base.cache.update(zip(todo, _encode_many(base, todo)))
    n = len(canon)
    all_pieces: list[tuple[int, ...]] = [()] * n
    for i in text_ids:
        all_pieces[i] = base.cache[canon[i]]
    for i, b in special.items():
        if i < n:
            all_pieces[i] = (b,)
    if max_pieces is None:
        max_pieces = max(1, max((len(p) for p in all_pieces), default=1))
    ids = np.zeros((n, max_pieces), dtype=np.int32)
    lengths = np.zeros(n, dtype=np.int32)
    n_truncated = 0
    for i, pieces in enumerate(all_pieces):
        if len(pieces) > max_pieces:
            n_truncated += 1
            pieces = pieces[:max_pieces]
        lengths[i] = len(pieces)
        ids[i, : len(pieces)] = pieces
    return Decomposition(ids, lengths, n_truncated)


def shared_tokens(
    target: SurfaceForms,
    base: SurfaceForms,
    n_rows: int | None = None,
    decomposition: Decomposition | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(target_ids, base_ids) int32 [K] of tokens with equal canonical bytes and special flag.

    Base ids are < min(len(base), n_rows) so they index an embedding matrix of `n_rows`
    rows safely. Among base tokens with the same bytes a regular token beats a `<0xNN>`
    byte-fallback piece, then the lowest id wins.

    With the target's `decomposition` through the base tokenizer, a pair is dropped when
    the base tokenizer itself writes those bytes as one *other* token: equal bytes, but not
    the row the base model learned for them. Example: WordPiece splits punctuation off as
    its own word, so Llama-2's continuation "." is "." to BERT, and "##." (same canonical
    bytes) is a row BERT never trained.
    """
    limit = len(base) if n_rows is None else min(len(base), n_rows)
    fallback = base.is_byte_fallback
    lookup: dict[tuple[bytes, bool], int] = {}
    for j, key in enumerate(base.canonical()[:limit]):
        if not key:
            continue
        k = (key, bool(base.is_special[j]))
        prev = lookup.get(k)
        if prev is None or (fallback is not None and fallback[prev] and not fallback[j]):
            lookup[k] = j
    t_ids, b_ids = [], []
    # With max_pieces = 1 every decomposition is truncated to one piece: no evidence then.
    evidence = (
        decomposition if decomposition is not None and decomposition.ids.shape[1] > 1 else None
    )
    for i, key in enumerate(target.canonical()):
        match = lookup.get((key, bool(target.is_special[i]))) if key else None
        if match is not None and evidence is not None and evidence.lengths[i] == 1:
            match = match if evidence.ids[i, 0] == match else None
        if match is not None:
            t_ids.append(i)
            b_ids.append(match)
    return np.asarray(t_ids, dtype=np.int32), np.asarray(b_ids, dtype=np.int32)
