"""Canonical surface forms: the exact bytes every token of any real tokenizer stands for.

Every tokenizer family writes its tokens in its own alphabet: byte-level BPE maps each byte
to a printable character (GPT-2's byte map, `Ġ` = space), SentencePiece writes spaces as `▁`
and unknown bytes as `<0xNN>` pieces, WordPiece marks word-internal pieces with `##`. Lexical
matching, the decomposition into base pieces and the hypernetwork all need one meaning for a
token, so this module turns every id into a canonical pair `(bytes_, begins_word)`:

- `bytes_` is what the token writes into the (normalized) text, as raw bytes. Tokens that are
  not valid UTF-8 on their own (single bytes, partial characters) stay raw bytes.
- `begins_word` says that a word boundary precedes the token.

Families differ only in *where the boundary's space lives*:

- **space-marking** families (byte-level BPE/Unigram, SentencePiece BPE/Unigram, Metaspace)
  write the space inside the token: `Ġthe` and `▁the` are `(b" the", True)`; `the` is
  `(b"the", False)`. There `begins_word == bytes_.startswith(b" ")` by definition.
- the **implicit-space** family (WordPiece) never writes spaces: `the` is `(b"the", True)`
  (the space is implied by the pre-tokenizer's split) and `##ing` is `(b"ing", False)`.

`SurfaceForms.canonical()` removes that difference: it puts the implied space back, so
WordPiece `the` and byte-BPE `Ġthe` both become `b" the"`, and two tokens from any two
families with equal canonical bytes mean the same text. Special tokens keep their content
bytes and are flagged `is_special`; ids the tokenizer has no token for are `b""` + special.

For WordPiece, text is only recoverable up to whitespace: `join_surfaces` rebuilds the text
as the pre-tokenizer's words joined by single spaces (`"Hello, world"` → `b"hello , world"`).

A third, **end-of-word** family (`suffix_bpe`: BPE with an `end_of_word_suffix`, CLIP's
`</w>`) marks where a word *ends*, not where it begins, so a token's own start is unknown:
`hello</w>` is `(b"hello", False)` with `ends_word` set, and `join_surfaces` writes one space
after every word end (`"A cat."` → `b"a cat . "`: words, each followed by a space). Its
canonical bytes are the word-internal form (`b"hello"`).
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers

from zett.errors import ZettError
from zett.tokenizers.special import special_roles

SPIECE = "\u2581"  # ▁, SentencePiece's visible space
KNOWN_MODELS = ("BPE", "Unigram", "WordPiece", "WordLevel")
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
IMPLICIT_SPACE_KINDS = ("wordpiece", "wordlevel")
SUFFIX_KIND = "suffix_bpe"


@cache
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map (256 entries).

    Printable Latin-1 bytes map to themselves; the other 68 bytes (controls, space,
    0x7F-0xA0, 0xAD) map to U+0100.. in byte order, so `b" "` → `Ġ` (U+0120).
    """
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    out = {b: chr(b) for b in keep}
    shifted = 0
    for b in range(256):
        if b not in out:
            out[b] = chr(0x100 + shifted)
            shifted += 1
    return out


@cache
def _unicode_to_latin1() -> dict[int, str]:
    """str.translate table: byte-map character → the Latin-1 character of its byte."""
    return {ord(c): chr(b) for b, c in byte_to_unicode().items()}


def bytes_to_bytelevel(data: bytes) -> str:
    """Raw bytes → the byte-level alphabet a byte-level BPE vocabulary is written in."""
    table = byte_to_unicode()
    return "".join(table[b] for b in data)


def bytelevel_to_bytes(token: str) -> bytes:
    """A byte-level vocabulary string → its bytes. Characters outside the byte map (rare,
    hand-added vocab entries) are kept as their UTF-8 bytes rather than dropped."""
    mapped = token.translate(_unicode_to_latin1())
    try:
        return mapped.encode("latin-1")
    except UnicodeEncodeError:
        inverse = _unicode_to_latin1()
        return b"".join(
            inverse[ord(c)].encode("latin-1") if ord(c) in inverse else c.encode("utf-8")
            for c in token
        )


@dataclass
class SurfaceForms:
    """Canonical surface of every id `0 .. V-1` (V includes added tokens).

    bytes_: [V] raw bytes per id; begins_word: bool [V]; is_special: bool [V];
    kind: the family ("byte_bpe", "byte_unigram", "sentencepiece_bpe", "unigram",
    "wordpiece", "bpe", "wordlevel", "suffix_bpe"); is_byte_fallback: bool [V], `<0xNN>`
    pieces; roles: special role → id (see `zett.tokenizers.special`); ends_word: bool [V]
    for the end-of-word family (tokens with the `</w>` suffix), else None.
    """

    bytes_: list[bytes]
    begins_word: np.ndarray
    is_special: np.ndarray
    kind: str
    is_byte_fallback: np.ndarray | None = None
    roles: dict[str, int] = field(default_factory=dict)
    ends_word: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.bytes_)

    @property
    def implicit_space(self) -> bool:
        """True when word-initial tokens leave their preceding space implicit (WordPiece)."""
        return self.kind in IMPLICIT_SPACE_KINDS

    def canonical(self) -> list[bytes]:
        """[V] bytes with the word boundary always explicit: the same bytes mean the same
        text across families (WordPiece `the` → `b" the"`, byte-BPE `Ġthe` → `b" the"`)."""
        if not self.implicit_space:
            return list(self.bytes_)
        return [
            b" " + b if (bw and not sp and b) else b
            for b, bw, sp in zip(self.bytes_, self.begins_word, self.is_special)
        ]

    def complete_text(self, n_rows: int | None = None) -> np.ndarray:
        """bool [n_rows] (default V): the token's bytes are whole UTF-8 characters. False
        for the lone bytes and character fragments of byte-level and byte-fallback
        vocabularies (`Ð`, `<0xD0>`): a base model rarely sees those alone, so their rows
        are poor stand-ins for the same fragment in a new tokenizer. Empty, special and
        padding rows (ids ≥ V) count as complete."""
        n = len(self.bytes_) if n_rows is None else n_rows
        out = np.ones(n, dtype=bool)
        for i, b in enumerate(self.bytes_[:n]):
            if b and not self.is_special[i]:
                try:
                    b.decode("utf-8")
                except UnicodeDecodeError:
                    out[i] = False
        return out


def attach_attribute(tok: tokenizers.Tokenizer, name: str, value: Any) -> None:
    """Set one of zett's own attributes (`zett_config`, `zett_source`, the `_zett_*` caches)
    on the Rust Tokenizer object, which declares none of them."""
    setattr(tok, name, value)


def _config_path(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise ZettError(f"{path}: tokenizer file not found; give a tokenizer.json or its dir")
    return path


def _check_unique(file: Path, vocab: dict | list) -> None:
    """Refuse two tokens with one id (BPE/WordPiece) or one token twice (Unigram): the
    library accepts both and then silently drops one, which shifts every embedding row."""
    keys: list[int | str]
    if isinstance(vocab, dict):
        keys = [i for i in vocab.values() if isinstance(i, int)]
        what = "id"
    else:
        keys = [e[0] for e in vocab if isinstance(e, list | tuple) and e and isinstance(e[0], str)]
        what = "token"
    seen: set = set()
    for k in keys:
        if k in seen:
            raise ZettError(
                f"{file}: model.vocab has {what} {k!r} more than once; the file is damaged"
            )
        seen.add(k)


def renumbered_added_tokens(data: dict, tok: tokenizers.Tokenizer) -> list[tuple[str, int, int]]:
    """(content, id in the file, id once loaded) of every added token of `data` (a parsed
    `tokenizer.json`) that `tok`, the library's tokenizer of it, numbers differently.

    The library keeps an added token's written id only when the model's vocabulary has the
    token; the others get ids from the vocabulary's *size* on, so a file whose model ids
    leave a gap for them (specials before the ranks, or inside them) gets its last tokens'
    ids handed to the added tokens as well: two tokens with one id.
    """
    out = []
    for at in data.get("added_tokens") or []:
        if not isinstance(at, dict) or not isinstance(at.get("content"), str):
            continue
        got = tok.token_to_id(at["content"])
        if isinstance(at.get("id"), int) and got is not None and got != at["id"]:
            out.append((at["content"], at["id"], got))
    return out


def load_tokenizer(path: str | Path) -> tokenizers.Tokenizer:
    """Load a `tokenizer.json` (or a directory holding one) with clear errors.

    The tokenizer_config.json beside it, if any, is attached as `tok.zett_config` so
    `special_roles` can read bos/eos/... names from it.
    """
    file = _config_path(Path(path))
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ZettError(f"{file}: not UTF-8 text; give a Hugging Face tokenizer.json") from None
    except json.JSONDecodeError as e:
        raise ZettError(
            f"{file}: malformed JSON ({e.msg} at line {e.lineno}); the file is truncated or "
            "not a tokenizer.json"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ZettError(f"{file}: no 'model' object; not a Hugging Face tokenizer.json")
    model = data["model"]
    mtype = model.get("type")
    if mtype is not None and mtype not in KNOWN_MODELS:
        raise ZettError(
            f"{file}: unsupported model type {mtype!r}; expected one of {', '.join(KNOWN_MODELS)}"
        )
    vocab = model.get("vocab")
    if vocab is not None and not isinstance(vocab, dict | list):
        raise ZettError(
            f"{file}: model.vocab must be a mapping or list, got {type(vocab).__name__}"
        )
    if not vocab:
        raise ZettError(f"{file}: model.vocab is empty; the tokenizer has no tokens")
    _check_unique(file, vocab)
    try:
        tok = tokenizers.Tokenizer.from_str(json.dumps(data))
    except Exception as e:  # the Rust side reports type errors as generic exceptions
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ZettError(f"{file}: the tokenizers library rejects it: {msg}") from None
    # Ids far beyond the number of tokens would make every [V, ...] table huge (a hang).
    ids = tok.get_vocab(with_added_tokens=True).values()
    size, n_tokens = max(ids, default=-1) + 1, len(ids)
    if size > 2 * n_tokens + 1024:
        raise ZettError(
            f"{file}: token ids reach {size - 1} but there are only {n_tokens} tokens; "
            "the vocabulary ids are damaged"
        )
    for content, written, got in renumbered_added_tokens(data, tok):
        model_ids = {i: t for t, i in tok.get_vocab(with_added_tokens=False).items()}
        if got in model_ids and model_ids[got] != content:
            raise ZettError(
                f"{file}: added token {content!r} has id {written} in the file, but the "
                f"tokenizers library gives it id {got}, which is also the model's token "
                f"{model_ids[got]!r} (added tokens missing from model.vocab are numbered from "
                "the vocabulary's size on); list such tokens in model.vocab too"
            )
    cfg_file = file.with_name("tokenizer_config.json")
    attach_attribute(tok, "zett_config", None)
    if cfg_file.is_file():
        try:
            attach_attribute(tok, "zett_config", json.loads(cfg_file.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ZettError(f"{cfg_file}: malformed JSON; fix or delete it") from None
    attach_attribute(tok, "zett_source", str(file))
    return tok


def _walk(component: Any) -> list[dict]:
    """Flatten a (possibly nested Sequence) normalizer/pre-tokenizer/decoder config."""
    if not isinstance(component, dict):
        return []
    out = [component]
    for key in ("normalizers", "pretokenizers", "pre_tokenizers", "decoders", "processors"):
        for sub in component.get(key) or []:
            out.extend(_walk(sub))
    return out


def _pattern_str(part: dict) -> str | None:
    pattern = part.get("pattern")
    return pattern.get("String") if isinstance(pattern, dict) else None


def tokenizer_layout(tok: tokenizers.Tokenizer) -> dict[str, Any]:
    """What the family conventions of `tok` are, read from its JSON config.

    Returns {"config": the parsed tokenizer.json, "model": model type, "byte_level": bool,
    "spiece": the visible-space character or None, "prefix": WordPiece/BPE continuation
    prefix or "", "byte_fallback": bool, "kind": str}. Cached on `tok`: treat a tokenizer
    as read-only once zett has seen it (an edited one keeps its old layout).
    """
    cached = getattr(tok, "_zett_layout", None)
    if cached is not None:
        return cached
    config = json.loads(tok.to_str())
    model = config["model"]
    mtype = model.get("type") or ("BPE" if "merges" in model else "WordPiece")
    parts = _walk(config.get("normalizer")) + _walk(config.get("pre_tokenizer"))
    parts += _walk(config.get("decoder"))
    byte_level = any(p.get("type") == "ByteLevel" for p in parts)
    spiece = None
    for p in parts:
        if p.get("type") == "Metaspace":
            spiece = p.get("replacement") or SPIECE
        elif p.get("type") == "Replace" and _pattern_str(p) == " ":
            spiece = p.get("content") or SPIECE
        elif p.get("type") == "Prepend" and spiece is None:
            spiece = p.get("prepend") or SPIECE
    if byte_level:
        spiece = None
    prefix = model.get("continuing_subword_prefix") or ""
    suffix = (model.get("end_of_word_suffix") or "") if mtype == "BPE" else ""
    if suffix:
        kind = SUFFIX_KIND
    elif mtype == "WordPiece":
        kind = "wordpiece"
        prefix = prefix or "##"
    elif mtype == "WordLevel":
        kind = "wordlevel"
    elif mtype == "Unigram":
        kind = "byte_unigram" if byte_level else "unigram"
    elif byte_level:
        kind = "byte_bpe"
    elif spiece is not None:
        kind = "sentencepiece_bpe"
    else:
        kind = "bpe"
    layout = {
        "config": config,
        "model": mtype,
        "byte_level": byte_level,
        "spiece": spiece,
        "prefix": prefix,
        "suffix": suffix,
        "byte_fallback": bool(model.get("byte_fallback")),
        "kind": kind,
    }
    with contextlib.suppress(AttributeError):
        attach_attribute(tok, "_zett_layout", layout)
    return layout


def _model_surface(token: str, layout: dict) -> tuple[bytes, bool, bool]:
    """One model-vocabulary string → (bytes, begins_word, is_byte_fallback)."""
    kind, prefix = layout["kind"], layout["prefix"]
    if layout["byte_fallback"] or layout["spiece"] is not None:
        m = _BYTE_PIECE.fullmatch(token)
        if m and layout["byte_fallback"]:
            b = bytes([int(m.group(1), 16)])
            return b, b.startswith(b" "), True
    if kind in IMPLICIT_SPACE_KINDS:
        if prefix and token.startswith(prefix) and len(token) > len(prefix):
            return token[len(prefix) :].encode("utf-8"), False, False
        return token.encode("utf-8"), True, False
    if kind == SUFFIX_KIND:  # the word end is `ends_word`, not part of the bytes
        suffix = layout["suffix"]
        stem = token[: -len(suffix)] if token.endswith(suffix) and token != suffix else token
        b = bytelevel_to_bytes(stem) if layout["byte_level"] else stem.encode("utf-8")
        return b, False, False
    if layout["byte_level"]:
        b = bytelevel_to_bytes(token)
    elif layout["spiece"] is not None:
        b = token.replace(layout["spiece"], " ").encode("utf-8")
    else:
        b = token.encode("utf-8")
    if prefix and kind == "bpe" and token.startswith(prefix) and len(token) > len(prefix):
        return b[len(prefix.encode()) :], False, False
    return b, b.startswith(b" "), False


def _added_surface(content: str, is_special: bool, layout: dict, implicit: bool):
    """(bytes, begins_word) of an added token that is not in the model's vocabulary.

    A special token is its content, verbatim. A non-special one is text the tokenizer emits
    for that content, so the visible space of a SentencePiece-style tokenizer maps back to a
    space as in the model's tokens (`▁foo` → b" foo"); byte-level tokenizers write added
    tokens as plain text already (no byte map).
    """
    if not is_special and layout["spiece"] is not None and not implicit:
        content = content.replace(layout["spiece"], " ")
    b = content.encode("utf-8")
    return b, True if implicit else b.startswith(b" ")


def surface_forms(tok: tokenizers.Tokenizer, tokenizer_config: dict | None = None) -> SurfaceForms:
    """The canonical (bytes, begins_word, is_special) of every id; see the module docstring.

    Cost is one pass over the vocabulary (Qwen3's 151k ids: well under a second).
    """
    layout = tokenizer_layout(tok)
    n = tok.get_vocab_size(with_added_tokens=True)
    added = tok.get_added_tokens_decoder()
    vocab = tok.get_vocab(with_added_tokens=False)
    # with gaps in the id space the size counts tokens, not ids: cover the highest id too
    n = max(n, max(added, default=-1) + 1, max(vocab.values(), default=-1) + 1)
    out: list[bytes] = [b""] * n
    begins = np.zeros(n, dtype=bool)
    special = np.ones(n, dtype=bool)  # gaps stay flagged
    byte_fb = np.zeros(n, dtype=bool)
    for token, i in vocab.items():
        out[i], begins[i], byte_fb[i] = _model_surface(token, layout)
        special[i] = False
    implicit = layout["kind"] in IMPLICIT_SPACE_KINDS
    for i, at in added.items():
        if vocab.get(at.content) == i:
            # the model's own token, listed again as an added token (Llama-2's <s>; Gemma-style
            # "▁▁" whitespace runs): its surface is the model's ("  ", not the bytes of "▁▁")
            special[i] = bool(at.special)
            continue
        out[i], begins[i] = _added_surface(at.content, bool(at.special), layout, implicit)
        special[i] = bool(at.special)
        byte_fb[i] = False
    forms = SurfaceForms(out, begins, special, layout["kind"], byte_fb)
    if layout["kind"] == SUFFIX_KIND:
        ends = np.zeros(n, dtype=bool)
        suffix = layout["suffix"]
        for token, i in vocab.items():
            ends[i] = token.endswith(suffix) and token != suffix and not special[i]
        forms.ends_word = ends
    forms.roles = special_roles(tok, tokenizer_config)
    return forms


def plain_copy(tok: tokenizers.Tokenizer) -> tokenizers.Tokenizer:
    """A copy of `tok` without padding or truncation (MiniLM's file pads to 128)."""
    plain = getattr(tok, "_zett_plain", None)
    if plain is None:
        plain = tokenizers.Tokenizer.from_str(tok.to_str())
        plain.no_padding()
        plain.no_truncation()
        with contextlib.suppress(AttributeError):
            attach_attribute(tok, "_zett_plain", plain)
    return plain


def encode_ids(tok: tokenizers.Tokenizer, text: str) -> list[int]:
    """`tok.encode(text)` ids without special tokens, padding or truncation."""
    return plain_copy(tok).encode(text, add_special_tokens=False).ids


def encode_surfaces(tok: tokenizers.Tokenizer, text: str) -> list[bytes]:
    """Surface bytes of `tok.encode(text)` without special tokens (a test/debug helper)."""
    forms = getattr(tok, "_zett_forms", None) or surface_forms(tok)
    with contextlib.suppress(AttributeError):
        attach_attribute(tok, "_zett_forms", forms)
    return [forms.bytes_[i] for i in encode_ids(tok, text)]


def join_surfaces(forms: SurfaceForms, ids: list[int] | np.ndarray) -> bytes:
    """The text a sequence of ids stands for, as bytes.

    Space-marking families: plain concatenation. WordPiece: words (a begins-word token
    and its `##` continuations) joined by one space, i.e. the pre-tokenizer's words.
    End-of-word family: each word followed by one space.
    """
    if forms.ends_word is not None:
        return b"".join(forms.bytes_[i] + (b" " if forms.ends_word[i] else b"") for i in ids)
    if not forms.implicit_space:
        return b"".join(forms.bytes_[i] for i in ids)
    parts: list[bytes] = []
    for k, i in enumerate(ids):
        if k and forms.begins_word[i]:
            parts.append(b" ")
        parts.append(forms.bytes_[i])
    return b"".join(parts)


def normalized_text(tok: tokenizers.Tokenizer, text: str) -> bytes:
    """The bytes `join_surfaces(forms, tok.encode(text).ids)` must reproduce.

    Space-marking families: the normalized text with the visible space mapped back to
    b" " and any prefix space the tokenizer adds. WordPiece: the pre-tokenizer's words
    of the normalized text joined by single spaces. Added tokens found in the text are cut
    out first and the pieces between them normalized on their own, as `tokenizers` does.
    (A literal `▁` in the input of a SentencePiece tokenizer is indistinguishable from a
    space; callers avoid it.)
    """
    layout = tokenizer_layout(tok)
    if layout["kind"] == SUFFIX_KIND:
        return _suffix_normalized(tok, layout, text)
    contents = sorted(
        {at.content for at in tok.get_added_tokens_decoder().values() if at.content},
        key=len,
        reverse=True,
    )
    pieces = re.split("(" + "|".join(map(re.escape, contents)) + ")", text) if contents else [text]
    implicit = layout["kind"] in IMPLICIT_SPACE_KINDS
    out: list[str] = []
    for k, piece in enumerate(pieces):
        if k % 2:
            out.append(piece)
        elif piece:
            segment = _normalize_segment(tok, layout, piece, first=k == 0)
            if segment:
                out.append(segment)
    return (" " if implicit else "").join(out).encode("utf-8")


def _suffix_normalized(tok: tokenizers.Tokenizer, layout: dict, text: str) -> bytes:
    """`normalized_text` of the end-of-word family: the pre-tokenizer's words of the
    normalized text, each followed by a space; special tokens as themselves."""
    contents = sorted(
        {at.content for at in tok.get_added_tokens_decoder().values() if at.content},
        key=len,
        reverse=True,
    )
    pieces = re.split("(" + "|".join(map(re.escape, contents)) + ")", text) if contents else [text]
    out: list[bytes] = []
    for k, piece in enumerate(pieces):
        if k % 2:
            out.append(piece.encode("utf-8"))
            continue
        norm = tok.normalizer.normalize_str(piece) if tok.normalizer is not None else piece
        words = tok.pre_tokenizer.pre_tokenize_str(norm) if tok.pre_tokenizer else [(norm, 0)]
        for w, _ in words:
            b = bytelevel_to_bytes(w) if layout["byte_level"] else w.encode("utf-8")
            out.append(b + b" ")
    return b"".join(out)


def _normalize_segment(tok: tokenizers.Tokenizer, layout: dict, text: str, first: bool) -> str:
    """`normalized_text` of a piece of text without added tokens."""
    norm = tok.normalizer.normalize_str(text) if tok.normalizer is not None else text
    if layout["kind"] in IMPLICIT_SPACE_KINDS:
        words = tok.pre_tokenizer.pre_tokenize_str(norm) if tok.pre_tokenizer else [(norm, 0)]
        return " ".join(w for w, _ in words)
    pre = layout["config"].get("pre_tokenizer")
    if layout["byte_level"]:
        for p in _walk(pre):
            prefix_space = p.get("type") == "ByteLevel" and p.get("add_prefix_space")
            if prefix_space and norm and not norm.startswith(" "):
                norm = " " + norm
        return norm
    if layout["spiece"] is not None:
        sp = layout["spiece"]
        for p in _walk(pre):
            if p.get("type") == "Metaspace" and norm:
                scheme = p.get(
                    "prepend_scheme", "always" if p.get("add_prefix_space", True) else "never"
                )
                norm = norm.replace(" ", sp)
                prepend = scheme == "always" or (scheme == "first" and first)
                if prepend and not norm.startswith(sp):
                    norm = sp + norm
        return norm.replace(sp, " ")
    return norm
