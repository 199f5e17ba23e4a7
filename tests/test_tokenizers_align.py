"""`zett.tokenizers.align`: chunks tile the text's bytes in order, every token lies in exactly
one chunk, chunk boundaries are token boundaries of both sides (units), and this holds for
real tokenizer pairs (byte-level BPE, Metaspace BPE with byte fallback, WordPiece, Unigram,
SmolLM2 vs llama2 when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zett.tokenizers.align import align, align_encodings, byte_offsets, units

SMOLLM2 = Path.home() / ".cache" / "zett" / "smollm2" / "tokenizer.json"

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Größere Übungen in Zürich, café und straße!",
    "привет мир, как дела?  中文分词 日本語 مرحبا",
    "def f(x):\n\treturn np.sum(x) if x else None  # 😀 emoji",
    "  leading and trailing spaces   ",
    "a",
]


def check(al, offs_a, offs_b, n_bytes):
    """The properties every alignment has (module docstring of align.py)."""
    b = al.bounds
    assert b[0] == 0 and b[-1] == n_bytes and (np.diff(b) > 0).all()  # tiles, in order
    for side, offs in ((al.a, offs_a), (al.b, offs_b)):
        n = len(offs)
        assert side[0, 0] == 0 and side[-1, 1] == n
        assert (side[1:, 0] == side[:-1, 1]).all()  # contiguous: each token in one chunk
        assert (side[:, 1] > side[:, 0]).all()  # every chunk has tokens on both sides
        first, ends = units(offs)
        cuts = set(ends[:-1].tolist())
        assert set(b[1:-1].tolist()) <= cuts  # chunk bounds are this side's cuts
        unit_starts = set(first.tolist())
        assert set(side[1:, 0].tolist()) <= unit_starts  # chunks never split a unit
        for (lo, hi), c_lo, c_hi in zip(side, b[:-1], b[1:]):
            spans = offs[lo:hi]
            real = spans[spans[:, 1] > spans[:, 0]]
            if len(real):  # a chunk's non-empty tokens lie within its bytes
                assert real[:, 0].min() >= c_lo
                assert real[:, 1].max() <= c_hi


@st.composite
def tokenization(draw, n_bytes):
    """Random offsets: a partition of [0, n) with gaps (skipped bytes), repeated spans
    (byte-fallback pieces of one character) and empty tokens."""
    cuts = (
        sorted(draw(st.sets(st.integers(1, n_bytes - 1), max_size=n_bytes))) if n_bytes > 1 else []
    )
    edges = [0, *cuts, n_bytes]
    offs = []
    for s, e in zip(edges[:-1], edges[1:]):
        kind = draw(st.sampled_from(["plain", "plain", "gap", "repeat", "empty"]))
        if kind == "gap" and e - s > 1:
            offs.append((s + 1, e))  # first byte skipped (WordPiece-like)
        elif kind == "repeat":
            offs += [(s, e)] * draw(st.integers(2, 3))
        elif kind == "empty":
            offs += [(s, s), (s, e)]
        else:
            offs.append((s, e))
    return np.array(offs, dtype=np.int64).reshape(-1, 2)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), tokenization(n), tokenization(n)))
)
def test_random_tokenizations_align(case):
    n, offs_a, offs_b = case
    al = align(offs_a, offs_b, n)
    check(al, offs_a, offs_b, n)


@given(st.lists(st.integers(1, 6), min_size=1, max_size=10))
def test_identical_tokenizations_give_one_chunk_per_token(lengths):
    edges = np.concatenate([[0], np.cumsum(lengths)])
    offs = np.stack([edges[:-1], edges[1:]], axis=1)
    al = align(offs, offs, int(edges[-1]))
    assert al.n_chunks == len(lengths) and (al.bounds == edges).all()
    assert (al.a == al.b).all() and (al.a[:, 1] - al.a[:, 0] == 1).all()


def test_hand_example_and_edge_cases():
    # "ab cd": a = [ab][ cd], b = [a][b][ c][d]  → chunks "ab", " cd"
    al = align([(0, 2), (2, 5)], [(0, 1), (1, 2), (2, 4), (4, 5)], 5)
    assert al.bounds.tolist() == [0, 2, 5]
    assert al.a.tolist() == [[0, 1], [1, 2]] and al.b.tolist() == [[0, 2], [2, 4]]
    # WordPiece skips the space: its cut is at 2 (end of "ab"), the gap goes to " cd"
    al = align([(0, 2), (3, 5)], [(0, 2), (2, 5)], 5)
    assert al.bounds.tolist() == [0, 2, 5]
    # three byte-fallback pieces of one 3-byte char are one unit
    first, ends = units(np.array([(0, 3), (0, 3), (0, 3), (3, 4)]))
    assert first.tolist() == [0, 3] and ends.tolist() == [3, 4]
    # leading empty token joins the first unit; no tokens → no chunks
    assert units(np.array([(0, 0), (0, 2)]))[0].tolist() == [0]
    assert align(np.zeros((0, 2)), [(0, 1)], 1).n_chunks == 0
    assert align([(0, 1)], [(0, 1)], 0).n_chunks == 0


def test_byte_offsets_of_multibyte_text():
    text = "aé中😀"
    offs = byte_offsets(text, [(0, 1), (1, 2), (2, 3), (3, 4), (1, 3)])
    assert offs.tolist() == [[0, 1], [1, 3], [3, 6], [6, 10], [1, 6]]


# ----------------------------------------------------------------- real tokenizer pairs


def _train(kind: str):
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )

    corpus = TEXTS * 5 + ["the fox and the dog", "import numpy as np", "über große Städte"]
    if kind == "bytelevel":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )  # fmt: skip
    elif kind == "metaspace":  # SentencePiece-style BPE with byte fallback, few chars known
        tok = Tokenizer(models.BPE(byte_fallback=True, unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        bytes_ = [f"<0x{i:02X}>" for i in range(256)]
        trainer = trainers.BpeTrainer(
            vocab_size=400, special_tokens=bytes_, limit_alphabet=30, show_progress=False
        )
    elif kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(
            vocab_size=300, special_tokens=["[UNK]"], show_progress=False
        )
    else:  # unigram
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=150, special_tokens=["<unk>"], unk_token="<unk>", show_progress=False
        )
    tok.train_from_iterator(corpus, trainer)
    return tok


@pytest.fixture(scope="module")
def trained():
    return {k: _train(k) for k in ("bytelevel", "metaspace", "wordpiece", "unigram")}


def _check_pair(tok_a, tok_b, texts):
    for text in texts:
        ea = tok_a.encode(text, add_special_tokens=False)
        eb = tok_b.encode(text, add_special_tokens=False)
        al = align_encodings(text, ea, eb)
        n = len(text.encode("utf-8"))
        check(al, byte_offsets(text, ea.offsets), byte_offsets(text, eb.offsets), n)
        raw = text.encode("utf-8")
        for lo, hi in zip(al.bounds[:-1], al.bounds[1:]):
            raw[lo:hi].decode("utf-8")  # a boundary never falls inside a character


@pytest.mark.parametrize(
    "pair",
    [("bytelevel", "metaspace"), ("bytelevel", "wordpiece"), ("metaspace", "wordpiece"),
     ("unigram", "bytelevel"), ("wordpiece", "unigram")],
)  # fmt: skip
def test_trained_tokenizer_pairs_align(trained, pair):
    _check_pair(trained[pair[0]], trained[pair[1]], TEXTS)


def test_byte_level_and_byte_fallback_agree_on_characters(trained):
    text = "中文 😀"
    al = align_encodings(
        text,
        trained["bytelevel"].encode(text, add_special_tokens=False),
        trained["metaspace"].encode(text, add_special_tokens=False),
    )
    assert al.n_chunks >= 1
    assert set(al.bounds.tolist()) <= {0, 3, 6, 7, 11}  # only character edges


def test_smollm2_vs_llama2():
    from tokenizers import Tokenizer

    from zett import assets

    if not SMOLLM2.is_file():
        pytest.skip(f"{SMOLLM2} missing")
    try:
        llama2 = assets.find_tokenizer("llama2")
    except Exception as e:  # noqa: BLE001 - any resolution failure means "not here"
        pytest.skip(f"llama2 tokenizer not found: {e}")
    smol, llama = Tokenizer.from_file(str(SMOLLM2)), Tokenizer.from_file(str(llama2))
    _check_pair(smol, llama, TEXTS)
    text = "The capital of France is Paris."
    al = align_encodings(text, smol.encode(text), llama.encode(text))
    assert al.n_chunks >= 6  # word-level agreement on plain English
