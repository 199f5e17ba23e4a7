"""Composition targets: every base family yields base tokens rebuilt from ≥ 2 other tokens.

Property: the pieces of a composition (expanded or not) re-join to the token's own surface,
never contain the token itself, and stay within max_pieces.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import tokenizers

from zett.testing import WORDS
from zett.tokenizers.compose import compositions, expand, sample_pieces
from zett.tokenizers.convert import train_tokenizer
from zett.tokenizers.surface import surface_forms

FAMILIES = ("byte_bpe", "sp_bpe", "unigram", "wordpiece")


@pytest.fixture(scope="module")
def trained() -> dict[str, tokenizers.Tokenizer]:
    rng = random.Random(2)
    texts = [" ".join(rng.choice(WORDS) for _ in range(15)) + "\n\tx = f(y)\n" for _ in range(200)]
    return {
        "byte_bpe": train_tokenizer("bpe", texts, 500),
        "sp_bpe": train_tokenizer("bpe", texts, 500, byte_level=False),
        "unigram": train_tokenizer("unigram", texts, 400, byte_level=False),
        "wordpiece": train_tokenizer("wordpiece", texts, 300),
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_pieces_rejoin_to_the_token(trained, family) -> None:
    tok = trained[family]
    comp = compositions(tok)
    assert len(comp) > 50, family
    forms = surface_forms(tok)
    rng = np.random.default_rng(0)
    rows = np.arange(len(comp))
    for p in (0.0, 0.5):
        ids, lengths = sample_pieces(comp, rows, rng, p, max_pieces=7)
        assert lengths.min() >= 2 and lengths.max() <= 7
        for r in rows:
            t = int(comp.token_ids[r])
            pieces = ids[r, : lengths[r]].tolist()
            assert t not in pieces
            if lengths[r] < 7:  # not cut
                joined = b"".join(forms.bytes_[i] for i in pieces)
                assert joined == forms.bytes_[t], (family, tok.id_to_token(t), pieces)


def test_bpe_parents_are_the_merge(trained) -> None:
    tok = trained["byte_bpe"]
    comp = compositions(tok)
    vocab = tok.get_vocab()
    # the first merge of a trained BPE joins two bytes into a token of two bytes
    k = int(np.flatnonzero(comp.token_ids == max(comp.token_ids))[0])
    a, b = comp.parents[k]
    assert vocab[tok.id_to_token(a) + tok.id_to_token(b)] == comp.token_ids[k]
    assert comp.children  # BPE has a merge tree to expand


def test_expand_respects_max_pieces_and_probability() -> None:
    children = {10: (5, 6), 5: (1, 2), 6: (3, 4)}
    rng = np.random.default_rng(0)
    assert expand((5, 6), children, rng, 0.0, 7) == [5, 6]
    assert expand((5, 6), children, rng, 1.0, 7) == [1, 2, 3, 4]
    assert expand((5, 6), children, rng, 1.0, 3) in ([1, 2, 6], [5, 3, 4])
    assert len(expand((5, 6), children, rng, 1.0, 2)) == 2


def test_wordpiece_skips_unreachable_tokens() -> None:
    vocab = {"[UNK]": 0, "[unused0]": 1, "[": 2, "]": 3, "un": 4, "##used": 5, "##0": 6,
             "the": 7, "t": 8, "##he": 9, "##h": 10, "##e": 11, "##t": 12}  # fmt: skip
    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    comp = compositions(tok)
    got = {tok.id_to_token(int(t)): [tok.id_to_token(i) for i in p]
           for t, p in zip(comp.token_ids, comp.parents)}  # fmt: skip
    assert "[unused0]" not in got
    assert got["the"] == ["t", "##he"]  # fewest pieces
    assert got["##he"] == ["##h", "##e"]  # continuation pieces only


def test_split_is_stable(trained) -> None:
    comp = compositions(trained["byte_bpe"])
    tr, va = comp.split(0.1)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(comp)
    assert 0 < len(va) < len(comp) * 0.3
    tr2, va2 = comp.split(0.1)
    assert np.array_equal(va, va2)
