"""Raw vocabulary formats → Hugging Face `tokenizer.json` (a dict; `tokenizers` validates it).

Registry packages ship real vocabularies in three other formats, each turned into the
tokenizer the original library implements:

- **tiktoken ranks** (`{token bytes: rank}` + a split regex + special tokens): js-tiktoken's
  packed `ranks/*.js`, OpenAI's `*.tiktoken` files (base64 + rank per line) and Mistral's
  Tekken JSON. tiktoken splits text with the regex, then merges byte pairs in rank order, and
  a piece that is itself a token is never split. In `tokenizer.json` terms: a
  `Split(regex, isolated)` + `ByteLevel(use_regex=false)` pre-tokenizer, a byte-level BPE
  with `ignore_merges` (whole pieces first), and merges recovered from the ranks: the merge
  that makes token `t` is the one BPE reaches on `t`'s bytes using only ranks below `t`'s.
- **SentencePiece `.model`** (a protobuf read here with a small wire-format reader, no
  `sentencepiece` needed): BPE or Unigram pieces with scores and types. Spaces become `▁`
  (Metaspace, prefix `▁` on the first segment), byte pieces `<0xNN>` give byte fallback,
  control/unknown pieces become special tokens; SentencePiece's own normalization (a
  precompiled NFKC map, whitespace collapsing) becomes the matching normalizers. BPE merges
  are not stored in a `.model`: they are recovered as every split of a piece into two
  pieces, ordered by the merged piece's score, as SentencePiece's encoder ranks them.

`tests/test_tokenizers_formats.py` checks each converter against the original library
(`tiktoken`, `sentencepiece`) where it is installed.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm

from zett.errors import ZettError
from zett.tokenizers.surface import SPIECE, byte_to_unicode, bytes_to_bytelevel

# ------------------------------------------------------------------------- tiktoken ranks


def parse_js_tiktoken(text: str, source: str = "ranks file") -> dict[str, Any]:
    """js-tiktoken's `ranks/<name>.js`: `export default {pat_str, special_tokens,
    bpe_ranks}` where `bpe_ranks` lines are `! <first rank> <base64 token> ...` (ranks
    consecutive from the first). Returns {ranks, pattern, specials}."""
    body = text.strip()
    if body.startswith("export default"):
        body = body[len("export default") :].strip().rstrip(";")
    try:
        data = json.loads(body)
        ranks: dict[bytes, int] = {}
        for line in data["bpe_ranks"].split("\n"):
            if not line:
                continue
            _, offset, *tokens = line.split(" ")
            start = int(offset)
            for k, tok in enumerate(tokens):
                ranks[base64.b64decode(tok)] = start + k
        return {
            "ranks": ranks,
            "pattern": data["pat_str"],
            "specials": {str(k): int(v) for k, v in data["special_tokens"].items()},
        }
    except (KeyError, ValueError, TypeError) as e:
        raise ZettError(f"{source}: not a js-tiktoken ranks file ({e})") from None


def parse_tiktoken_file(text: str, source: str = "ranks file") -> dict[bytes, int]:
    """An OpenAI `*.tiktoken` file: one `<base64 token> <rank>` per line."""
    ranks: dict[bytes, int] = {}
    try:
        for line in text.splitlines():
            if line.strip():
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    except ValueError as e:
        raise ZettError(f"{source}: not a .tiktoken ranks file ({e})") from None
    return ranks


# Mistral-common's special tokens of a Tekken file that lists none (version v3 files such
# as tekken_240718.json): these 20 in order, then `<SPECIAL_{i}>` fillers.
TEKKEN_DEFAULT_SPECIALS = (
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
    "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]",
)  # fmt: skip


def parse_tekken(text: str, source: str = "tekken file") -> dict[str, Any]:
    """Mistral's Tekken JSON: the first `default_num_special_tokens` ids are special tokens,
    regular token of rank r has id r + that number; the vocabulary is cut to
    `default_vocab_size`. Returns {ranks (already offset), pattern, specials}."""
    try:
        data = json.loads(text)
        cfg = data["config"]
        n_special = int(cfg["default_num_special_tokens"])
        n_inner = int(cfg["default_vocab_size"]) - n_special
        listed = [t["token_str"] for t in data.get("special_tokens") or []]
        names = listed or list(TEKKEN_DEFAULT_SPECIALS)
        names += [f"<SPECIAL_{i}>" for i in range(len(names), n_special)]
        ranks = {
            base64.b64decode(t["token_bytes"]): int(t["rank"]) + n_special
            for t in data["vocab"]
            if int(t["rank"]) < n_inner
        }
        return {
            "ranks": ranks,
            "pattern": cfg["pattern"],
            "specials": {name: i for i, name in enumerate(names[:n_special])},
        }
    except (KeyError, ValueError, TypeError) as e:
        raise ZettError(f"{source}: not a Tekken tokenizer file ({e})") from None


def _merge_of(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes] | None:
    """The last merge tiktoken's BPE makes on `token` when only ranks < `rank` exist."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, at = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < rank and (best is None or r < best):
                best, at = r, i
        if best is None:
            return None
        parts[at : at + 2] = [parts[at] + parts[at + 1]]
    if len(parts) != 2 or parts[0] not in ranks or parts[1] not in ranks:
        return None
    return parts[0], parts[1]


def tiktoken_to_json(
    ranks: dict[bytes, int], pattern: str, specials: dict[str, int], progress: bool = False
) -> dict[str, Any]:
    """A byte-level BPE `tokenizer.json` that encodes exactly as tiktoken does.

    Special tokens normally follow the ranks (GPT-2's `<|endoftext|>` = 50256) and are listed
    only in `added_tokens`. The `tokenizers` library ignores the ids written there for tokens
    the model's vocabulary lacks and numbers them from the vocabulary's size on, so specials
    anywhere else (Tekken's 0-999 before its ranks) are put into the model vocabulary too:
    otherwise they would take the ids of the last ranks and shadow those tokens.
    """
    vocab = {bytes_to_bytelevel(tok): rank for tok, rank in ranks.items()}
    if len(vocab) != len(ranks):
        raise ZettError("tiktoken ranks: two tokens map to one byte-level string")
    if len(set(ranks.values())) != len(ranks):
        raise ZettError("tiktoken ranks: two tokens have one rank")
    clash = sorted(set(ranks.values()) & set(specials.values()))
    if clash or len(set(specials.values())) != len(specials):
        where = f"id {clash[0]} is also a rank" if clash else "two share an id"
        raise ZettError(f"tiktoken special tokens: {where}")
    specials = dict(sorted(specials.items(), key=lambda kv: kv[1]))
    if list(specials.values()) != list(range(len(vocab), len(vocab) + len(specials))):
        taken = [name for name in specials if name in vocab]
        if taken:
            raise ZettError(f"tiktoken special token {taken[0]!r} is also an ordinary token")
        vocab.update(specials)
    merges: list[tuple[int, list[str]]] = []
    items = sorted(ranks.items(), key=lambda kv: kv[1])
    for tok, rank in tqdm(items, desc="merges", unit="tok", disable=not progress, leave=False):
        if len(tok) < 2:
            continue
        pair = _merge_of(tok, rank, ranks)
        if pair is not None:
            merges.append((rank, [bytes_to_bytelevel(pair[0]), bytes_to_bytelevel(pair[1])]))
    merges.sort(key=lambda m: m[0])
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added(content, i, special=True) for content, i in specials.items()],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": pattern},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                },
            ],
        },
        "post_processor": None,
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": True,
            "trim_offsets": True,
            "use_regex": True,
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": vocab,
            "merges": [m for _, m in merges],
        },
    }


def _added(content: str, i: int, special: bool) -> dict[str, Any]:
    return {
        "id": int(i),
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": not special,
        "special": special,
    }


# ------------------------------------------------------------------------- SentencePiece

# piece types (sentencepiece_model.proto)
SP_NORMAL, SP_UNKNOWN, SP_CONTROL, SP_USER_DEFINED, SP_UNUSED, SP_BYTE = 1, 2, 3, 4, 5, 6
SP_UNIGRAM, SP_BPE = 1, 2


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a protobuf message: ints for varints, bytes for
    length-delimited fields, raw 4/8-byte strings for fixed32/fixed64."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
            if pos > len(buf):
                raise ValueError("truncated field")
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, value


def parse_sentencepiece(data: bytes, source: str = "model") -> dict[str, Any]:
    """The parts of a SentencePiece ModelProto a `tokenizer.json` needs."""
    out: dict[str, Any] = {
        "pieces": [],
        "model_type": SP_UNIGRAM,
        "byte_fallback": False,
        "unk_id": 0,
        "bos_id": 1,
        "eos_id": 2,
        "pad_id": -1,
        "charsmap": b"",
        "add_dummy_prefix": True,
        "remove_extra_whitespaces": True,
        "split_by_whitespace": True,
        "treat_whitespace_as_suffix": False,
    }

    def signed(v: int) -> int:
        return v - (1 << 64) if v >= 1 << 63 else v

    try:
        for field, wire, value in _fields(data):
            if field == 1 and wire == 2:
                piece, score, kind = "", 0.0, SP_NORMAL
                for f, w, v in _fields(value):
                    if f == 1 and w == 2:
                        piece = v.decode("utf-8")
                    elif f == 2 and w == 5:
                        score = struct.unpack("<f", v)[0]
                    elif f == 3 and w == 0:
                        kind = v
                out["pieces"].append((piece, score, kind))
            elif field == 2 and wire == 2:  # TrainerSpec
                for f, w, v in _fields(value):
                    if w != 0:
                        continue
                    key = {
                        3: "model_type",
                        22: "split_by_whitespace",
                        24: "treat_whitespace_as_suffix",
                        35: "byte_fallback",
                        40: "unk_id",
                        41: "bos_id",
                        42: "eos_id",
                        43: "pad_id",
                    }.get(f)
                    if key is not None:
                        out[key] = bool(v) if key in _BOOLS else signed(v)
            elif field == 3 and wire == 2:  # NormalizerSpec
                for f, w, v in _fields(value):
                    if f == 2 and w == 2:
                        out["charsmap"] = bytes(v)
                    elif f == 3 and w == 0:
                        out["add_dummy_prefix"] = bool(v)
                    elif f == 4 and w == 0:
                        out["remove_extra_whitespaces"] = bool(v)
    except (ValueError, UnicodeDecodeError, struct.error) as e:
        raise ZettError(f"{source}: not a SentencePiece model ({e})") from None
    if not out["pieces"]:
        raise ZettError(f"{source}: not a SentencePiece model (no pieces)")
    return out


_BOOLS = {"split_by_whitespace", "treat_whitespace_as_suffix", "byte_fallback"}


def _bpe_merges(pieces: list[tuple[str, float, int]]) -> list[list[str]]:
    """Every split of a regular piece into two regular pieces, best merged piece first
    (higher score, then lower id), ties by the left then right piece's id."""
    ids = {p: i for i, (p, _, kind) in enumerate(pieces) if kind in (SP_NORMAL, SP_USER_DEFINED)}
    found = []
    for piece, i in ids.items():
        score = pieces[i][1]
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in ids and right in ids:
                found.append((-score, i, ids[left], ids[right], [left, right]))
    found.sort(key=lambda m: m[:4])
    return [m[4] for m in found]


def sentencepiece_to_json(data: bytes, source: str = "model") -> dict[str, Any]:
    """A `tokenizer.json` (dict) that encodes as SentencePiece does, BPE or Unigram."""
    sp = parse_sentencepiece(data, source)
    pieces = sp["pieces"]
    if sp["model_type"] not in (SP_BPE, SP_UNIGRAM):
        raise ZettError(f"{source}: SentencePiece model type {sp['model_type']} is not BPE/Unigram")
    if sp["treat_whitespace_as_suffix"]:
        raise ZettError(f"{source}: treat_whitespace_as_suffix models are not supported")
    unk_id = sp["unk_id"] if 0 <= sp["unk_id"] < len(pieces) else None
    added = [
        _added(p, i, special=kind in (SP_CONTROL, SP_UNKNOWN))
        for i, (p, _, kind) in enumerate(pieces)
        if kind in (SP_CONTROL, SP_UNKNOWN, SP_USER_DEFINED)
    ]
    for a in added:  # SentencePiece matches user-defined pieces verbatim, as raw text
        a["normalized"] = False
    normalizers: list[dict[str, Any]] = []
    if sp["charsmap"]:
        normalizers.append(
            {
                "type": "Precompiled",
                "precompiled_charsmap": base64.b64encode(sp["charsmap"]).decode("ascii"),
            }
        )
    if sp["remove_extra_whitespaces"]:
        normalizers += [
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
            {"type": "Strip", "strip_left": True, "strip_right": True},
        ]
    # Prepend + Replace as normalizers (not Metaspace, which skips the `▁` when the text
    # already starts with a space): SentencePiece always adds its dummy prefix.
    if sp["add_dummy_prefix"]:
        normalizers.append({"type": "Prepend", "prepend": SPIECE})
    normalizers.append({"type": "Replace", "pattern": {"String": " "}, "content": SPIECE})
    pre_tokenizer = None
    if sp["model_type"] == SP_BPE:
        model: dict[str, Any] = {
            "type": "BPE",
            "dropout": None,
            "unk_token": pieces[unk_id][0] if unk_id is not None else None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": sp["byte_fallback"],
            "ignore_merges": False,
            "vocab": {p: i for i, (p, _, _) in enumerate(pieces)},
            "merges": _bpe_merges(pieces),
        }
    else:
        model = {
            "type": "Unigram",
            "unk_id": unk_id,
            "vocab": [[p, float(s)] for p, s, _ in pieces],
            "byte_fallback": sp["byte_fallback"],
        }
        if sp["split_by_whitespace"]:  # pieces never span a word boundary
            pre_tokenizer = {
                "type": "Metaspace",
                "replacement": SPIECE,
                "prepend_scheme": "never",
                "split": True,
            }
    decoders: list[dict[str, Any]] = [
        {"type": "Replace", "pattern": {"String": SPIECE}, "content": " "}
    ]
    if sp["byte_fallback"]:
        decoders.append({"type": "ByteFallback"})
    decoders.append({"type": "Fuse"})
    if sp["add_dummy_prefix"]:
        decoders.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    bos = pieces[sp["bos_id"]][0] if 0 <= sp["bos_id"] < len(pieces) else None
    post = None
    if bos is not None and sp["model_type"] == SP_BPE:  # Llama/Mistral prepend <s>
        post = {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": bos, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": bos, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": bos, "type_id": 1}},
                {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {bos: {"id": bos, "ids": [sp["bos_id"]], "tokens": [bos]}},
        }
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": model,
    }


def sentencepiece_special_names(data: bytes, source: str = "model") -> dict[str, str]:
    """{"bos_token": "<s>", ...} of a SentencePiece model, for tokenizer_config.json."""
    sp = parse_sentencepiece(data, source)
    out = {}
    for role in ("unk", "bos", "eos", "pad"):
        i = sp[f"{role}_id"]
        if 0 <= i < len(sp["pieces"]):
            out[f"{role}_token"] = sp["pieces"][i][0]
    return out


# ------------------------------------------------------------------------- CLIP

# CLIP's word regex (applied to lower-cased, whitespace-collapsed text; whitespace dropped)
CLIP_PATTERN = (
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"
    r"[^\s\p{L}\p{N}]+"
)
CLIP_SUFFIX = "</w>"


def clip_to_json(merges_gz: bytes, source: str = "bpe vocab", n_merges: int = 48894) -> dict:
    """CLIP's `bpe_simple_vocab_16e6.txt.gz` (a header line, then "a b" merges) → a
    `tokenizer.json` that encodes as CLIP's SimpleTokenizer: byte-level BPE whose
    word-final symbols carry `</w>`; vocabulary = 256 bytes, the same with `</w>`, one
    token per merge (the first 48,894), then `<|startoftext|>`, `<|endoftext|>` (49,408)."""
    try:
        lines = gzip.decompress(merges_gz).decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1 : n_merges + 1]]
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise ZettError(f"{source}: not CLIP's gzipped BPE merges ({e})") from None
    if len(merges) != n_merges or any(len(m) != 2 for m in merges):
        raise ZettError(f"{source}: expected {n_merges} merge lines of two symbols")
    chars = list(byte_to_unicode().values())
    tokens = chars + [c + CLIP_SUFFIX for c in chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ZettError(f"{source}: two merges make the same token")
    sot, eot = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added("<|startoftext|>", sot, True), _added("<|endoftext|>", eot, True)],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "NFC"},
                {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
                {"type": "Lowercase"},
            ],
        },
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": CLIP_PATTERN},
                    "behavior": "Removed",
                    "invert": True,
                },
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                },
            ],
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<|startoftext|>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": "<|startoftext|>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
                {"SpecialToken": {"id": "<|endoftext|>", "type_id": 1}},
            ],
            "special_tokens": {
                "<|startoftext|>": {
                    "id": "<|startoftext|>",
                    "ids": [sot],
                    "tokens": ["<|startoftext|>"],
                },
                "<|endoftext|>": {"id": "<|endoftext|>", "ids": [eot], "tokens": ["<|endoftext|>"]},
            },
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": CLIP_SUFFIX}, "content": "Ġ"},
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                },
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<|endoftext|>",
            "continuing_subword_prefix": "",
            "end_of_word_suffix": CLIP_SUFFIX,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [list(m) for m in merges],
        },
    }
