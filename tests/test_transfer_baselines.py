"""Baselines behind one interface: shapes, the defining property of each method, specials."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zett.errors import ZettError
from zett.transfer import baselines
from zett.transfer.baselines import METHODS, build_inputs, omp_weights
from zett.transfer.focus import sparsemax

TOL = 1e-6  # float32 sums of a handful of rows


def make_target(path: Path, kind: str = "bpe", byte_level: bool = True, vocab: int = 400) -> Path:
    """A small target tokenizer trained on the tiny texts (+ tokenizer_config.json)."""
    import json

    from zett.testing import tiny_texts
    from zett.tokenizers.convert import save_tokenizer, train_tokenizer

    texts = [t for ts in tiny_texts().values() for t in ts]
    tok = train_tokenizer(kind, texts, vocab, byte_level=byte_level)
    path.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tok, path / "tokenizer.json")
    specials = {"bpe": {"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"}}
    if kind == "wordpiece":
        cfg = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
               "unk_token": "[UNK]", "mask_token": "[MASK]"}  # fmt: skip
    elif kind == "bpe" and byte_level:
        cfg = specials["bpe"]
    else:
        cfg = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    (path / "tokenizer_config.json").write_text(json.dumps(cfg))
    return path / "tokenizer.json"


@pytest.fixture(scope="module")
def target_path(tmp_path_factory) -> Path:
    return make_target(tmp_path_factory.mktemp("target"), "bpe", byte_level=False, vocab=420)


@pytest.fixture(scope="module")
def inputs(tiny_llama_dir, target_path):
    from zett.models.load import load_model
    from zett.testing import tiny_texts
    from zett.tokenizers.surface import load_tokenizer

    loaded = load_model(tiny_llama_dir)
    base_tok = load_tokenizer(tiny_llama_dir / "tokenizer.json")
    target_tok = load_tokenizer(target_path)
    texts = [t for ts in tiny_texts().values() for t in ts]
    return build_inputs(loaded, base_tok, target_tok, {"texts": texts, "min_count": 2})


def _base_in(inputs) -> np.ndarray:
    return inputs.matrices()[0]


@pytest.mark.parametrize("method", ["random", "mean", "fvt", "lexical", "focus"])
def test_every_method_is_finite_and_shaped(inputs, method):
    new = METHODS[method](inputs)
    v, d = inputs.n_target, _base_in(inputs).shape[1]
    assert new.input.shape == (v, d) and new.input.dtype == np.float32
    assert np.isfinite(new.input).all()
    assert new.output is None and new.bias is None  # the tiny llama is tied, no bias


@pytest.mark.parametrize("method", ["random", "mean", "fvt", "lexical", "focus"])
def test_specials_take_the_base_row_of_their_role(inputs, method):
    roles_t, roles_b = inputs.target_forms.roles, inputs.base_forms.roles
    assert "eos" in roles_t and "eos" in roles_b
    new = METHODS[method](inputs)
    np.testing.assert_array_equal(new.input[roles_t["eos"]], _base_in(inputs)[roles_b["eos"]])


def test_fvt_is_the_mean_of_pieces(inputs):
    from zett.tokenizers.decompose import decompose

    new = METHODS["fvt"](inputs)
    d = decompose(inputs.target_forms, inputs.base_tokenizer, baselines.DEFAULT_MAX_PIECES)
    base = _base_in(inputs)
    checked = 0
    for t in range(inputs.n_target):
        if t in inputs.special or d.lengths[t] == 0:
            continue
        want = base[d.ids[t, : d.lengths[t]]].mean(0)
        np.testing.assert_allclose(new.input[t], want, atol=TOL)
        checked += 1
    assert checked > inputs.n_target // 2
    assert (d.lengths[list(set(range(inputs.n_target)) - set(inputs.special))] > 1).any()


def test_lexical_copies_shared_rows_exactly(inputs):
    t_ids, b_ids = inputs.shared
    assert len(t_ids) > 50  # same texts: many tokens shared
    new, fvt = METHODS["lexical"](inputs), METHODS["fvt"](inputs)
    np.testing.assert_array_equal(new.input[t_ids], _base_in(inputs)[b_ids])
    rest = np.setdiff1d(np.arange(inputs.n_target), [*t_ids, *inputs.special])
    np.testing.assert_array_equal(new.input[rest], fvt.input[rest])


def test_mean_and_random_statistics(inputs):
    base = _base_in(inputs)
    mean = METHODS["mean"](inputs).input
    rest = np.setdiff1d(np.arange(inputs.n_target), list(inputs.special))
    np.testing.assert_allclose(
        mean[rest], np.broadcast_to(base.mean(0), mean[rest].shape), atol=TOL
    )
    rnd = METHODS["random"](inputs).input[rest]
    assert np.abs(rnd.mean(0) - base.mean(0)).max() < 4 * base.std(0).max() / np.sqrt(len(rest))
    assert (
        np.corrcoef(np.cov(rnd, rowvar=False).ravel(), np.cov(base, rowvar=False).ravel())[0, 1]
        > 0.5
    )
    inputs.options["seed"] = 1
    other = METHODS["random"](inputs).input[rest]
    inputs.options["seed"] = 0
    assert not np.allclose(rnd, other)


def test_focus_mixes_shared_rows_convexly(inputs):
    from zett.transfer.focus import focus_weights

    t_ids, b_ids = inputs.shared
    ids, atoms, coef = focus_weights(
        inputs.target_tokenizer, inputs.n_target, t_ids, inputs.options
    )
    assert len(ids) > 10 and not np.isin(ids, t_ids).any()
    np.testing.assert_allclose(coef.sum(1), 1.0, atol=1e-5)
    assert (coef >= 0).all()
    new = METHODS["focus"](inputs)
    base = _base_in(inputs)
    np.testing.assert_array_equal(new.input[t_ids], base[b_ids])
    t = next(i for i in ids if i not in inputs.special)
    k = list(ids).index(t)
    want = (coef[k][:, None] * base[b_ids[atoms[k]]]).sum(0)
    np.testing.assert_allclose(new.input[t], want, atol=1e-5)


def test_sparsemax_known_values():
    out = sparsemax(np.array([[1.0, 0.0], [0.5, 0.4], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.55, 0.45], [0.5, 0.5]], atol=1e-12)


def test_omp_without_donor_is_a_user_error(inputs):
    inputs.options.pop("donor", None)
    with pytest.raises(ZettError, match="--donor"):
        METHODS["omp"](inputs)


def test_omp_recovers_a_sparse_combination():
    rng = np.random.default_rng(0)
    donor = rng.standard_normal((60, 32)).astype(np.float32)
    shared = np.arange(40)
    coef = np.array([0.7, -0.4, 0.25])
    donor[50] = coef @ donor[[3, 17, 29]]
    ids, atoms, weights = omp_weights(donor, shared, k=3)
    k = list(ids).index(50)
    got = dict(zip(atoms[k].tolist(), weights[k].tolist()))
    assert set(got) == {3, 17, 29}
    np.testing.assert_allclose([got[3], got[17], got[29]], coef, atol=1e-5)


def test_omp_with_a_donor(inputs, tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    cfg = LlamaConfig(vocab_size=inputs.n_target, hidden_size=24, intermediate_size=48,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                      tie_word_embeddings=True)  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(str(tmp_path / "donor"))
    inputs.options.update(donor=str(tmp_path / "donor"), omp_k=8)
    try:
        new = METHODS["omp"](inputs)
    finally:
        inputs.options.pop("donor")
    assert new.input.shape == (inputs.n_target, _base_in(inputs).shape[1])
    assert np.isfinite(new.input).all()
    t_ids, b_ids = inputs.shared
    np.testing.assert_array_equal(new.input[t_ids], _base_in(inputs)[b_ids])


@pytest.fixture(scope="module")
def odd_inputs(tiny_llama_dir, tmp_path_factory):
    """A target with a special token no base role matches and a very long (added) token."""
    import tokenizers

    from zett.models.load import load_model
    from zett.tokenizers.surface import load_tokenizer

    path = make_target(tmp_path_factory.mktemp("odd"), "bpe", byte_level=False, vocab=420)
    tok = tokenizers.Tokenizer.from_file(str(path))
    tok.add_special_tokens(["<|reserved_0|>"])
    tok.add_tokens(["नमस्ते दुनिया, नमस्ते दुनिया"])  # text: ≫ 16 base pieces
    tok.save(str(path))
    loaded = load_model(tiny_llama_dir)
    base_tok = load_tokenizer(tiny_llama_dir / "tokenizer.json")
    return build_inputs(loaded, base_tok, load_tokenizer(path), {"texts": ["a b"], "min_count": 1})


@pytest.mark.parametrize("method", ["random", "mean", "fvt", "lexical", "focus"])
def test_special_without_a_base_counterpart_gets_the_mean_row(odd_inputs, method):
    t = odd_inputs.target_tokenizer.token_to_id("<|reserved_0|>")
    assert t not in odd_inputs.special and odd_inputs.decomposition().neutral[t]
    new = METHODS[method](odd_inputs)
    np.testing.assert_allclose(new.input[t], _base_in(odd_inputs).mean(0), atol=TOL)


def test_fvt_averages_every_piece_of_long_tokens(odd_inputs):
    t = odd_inputs.target_tokenizer.token_to_id("नमस्ते दुनिया, नमस्ते दुनिया")
    d = odd_inputs.decomposition()
    assert d.n_truncated == 0 and d.lengths[t] > 16
    base = _base_in(odd_inputs)
    new = METHODS["fvt"](odd_inputs)
    np.testing.assert_allclose(new.input[t], base[d.ids[t, : d.lengths[t]]].mean(0), atol=TOL)
    odd_inputs.options["max_pieces"] = 4  # the explicit option still truncates
    try:
        cut = METHODS["fvt"](odd_inputs)
    finally:
        del odd_inputs.options["max_pieces"]
    np.testing.assert_allclose(cut.input[t], base[d.ids[t, :4]].mean(0), atol=TOL)


def test_finished_rows_are_exactly_the_rows_finish_sets(odd_inputs):
    """Two different predictions agree after `finish` on its own rows and nowhere else."""
    from zett.transfer.baselines import NewEmbeddings, finish, finished_rows

    v, d = odd_inputs.n_target, _base_in(odd_inputs).shape[1]
    rng = np.random.default_rng(0)
    a, b = (
        finish(NewEmbeddings(rng.standard_normal((v, d)), None, None), odd_inputs) for _ in range(2)
    )
    same = (a.input == b.input).all(1)
    mask = finished_rows(odd_inputs)
    assert mask.sum() >= 2  # the unmatched special (neutral) and a matched one
    np.testing.assert_array_equal(same, mask)
