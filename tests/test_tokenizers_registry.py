"""Properties over every real tokenizer: `zett prepare tokenizers`' set, SmolLM2's and MiniLM's.

For each tokenizer, on fixed texts (whitespace runs, tabs, CRLF, emoji, CJK, code, ...) and
on hypothesis-generated text:

- round trip: the surface bytes of `encode(text)`'s tokens, joined, are the text as the
  tokenizer sees it (`normalized_text`: its normalizer applied — NFKC for Claude, lower-case
  and accent stripping for MiniLM, NFC for Qwen3 — and its prefix space added); where the
  normalizer leaves the text alone and the family keeps spaces, that is the text's own bytes;
  where the tokenizer has a decoder, it is also the library's own `decode` of the ids. Unknown
  pieces (`[UNK]`) are wildcards; characters a tokenizer cannot write at all (no byte fallback,
  no unk: toke) are left out of the expectation, as the tokenizer drops them;
- decomposition: every token's pieces in SmolLM2, Llama-2 and MiniLM re-join to its bytes;
- special tokens: a role both sides have maps target → base.

A tokenizer that is not prepared is skipped (run `zett prepare tokenizers`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tokenizers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_tokenizers_decompose import check_decomposition
from zett import assets
from zett.errors import ZettError
from zett.tokenizers.registry import sources
from zett.tokenizers.special import BASIC_ROLES, CHAT_ROLES, map_special_tokens
from zett.tokenizers.surface import (
    SPIECE,
    encode_ids,
    join_surfaces,
    load_tokenizer,
    normalized_text,
    surface_forms,
)

NAMES = [*sources(), "smollm2", "minilm"]
FIXED = [
    "The quick brown fox jumps over the lazy dog.",
    "   leading, inner    runs and trailing   ",
    "tabs\tand\t\tmore\ttabs, CRLF\r\nlines\r\n\r\nend",
    "\n\n\n  \n\t\n",
    "emoji: 😀🎉👍🏽 family 👨\u200d👩\u200d👧 flag 🏳️\u200d🌈",
    "中文分词是一个难题。日本語のテキスト、カタカナ。한국어 문장입니다.",
    "Größere Bäume säumen die Straße; naïve café, ﬁ ligature, ① ＡＢＣ x²",
    "Привет, мир! Γειά σου Κόσμε! مرحبا بالعالم नमस्ते दुनिया",
    "def f(x):\n    if x > 0:\n        return x ** 2  # square\n    return {'a': [1, 2]}\n",
    '<div class="a">&amp; 1,234.56 $100 50% a@b.co https://x.org/?q=1</div>',
    "a" * 80 + " " + "0123456789" * 3,
    "",
]
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs",), blacklist_characters=SPIECE),
        st.sampled_from(list(" \t\n\r  ,.é中😀")),
    ),
    max_size=50,
)


@pytest.fixture(scope="module")
def loaded() -> dict[str, tokenizers.Tokenizer]:
    return {}


def get(loaded: dict, name: str) -> tokenizers.Tokenizer:
    if name not in loaded:
        if name in assets.BASE_MODELS:
            path = assets.cache_dir() / name
            if not assets.is_prepared(path):
                pytest.skip(f"{name} is not prepared (run `zett prepare {name}`)")
        else:
            try:
                path = assets.find_tokenizer(name)
            except ZettError:
                pytest.skip(f"{name} is not prepared (run `zett prepare tokenizers`)")
        tok = load_tokenizer(path)
        tok._test_forms = surface_forms(tok)
        loaded[name] = tok
    return loaded[name]


def _layout_facts(tok: tokenizers.Tokenizer) -> dict:
    if not hasattr(tok, "_test_facts"):
        config = json.loads(tok.to_str())
        model = config["model"]
        forms = tok._test_forms
        singles = {b for b in forms.bytes_ if len(b) == 1}
        chars = set()
        for b in forms.bytes_:
            chars.update(b.decode("utf-8", "ignore"))
        tok._test_facts = {
            "drops_unknown": forms.kind == "bpe"
            and not model.get("byte_fallback")
            and not model.get("unk_token"),
            "chars": chars,
            "singles": singles,
            "unk": {i for i in (tok.token_to_id(u) for u in ("<unk>", "[UNK]")) if i is not None},
            "decoder": config.get("decoder") is not None,
        }
    return tok._test_facts


def _content_normalized(tok: tokenizers.Tokenizer, text: str) -> str:
    """The normalizer's output with the visible space mapped back and a prepended one
    dropped: equal to `text` when normalization changes nothing but the space marks."""
    if tok.normalizer is None:
        return text
    out = tok.normalizer.normalize_str(text)
    if SPIECE in out and SPIECE not in text:
        out = out.replace(SPIECE, " ")
        if text and out == " " + text:
            out = out[1:]
    return out


def round_trip(tok: tokenizers.Tokenizer, text: str) -> None:
    """Assert the round-trip properties of the module docstring for one text."""
    forms, facts = tok._test_forms, _layout_facts(tok)
    ids = encode_ids(tok, text)
    expected = normalized_text(tok, text)
    if facts["drops_unknown"]:
        kept = "".join(c for c in expected.decode("utf-8") if c in facts["chars"])
        expected = kept.encode("utf-8")
    if forms.kind.startswith("byte_") and not all(bytes([b]) in facts["singles"] for b in expected):
        return  # a byte-level vocabulary without some bytes (SmolLM2: 0xF5-0xFF) drops them
    joined = join_surfaces(forms, ids)
    unk = facts["unk"] & set(ids)
    if unk:
        sep = rb"[^ ]+" if forms.implicit_space else rb".+?"
        parts = []
        for k, i in enumerate(ids):
            if forms.implicit_space and k and forms.begins_word[i]:
                parts.append(rb" ")
            parts.append(sep if i in unk else re.escape(forms.bytes_[i]))
        assert re.fullmatch(b"".join(parts), expected, re.DOTALL), (text, ids)
        return
    assert joined == expected, (text, joined, expected)
    if forms.implicit_space or forms.ends_word is not None or facts["drops_unknown"]:
        return  # text recoverable only up to whitespace, or characters dropped
    raw = text.encode("utf-8")
    if _content_normalized(tok, text) == text:  # the normalizer keeps this text: lossless
        assert joined in (raw, b" " + raw), (text, joined)
    if facts["decoder"]:
        decoded = tok.decode(ids, skip_special_tokens=False).encode("utf-8")
        # SentencePiece decoders strip the one space the tokenizer prepended
        assert decoded in (joined, joined[1:] if joined.startswith(b" ") else joined), (
            text,
            decoded,
            joined,
        )


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_fixed_texts(loaded, name):
    tok = get(loaded, name)
    for text in FIXED:
        round_trip(tok, text)
        round_trip(tok, text.lower())


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_property(loaded, name):
    tok = get(loaded, name)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(TEXT)
    def prop(text: str) -> None:
        round_trip(tok, text)

    prop()


@pytest.mark.parametrize("name", NAMES)
def test_every_id_is_one_token(loaded, name):
    """Added tokens keep the ids their file gives them and no two tokens share an id (the
    converted Tekken and p50k files once gave specials the ids of their last ordinary
    tokens: NeMo's "Kö" read back as <SPECIAL_481>)."""
    tok = get(loaded, name)
    data = json.loads(Path(tok.zett_source).read_text(encoding="utf-8"))  # the file's ids
    written = {a["content"]: a["id"] for a in data["added_tokens"]}
    assert {c: tok.token_to_id(c) for c in written} == written
    full = tok.get_vocab(with_added_tokens=True)
    assert len(set(full.values())) == len(full), name
    assert all(tok.id_to_token(i) == c for c, i in full.items())


@pytest.mark.parametrize("name", NAMES)
def test_surface_forms_cover_the_vocabulary(loaded, name):
    tok = get(loaded, name)
    forms = tok._test_forms
    assert len(forms) >= tok.get_vocab_size(with_added_tokens=True)
    for i, at in tok.get_added_tokens_decoder().items():
        assert bool(forms.is_special[i]) == bool(at.special), (i, at.content)
    gaps = [i for i in range(len(forms)) if tok.id_to_token(i) is None]
    assert all(forms.bytes_[i] == b"" and forms.is_special[i] for i in gaps)
    entry = sources().get(name)
    if entry is not None:
        assert forms.kind == entry["family"], (name, forms.kind)


@pytest.mark.parametrize("base", ["smollm2", "llama2", "minilm"])
@pytest.mark.parametrize("name", NAMES)
def test_decomposition_pieces_rejoin(loaded, name, base):
    target, base_tok = get(loaded, name), get(loaded, base)
    if name == base:
        pytest.skip("a tokenizer into itself: covered by the others")
    check_decomposition(target, base_tok, sample=600)


@pytest.mark.parametrize("name", NAMES)
def test_special_roles_map_where_both_sides_have_them(loaded, name):
    target = get(loaded, name)
    tf = target._test_forms
    assert tf.roles, f"{name}: no special-token roles found"
    for base in ("smollm2", "llama2", "minilm"):
        bf = get(loaded, base)._test_forms
        mapping = map_special_tokens(tf, bf)
        for role in CHAT_ROLES + BASIC_ROLES:
            if role not in tf.roles or role not in bf.roles:
                continue
            t = tf.roles[role]
            assert t in mapping, (name, base, role)
            b = mapping[t]
            # mapped by this role, by equal content, or by another role the same token holds
            same_content = tf.bytes_[t] == bf.bytes_[b]
            other_role = any(tf.roles.get(r) == t and bf.roles.get(r) == b for r in bf.roles)
            assert bf.is_special[b] or same_content, (name, base, role)
            assert same_content or other_role, (name, base, role, t, b)


def test_all_prepared_tokenizers_load_and_differ(loaded):
    """The set is real and diverse: distinct vocabularies, several families."""
    toks = {}
    for name in NAMES:
        try:
            toks[name] = get(loaded, name)
        except pytest.skip.Exception:
            continue
    if len(toks) < len(NAMES):
        pytest.skip(f"only {len(toks)} of {len(NAMES)} tokenizers prepared")
    kinds = {t._test_forms.kind for t in toks.values()}
    assert {"byte_bpe", "sentencepiece_bpe", "unigram", "wordpiece", "bpe", "suffix_bpe"} <= kinds
    sizes = {name: len(t._test_forms) for name, t in toks.items()}
    assert len(set(sizes.values())) >= len(sizes) - 3, sizes  # llama3/llama3_1 share a size
    assert np.median(list(sizes.values())) > 30_000


# One per family (and the odd ones): byte-level BPE (GPT-2; Whisper with 1,600 special
# tokens SmolLM2 has no counterpart for), SentencePiece BPE with control tokens, Unigram,
# character-level BPE, end-of-word BPE (CLIP), WordPiece. All 16 take ~25 s each on a 2-core CPU (export + load +
# two bpb passes); the big-vocabulary ones (Llama-3, Qwen3, NeMo) more.
FVT_SUBSET = ["gpt2", "whisper", "mistral_v3", "mon", "toke", "clip", "minilm"]
FVT_TEXT = "The old bridge over the river is famous, and people walk there every evening."


@pytest.mark.slow
@pytest.mark.parametrize("name", FVT_SUBSET)
def test_fvt_export_loads_and_beats_mean(loaded, name, smollm2_dir, tmp_path):
    """`zett baseline --method fvt` on SmolLM2 → a directory plain transformers loads whose
    bits per byte beat every-row-the-mean (`mean`) on a short English text."""
    import torch
    from safetensors.numpy import load_file

    from zett.eval.bpb import bits_per_byte, load_causal_lm

    get(loaded, name)  # skips when not prepared
    out = tmp_path / "fvt"
    assert cli_main(["baseline", "--method", "fvt", "--base", "smollm2",
                     "--target-tokenizer", name, "--output", str(out)]) == 0  # fmt: skip
    model, tok = load_causal_lm(out, "cpu")  # AutoModelForCausalLM + AutoTokenizer, offline
    assert model.get_input_embeddings().weight.shape[0] >= tok.vocab_size
    fvt = bits_per_byte(model, tok, [FVT_TEXT]).bpb
    base = load_file(str(smollm2_dir / "model.safetensors"))["model.embed_tokens.weight"]
    with torch.no_grad():  # the `mean` baseline: every row the mean base row (tied head)
        model.get_input_embeddings().weight[:] = torch.from_numpy(base.mean(0))
    mean = bits_per_byte(model, tok, [FVT_TEXT]).bpb
    assert np.isfinite(fvt) and fvt < mean, (name, fvt, mean)


def cli_main(argv: list[str]) -> int:
    from zett import cli

    return cli.main(argv)
