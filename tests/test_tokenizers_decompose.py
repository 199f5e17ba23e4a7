"""Decompositions: pieces re-join to the target token's canonical text, in any family pair.

Property: for every target token t (not special-mapped, not truncated), the base surfaces
of its pieces, joined with `join_surfaces`, equal the canonical bytes of t as the base
tokenizer sees them (`normalized_text` of the base; unk pieces are wildcards).
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import tokenizers

from zett.testing import WORDS
from zett.tokenizers.convert import train_tokenizer
from zett.tokenizers.decompose import decompose, shared_tokens
from zett.tokenizers.special import map_special_tokens
from zett.tokenizers.surface import join_surfaces, load_tokenizer, normalized_text, surface_forms

FAMILIES = ("byte_bpe", "sp_bpe", "byte_unigram", "unigram", "wordpiece")


@pytest.fixture(scope="module")
def trained() -> dict[str, tokenizers.Tokenizer]:
    rng = random.Random(1)
    texts = [" ".join(rng.choice(WORDS) for _ in range(15)) + "\n\tx = f(y)\n" for _ in range(200)]
    return {
        "byte_bpe": train_tokenizer("bpe", texts, 500),
        "sp_bpe": train_tokenizer("bpe", texts, 500, byte_level=False),
        "byte_unigram": train_tokenizer("unigram", texts, 400),
        "unigram": train_tokenizer("unigram", texts, 400, byte_level=False),
        "wordpiece": train_tokenizer("wordpiece", texts, 300),
    }


def unk_of(tok: tokenizers.Tokenizer) -> set[int]:
    return {tok.token_to_id(u) for u in ("<unk>", "[UNK]")} - {None}


def check_decomposition(target: tokenizers.Tokenizer, base: tokenizers.Tokenizer, sample=None):
    """Assert the re-join property; return the Decomposition for further checks."""
    tf, bf = surface_forms(target), surface_forms(base)
    d = decompose(tf, base, max_pieces=12)
    assert d.ids.shape == (len(tf), 12) and d.ids.dtype == np.int32
    assert d.lengths.dtype == np.int32 and np.all(d.ids < len(bf))
    # neutral rows (no pieces): empty ids, special tokens without a base counterpart, and
    # bytes a base without an unk token cannot write (SmolLM2 has no 0xF5 byte token)
    mapped = map_special_tokens(tf, bf)
    single = {b for b in bf.bytes_ if len(b) == 1}
    for i, c in enumerate(tf.canonical()):
        if c == b"" or (tf.is_special[i] and i not in mapped):
            assert d.neutral[i], (i, c)
        elif d.neutral[i]:
            assert not unk_of(base) and any(bytes([x]) not in single for x in c), (i, c)
    unk = {base.token_to_id(u) for u in ("<unk>", "[UNK]")} - {None}
    canon = tf.canonical()
    ids = range(len(tf)) if sample is None else random.Random(0).sample(range(len(tf)), sample)
    checked = 0
    for i in ids:
        n = d.lengths[i]
        if tf.is_special[i] or n == 12 or not canon[i] or d.neutral[i]:
            continue
        text = canon[i].decode("utf-8", errors="replace")
        if "\ufffd" in text:
            continue  # undecodable bytes: covered by test_invalid_utf8_*
        pieces = d.ids[i, :n].tolist()
        # space-marking bases in these tests do not normalize beyond spaces: the bytes stay
        expected = normalized_text(base, text.lstrip(" ")) if bf.implicit_space else canon[i]
        if bf.implicit_space and not expected:
            assert pieces == [base.token_to_id("[UNK]")]
            continue
        if unk & set(pieces):
            sep = rb"[^ ]+" if bf.implicit_space else rb".+?"
            pat = b"".join(
                (rb" " if bf.implicit_space and k and bf.begins_word[p] else b"")
                + (sep if p in unk else re.escape(bf.bytes_[p]))
                for k, p in enumerate(pieces)
            )
            assert re.fullmatch(pat, expected, re.DOTALL), (i, canon[i], pieces)
        else:
            assert join_surfaces(bf, pieces) == expected, (i, canon[i], pieces)
        if bf.implicit_space and not canon[i].startswith(b" ") and text[:1].isalpha():
            assert not bf.begins_word[pieces[0]] or pieces[0] in unk, (canon[i], pieces)
        checked += 1
    assert checked > 0
    return d


@pytest.mark.parametrize("base_name", FAMILIES)
@pytest.mark.parametrize("target_name", FAMILIES)
def test_trained_pairs(trained, target_name, base_name) -> None:
    check_decomposition(trained[target_name], trained[base_name])


def test_begins_word_conventions(trained) -> None:
    bpe, sp, wp = trained["byte_bpe"], trained["sp_bpe"], trained["wordpiece"]
    for target in (bpe, sp, wp):
        tf = surface_forms(target)
        the = {bpe: "Ġthe", sp: "▁the", wp: "the"}[target]
        d_bpe = decompose(tf, bpe, 4)
        d_sp = decompose(tf, sp, 4)
        d_wp = decompose(tf, wp, 4)
        i = target.token_to_id(the)
        assert d_bpe.ids[i, : d_bpe.lengths[i]].tolist() == [bpe.token_to_id("Ġthe")]
        assert d_sp.ids[i, : d_sp.lengths[i]].tolist() == [sp.token_to_id("▁the")]
        assert d_wp.ids[i, : d_wp.lengths[i]].tolist() == [wp.token_to_id("the")]
    # a word-internal target token gets no prefix space in any base
    tf = surface_forms(wp)
    cont = next(t for t in wp.get_vocab() if t.startswith("##") and len(t) > 3 and t[2:].isalpha())
    i = wp.token_to_id(cont)
    for base, marker in ((bpe, "Ġ"), (sp, "▁")):
        d = decompose(tf, base, 8)
        first = base.id_to_token(int(d.ids[i, 0]))
        assert not first.startswith(marker)
    d = decompose(tf, wp, 8)
    assert d.ids[i, : d.lengths[i]].tolist() == [i]  # ##xyz → itself


def test_identity_on_itself(trained) -> None:
    for name in FAMILIES:
        tok = trained[name]
        forms = surface_forms(tok)
        d = decompose(forms, tok, 4)
        # <0x41> is the text "A": it decomposes to the token "A", not to itself
        regular = [
            i for i in range(len(forms)) if not forms.is_special[i] | forms.is_byte_fallback[i]
        ]
        same = sum(d.lengths[i] == 1 and d.ids[i, 0] == i for i in regular)
        assert same / len(regular) > 0.95, name
        specials = np.flatnonzero(forms.is_special)
        assert all(d.ids[i, 0] == i and d.lengths[i] == 1 for i in specials)


def test_invalid_utf8_byte_level_and_fallback(trained) -> None:
    bpe, sp, wp = trained["byte_bpe"], trained["sp_bpe"], trained["wordpiece"]
    target = surface_forms(bpe)
    lone = [i for i, b in enumerate(target.bytes_) if len(b) == 1 and b[0] >= 0x80]
    assert len(lone) == 128
    d = decompose(target, bpe, 4)
    assert all(d.ids[i, 0] == i and d.lengths[i] == 1 for i in lone)
    d = decompose(target, sp, 4)
    for i in lone:
        assert sp.id_to_token(int(d.ids[i, 0])) == f"<0x{target.bytes_[i][0]:02X}>"
    d = decompose(target, wp, 4)
    assert all(d.ids[i, 0] == wp.token_to_id("[UNK]") for i in lone)


def test_truncation_and_special(trained) -> None:
    wp, bpe = trained["wordpiece"], trained["byte_bpe"]
    forms = surface_forms(bpe)
    d1 = decompose(forms, wp, 1)
    d8 = decompose(forms, wp, 8)
    assert d1.n_truncated == int((d8.lengths > 1).sum()) > 0
    assert np.all(d1.lengths <= 1)
    # byte BPE's <|endoftext|> has no WordPiece counterpart: neutral (test_neutral_rows_...)
    sp = trained["sp_bpe"]
    d = decompose(surface_forms(sp), wp, 4)
    assert d.ids[sp.token_to_id("<unk>"), 0] == wp.token_to_id("[UNK]")


def test_shared_tokens(trained) -> None:
    bpe, sp, wp = (surface_forms(trained[k]) for k in ("byte_bpe", "sp_bpe", "wordpiece"))
    t, b = shared_tokens(sp, bpe)
    assert len(t) > 50 and t.dtype == np.int32
    assert all(sp.canonical()[i] == bpe.canonical()[j] for i, j in zip(t, b))
    t, b = shared_tokens(wp, bpe, n_rows=100)
    assert np.all(b < 100) and len(t) > 0
    i = trained["wordpiece"].token_to_id("the")
    t, b = shared_tokens(wp, bpe)
    assert b[list(t).index(i)] == trained["byte_bpe"].token_to_id("Ġthe")
    t, b = shared_tokens(bpe, sp)
    a = trained["sp_bpe"].token_to_id("a")
    assert b[list(t).index(trained["byte_bpe"].token_to_id("a"))] == a  # not <0x61>


def test_real_qwen3_to_smollm2(shared_tokenizers, smollm2_dir) -> None:
    qwen = load_tokenizer(shared_tokenizers / "qwen3")
    smol = load_tokenizer(smollm2_dir)
    d = check_decomposition(qwen, smol, sample=3000)
    qf = surface_forms(qwen)
    assert d.ids[qf.roles["im_end"], 0] == smol.token_to_id("<|im_end|>")
    assert d.ids[qwen.token_to_id("<|endoftext|>"), 0] == smol.token_to_id("<|endoftext|>")
    # no pieces only for specials without a SmolLM2 counterpart and bytes SmolLM2 lacks
    sf = surface_forms(smol)
    mapped = map_special_tokens(qf, sf)
    single = {b for b in sf.bytes_ if len(b) == 1}
    text_neutral = [i for i in np.nonzero(d.neutral)[0] if not qf.is_special[i]]
    assert text_neutral and all(
        any(bytes([x]) not in single for x in qf.bytes_[i]) for i in text_neutral
    )
    assert all(d.neutral[i] for i in range(len(qf)) if qf.is_special[i] and i not in mapped)


def test_neutral_rows_and_no_truncation(trained, smollm2_dir) -> None:
    """Specials without a base counterpart and bytes the base cannot write get no pieces
    (the consumers give them the mean row), never another token's row or their text."""
    wp, bpe = trained["wordpiece"], trained["byte_bpe"]
    d = decompose(surface_forms(bpe), wp, 4)
    eot = bpe.token_to_id("<|endoftext|>")  # WordPiece has no eos/endoftext role
    assert d.neutral[eot] and d.lengths[eot] == 0
    smol = load_tokenizer(smollm2_dir)
    target = surface_forms(bpe)
    lone = {target.bytes_[i][0]: i for i, b in enumerate(target.bytes_) if len(b) == 1}
    d = decompose(target, smol, 4)
    for byte in (0xC0, 0xC1, 0xF5, 0xFF):
        assert d.neutral[lone[byte]], hex(byte)  # SmolLM2 has no such byte and no unk
    assert not d.neutral[lone[0x41]]
    full = decompose(target, wp, None)  # every piece kept
    cut = decompose(target, wp, 2)
    assert full.n_truncated == 0 and full.ids.shape[1] == full.lengths.max() >= 2
    assert cut.n_truncated == int((full.lengths > 2).sum())
    long = [i for i in range(len(target)) if full.lengths[i] > 2]
    assert np.array_equal(full.ids[long, :2], cut.ids[long])


@pytest.mark.parametrize("target", ["llama2", "gpt35turbo"])
def test_real_into_llama2_and_minilm(shared_tokenizers, minilm_dir, smollm2_dir, target) -> None:
    tok = load_tokenizer(shared_tokenizers / target)
    for base in (load_tokenizer(shared_tokenizers / "llama2"), load_tokenizer(minilm_dir)):
        check_decomposition(tok, base, sample=1500)
    smol = load_tokenizer(smollm2_dir)
    check_decomposition(smol, load_tokenizer(shared_tokenizers / "llama2"), sample=1500)


def test_shared_tokens_skip_rows_the_base_never_writes(minilm_dir, shared_tokenizers) -> None:
    """Llama-2's continuation "." has the bytes of WordPiece "##.", but BERT always writes
    "." (punctuation is its own word): with the decomposition, "." maps to "." or nothing."""
    bert = load_tokenizer(minilm_dir)
    llama = load_tokenizer(shared_tokenizers / "llama2")
    tf, bf = surface_forms(llama), surface_forms(bert)
    dot = llama.token_to_id(".")
    t, b = shared_tokens(tf, bf)
    assert bert.id_to_token(int(b[list(t).index(dot)])) == "##."  # bytes alone: the junk row
    d = decompose(tf, bert, 4)
    t2, b2 = shared_tokens(tf, bf, decomposition=d)
    assert dot not in set(t2.tolist())
    assert 0 < len(t) - len(t2) < 0.05 * len(t)  # words ("▁the" ↔ "the") are still shared
    the = llama.token_to_id("▁the")
    assert bert.id_to_token(int(b2[list(t2).index(the)])) == "the"
