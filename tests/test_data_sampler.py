"""Sampled byte-level Unigram tokenizers: round trip, byte coverage, vocab size, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from zett.data.sampler import N_BYTES, piece_bytes, pre_tokenizer, sample_tokenizer
from zett.errors import ZettError

TEXTS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Größe: 5 µm.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "素早い茶色の狐はのろまな犬を飛び越える。日本語の文章です。",
    "敏捷的棕色狐狸跳过了懒狗。这是中文文本。",
    "def f(x):\n    return {'a': x ** 2}  # comment\n\tif x: pass\n",
    "emoji 🦊🐶 and tabs\tand\r\nwindows newlines  double  spaces ",
] * 3


@pytest.mark.parametrize("noise_std", [0.0, 4.0])
def test_round_trip_every_script(noise_std: float) -> None:
    st = sample_tokenizer(TEXTS, np.random.default_rng(0), 600, 1e-5, noise_std)
    for text in set(TEXTS) | {"unseen: ΑΒΓ ñ 한국어 \x00\x7f"}:
        enc = st.tokenizer.encode(text, add_special_tokens=False)
        assert st.tokenizer.decode(enc.ids) == text
        assert b"".join(piece_bytes(st.pieces[i]) for i in enc.ids) == text.encode("utf-8")


def test_bytes_first_and_logprobs_normalized() -> None:
    st = sample_tokenizer(TEXTS, np.random.default_rng(1), 500, 1e-5, 4.0)
    assert [piece_bytes(p) for p in st.pieces[:N_BYTES]] == [bytes([b]) for b in range(256)]
    assert st.tokenizer.get_vocab_size() == st.vocab_size == 500
    assert len(set(st.pieces)) == st.vocab_size
    lse = np.log(np.exp(st.unigram_logprobs.astype(np.float64)).sum())
    assert abs(lse) < 1e-4


def test_same_seed_same_tokenizer_other_seed_differs() -> None:
    a = sample_tokenizer(TEXTS, np.random.default_rng(7), 700, 1e-5, 4.0)
    b = sample_tokenizer(TEXTS, np.random.default_rng(7), 700, 1e-5, 4.0)
    c = sample_tokenizer(TEXTS, np.random.default_rng(8), 700, 1e-5, 4.0)
    assert a.pieces == b.pieces and np.array_equal(a.unigram_logprobs, b.unigram_logprobs)
    assert a.pieces != c.pieces


def test_no_noise_keeps_most_frequent_pieces() -> None:
    texts = ["aaaa bbbb " * 50 + "xyzq"]
    st = sample_tokenizer(texts, np.random.default_rng(0), N_BYTES + 3, 0.0, 0.0)
    extra = {piece_bytes(p) for p in st.pieces[N_BYTES:]}
    # "aa" and "bb" occur 150x each per word type; "xyzq" pieces occur once.
    assert b"aa" in extra and b"bb" in extra
    assert not any(b"x" in p or b"q" in p for p in extra)
    # without noise the rng is irrelevant
    st2 = sample_tokenizer(texts, np.random.default_rng(99), N_BYTES + 3, 0.0, 0.0)
    assert st.pieces == st2.pieces


def test_small_corpus_gives_smaller_vocab_and_bad_size_errors() -> None:
    st = sample_tokenizer(["ab"], np.random.default_rng(0), 10_000, 1e-5, 4.0)
    assert st.vocab_size == N_BYTES + 1  # only "ab" beyond the bytes
    with pytest.raises(ZettError, match="vocab_size"):
        sample_tokenizer(TEXTS, np.random.default_rng(0), 256, 1e-5, 4.0)


@pytest.mark.parametrize("method", ["zett", "log_gumbel"])
def test_both_methods_round_trip_and_keep_bytes(method: str) -> None:
    st = sample_tokenizer(TEXTS, np.random.default_rng(3), 600, 1e-5, 4.0, method=method)
    assert [piece_bytes(p) for p in st.pieces[:N_BYTES]] == [bytes([b]) for b in range(256)]
    for text in set(TEXTS):
        ids = st.tokenizer.encode(text, add_special_tokens=False).ids
        assert b"".join(piece_bytes(st.pieces[i]) for i in ids) == text.encode("utf-8")


def test_zett_scores_weight_pieces_by_their_bytes() -> None:
    # " abcdefgh" (9 bytes) occurs 10x, " xy" (3 bytes) 25x. By count alone a piece of
    # " xy" wins the one free slot; by covered bytes (90 vs 75) the long word does.
    texts = [" abcdefgh" * 10 + " xy" * 25]
    rng = np.random.default_rng(0)
    by_bytes = sample_tokenizer(texts, rng, N_BYTES + 1, 0.0, 0.0, method="zett")
    by_count = sample_tokenizer(texts, rng, N_BYTES + 1, 0.0, 0.0, method="log_gumbel")
    assert piece_bytes(by_bytes.pieces[N_BYTES]) == b" abcdefgh"
    assert piece_bytes(by_count.pieces[N_BYTES]) in (b" x", b"xy", b" xy")


def test_zett_sampler_segments_unseen_text_like_a_real_tokenizer() -> None:
    """The log_gumbel noise picks near-random substrings, cutting unseen text almost into
    characters; the zett sampler's vocabularies stay realistic (median over seeds)."""
    syl = ["ka", "to", "ri", "men", "sa", "lo", "de", "ning", "pu", "ve", "ash", "tor"]
    rng = np.random.default_rng(0)
    words = sorted({"".join(rng.choice(syl, size=rng.integers(1, 4))) for _ in range(600)})
    zipf = 1.0 / np.arange(1, len(words) + 1)
    zipf /= zipf.sum()
    texts = [" ".join(rng.choice(words, size=80, p=zipf)) for _ in range(60)]
    unseen = " ".join(np.random.default_rng(1).choice(words, size=300, p=zipf))

    def bytes_per_token(method: str, seed: int) -> float:
        st = sample_tokenizer(texts, np.random.default_rng(seed), 400, 1e-5, 4.0, method=method)
        return len(unseen) / len(st.tokenizer.encode(unseen, add_special_tokens=False).ids)

    zett = np.median([bytes_per_token("zett", s) for s in range(5)])
    gumbel = np.median([bytes_per_token("log_gumbel", s) for s in range(5)])
    assert zett > 1.5 * gumbel, (zett, gumbel)


def test_unknown_sampler_method_is_a_clear_error() -> None:
    with pytest.raises(ZettError, match="data.sampler"):
        sample_tokenizer(TEXTS, np.random.default_rng(0), 600, method="bpe")


def test_punct_attach_forms_tokens_across_gpt2_boundaries() -> None:
    """punct_attach lets punctuation lead a word and keep its newlines, and groups digits
    by three; gpt2 keeps them apart. Sampled tokenizers of either round-trip every text."""
    text = "def f(self):\n    return self.add(2025)\n"
    words = {
        n: [w for w, _ in pre_tokenizer(n).pre_tokenize_str(text)] for n in ("gpt2", "punct_attach")
    }
    assert {"(self", "):Ċ", ".add", "202", "5", ")Ċ"} <= set(words["punct_attach"])
    assert not {"(self", "):Ċ", ".add"} & set(words["gpt2"]) and "2025" in words["gpt2"]
    assert "".join(words["punct_attach"]) == "".join(words["gpt2"])  # same bytes, other cuts
    code = [text, "x = g(self)\n", "if a.add(b):\n    pass\n"] * 20
    for name in ("gpt2", "punct_attach"):
        st = sample_tokenizer(code + TEXTS, np.random.default_rng(0), 700, pretokenizer=name)
        assert ("):Ċ" in st.pieces) == (name == "punct_attach")
        for t in set(code + TEXTS):
            assert st.tokenizer.decode(st.tokenizer.encode(t, add_special_tokens=False).ids) == t
    with pytest.raises(ZettError, match="data.pretokenizers"):
        pre_tokenizer("whitespace")


def test_metaspace_cuts_only_before_spaces() -> None:
    """metaspace (the SentencePiece convention) keeps everything between two spaces in one
    pre-token, newlines and punctuation included, and makes each indent space its own;
    its sampled tokenizers round-trip every text and form pieces across newlines."""
    text = "import os\nimport sys\n\ndef f(self):\n    return self.add(2025)\n"
    words = [w for w, _ in pre_tokenizer("metaspace").pre_tokenize_str(text)]
    assert words[:3] == ["import", "ĠosĊimport", "ĠsysĊĊdef"]
    assert words[4:8] == ["Ġ", "Ġ", "Ġ", "Ġreturn"]
    assert "".join(words) == "".join(w for w, _ in pre_tokenizer("gpt2").pre_tokenize_str(text))
    code = [text, "x = g(self)\n", "if a.add(b):\n    pass\n"] * 20
    st = sample_tokenizer(code + TEXTS, np.random.default_rng(0), 700, pretokenizer="metaspace")
    assert any("Ċ" in p and p.strip("Ċ") for p in st.pieces)  # e.g. `):Ċ`, `sĊ`
    for t in set(code + TEXTS):
        assert st.tokenizer.decode(st.tokenizer.encode(t, add_special_tokens=False).ids) == t
