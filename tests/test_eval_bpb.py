"""Bits per byte: our batched, chunked figure equals transformers' own loss; chunking is exact."""

from __future__ import annotations

import json
import math
import types

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from zett.data.budget import truncate_to_bytes
from zett.errors import ZettError
from zett.eval.bpb import (
    bits_per_byte,
    chunk_token_ids,
    context_start_id,
    evaluate_model,
    run_eval,
    tokens_per_byte,
)
from zett.eval.texts import heldout_texts, local_texts

REL_TOL = 1e-5  # float32, whole model, same ops in a different batch layout

# Multi-byte characters on purpose: bytes != characters, so a char count would be caught.
EXTRA_TEXTS = [
    "Größenordnung: Die Straße führt über die Brücke — nicht weit.",
    "Café, naïve, résumé; 東京は大きい。 emoji 🙂 end",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    local = local_texts(max_bytes=3_000)
    return local["en"] + local["code"] + EXTRA_TEXTS


def _train_tokenizer(texts: list[str], with_bos: bool) -> PreTrainedTokenizerFast:
    specials = ["<pad>", "<s>", "</s>"] if with_bos else ["<pad>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    kwargs = {"bos_token": "<s>", "eos_token": "</s>"} if with_bos else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", **kwargs)


def _tiny_llama(vocab_size: int, with_bos: bool) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=1 if with_bos else None,
        eos_token_id=2 if with_bos else None,
        pad_token_id=0,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


def _reference_bpb(model, tokenizer, texts, chunk: int, start: int | None) -> float:
    """Independent figure: unbatched chunks scored by transformers' own `labels=` loss."""
    nll = 0.0
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if start is not None:
            pieces = [[start] + ids[i : i + chunk] for i in range(0, len(ids), chunk)]
        else:  # overlap by one: the previous chunk's last token is the unscored context
            pieces = [ids[max(i - 1, 0) : i + chunk] for i in range(1, len(ids), chunk)]
        for piece in pieces:
            x = torch.tensor([piece])
            with torch.no_grad():
                loss = model(input_ids=x, labels=x).loss
            nll += float(loss) * (len(piece) - 1)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return nll / n_bytes / math.log(2)


@pytest.mark.parametrize("with_bos", [True, False])
def test_bpb_matches_transformers_loss(texts, with_bos):
    tokenizer = _train_tokenizer(texts, with_bos)
    model = _tiny_llama(len(tokenizer), with_bos)
    start = context_start_id(tokenizer, model.config)
    assert start == (tokenizer.convert_tokens_to_ids("<s>") if with_bos else None)
    chunk = 23  # texts are ~300 tokens long: many chunks, a ragged last one
    got = bits_per_byte(model, tokenizer, texts, chunk_tokens=chunk, batch_size=3)
    want = _reference_bpb(model, tokenizer, texts, chunk, start)
    assert got.bpb == pytest.approx(want, rel=REL_TOL)
    assert got.bpb == pytest.approx(got.nll_nats / got.n_bytes / math.log(2), rel=1e-12)
    # random weights over a 400-token vocab: about ln(400) nats per token
    assert 0.8 * math.log(400) < got.nll_nats / got.n_predicted < 1.2 * math.log(400)
    expected_unpredicted = 0 if with_bos else len(texts)
    assert got.n_unpredicted == expected_unpredicted
    assert got.n_predicted + got.n_unpredicted == got.n_tokens


def test_bpb_independent_of_batch_size_and_chunk_order(texts):
    tokenizer = _train_tokenizer(texts, with_bos=True)
    model = _tiny_llama(len(tokenizer), with_bos=True)
    one = bits_per_byte(model, tokenizer, texts, chunk_tokens=40, batch_size=1)
    many = bits_per_byte(model, tokenizer, texts[::-1], chunk_tokens=40, batch_size=16)
    assert many.bpb == pytest.approx(one.bpb, rel=REL_TOL)
    assert (many.n_tokens, many.n_bytes, many.n_chunks) == (one.n_tokens, one.n_bytes, one.n_chunks)


def test_tokens_per_byte_counts_utf8_bytes_without_specials(texts):
    tokenizer = _train_tokenizer(texts, with_bos=True)
    model = _tiny_llama(len(tokenizer), with_bos=True)
    n_tokens = sum(len(tokenizer.encode(t, add_special_tokens=False)) for t in EXTRA_TEXTS)
    n_bytes = sum(len(t.encode("utf-8")) for t in EXTRA_TEXTS)
    assert n_bytes > sum(len(t) for t in EXTRA_TEXTS)
    result = bits_per_byte(model, tokenizer, EXTRA_TEXTS, chunk_tokens=8)
    assert result.n_bytes == n_bytes
    assert result.n_tokens == n_tokens
    assert result.tokens_per_byte == pytest.approx(n_tokens / n_bytes)
    assert tokens_per_byte(tokenizer, EXTRA_TEXTS) == pytest.approx(n_tokens / n_bytes)
    assert result.n_chunks == sum(math.ceil(n / 8) for n in _lengths(tokenizer, EXTRA_TEXTS))


def _lengths(tokenizer, texts):
    return [len(tokenizer.encode(t, add_special_tokens=False)) for t in texts]


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=2_000),
    chunk=st.integers(min_value=1, max_value=600),
    start=st.one_of(st.none(), st.integers(min_value=0, max_value=5)),
)
def test_chunking_predicts_every_token_exactly_once(n, chunk, start):
    ids = [1000 + i for i in range(n)]  # distinct, and never equal to a starter id
    chunks = chunk_token_ids(ids, chunk, start)
    targets = []
    for inputs, n_predicted in chunks:
        assert n_predicted == len(inputs) - 1 >= 1
        assert len(inputs) <= chunk + 1
        if start is not None:
            assert inputs[0] == start
        targets.extend(inputs[1:])
    assert targets == (ids if start is not None else ids[1:])
    # no chunk is shorter than needed: only the last one may be ragged
    assert all(len(inputs) == chunk + 1 for inputs, _ in chunks[:-1])


def test_chunk_tokens_must_be_positive():
    with pytest.raises(ZettError, match="chunk_tokens"):
        chunk_token_ids([1, 2, 3], 0, None)


def test_context_start_rule_only_accepts_special_tokens(texts):
    tokenizer = _train_tokenizer(texts, with_bos=False)
    pad = tokenizer.pad_token_id
    ordinary = tokenizer.convert_tokens_to_ids("e")
    # a stale config BOS that is an ordinary token of this vocab is ignored ...
    assert context_start_id(tokenizer, types.SimpleNamespace(bos_token_id=ordinary)) is None
    # ... a config id that is special here is accepted, and a list (Llama-3 EOS) works
    cfg = types.SimpleNamespace(bos_token_id=None, eos_token_id=[pad, ordinary])
    assert context_start_id(tokenizer, cfg) == pad
    with_bos = _train_tokenizer(texts, with_bos=True)
    cfg = types.SimpleNamespace(bos_token_id=with_bos.eos_token_id)
    assert context_start_id(with_bos, cfg) == with_bos.bos_token_id  # tokenizer BOS first


def test_run_eval_writes_json_report(texts, tmp_path):
    tokenizer = _train_tokenizer(texts, with_bos=True)
    model = _tiny_llama(len(tokenizer), with_bos=True)
    model_dir = tmp_path / "tiny"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps({"en": texts[:3], "de": EXTRA_TEXTS[:1]}))
    out = tmp_path / "res" / "results.json"
    result = run_eval(
        model_dir, max_bytes=500, output_json=out, texts_path=texts_file, device="cpu"
    )
    on_disk = json.loads(out.read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert set(on_disk["per_lang"]) == {"en", "de"}
    assert on_disk["per_lang"]["en"]["n_bytes"] <= 500
    assert on_disk["protocol"]["context_start_token"] == "<s>"
    mean = (on_disk["per_lang"]["en"]["bpb"] + on_disk["per_lang"]["de"]["bpb"]) / 2
    assert on_disk["mean"]["bpb"] == pytest.approx(mean)
    direct = bits_per_byte(model, tokenizer, truncate_to_bytes(texts[:3], 500))
    assert on_disk["per_lang"]["en"]["bpb"] == pytest.approx(direct.bpb, rel=REL_TOL)
    with pytest.raises(ZettError, match="no texts for fr"):
        run_eval(model_dir, langs=["fr"], texts_path=texts_file, device="cpu")
    with pytest.raises(ZettError, match="non-empty"):
        evaluate_model(model_dir, {"en": [""]}, device="cpu")


def test_truncate_to_bytes_never_splits_a_character():
    texts = ["ab", "", "ü" * 10, "tail"]
    cut = truncate_to_bytes(texts, 7)  # "ab" (2) + 2.5 umlauts -> 2 umlauts (4 bytes)
    assert cut == ["ab", "üü"]
    assert sum(len(t.encode()) for t in cut) <= 7
    assert truncate_to_bytes(texts, 1000) == ["ab", "ü" * 10, "tail"]


def test_heldout_texts_missing_corpus_is_a_clear_error(monkeypatch):
    from zett.eval import texts as texts_module

    def missing(path_or_default="default"):
        raise ZettError("~/.cache/zett/corpus is not prepared")

    monkeypatch.setattr(texts_module, "load_corpus", missing)
    with pytest.raises(ZettError, match="zett prepare corpus"):
        heldout_texts()


def test_heldout_texts_from_a_saved_corpus(monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("ZETT_CACHE", str(tmp_path))
    rows = {  # doc 1 is stored as two rows: they must come back as one text
        "text": ["one ", "two", "zwei drei", "four", "x" * 50],
        "lang": ["en", "en", "de", "en", "code"],
        "source": ["s"] * 5,
        "doc_id": [1, 1, 2, 3, 4],
    }
    split = datasets.Dataset.from_dict(rows)
    datasets.DatasetDict({"train": split, "valid": split, "test": split}).save_to_disk(
        str(tmp_path / "corpus")
    )
    got = heldout_texts(split="test", langs=["en", "code"], max_bytes=9)
    assert got == {"en": ["one two", "fo"], "code": ["x" * 9]}
    assert list(heldout_texts(max_bytes=100)) == ["code", "de", "en"]
    with pytest.raises(ZettError, match="no texts for fr"):
        heldout_texts(langs=["fr"])
    with pytest.raises(ZettError, match="no split 'dev'"):
        heldout_texts(split="dev")


@pytest.mark.slow
def test_smollm2_bpb_is_in_a_sane_range(smollm2_dir):
    texts = local_texts(max_bytes=4_000)
    report = evaluate_model(smollm2_dir, texts, device="cpu", progress=False)
    print({lang: round(r.bpb, 4) for lang, r in report.per_lang.items()}, report.start_token)
    assert report.start_token == "<|im_start|>"  # tokenizer BOS, a special token
    for lang in ("en", "code"):
        result = report.per_lang[lang]
        assert 0.5 < result.bpb < 1.5, (lang, result)
        assert result.n_unpredicted == 0
        assert 0.15 < result.tokens_per_byte < 0.4  # a 49k BPE: ~3-5 bytes per token
