"""The batch pipeline: determinism, resume, mixture, subsample index space, shared tokens."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from zett.config import DataConfig
from zett.data.pipeline import (
    BatchIterator,
    TextMixture,
    draw_vocab_size,
    fit_to_rows,
    fixed_tokenizer_batches,
    negative_offsets,
    subsample_vocab,
)
from zett.errors import ZettError
from zett.tokenizers.surface import surface_forms

pytest.importorskip("zett.tokenizers.decompose")

WORDS = {
    "en": "the cat sat on a mat while the dog ran far away from home",
    "de": "der Hund läuft über die Straße und die Katze schläft im Haus",
    "ru": "собака бежит по улице а кошка спит дома весь день",
    "ja": "犬は通りを走り猫は一日中家で寝ています",
    "python": "def run(x):\n    return [i * 2 for i in range(x)]\n",
}


def make_data(n_per_lang: int = 20, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for lang, text in WORDS.items():
        toks = text.split(" ")
        for _ in range(n_per_lang):
            k = int(rng.integers(3, 30))
            out.append((lang, " ".join(rng.choice(toks, size=k))))
    return out


@pytest.fixture(scope="module")
def base_tok() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([t for _, t in make_data(10, 1)], trainer)
    return tok


def cfg(**kw) -> DataConfig:
    base = dict(
        batch_size=4,
        seq_len=16,
        vocab_size_min=300,
        vocab_size_max=400,
        texts_per_sample=12,
        n_token_subsample=128,
        prefetch=0,
        seed=3,
    )
    base.update(kw)
    return DataConfig(**base)


def assert_same(a, b) -> None:
    for name in ("input_ids", "attention_mask", "piece_ids", "piece_lengths", "vocab_mask",
                 "unigram_logprobs", "shared_idx", "shared_base_ids", "shared_mask", "n_bytes",
                 "vocab_ids"):  # fmt: skip
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.langs == b.langs


def test_shapes_and_index_space(base_tok) -> None:
    c = cfg()
    b = BatchIterator(make_data(), base_tok, c, max_pieces=5).batch(0)
    n, p = c.n_token_subsample, 5
    assert b.input_ids.shape == b.attention_mask.shape == (4, 16)
    assert b.piece_ids.shape == (n, p) and b.piece_lengths.shape == (n,)
    assert b.vocab_mask.shape == b.unigram_logprobs.shape == b.shared_mask.shape == (n,)
    assert b.input_ids.dtype == np.int32 and b.piece_ids.dtype == np.int32
    present = np.unique(b.input_ids[b.attention_mask == 1])
    # tokens of the batch occupy the first rows, all of them real rows
    np.testing.assert_array_equal(present, np.arange(len(present)))
    assert b.vocab_mask[: len(present)].all()
    assert int(b.vocab_mask.sum()) == min(n, b.vocab_size)
    assert (b.vocab_ids[b.vocab_mask] < b.vocab_size).all()
    assert len(set(b.vocab_ids[b.vocab_mask].tolist())) == int(b.vocab_mask.sum())


def test_rows_decode_back_to_the_text(base_tok) -> None:
    """Short texts fit whole: joining each token's base pieces gives the text back, which
    checks cropping, id remapping and decomposition together; n_bytes counts its bytes."""
    c = cfg(seq_len=64, n_token_subsample=512)
    it = BatchIterator(make_data(), base_tok, c, max_pieces=16)
    forms = surface_forms(base_tok)
    checked = 0
    for step in range(3):
        b = it.batch(step)
        rng = np.random.default_rng([c.seed, step])  # re-draw the texts the batch used
        drawn = it.mixture.draw(rng, c.texts_per_sample)
        for r in range(c.batch_size):
            ids = b.input_ids[r][b.attention_mask[r] == 1]
            if len(ids) == c.seq_len:
                continue  # cropped
            data = b"".join(
                forms.bytes_[p] for i in ids for p in b.piece_ids[i, : b.piece_lengths[i]]
            )
            assert data.decode("utf-8") == drawn[r][1]
            assert b.n_bytes[r] == len(data)
            checked += 1
    assert checked > 3


def test_shared_tokens_share_bytes(base_tok) -> None:
    b = BatchIterator(make_data(), base_tok, cfg(), max_pieces=8).batch(1)
    forms = surface_forms(base_tok)
    assert b.shared_mask.sum() > 10
    for i, j in zip(b.shared_idx[b.shared_mask], b.shared_base_ids[b.shared_mask]):
        assert b.vocab_mask[i]
        row = b"".join(forms.bytes_[p] for p in b.piece_ids[i, : b.piece_lengths[i]])
        assert row == forms.bytes_[int(j)]
    assert not b.shared_mask[int(b.shared_mask.sum()) :].any()


def test_same_seed_same_batches_and_resume(base_tok) -> None:
    data = make_data()
    a = BatchIterator(data, base_tok, cfg(prefetch=2), max_pieces=5)
    first = [next(a) for _ in range(4)]
    a.close()
    again = BatchIterator(data, base_tok, cfg(prefetch=0), max_pieces=5)
    for x in first:
        assert_same(x, next(again))
    resumed = BatchIterator(data, base_tok, cfg(prefetch=2), max_pieces=5, start_step=2)
    assert_same(first[2], next(resumed))
    resumed.skip_to(1)
    assert_same(first[1], next(resumed))
    resumed.close()
    other = BatchIterator(data, base_tok, cfg(seed=4), max_pieces=5).batch(0)
    assert not np.array_equal(other.input_ids, first[0].input_ids)


def test_vocab_size_distribution(base_tok) -> None:
    c = cfg(vocab_size_min=260, vocab_size_max=300, texts_per_sample=40)
    it = BatchIterator(make_data(40), base_tok, c, max_pieces=5)
    sizes = np.array([it.batch(s).vocab_size for s in range(60)])
    assert sizes.min() >= 260 and sizes.max() <= 300
    assert abs(sizes.mean() - 280) < 6  # uniform: sd of the mean ≈ 1.5
    assert (sizes < 280).sum() > 15 and (sizes > 280).sum() > 15


def test_log_uniform_vocab_sizes_give_each_octave_equal_odds() -> None:
    c = DataConfig(vocab_size_min=16384, vocab_size_max=262144, vocab_size_log=True)
    rng = np.random.default_rng(0)
    sizes = np.array([draw_vocab_size(rng, c) for _ in range(8000)])
    assert sizes.min() >= 16384 and sizes.max() <= 262144
    per_octave = np.histogram(sizes, bins=[16384, 32768, 65536, 131072, 262145])[0]
    assert np.all(np.abs(per_octave - 2000) < 150), per_octave  # sd ≈ 39 each
    # uniform (the default) would put ~7% below 32k, not a quarter
    flat = DataConfig(vocab_size_min=16384, vocab_size_max=262144)
    uniform = np.array([draw_vocab_size(rng, flat) for _ in range(8000)])
    assert (uniform < 32768).mean() < 0.1
    # the default draw is the one every earlier run made
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert draw_vocab_size(a, flat) == int(b.integers(16384, 262145))


def test_language_mixture() -> None:
    data = make_data(50)
    mix = TextMixture(data, {"en": 3.0, "ja": 1.0, "python": 0.0})
    langs = Counter(lg for lg, _ in mix.draw(np.random.default_rng(0), 4000))
    assert set(langs) == {"en", "ja"}
    assert abs(langs["en"] / 4000 - 0.75) < 0.03
    prop = TextMixture(data[:50] + data[50:60])  # 50 en, 10 de: proportional to size
    langs = Counter(lg for lg, _ in prop.draw(np.random.default_rng(1), 3000))
    assert abs(langs["en"] / 3000 - 50 / 60) < 0.03


def test_batch_langs_follow_mixture(base_tok) -> None:
    c = cfg(langs={"de": 1.0, "ru": 1.0})
    it = BatchIterator(make_data(), base_tok, c, max_pieces=5)
    langs = Counter(lg for s in range(15) for lg in it.batch(s).langs)
    assert set(langs) == {"de", "ru"} and min(langs.values()) > 15


def test_bad_config_errors(base_tok) -> None:
    with pytest.raises(ZettError, match="data.langs"):
        BatchIterator(make_data(), base_tok, cfg(langs={"xx": 1.0}), max_pieces=5)
    with pytest.raises(ZettError, match="n_token_subsample"):
        BatchIterator(make_data(), base_tok, cfg(seq_len=64, n_token_subsample=32), max_pieces=5)
    for bad in ([], ["gpt2", "sentencepiece"]):
        with pytest.raises(ZettError, match="data.pretokenizers"):
            BatchIterator(make_data(), base_tok, cfg(pretokenizers=bad), max_pieces=5)


def test_one_pretokenizer_draws_nothing_two_are_both_drawn(base_tok, monkeypatch) -> None:
    """Listing only gpt2 keeps the batch stream of older configs; with two listed, batches
    sample tokenizers with each of them."""
    from zett.data import pipeline, sampler

    used: list[str] = []

    def recording(*args, pretokenizer: str = "gpt2", **kw):
        used.append(pretokenizer)
        return sampler.sample_tokenizer(*args, pretokenizer=pretokenizer, **kw)

    plain = BatchIterator(make_data(), base_tok, cfg(), max_pieces=5)
    expected = [plain.batch(s) for s in range(3)]
    monkeypatch.setattr(pipeline, "sample_tokenizer", recording)
    same = BatchIterator(make_data(), base_tok, cfg(pretokenizers=["gpt2"]), max_pieces=5)
    for s, a in enumerate(expected):
        b = same.batch(s)
        np.testing.assert_array_equal(a.input_ids, b.input_ids)
        np.testing.assert_array_equal(a.piece_ids, b.piece_ids)
    assert used == ["gpt2"] * 3
    used.clear()
    two = cfg(pretokenizers=["gpt2", "punct_attach"])
    mixed = BatchIterator(make_data(), base_tok, two, max_pieces=5)
    for s in range(12):
        mixed.batch(s)
    assert set(used) == {"gpt2", "punct_attach"}


def test_fixed_tokenizer_batches(base_tok) -> None:
    texts = [t for _, t in make_data(3)]
    batches = list(fixed_tokenizer_batches(base_tok, texts, base_tok, 4, 3, 8, lang="mix"))
    v = base_tok.get_vocab_size()
    n_tokens = sum(len(e.ids) for e in base_tok.encode_batch(texts, add_special_tokens=False))
    assert sum(int(b.attention_mask.sum()) for b in batches) == n_tokens
    assert sum(int(b.n_bytes.sum()) for b in batches) == sum(len(t.encode()) for t in texts)
    b = batches[0]
    assert b.piece_ids.shape == (v, 4) and b.vocab_mask.all()
    # the base tokenizer shares every token with itself
    assert int(b.shared_mask.sum()) == v


def test_short_first_keeps_used_tokens_and_orders_by_length() -> None:
    from zett.data.pipeline import short_first

    rng = np.random.default_rng(0)
    for _ in range(200):
        n_rows = 64
        n_real = int(rng.integers(10, n_rows + 1))
        n_present = int(rng.integers(1, n_real + 1))
        lengths = np.zeros(n_rows, np.int32)
        lengths[:n_real] = rng.integers(1, 8, n_real)
        short_rows = int(rng.integers(1, n_rows))
        order, new_len = short_first(lengths, n_real, n_present, short_rows, 3)
        kept = order[order >= 0]
        assert len(set(kept.tolist())) == len(kept)  # no row twice
        assert set(range(n_present)) <= set(kept.tolist())  # every used token is kept
        assert new_len[:short_rows].max() <= 3
        assert np.all(new_len[order < 0] == 0)
        real = order >= 0
        cut = (new_len[real] != lengths[order[real]]).sum()
        # only used tokens that did not fit a long slot are ever cut
        assert cut <= max(0, int((lengths[:n_present] > 3).sum()) - (n_rows - short_rows))


def test_short_rows_batch_is_consistent(base_tok) -> None:
    """With data.short_rows the batch's ids still point at rows with the right pieces."""
    plain = BatchIterator(make_data(), base_tok, cfg(), max_pieces=5).batch(2)
    c = cfg(short_rows=64, short_pieces=2)
    short = BatchIterator(make_data(), base_tok, c, max_pieces=5).batch(2)
    m = plain.attention_mask > 0
    assert np.array_equal(plain.vocab_ids[plain.input_ids][m], short.vocab_ids[short.input_ids][m])
    assert short.piece_lengths[:64].max() <= 2
    by_id = {int(v): (plain.piece_ids[i], plain.piece_lengths[i])
             for i, v in enumerate(plain.vocab_ids) if v >= 0}  # fmt: skip
    for i, v in enumerate(short.vocab_ids):
        if v >= 0 and short.piece_lengths[i] == by_id[int(v)][1]:
            assert np.array_equal(short.piece_ids[i], by_id[int(v)][0])
    assert np.all(short.vocab_mask[short.shared_idx[short.shared_mask]])
    assert short.shared_mask.sum() > 0


def test_negative_offsets_estimate_the_full_partition_function() -> None:
    """Σ exp(logit + offset) over a subsample is unbiased for Σ exp(logit) over the vocab."""
    rng = np.random.default_rng(0)
    vocab, n_rows = 500, 64
    logits = rng.normal(0, 2, vocab)
    batch = rng.integers(0, 40, size=(2, 16)).astype(np.int32)
    mask = np.ones_like(batch)
    estimates, uncorrected = [], []
    for _ in range(3000):
        ids, _ = subsample_vocab(batch, mask, vocab, n_rows, rng)
        off = negative_offsets(ids, len(np.unique(batch)), vocab)
        estimates.append(np.exp(logits[ids] + off).sum())
        uncorrected.append(np.exp(logits[ids]).sum())
    full = np.exp(logits).sum()
    assert abs(np.mean(estimates) / full - 1) < 0.03
    assert np.mean(uncorrected) / full < 0.5  # what the softmax saw before the correction


def test_stratum_offsets_keep_the_estimate_unbiased_when_short_first_drops_negatives() -> None:
    """short_first keeps short negatives first; when slots run out the long ones are cut
    more, so without stratum_offsets the partition function (long tokens here have the
    larger logits, as an over-confident new row would) is underestimated."""
    from zett.data.pipeline import short_first, stratum_offsets

    rng = np.random.default_rng(0)
    vocab, n_rows, short_rows = 500, 64, 48
    lengths_all = rng.integers(1, 7, vocab).astype(np.int32)
    logits = rng.normal(0, 1, vocab) + (lengths_all > 3)
    batch = rng.integers(0, 20, size=(1, 16)).astype(np.int32)
    mask = np.ones_like(batch)
    n_present = len(np.unique(batch))
    fixed, plain = [], []
    for _ in range(3000):
        ids, _ = subsample_vocab(batch, mask, vocab, n_rows, rng)
        off = negative_offsets(ids, n_present, vocab)
        order, _ = short_first(lengths_all[ids], n_rows, n_present, short_rows, 3)
        keep = order >= 0
        src = np.maximum(order, 0)
        extra = stratum_offsets(lengths_all[ids], order, n_present, n_rows, 3)
        assert np.all(extra[~keep] == 0) and np.all(extra[(order >= 0) & (order < n_present)] == 0)
        row = logits[ids[src]]
        fixed.append(np.exp(row + off[src] + extra)[keep].sum())
        plain.append(np.exp(row + off[src])[keep].sum())
    full = np.exp(logits).sum()
    assert abs(np.mean(fixed) / full - 1) < 0.03
    assert np.mean(plain) / full < 0.9  # dropped negatives, long ones most


def test_batch_offsets_mark_exactly_the_random_rows(base_tok) -> None:
    for kw in ({}, {"short_rows": 64, "short_pieces": 2}):
        b = BatchIterator(make_data(), base_tok, cfg(**kw), max_pieces=5).batch(1)
        present = np.zeros(len(b.vocab_ids), bool)
        present[np.unique(b.input_ids[b.attention_mask > 0])] = True
        negative = b.vocab_mask & ~present
        n_present = int(present.sum())
        expect = np.log((b.vocab_size - n_present) / negative.sum())
        np.testing.assert_allclose(b.logit_offset[negative], expect, rtol=1e-6)
        assert np.all(b.logit_offset[~negative] == 0)
    off = BatchIterator(make_data(), base_tok, cfg(negative_correction=False), max_pieces=5)
    assert off.batch(1).logit_offset is None


def test_fit_to_rows_cuts_rows_at_the_first_token_over_budget() -> None:
    ids = np.array([[1, 2, 3, 1, 0], [2, 4, 1, 5, 6], [7, 1, 2, 3, 3]], np.int32)
    mask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]], np.int32)
    assert fit_to_rows(ids, mask, 7) is mask  # 7 distinct tokens: fits
    cut = fit_to_rows(ids, mask, 4)  # budget {1, 2, 3, 4}
    assert cut.tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]]
    assert len(np.unique(ids[cut > 0])) <= 4
    first_row = fit_to_rows(ids, mask, 2)  # even the first row is cut: {1, 2}
    assert first_row.tolist() == [[1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]


def test_batches_fit_a_row_budget_below_their_token_count(base_tok) -> None:
    """batch × seq_len > n_token_subsample is allowed: the batch is cut to fit, not refused."""
    c = cfg(batch_size=8, seq_len=64, n_token_subsample=96)
    b = BatchIterator(make_data(), base_tok, c, max_pieces=5).batch(0)
    used = np.unique(b.input_ids[b.attention_mask > 0])
    assert len(used) <= 96 and b.attention_mask.sum() >= 64
    assert np.all(b.vocab_mask[used])


def test_min_negatives_keeps_rows_for_random_negatives(base_tok) -> None:
    """A batch with more distinct tokens than the rows fills them all (no negative) unless
    `min_negatives` rows are held back; then it is cut to the rest and they hold negatives."""
    c = cfg(n_token_subsample=32, vocab_size_min=400, vocab_size_max=400)
    full = BatchIterator(make_data(), base_tok, c, max_pieces=5).batch(0)
    present = len(np.unique(full.input_ids[full.attention_mask == 1]))
    assert present >= 30  # the batch used (almost) every row: ≤ 2 random negatives
    kept = BatchIterator(make_data(), base_tok, cfg(**{**vars(c), "min_negatives": 12}), 5)
    b = kept.batch(0)
    present = len(np.unique(b.input_ids[b.attention_mask == 1]))
    assert present <= 20 and int(b.vocab_mask.sum()) == 32  # ≥ 12 rows are negatives
    assert b.attention_mask.sum() < full.attention_mask.sum()
    with pytest.raises(ZettError, match="min_negatives"):
        BatchIterator(make_data(), base_tok, cfg(n_token_subsample=32, min_negatives=20), 5)
