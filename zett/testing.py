"""Hermetic tiny assets for tests: a tokenizer, random-weight base models and a corpus,
all built locally in seconds (nothing from the network, no ../shared needed)."""

from __future__ import annotations

from pathlib import Path

from zett.eval.texts import local_texts

EXTRA = {
    "de": [
        "Der schnelle braune Fuchs springt über den faulen Hund. Größere Übungen sind schwierig.",
        "Die Stadt liegt am Fluss, und im Sommer fahren viele Menschen mit dem Fahrrad zur Arbeit.",
    ],
    "ru": [
        "Быстрая коричневая лиса прыгает через ленивую собаку. Это предложение на русском языке.",
        "Город стоит на реке, и летом многие люди ездят на работу на велосипеде.",
    ],
}


# Words in several scripts + code tokens, for tokenizer tests that build their own corpora.
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "Zürich",
    "café",
    "straße",
    "Größe",
    "привет",
    "мир",
    "как",
    "дела",
    "中文",
    "分词",
    "日本語",
    "مرحبا",
    "def",
    "return",
    "self",
    "import",
    "numpy",
    "as",
    "np",
    "if",
    "else",
    "for",
    "while",
    "(",
    ")",
    ":",
    ",",
    ".",
    "!",
    "?",
]


def tiny_texts() -> dict[str, list[str]]:
    texts = local_texts(max_bytes=60_000)
    texts.update({k: v * 20 for k, v in EXTRA.items()})
    return texts


def make_tokenizer(path: Path, vocab_size: int = 512):
    """A byte-level BPE tokenizer with bos/eos, trained on the tiny texts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([t for ts in tiny_texts().values() for t in ts], trainer)
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    return tok


def make_tiny_llama(path: Path, vocab_size: int = 512, seed: int = 0) -> Path:
    """A 2-layer random Llama (tied embeddings) + its tokenizer as a HF directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = make_tokenizer(path, vocab_size)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(str(path))
    PreTrainedTokenizerFast(
        tokenizer_file=str(path / "tokenizer.json"),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    ).save_pretrained(str(path))
    return path


def make_tiny_pair(root: Path) -> tuple[Path, Path]:
    """A tiny base model dir and an unseen 400-token target tokenizer dir under `root`."""
    base = make_tiny_llama(root / "base")
    target = root / "target"
    make_tokenizer(target, vocab_size=400)
    return base, target


def make_tiny_corpus(path: Path) -> Path:
    """A saved DatasetDict (train/valid/test; columns text, lang, source)."""
    import datasets

    rows: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    for lang, texts in tiny_texts().items():
        for i, text in enumerate(texts):
            split = "valid" if i % 10 == 1 else "test" if i % 10 == 2 else "train"
            rows[split].append({"text": text, "lang": lang, "source": "tests/tiny.py"})
    dd = datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in rows.items()})
    dd.save_to_disk(str(path))
    return path


def make_tiny_bert(path: Path, mlm: bool = False, seed: int = 0) -> Path:
    """A 2-layer random BERT (BertModel, or BertForMaskedLM with `mlm`) + WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertModel, PreTrainedTokenizerFast

    from zett.tokenizers.convert import train_tokenizer

    texts = [t for ts in tiny_texts().values() for t in ts]
    tok = train_tokenizer("wordpiece", texts, 400)
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=256,
        pad_token_id=tok.token_to_id("[PAD]") or 0,
    )
    (BertForMaskedLM if mlm else BertModel)(cfg).save_pretrained(str(path))
    PreTrainedTokenizerFast(
        tokenizer_file=str(path / "tokenizer.json"),
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]",
    ).save_pretrained(str(path))  # fmt: skip
    return path
