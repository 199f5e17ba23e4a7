"""Training batches with a freshly sampled tokenizer each, as static-shape numpy arrays.

For step `s` everything is drawn from `np.random.default_rng([seed, s])`, so a run resumed
at step `s` (`start_step=s`) sees exactly the batches it would have seen. One batch:

1. `texts_per_sample` texts from the language mixture; the first `batch_size` of them are
   the batch's own texts, all of them feed `sample_tokenizer` (vocab size uniform in
   [vocab_size_min, vocab_size_max], or log-uniform with `vocab_size_log`);
2. each batch text is tokenized and a random window of `seq_len` tokens kept (shorter
   texts are padded, mask 0); if the batch has more distinct tokens than
   `n_token_subsample - min_negatives`, its rows are cut short until it does
   (`fit_to_rows`), so the row budget can be set below batch_size × seq_len (the paper's
   ~0.5 rows per token) and `min_negatives` rows stay for random negatives;
3. the vocabulary is subsampled to `n_token_subsample` rows: every token present in the
   batch first, then random others, padding rows (vocab_mask False) when the vocab is
   smaller; batch ids are remapped into that index space, so the LM head is `[N, d]`.
   With `negative_correction`, each random row's logit gets log(1/q), q = the chance an
   absent token was drawn (sampled softmax): without it the softmax over ~1k rows stands
   for one over ~10k and rare tokens are almost never pushed down (`negative_offsets`;
   with `short_rows`, `stratum_offsets` reweights the negatives `short_first` keeps);
4. the subsample is decomposed into base-tokenizer pieces and its tokens shared with the
   base vocabulary are listed (for the auxiliary loss).

`fixed_tokenizer_batches` gives the same `Batch` for a fixed (evaluation) tokenizer with
its whole vocabulary.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zett.config import DataConfig
from zett.data.sampler import (
    SampledTokenizer,
    check_method,
    check_pretokenizers,
    piece_bytes,
    sample_tokenizer,
)
from zett.errors import ZettError
from zett.tokenizers.decompose import decompose, shared_tokens
from zett.tokenizers.surface import SurfaceForms, surface_forms


@dataclass
class Batch:
    """One training/eval batch (B = batch_size, T = seq_len, N = vocab rows, P = max_pieces,
    S = shared rows). Ids in `input_ids` index the N vocab rows, not the tokenizer."""

    input_ids: np.ndarray  # int32 [B, T]
    attention_mask: np.ndarray  # int32 [B, T], 0 on padding
    piece_ids: np.ndarray  # int32 [N, P] base-tokenizer ids, 0-padded
    piece_lengths: np.ndarray  # int32 [N]
    vocab_mask: np.ndarray  # bool [N], False on padding rows
    unigram_logprobs: np.ndarray  # float32 [N] (0 on padding rows / unknown prior)
    shared_idx: np.ndarray  # int32 [S] row in N of a token the base vocab also has
    shared_base_ids: np.ndarray  # int32 [S] its base id
    shared_mask: np.ndarray  # bool [S]
    n_bytes: np.ndarray  # int32 [B] UTF-8 bytes covered by each row's unmasked tokens
    langs: list[str] = field(default_factory=list)
    vocab_ids: np.ndarray | None = None  # int32 [N] tokenizer id of each row (-1: padding)
    vocab_size: int = 0  # size of the (sampled) tokenizer's full vocabulary
    step: int = -1
    # The same text spans tokenized by the *base* tokenizer (for the label-free `sentence`
    # objective of encoders without an MLM head): int32 [B, T], 0-padded, and their mask.
    ref_input_ids: np.ndarray | None = None
    ref_attention_mask: np.ndarray | None = None
    # float32 [N]: added to the LM logits in training (`negative_correction`); None: none.
    logit_offset: np.ndarray | None = None


# ------------------------------------------------------------------------- text mixture


class TextMixture:
    """Texts grouped by language, drawn by a language mixture.

    `data` is a `datasets.Dataset` with `text` and `lang` columns or a list of
    (lang, text) pairs. `weights` maps lang → weight; empty: proportional to the number
    of texts per language.
    """

    def __init__(self, data: Any, weights: dict[str, float] | None = None) -> None:
        if isinstance(data, list):
            self._texts: Any = [t for _, t in data]
            langs = [lg for lg, _ in data]
        else:
            self._texts = data
            langs = data["lang"]
        by_lang: dict[str, list[int]] = {}
        for i, lg in enumerate(langs):
            by_lang.setdefault(lg, []).append(i)
        if not by_lang:
            raise ZettError("data.corpus: the training split is empty; rebuild the corpus")
        self.index = {lg: np.asarray(ix, dtype=np.int64) for lg, ix in sorted(by_lang.items())}
        if weights:
            unknown = sorted(set(weights) - set(self.index))
            if unknown:
                raise ZettError(
                    f"data.langs: {', '.join(unknown)} not in the corpus; "
                    f"have {', '.join(self.index)}"
                )
            if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ZettError("data.langs: weights must be ≥ 0 with a positive sum")
            self.langs = [lg for lg in self.index if weights.get(lg, 0) > 0]
            w = np.array([weights[lg] for lg in self.langs], dtype=np.float64)
        else:
            self.langs = list(self.index)
            w = np.array([len(self.index[lg]) for lg in self.langs], dtype=np.float64)
        self.probs = w / w.sum()

    def _text(self, i: int) -> str:
        if isinstance(self._texts, list):
            return self._texts[i]
        return self._texts[int(i)]["text"]

    def draw(self, rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
        """n (lang, text) pairs: language by the mixture, then a uniform text of it."""
        which = rng.choice(len(self.langs), size=n, p=self.probs)
        out = []
        for k in which:
            lang = self.langs[int(k)]
            ix = self.index[lang]
            out.append((lang, self._text(int(ix[rng.integers(len(ix))]))))
        return out


# ----------------------------------------------------------------------- batch assembly


class BaseVocab:
    """The base tokenizer and its surface forms, computed once per pipeline."""

    def __init__(self, base_tokenizer: Any, max_pieces: int) -> None:
        self.tokenizer = base_tokenizer
        self.forms = surface_forms(base_tokenizer)
        self.max_pieces = max_pieces


def _target_forms(piece_bytes_list: list[bytes]) -> Any:
    n = len(piece_bytes_list)
    begins = np.array([b.startswith(b" ") for b in piece_bytes_list], dtype=bool)
    return SurfaceForms(piece_bytes_list, begins, np.zeros(n, dtype=bool), "byte_unigram")


def vocab_rows(
    base: BaseVocab, row_bytes: list[bytes], n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decomposition and shared tokens of the tokens whose surfaces are `row_bytes`.

    Returns piece_ids int32 [n_rows, P], piece_lengths int32 [n_rows], shared_idx,
    shared_base_ids int32 [n_rows] and shared_mask bool [n_rows] (rows past
    len(row_bytes) are padding).
    """
    forms = _target_forms(row_bytes)
    dec = decompose(forms, base.tokenizer, base.max_pieces)
    n = len(row_bytes)
    piece_ids = np.zeros((n_rows, base.max_pieces), dtype=np.int32)
    piece_lengths = np.zeros(n_rows, dtype=np.int32)
    piece_ids[:n] = np.asarray(dec.ids)[:, : base.max_pieces]
    piece_lengths[:n] = np.asarray(dec.lengths)
    t_ids, b_ids = shared_tokens(forms, base.forms, decomposition=dec)
    t_ids, b_ids = np.asarray(t_ids)[:n_rows], np.asarray(b_ids)[:n_rows]
    k = len(t_ids)
    shared_idx = np.zeros(n_rows, dtype=np.int32)
    shared_base = np.zeros(n_rows, dtype=np.int32)
    shared_mask = np.zeros(n_rows, dtype=bool)
    shared_idx[:k], shared_base[:k], shared_mask[:k] = t_ids, b_ids, True
    return piece_ids, piece_lengths, shared_idx, shared_base, shared_mask


def fit_to_rows(ids: np.ndarray, mask: np.ndarray, n_rows: int) -> np.ndarray:
    """The mask `[B, T]` cut so that the batch uses at most `n_rows` distinct tokens.

    The budget goes to the first `n_rows` distinct tokens in reading order (row by row);
    each row ends just before its first token outside that set (right-padding, as for
    short texts). The first row keeps its first `n_rows` distinct tokens, so a batch
    is never empty when `n_rows ≥ 1`. Unchanged when the batch fits.
    """
    on = mask.astype(bool)
    flat = ids[on]
    uniq, first = np.unique(flat, return_index=True)
    if len(uniq) <= n_rows:
        return mask
    allowed = uniq[np.argsort(first, kind="stable")[:n_rows]]
    ok = np.isin(ids, allowed) | ~on
    alive = np.cumprod(ok, axis=1).astype(bool)
    return (on & alive).astype(mask.dtype)


def subsample_vocab(
    batch_ids: np.ndarray, mask: np.ndarray, vocab_size: int, n_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ≤ n_rows vocab ids: all ids present in the batch (sorted) first, then random
    others. Returns (vocab_ids int32 [n_rows] with -1 padding, batch ids remapped to rows).
    """
    present = np.unique(batch_ids[mask.astype(bool)])
    if len(present) > n_rows:
        raise ZettError(
            f"data.n_token_subsample: {n_rows} < {len(present)} distinct tokens in a batch; "
            "raise it or lower batch_size × seq_len"
        )
    others = np.setdiff1d(np.arange(vocab_size), present, assume_unique=True)
    n_more = min(n_rows - len(present), len(others))
    chosen = np.concatenate([present, rng.permutation(others)[:n_more]]).astype(np.int32)
    lookup = np.zeros(vocab_size, dtype=np.int32)
    lookup[chosen] = np.arange(len(chosen), dtype=np.int32)
    remapped = np.where(mask.astype(bool), lookup[batch_ids], 0).astype(np.int32)
    vocab_ids = np.full(n_rows, -1, dtype=np.int32)
    vocab_ids[: len(chosen)] = chosen
    return vocab_ids, remapped


def negative_offsets(vocab_ids: np.ndarray, n_present: int, vocab_size: int) -> np.ndarray:
    """Sampled-softmax logit offsets [N] for a subsample from `subsample_vocab`.

    Rows [0, n_present) are the batch's own tokens (always in: offset 0); each of the
    k random rows stands for (vocab_size − n_present) / k absent tokens, so it gets
    log of that. With it, Σ exp(logit + offset) over the rows is an unbiased estimate
    of the partition function over the whole vocabulary. Padding rows: 0.
    """
    out = np.zeros(len(vocab_ids), np.float32)
    k = int((vocab_ids[n_present:] >= 0).sum())
    if k > 0:
        out[n_present : n_present + k] = np.log((vocab_size - n_present) / k)
    return out


def short_first(
    lengths: np.ndarray, n_real: int, n_present: int, short_rows: int, short_pieces: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row order that puts tokens of ≤ `short_pieces` pieces into the first `short_rows` rows.

    Rows [0, n_present) are tokens the batch uses and are always kept; the rest are
    random other tokens (negatives of the softmax) and fill whatever slots are left, short
    ones first into short slots. A used token too long for a short slot goes to a long
    slot; only if those run out is it cut to `short_pieces` pieces (counted in the
    returned lengths). Returns (order int64 [len(lengths)]: old row per new row, -1 for
    padding; new lengths int32).
    """
    n_rows = len(lengths)
    is_long = lengths[:n_real] > short_pieces
    present, others = np.arange(n_present), np.arange(n_present, n_real)
    short_slots: list[int] = []
    long_slots: list[int] = []
    n_long = n_rows - short_rows
    for group in (present, others):
        for r in group[is_long[group]]:
            if len(long_slots) < n_long:
                long_slots.append(int(r))
            elif group is present:
                short_slots.append(int(r))  # cut to short_pieces below
        for r in group[~is_long[group]]:
            if len(short_slots) < short_rows:
                short_slots.append(int(r))
            elif len(long_slots) < n_long or group is present:
                long_slots.append(int(r))
    short = np.full(short_rows, -1, np.int64)
    short[: min(len(short_slots), short_rows)] = short_slots[:short_rows]
    long = np.full(n_long, -1, np.int64)
    long[: min(len(long_slots), n_long)] = long_slots[:n_long]
    order = np.concatenate([short, long])
    new_len = np.where(order >= 0, lengths[np.maximum(order, 0)], 0).astype(np.int32)
    new_len[:short_rows] = np.minimum(new_len[:short_rows], short_pieces)
    return order, new_len


def stratum_offsets(
    lengths: np.ndarray, order: np.ndarray, n_present: int, n_real: int, short_pieces: int
) -> np.ndarray:
    """Log-offsets [len(order)] that keep `negative_offsets` unbiased after `short_first`.

    `short_first` fills the free slots with the random rows (the negatives) short ones
    first, so when slots run out it drops some, and not uniformly: a stratum (≤ or >
    `short_pieces` pieces) loses more than the other. Each kept negative of a stratum then
    stands for n / kept of that stratum's sampled negatives (`lengths`, `n_present` and
    `n_real` as given to `short_first`; `order` its result); log of that is returned for
    it, 0 for used tokens and padding. Without it the partition function is estimated too
    low on such steps (new rows then learn to be too confident).
    """
    out = np.zeros(len(order), np.float32)
    if n_real == 0:
        return out
    is_long = lengths[:n_real] > short_pieces
    negative = (order >= n_present) & (order < n_real)
    row_long = is_long[np.clip(order, 0, n_real - 1)]
    for stratum in (False, True):
        sampled = int((is_long[n_present:n_real] == stratum).sum())
        rows = negative & (row_long == stratum)
        if rows.any():
            out[rows] = np.log(sampled / rows.sum())
    return out


def crop_or_pad(
    ids: Sequence[int], seq_len: int, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """A `seq_len` window of `ids` (random start when rng is given, else the start) and
    its mask; short sequences are right-padded with id 0, mask 0."""
    arr = np.asarray(ids, dtype=np.int32)
    out = np.zeros(seq_len, dtype=np.int32)
    mask = np.zeros(seq_len, dtype=np.int32)
    if len(arr) > seq_len:
        start = int(rng.integers(len(arr) - seq_len + 1)) if rng is not None else 0
        arr = arr[start : start + seq_len]
    out[: len(arr)] = arr
    mask[: len(arr)] = 1
    return out, mask


def reference_rows(
    base: BaseVocab, pieces: list[str], ids: np.ndarray, mask: np.ndarray, seq_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's text (the bytes its sampled tokens cover) re-tokenized by the base
    tokenizer, cut to `seq_len` base tokens: [B, T] ids and mask."""
    texts = []
    for row, m in zip(ids, mask):
        data = b"".join(piece_bytes(pieces[i]) for i in row[m > 0])
        texts.append(data.decode("utf-8", errors="ignore"))
    encs = base.tokenizer.encode_batch(texts, add_special_tokens=False)
    rows = [crop_or_pad(e.ids, seq_len, None) for e in encs]
    return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


def draw_vocab_size(rng: np.random.Generator, cfg: DataConfig) -> int:
    """One sampled vocabulary size in [vocab_size_min, vocab_size_max]: uniform, or
    log-uniform with `vocab_size_log` (equal odds per octave, so a range reaching 256k
    still samples Llama-2-sized vocabularies often)."""
    lo, hi = cfg.vocab_size_min, cfg.vocab_size_max
    if not cfg.vocab_size_log:
        return int(rng.integers(lo, hi + 1))
    return int(min(hi, np.floor(np.exp(rng.uniform(np.log(lo), np.log(hi + 1))))))


def sample_step_tokenizer(
    mixture: TextMixture, cfg: DataConfig, step: int, method: str | None = None
) -> tuple[np.random.Generator, list, SampledTokenizer]:
    """(random stream, drawn (lang, text) pairs, sampled tokenizer) of training step `step`,
    drawn as `make_batch` draws them; the stream goes on to that step's batch. `method`
    overrides `cfg.sampler` (experiments/sampled_vs_real.py compares samplers)."""
    rng = np.random.default_rng([cfg.seed, step])
    drawn = mixture.draw(rng, max(cfg.texts_per_sample, cfg.batch_size))
    vocab_size = draw_vocab_size(rng, cfg)
    pre = cfg.pretokenizers[0]
    if len(cfg.pretokenizers) > 1:  # one listed: no draw, so older configs' batches stay
        pre = cfg.pretokenizers[int(rng.integers(len(cfg.pretokenizers)))]
    sampled = sample_tokenizer(
        [t for _, t in drawn], rng, vocab_size, cfg.noise_mean, cfg.noise_std,
        method=method or cfg.sampler, pretokenizer=pre,
    )  # fmt: skip
    return rng, drawn, sampled


def make_batch(mixture: TextMixture, base: BaseVocab, cfg: DataConfig, step: int) -> Batch:
    """The batch of training step `step` (a pure function of cfg.seed and step)."""
    rng, drawn, sampled = sample_step_tokenizer(mixture, cfg, step)
    texts = [t for _, t in drawn[: cfg.batch_size]]
    encs = sampled.tokenizer.encode_batch(texts, add_special_tokens=False)
    rows = [crop_or_pad(e.ids, cfg.seq_len, rng) for e in encs]
    ids = np.stack([r[0] for r in rows])
    budget = cfg.n_token_subsample - cfg.min_negatives  # distinct tokens the batch may use
    mask = fit_to_rows(ids, np.stack([r[1] for r in rows]), budget)
    vocab_ids, remapped = subsample_vocab(ids, mask, sampled.vocab_size, cfg.n_token_subsample, rng)
    real = vocab_ids[vocab_ids >= 0]
    row_bytes = [piece_bytes(sampled.pieces[i]) for i in real]
    piece_ids, piece_lengths, sh_idx, sh_base, sh_mask = vocab_rows(
        base, row_bytes, cfg.n_token_subsample
    )
    ref_ids, ref_mask = reference_rows(base, sampled.pieces, ids, mask, cfg.seq_len)
    row_len = np.zeros(cfg.n_token_subsample, dtype=np.int32)
    row_len[: len(real)] = [len(b) for b in row_bytes]
    logp = np.zeros(cfg.n_token_subsample, dtype=np.float32)
    logp[: len(real)] = sampled.unigram_logprobs[real]
    n_present = len(np.unique(ids[mask.astype(bool)]))
    offset = negative_offsets(vocab_ids, n_present, sampled.vocab_size)
    if 0 < cfg.short_rows < cfg.n_token_subsample:
        lengths = piece_lengths
        order, piece_lengths = short_first(
            lengths, len(real), n_present, cfg.short_rows, cfg.short_pieces
        )
        keep = order >= 0
        src = np.maximum(order, 0)
        extra = np.zeros(len(order), np.float32)
        if cfg.negative_strata:
            extra = stratum_offsets(lengths, order, n_present, len(real), cfg.short_pieces)
        piece_ids = np.where(keep[:, None], piece_ids[src], 0).astype(np.int32)
        row_len = np.where(keep, row_len[src], 0).astype(np.int32)
        logp = np.where(keep, logp[src], 0.0).astype(np.float32)
        offset = np.where(keep, offset[src] + extra, 0.0).astype(np.float32)
        vocab_ids = np.where(keep, vocab_ids[src], -1).astype(np.int32)
        new_row = np.full(cfg.n_token_subsample, -1, np.int64)
        new_row[order[keep]] = np.flatnonzero(keep)
        remapped = np.where(mask.astype(bool), new_row[remapped], 0).astype(np.int32)
        moved = new_row[sh_idx]
        sh_mask = sh_mask & (moved >= 0)
        sh_idx = np.where(sh_mask, moved, 0).astype(np.int32)
    return Batch(
        input_ids=remapped,
        attention_mask=mask,
        piece_ids=piece_ids,
        piece_lengths=piece_lengths,
        vocab_mask=vocab_ids >= 0,
        unigram_logprobs=logp,
        shared_idx=sh_idx,
        shared_base_ids=sh_base,
        shared_mask=sh_mask,
        n_bytes=(row_len[remapped] * mask).sum(axis=1).astype(np.int32),
        langs=[lg for lg, _ in drawn[: cfg.batch_size]],
        vocab_ids=vocab_ids,
        vocab_size=sampled.vocab_size,
        step=step,
        ref_input_ids=ref_ids,
        ref_attention_mask=ref_mask,
        logit_offset=offset if cfg.negative_correction else None,
    )


# --------------------------------------------------------------------------- iteration


class BatchIterator:
    """Endless iterator of sampled-tokenizer batches from `start_step` on, `prefetch`
    batches ahead in a background thread (0: computed on demand)."""

    def __init__(
        self,
        data: Any,
        base_tokenizer: Any,
        cfg: DataConfig,
        max_pieces: int,
        start_step: int = 0,
    ) -> None:
        _check_config(cfg)
        self.cfg = cfg
        self.mixture = TextMixture(data, cfg.langs)
        self.base = BaseVocab(base_tokenizer, max_pieces)
        self.step = start_step
        self._queue: queue.Queue | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def batch(self, step: int) -> Batch:
        return make_batch(self.mixture, self.base, self.cfg, step)

    def skip_to(self, step: int) -> None:
        """Continue at `step` (drops anything prefetched)."""
        self.close()
        self.step = step

    def _produce(self, first: int, q: queue.Queue, stop: threading.Event) -> None:
        step = first
        while not stop.is_set():
            try:
                item: Any = self.batch(step)
            except BaseException as e:  # hand errors to the consumer
                item = e
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return
            step += 1

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        if self.cfg.prefetch <= 0:
            out = self.batch(self.step)
        else:
            if self._thread is None:
                self._stop = threading.Event()
                self._queue = queue.Queue(maxsize=self.cfg.prefetch)
                self._thread = threading.Thread(
                    target=self._produce, args=(self.step, self._queue, self._stop), daemon=True
                )
                self._thread.start()
            assert self._queue is not None
            item = self._queue.get()
            if isinstance(item, BaseException):
                self.close()
                raise item
            out = item
        self.step += 1
        return out

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=30)
            self._thread = None
            self._queue = None


def _check_config(cfg: DataConfig) -> None:
    check_method(cfg.sampler)
    check_pretokenizers(cfg.pretokenizers)
    if cfg.vocab_size_min > cfg.vocab_size_max:
        raise ZettError("data.vocab_size_min must be ≤ data.vocab_size_max")
    if cfg.seq_len > cfg.n_token_subsample - cfg.min_negatives:
        raise ZettError(
            f"data.n_token_subsample ({cfg.n_token_subsample}) minus data.min_negatives "
            f"({cfg.min_negatives}) must be ≥ data.seq_len ({cfg.seq_len}) so a whole "
            "sequence always fits (batches whose distinct tokens exceed it are cut at the end "
            "of their rows: see fit_to_rows)"
        )
    if cfg.min_negatives < 0:
        raise ZettError(f"data.min_negatives: {cfg.min_negatives} must be ≥ 0")


def fixed_tokenizer_batches(
    tokenizer: Any,
    texts: list[str],
    base_tokenizer: Any,
    max_pieces: int,
    batch_size: int,
    seq_len: int,
    lang: str = "",
) -> Iterator[Batch]:
    """Batches of a fixed tokenizer over `texts`, whole vocabulary as rows (N = V).

    Each text's tokens (no special tokens) are cut into consecutive `seq_len` windows;
    every token is used once. The decomposition is computed once for the whole vocab.
    """
    forms = surface_forms(tokenizer)
    base_forms = surface_forms(base_tokenizer)
    v = len(forms)
    dec = decompose(forms, base_tokenizer, max_pieces)
    t_ids, b_ids = (np.asarray(a) for a in shared_tokens(forms, base_forms, decomposition=dec))
    shared_idx = np.zeros(v, dtype=np.int32)
    shared_base = np.zeros(v, dtype=np.int32)
    shared_mask = np.zeros(v, dtype=bool)
    shared_idx[: len(t_ids)], shared_base[: len(t_ids)], shared_mask[: len(t_ids)] = (
        t_ids[:v],
        b_ids[:v],
        True,
    )
    row_len = np.array([len(b) for b in forms.bytes_], dtype=np.int32)
    windows = []
    for enc in tokenizer.encode_batch(texts, add_special_tokens=False):
        for s in range(0, len(enc.ids), seq_len):
            windows.append(enc.ids[s : s + seq_len])
    for b in range(0, len(windows), batch_size):
        rows = [crop_or_pad(w, seq_len, None) for w in windows[b : b + batch_size]]
        ids = np.stack([r[0] for r in rows])
        mask = np.stack([r[1] for r in rows])
        yield Batch(
            input_ids=ids,
            attention_mask=mask,
            piece_ids=np.asarray(dec.ids, dtype=np.int32),
            piece_lengths=np.asarray(dec.lengths, dtype=np.int32),
            vocab_mask=np.ones(v, dtype=bool),
            unigram_logprobs=np.zeros(v, dtype=np.float32),
            shared_idx=shared_idx,
            shared_base_ids=shared_base,
            shared_mask=shared_mask,
            n_bytes=(row_len[ids] * mask).sum(axis=1).astype(np.int32),
            langs=[lang] * len(rows),
            vocab_ids=np.arange(v, dtype=np.int32),
            vocab_size=v,
        )
