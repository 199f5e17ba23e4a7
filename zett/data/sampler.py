"""Per-batch tokenizer sampling: a byte-level Unigram built from the batch's own substrings.

ZeTT trains the hypernetwork over a *distribution* of tokenizers so it generalizes to
unseen ones. For each batch we:

1. pre-tokenize the sampling texts with the GPT-2 ByteLevel pre-tokenizer (every byte maps
   to one printable symbol, so any text round-trips) and count words;
2. count every substring of length 1..`max_piece_len` symbols of every word, weighted by
   the word's frequency (each unique word is visited once);
3. score the candidates and keep the `vocab_size - 256` best multi-symbol pieces, noised,
   and always all 256 byte symbols (un-noised, so every byte stays encodable);
4. build a `tokenizers` Unigram over the kept pieces with their **noise-free** log-probs
   (normalized; also the tokenizer's unigram prior `unigram_logprobs [V]`).

Step 3 has two methods (`data.sampler`):

- `zett` (default; the semantics of the paper's released sampler): a piece's score is its
  share of the sampled text's bytes, p = count × bytes / total; each sample draws a noise
  level σ ~ LogNormal(log `noise_mean`, `noise_std`) and ranks pieces by p + N(0, σ). Most
  samples get a small σ (a perturbed frequency list, realistic vocabularies); a heavy tail
  gets a large one (near-random vocabularies): diversity without losing realism.
- `log_gumbel` (this project's first sampler, kept to reproduce the hypernets it trained:
  hypernets/smollm2 and the compose runs): Gumbel(`noise_mean`, `noise_std`) added to
  log(count / total). With std 4 that noise dwarfs the spread of log-counts, so the kept
  pieces are close to a random draw of substrings: held-out English is cut at ~1.4 bytes
  per token against 3.6 for llama2 and ~2.8 for `zett` at the same vocabulary size
  (results/sampled_vs_real.md). Hypernets trained on it learn rows for character-level
  sequences, which real tokenizers never produce.

Step 1's pre-tokenizer is `data.pretokenizers` (one drawn per sample when several are
listed). `gpt2` (the default) keeps letters, digits and punctuation apart, as SmolLM2 and
GPT-2 do; real tokenizers of other families cut text differently, and their tokens across
those boundaries (`(self`, `.add`, `):` + newline, `100`) never occur in `gpt2` samples, so a
hypernet trained on those alone gets no LM signal for them (their rows drift from step to step).
`punct_attach` covers the other common convention, written here from its rules: a letter
run may take one leading space or punctuation character, digits go in groups of up to
three, a punctuation run takes an optional leading space and the newlines after it, and
whitespace that ends in newlines is one pre-token. `metaspace` is the SentencePiece
convention without script splitting (HF `Metaspace` with `split`, as in tokenizers trained
with no pre-tokenizer rule but spaces): text is cut only before a space, so punctuation,
newlines and letters merge freely within a pre-token (`s)`, `os\nimport`, `.\n\n`) and each
space of an indent is its own pre-token.

The noise decides *which* pieces a sampled vocabulary has, not how text is segmented with
them (segmenting with noisy scores pushes text towards ~1.5 bytes per token).

Everything is a pure function of (texts, rng state, settings): the same seed yields the
same tokenizer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from tokenizers.pre_tokenizers import ByteLevel

from zett.errors import ZettError

MAX_PIECE_LEN = 12  # longest candidate piece, in byte symbols (≈ 4 CJK chars, 12 ASCII)
N_BYTES = 256
METHODS = ("zett", "log_gumbel")  # `data.sampler` (module docstring)


def check_method(method: str) -> None:
    """Raise a ZettError naming `data.sampler` unless `method` is one of METHODS."""
    if method not in METHODS:
        raise ZettError(f"data.sampler: unknown method {method!r}; use one of {', '.join(METHODS)}")


def byte_alphabet() -> list[str]:
    """The 256 GPT-2 byte symbols, in byte order (symbol i stands for byte i)."""
    alpha = ByteLevel.alphabet()
    # ByteLevel.alphabet() is unordered; rebuild the GPT-2 mapping to index by byte value.
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table: dict[int, str] = {b: chr(b) for b in keep}
    extra = 0
    for b in range(N_BYTES):
        if b not in table:
            table[b] = chr(N_BYTES + extra)
            extra += 1
    out = [table[b] for b in range(N_BYTES)]
    assert set(out) == set(alpha), "GPT-2 byte alphabet mismatch"
    return out


_BYTE_SYMBOLS = byte_alphabet()
# `data.pretokenizers` (module docstring): the split rules before bytes become symbols.
_PUNCT_ATTACH = (
    r"[^\r\n\p{L}\p{N}]?\p{L}+"  # a letter run, optionally one leading space/punctuation
    r"|\p{N}{1,3}"  # digits in groups of up to three
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*"  # punctuation, its leading space and trailing newlines
    r"|\s*[\r\n]+"  # whitespace up to and including newlines
    r"|\s+(?!\S)|\s+"  # other whitespace: the last space stays with the next word
)
_METASPACE = r" ?[^ ]+| "  # one leading space and everything up to the next space
# Pre-tokenizers that split by a regex of their own, then map bytes to symbols without
# GPT-2's regex; `gpt2` is ByteLevel's own regex.
_SPLIT_RULES = {"punct_attach": _PUNCT_ATTACH, "metaspace": _METASPACE}
PRETOKENIZERS = ("gpt2", *_SPLIT_RULES)


def pre_tokenizer(name: str) -> pre_tokenizers.PreTokenizer:
    """The byte-level pre-tokenizer `name` of PRETOKENIZERS (a ZettError names the key)."""
    if name == "gpt2":
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if name in _SPLIT_RULES:
        split = pre_tokenizers.Split(Regex(_SPLIT_RULES[name]), behavior="isolated")
        return pre_tokenizers.Sequence(
            [split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
        )
    raise ZettError(
        f"data.pretokenizers: unknown pre-tokenizer {name!r}; use some of {', '.join(PRETOKENIZERS)}"
    )


def check_pretokenizers(names: list[str]) -> None:
    """Raise a ZettError naming `data.pretokenizers` unless `names` is a non-empty list of
    PRETOKENIZERS."""
    if not names:
        raise ZettError(f"data.pretokenizers: empty; list some of {', '.join(PRETOKENIZERS)}")
    for name in names:
        pre_tokenizer(name)


@dataclass
class SampledTokenizer:
    """A sampled tokenizer: `tokenizer` (HF `tokenizers`), its pieces (byte-level symbols,
    id order) and `unigram_logprobs [V]` (log-probs, summing to 1 in prob space)."""

    tokenizer: Tokenizer
    pieces: list[str]
    unigram_logprobs: np.ndarray

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)


def count_words(texts: list[str], pretokenizer: str = "gpt2") -> Counter[str]:
    """Byte-level pre-tokens (`Ġword` style) of `texts` with their frequencies."""
    pre = pre_tokenizer(pretokenizer)
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in pre.pre_tokenize_str(text))
    return words


def count_substrings(words: Counter[str], max_len: int = MAX_PIECE_LEN) -> dict[str, int]:
    """Frequency of every substring (length 1..max_len) of every word, weighted by the
    word's count: what a text of these words would show of each piece."""
    counts: dict[str, int] = {}
    get = counts.get
    for word, c in words.items():
        n = len(word)
        for i in range(n):
            for j in range(i + 1, min(n, i + max_len) + 1):
                s = word[i:j]
                counts[s] = get(s, 0) + c
    return counts


def build_unigram(pieces: list[str], scores: np.ndarray, pretokenizer: str = "gpt2") -> Tokenizer:
    """A byte-level Unigram tokenizer over `pieces` (byte symbols) with `scores` (log-probs)."""
    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(pieces, scores)], None, False))
    tok.pre_tokenizer = pre_tokenizer(pretokenizer)
    tok.decoder = decoders.ByteLevel()
    return tok


def sample_tokenizer(
    texts: list[str],
    rng: np.random.Generator,
    vocab_size: int,
    noise_mean: float = 1e-5,
    noise_std: float = 4.0,
    max_piece_len: int = MAX_PIECE_LEN,
    method: str = "zett",
    pretokenizer: str = "gpt2",
) -> SampledTokenizer:
    """Sample a byte-level Unigram tokenizer of at most `vocab_size` pieces from `texts`.

    The vocab holds the 256 byte symbols (ids 0..255, byte order) and then the
    `vocab_size - 256` candidates with the highest noisy score (`method`, see the module
    docstring), best first. Fewer distinct substrings than that give a smaller vocab.
    """
    if vocab_size <= N_BYTES:
        raise ZettError(f"data.vocab_size_min/max: {vocab_size} must exceed {N_BYTES} (bytes)")
    check_method(method)
    counts = count_substrings(count_words(texts, pretokenizer), max_piece_len)
    byte_set = set(_BYTE_SYMBOLS)
    cands = [s for s in counts if s not in byte_set]
    cand_counts = np.fromiter((counts[s] for s in cands), dtype=np.float64, count=len(cands))
    if method == "zett":  # weight by the bytes a piece covers (symbols = bytes)
        cand_counts *= np.fromiter((len(s) for s in cands), dtype=np.float64, count=len(cands))
    byte_counts = np.array([counts.get(b, 0) for b in _BYTE_SYMBOLS], dtype=np.float64)
    total = float(cand_counts.sum() + byte_counts.sum()) or 1.0
    clean = np.log(cand_counts / total) if len(cands) else np.zeros(0)
    scores = clean
    if method == "log_gumbel" and noise_std > 0 and len(cands):
        scores = clean + rng.gumbel(noise_mean, noise_std, size=len(cands))
    elif method == "zett" and noise_mean > 0 and len(cands):
        sigma = rng.lognormal(np.log(noise_mean), noise_std) if noise_std > 0 else noise_mean
        scores = cand_counts / total + rng.normal(0.0, sigma, size=len(cands))
    k = min(vocab_size - N_BYTES, len(cands))
    top = np.argsort(-scores, kind="stable")[:k]
    # Unseen bytes get half a count: encodable, but never preferred over seen pieces.
    byte_scores = np.log(np.maximum(byte_counts, 0.5) / total)
    pieces = _BYTE_SYMBOLS + [cands[i] for i in top]
    all_scores = np.concatenate([byte_scores, clean[top]])
    # The Unigram model wants log-probs; normalize so they form a distribution.
    m = all_scores.max()
    logprobs = all_scores - (m + np.log(np.exp(all_scores - m).sum()))
    tok = build_unigram(pieces, logprobs, pretokenizer)
    return SampledTokenizer(tok, pieces, logprobs.astype(np.float32))


def piece_bytes(piece: str) -> bytes:
    """The UTF-8 bytes a byte-level piece stands for."""
    return bytes(_SYMBOL_TO_BYTE[c] for c in piece)


_SYMBOL_TO_BYTE = {s: b for b, s in enumerate(_BYTE_SYMBOLS)}
