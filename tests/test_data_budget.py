"""The byte budget (`zett.data.budget.truncate_to_bytes`): one cut for corpus texts
(`texts_for`, so the trainer's in-loop eval and `zett eval`) and for `zett eval --texts`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zett.data.budget import truncate_to_bytes
from zett.data.corpus import TextTable, texts_for
from zett.errors import ZettError


def nbytes(texts: list[str]) -> int:
    return sum(len(t.encode("utf-8")) for t in texts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="aü日😀\n", max_size=12), max_size=8), st.integers(1, 80))
def test_cut_is_the_longest_prefix_within_budget(texts: list[str], budget: int) -> None:
    cut = truncate_to_bytes(texts, budget)
    whole = [t for t in texts if t]
    assert nbytes(cut) <= budget
    assert all(cut)  # empty texts are dropped
    if cut:
        assert cut[:-1] == whole[: len(cut) - 1]  # whole texts, in order
        assert whole[len(cut) - 1].startswith(cut[-1])  # the last one is a prefix of its text
    else:  # nothing, or not even the first character fits (a prefix: later texts never do)
        assert not whole or len(whole[0][0].encode("utf-8")) > budget
    if nbytes(whole) <= budget:
        assert cut == whole
    else:  # only the bytes of one character that does not fit are left unused
        assert nbytes(cut) > budget - 4


def test_cut_falls_on_a_character_boundary() -> None:
    assert truncate_to_bytes(["ab", "日本"], 4) == ["ab"]  # 日 is 3 bytes: 2 left are not enough
    assert truncate_to_bytes(["ab", "日本"], 5) == ["ab", "日"]
    assert truncate_to_bytes(["😀x"], 3) == []
    assert truncate_to_bytes(["ab", "cd"], 2) == ["ab"]  # budget met exactly: stop there
    with pytest.raises(ZettError, match="max_bytes must be >= 1"):
        truncate_to_bytes(["ab"], 0)


def test_texts_for_is_documents_then_the_same_cut() -> None:
    """`texts_for` joins a document's rows back, then cuts with `truncate_to_bytes`."""
    rows = [
        {"text": "ab", "lang": "en", "doc_id": 1},
        {"text": "ü" * 10, "lang": "en", "doc_id": 1},
        {"text": "x", "lang": "de", "doc_id": 2},
        {"text": "日本語" * 5, "lang": "en", "doc_id": 3},
        {"text": "tail", "lang": "en", "doc_id": 4},
    ]
    corpus = {"test": TextTable(rows)}
    docs = ["ab" + "ü" * 10, "日本語" * 5, "tail"]
    for budget in range(1, nbytes(docs) + 3):
        got = texts_for("test", "en", budget, corpus=corpus)
        assert got == truncate_to_bytes(docs, budget), budget
    assert texts_for("test", "en", 25, corpus=corpus) == ["ab" + "ü" * 10, "日"]
    assert texts_for("test", "en", 24, corpus=corpus) == ["ab" + "ü" * 10]
    assert texts_for("test", "de", 10**6, corpus=corpus) == ["x"]
