"""Sentence-embedding agreement: perfect for a model against itself, low for a broken copy."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from zett.errors import ZettError
from zett.eval.embedding_agreement import (
    agreement_scores,
    embedding_agreement,
    embedding_agreement_models,
    retrieval_ranks,
    split_halves,
)
from zett.eval.texts import local_texts

COS_TOL = 1e-5  # float32 dot product of unit vectors


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    prose = " ".join(local_texts(max_bytes=8_000)["en"])
    parts = [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", prose)]
    unique = list(dict.fromkeys(s for s in parts if len(s.split()) >= 6))
    assert len(unique) >= 30
    return unique[:40]


def _wordpiece(sentences: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(
        vocab_size=500, special_tokens=specials, show_progress=False
    )
    tok.train_from_iterator(sentences, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.BertProcessing(("[SEP]", sep), ("[CLS]", cls))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _tiny_bert(vocab_size: int) -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=0.3,  # spread-out random embeddings: sentences differ more
    )
    return BertModel(config).eval()


def test_model_against_itself_agrees_perfectly_and_broken_copy_does_not(sentences, tmp_path):
    tokenizer = _wordpiece(sentences)
    model = _tiny_bert(len(tokenizer))
    for name in ("orig", "same"):
        model.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
    same = embedding_agreement(tmp_path / "orig", tmp_path / "same", sentences)
    assert same["mean_cosine"] == pytest.approx(1.0, abs=COS_TOL)
    assert same["top1"] == 1.0 and same["mrr"] == 1.0
    assert same["halves_top1"] == same["reference_halves_top1"]
    assert same["n_sentences"] == len(sentences)

    broken = _tiny_bert(len(tokenizer))
    with torch.no_grad():
        emb = broken.embeddings.word_embeddings.weight
        emb.copy_(emb[torch.randperm(emb.shape[0], generator=torch.Generator().manual_seed(1))])
    bad = embedding_agreement_models((model, tokenizer), (broken, tokenizer), sentences)
    print({k: round(v, 3) for k, v in bad.items()})
    assert bad["mean_cosine"] < same["mean_cosine"] - 0.05, bad
    assert bad["top1"] < 0.5
    assert bad["mrr"] < same["mrr"] - 0.3


def test_retrieval_ranks_count_ties_against_the_right_key():
    rng = np.random.default_rng(0)
    keys = rng.normal(size=(5, 8))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    assert retrieval_ranks(keys, keys).tolist() == [1] * 5
    collapsed = np.tile(keys[:1], (5, 1))
    assert retrieval_ranks(collapsed, collapsed).tolist() == [5] * 5
    # query i = key (i+1) % 5: the right key is never the best match
    scores = agreement_scores(keys, np.roll(keys, -1, axis=0))
    assert scores["top1"] == 0.0 and scores["mrr"] < 1.0
    with pytest.raises(ZettError, match="n >= 2"):
        agreement_scores(keys[:1], keys[:1])


def test_split_halves_skips_short_sentences():
    firsts, seconds = split_halves(["one two three four five", "too short", "a b c d"])
    assert firsts == ["one two", "a b"]
    assert seconds == ["three four five", "c d"]


# Topically distinct, so the two halves of one sentence share a topic with nothing else.
TOPICAL = [
    "The cat sat quietly on the warm windowsill all afternoon watching birds",
    "Interest rates were raised again by the central bank to fight inflation",
    "The football team scored three goals in the second half of the match",
    "She baked a chocolate cake with fresh strawberries for the birthday party",
    "Heavy rain caused flooding across the valley and closed several roads",
    "The new smartphone has a larger battery and a faster processor inside",
    "Astronomers observed a distant galaxy through the orbiting space telescope",
    "The orchestra rehearsed the symphony twice before the evening concert",
]


@pytest.mark.slow
def test_minilm_against_itself(minilm_dir):
    result = embedding_agreement(minilm_dir, minilm_dir, TOPICAL)
    print(result)
    assert result["mean_cosine"] == pytest.approx(1.0, abs=COS_TOL)
    assert result["top1"] == 1.0
    assert result["halves_top1"] == result["reference_halves_top1"]
    assert result["reference_halves_top1"] >= 0.75  # a real encoder links halves by topic
