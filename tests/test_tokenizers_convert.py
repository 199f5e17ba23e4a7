"""Trained tokenizers have the requested family; unigramify keeps ids and learns frequencies."""

from __future__ import annotations

import numpy as np
import pytest

from zett.errors import ZettError
from zett.tokenizers.convert import save_tokenizer, token_counts, train_tokenizer, unigramify
from zett.tokenizers.surface import load_tokenizer, surface_forms

TEXTS = [
    "the cat sat on the mat. the dog sat on the log.",
    "def add(a, b):\n    return a + b\n",
    "Größe und Straße, привет мир",
] * 30


@pytest.mark.parametrize(
    "kind, byte_level, family",
    [
        ("bpe", True, "byte_bpe"),
        ("bpe", False, "sentencepiece_bpe"),
        ("unigram", True, "byte_unigram"),
        ("unigram", False, "unigram"),
        ("wordpiece", True, "wordpiece"),
    ],
)
def test_train_and_save_roundtrip(tmp_path, kind, byte_level, family) -> None:
    tok = train_tokenizer(kind, TEXTS, 200, byte_level=byte_level)
    assert surface_forms(tok).kind == family
    assert 30 < tok.get_vocab_size() <= 200 + 260  # byte alphabets come on top
    path = save_tokenizer(tok, tmp_path)
    assert path == tmp_path / "tokenizer.json" and not list(tmp_path.glob(".*tmp*"))
    again = load_tokenizer(tmp_path)
    assert again.get_vocab() == tok.get_vocab()
    text = "the cat sat"
    assert again.encode(text).ids == tok.encode(text).ids


def test_unknown_kind() -> None:
    with pytest.raises(ZettError, match="sentencepiece"):
        train_tokenizer("sentencepiece", TEXTS, 100)


@pytest.mark.parametrize("byte_level", [True, False])
def test_unigramify_keeps_ids_and_learns(byte_level) -> None:
    tok = train_tokenizer("bpe", TEXTS, 300, byte_level=byte_level)
    uni = unigramify(tok, TEXTS)
    assert uni.get_vocab(with_added_tokens=True) == tok.get_vocab(with_added_tokens=True)
    import json

    scores = np.array([s for _, s in json.loads(uni.to_str())["model"]["vocab"]])
    counts = token_counts(tok, TEXTS)
    assert np.all(np.diff(scores[np.argsort(counts, kind="stable")]) >= -1e-9)  # monotone
    assert np.isclose(np.logaddexp.reduce(scores), 0.0)  # a distribution (smoothed)
    text = "the cat sat on the log"
    assert uni.decode(uni.encode(text, add_special_tokens=False).ids) == text
    assert surface_forms(uni).bytes_ == surface_forms(tok).bytes_


def test_unigramify_refuses_wordpiece() -> None:
    with pytest.raises(ZettError, match="wordpiece"):
        unigramify(train_tokenizer("wordpiece", TEXTS, 100), TEXTS)
