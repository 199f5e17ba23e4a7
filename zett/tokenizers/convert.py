"""Build tokenizers: train new ones (language/code targets) and turn any into a Unigram one.

- `train_tokenizer` wraps the `tokenizers` trainers with the conventions of the real
  families, so a trained tokenizer exercises the same code paths as the real ones:
  byte-level BPE/Unigram (GPT-2 byte map), SentencePiece-style BPE with `<0xNN>` byte
  fallback (Llama-2 layout), Metaspace Unigram, and BERT-style WordPiece.
- `unigramify` keeps a tokenizer's vocabulary and ids but replaces its model by a Unigram
  model whose log-probabilities are the (add-`smoothing`) token frequencies on some text:
  the form the hypernetwork's sampler and the unigram priors need.
- `save_tokenizer` writes tokenizer.json atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

from zett.atomic import atomic_write_text
from zett.errors import ZettError
from zett.tokenizers.surface import SPIECE, plain_copy, tokenizer_layout

KINDS = ("bpe", "unigram", "wordpiece")
GAP_SCORE = -1e4  # Unigram placeholder pieces for ids the source tokenizer lacks


def _byte_level(tok: tokenizers.Tokenizer) -> None:
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()


def _train_sentencepiece_bpe(texts: list[str], vocab_size: int) -> tokenizers.Tokenizer:
    """Llama-2 layout: `Prepend("▁")` + `Replace(" ", "▁")` normalizer, no pre-tokenizer,
    ids 0-2 `<unk> <s> </s>`, ids 3-258 `<0x00>..<0xFF>`, then the learned pieces.

    Training splits on `▁` (Metaspace) so no merge spans two words; the final tokenizer
    then needs no pre-tokenizer, exactly like Llama-2's."""
    trainer_tok = tokenizers.Tokenizer(models.BPE())
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(
        vocab_size=max(vocab_size, len(specials) + 1), special_tokens=specials, show_progress=False
    )
    trainer_tok.train_from_iterator(texts, trainer)
    model = json.loads(trainer_tok.to_str())["model"]
    config = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": c,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i, c in enumerate(specials[:3])
        ],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": SPIECE},
                {"type": "Replace", "pattern": {"String": " "}, "content": SPIECE},
            ],
        },
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": SPIECE}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            **model,
            "unk_token": "<unk>",
            "fuse_unk": True,
            "byte_fallback": True,
        },
    }
    return tokenizers.Tokenizer.from_str(json.dumps(config))


def train_tokenizer(
    kind: str, texts: Iterable[str], vocab_size: int, *, byte_level: bool = True
) -> tokenizers.Tokenizer:
    """Train a `kind` tokenizer ("bpe" | "unigram" | "wordpiece") on `texts`.

    byte_level: BPE/Unigram over GPT-2's byte alphabet (never an unknown byte); with False,
    BPE is SentencePiece-style with byte fallback and Unigram is Metaspace with `<unk>`.
    WordPiece is always BERT-style (lower-casing normalizer, punctuation split, `##`).
    """
    if kind not in KINDS:
        raise ZettError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(KINDS)}")
    texts = list(texts)
    trainer: trainers.Trainer
    if kind == "bpe" and not byte_level:
        return _train_sentencepiece_bpe(texts, vocab_size)
    if kind == "bpe":
        tok = tokenizers.Tokenizer(models.BPE())
        _byte_level(tok)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif kind == "unigram":
        tok = tokenizers.Tokenizer(models.Unigram())
        if byte_level:
            _byte_level(tok)
            alphabet = pre_tokenizers.ByteLevel.alphabet()
        else:
            tok.pre_tokenizer = pre_tokenizers.Metaspace()
            tok.decoder = decoders.Metaspace()
            alphabet = []
        trainer = trainers.UnigramTrainer(
            vocab_size=max(vocab_size, len(alphabet) + 4),  # must hold the byte alphabet
            special_tokens=["<unk>", "<s>", "</s>"],
            unk_token="<unk>",
            initial_alphabet=alphabet,
            show_progress=False,
        )
    else:
        tok = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
            show_progress=False,
        )
    tok.train_from_iterator(texts, trainer)
    if kind == "wordpiece":
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
        )
    return tok


def token_counts(tok: tokenizers.Tokenizer, texts: Iterable[str]) -> np.ndarray:
    """int64 [V] how often each id occurs in `tok.encode(text)` (no special tokens)."""
    plain = plain_copy(tok)
    counts = np.zeros(tok.get_vocab_size(with_added_tokens=True), dtype=np.int64)
    for enc in plain.encode_batch(list(texts), add_special_tokens=False):
        np.add.at(counts, np.asarray(enc.ids, dtype=np.int64), 1)
    return counts


def unigramify(
    tok: tokenizers.Tokenizer, texts: Iterable[str], smoothing: float = 1.0
) -> tokenizers.Tokenizer:
    """A Unigram tokenizer with `tok`'s vocabulary, ids, normalizer, pre-tokenizer, decoder
    and added tokens; score(id) = log((count + smoothing) / (total + smoothing * V))."""
    layout = tokenizer_layout(tok)
    if layout["kind"] in ("wordpiece", "wordlevel"):
        raise ZettError(
            f"unigramify needs a BPE or Unigram tokenizer; {layout['kind']} pieces (`##`) "
            "have no Unigram equivalent"
        )
    counts = token_counts(tok, texts).astype(np.float64)
    n = len(counts)
    logp = np.log((counts + smoothing) / (counts.sum() + smoothing * n))
    vocab: list[list] = []
    for i in range(n):
        piece = tok.id_to_token(i)
        if piece is None:
            vocab.append([f"<zett_gap_{i}>", GAP_SCORE])
        else:
            vocab.append([piece, float(logp[i])])
    config = json.loads(tok.to_str())
    old = config["model"]
    unk = old.get("unk_token")
    unk_id = tok.token_to_id(unk) if isinstance(unk, str) else old.get("unk_id")
    config["model"] = {
        "type": "Unigram",
        "unk_id": unk_id,
        "vocab": vocab,
        "byte_fallback": bool(old.get("byte_fallback")),
    }
    return tokenizers.Tokenizer.from_str(json.dumps(config))


def save_tokenizer(tok: tokenizers.Tokenizer, path: str | Path) -> Path:
    """Write `tok` as tokenizer.json (at `path`, or inside it if it is a directory) atomically."""
    path = Path(path)
    if path.is_dir() or path.suffix != ".json":
        path = path / "tokenizer.json"
    atomic_write_text(path, tok.to_str())
    return path


def cached_tokenizer(
    directory: str | Path,
    kind: str,
    texts: Callable[[], Iterable[str]],
    vocab_size: int,
    *,
    byte_level: bool = True,
) -> Path:
    """`directory` holding a tokenizer.json trained once with `train_tokenizer`.

    `texts` is only called when the tokenizer must be trained, so callers can pass a
    function that reads a corpus lazily. Returns the directory.
    """
    directory = Path(directory)
    if not (directory / "tokenizer.json").is_file():
        tok = train_tokenizer(kind, texts(), vocab_size, byte_level=byte_level)
        save_tokenizer(tok, directory / "tokenizer.json")
    return directory
