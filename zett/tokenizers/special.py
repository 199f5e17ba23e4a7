"""Special tokens by role, so a target tokenizer's `<s>` can borrow the base's `<|im_start|>`.

A special token has no meaningful surface text: decomposing `</s>` into `<`, `/`, `s`, `>`
would give the hypernetwork nonsense. Instead the target's special tokens are matched to
the base's special tokens of the same *role* (bos, eos, pad, unk, mask, cls, sep, and chat
markers such as `im_start`/`im_end`/`start_header_id`/`end_header_id`/`eot_id`).

Where roles come from, strongest first:
1. tokenizer_config.json (`bos_token`, `eos_token`, ...), passed in or attached by
   `load_tokenizer` beside the tokenizer.json;
2. the model's `unk_token` and the first special token the post-processor template prepends
   (Llama-2's `<s>` → bos);
3. well-known contents (`<s>`, `[CLS]`, `<|begin_of_text|>`, `<|im_end|>`, ...).

A target special token that matches nothing in the base (by content or role: Llama-3's
reserved tokens, Whisper's timestamps, Mistral's `[control_N]`) is *neutral*: the
decomposition gives it no pieces and the transfer methods the mean base embedding (see
`zett.tokenizers.decompose`), never its text split into pieces.
"""

from __future__ import annotations

import json
from typing import Any

import tokenizers

BASIC_ROLES = ("bos", "eos", "pad", "unk", "mask", "cls", "sep")
CHAT_ROLES = ("im_start", "im_end", "start_header_id", "end_header_id", "eot_id", "endoftext")

KNOWN_CONTENT: dict[str, tuple[str, ...]] = {
    "<s>": ("bos",),
    "</s>": ("eos",),
    "<unk>": ("unk",),
    "<pad>": ("pad",),
    "<mask>": ("mask",),
    "<bos>": ("bos",),
    "<eos>": ("eos",),
    "[CLS]": ("cls",),
    "[SEP]": ("sep",),
    "[PAD]": ("pad",),
    "[UNK]": ("unk",),
    "[MASK]": ("mask",),
    "<|begin_of_text|>": ("bos",),
    "<|end_of_text|>": ("eos",),
    "<|endoftext|>": ("endoftext", "eos"),
    "<|pad|>": ("pad",),
    "<|im_start|>": ("im_start",),
    "<|im_end|>": ("im_end",),
    "<|start_header_id|>": ("start_header_id",),
    "<|end_header_id|>": ("end_header_id",),
    "<|eot_id|>": ("eot_id",),
}


def _content(value: Any) -> str | None:
    """A tokenizer_config token entry: a string or `{"content": ...}`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def special_roles(
    tok: tokenizers.Tokenizer, tokenizer_config: dict | None = None
) -> dict[str, int]:
    """Role name → token id for every role `tok` has (see the module docstring).

    `tokenizer_config` defaults to the config `load_tokenizer` found beside the file.
    """
    if tokenizer_config is None:
        tokenizer_config = getattr(tok, "zett_config", None)
    roles: dict[str, int] = {}

    def put(role: str, content: str | None) -> None:
        if content is None or role in roles:
            return
        i = tok.token_to_id(content)
        if i is not None:
            roles[role] = i

    for role in BASIC_ROLES:
        put(role, _content((tokenizer_config or {}).get(f"{role}_token")))
    config = json.loads(tok.to_str())
    put("unk", config["model"].get("unk_token"))
    post = config.get("post_processor") or {}
    if post.get("type") == "TemplateProcessing":
        for item in post.get("single") or []:
            if "SpecialToken" in item:
                name = item["SpecialToken"]["id"]
                if KNOWN_CONTENT.get(name, ("bos",))[0] == "bos":
                    put("bos", name)
            break
    for at in tok.get_added_tokens_decoder().values():
        for role in KNOWN_CONTENT.get(at.content, ()):
            put(role, at.content)
    return roles


def roles_and_contents(side: Any) -> tuple[dict[str, int], dict[str, int]]:
    """(roles, special content → id) of a SurfaceForms or a tokenizers.Tokenizer."""
    if isinstance(side, tokenizers.Tokenizer):
        added = side.get_added_tokens_decoder()
        contents = {at.content: i for i, at in added.items() if at.special}
        return special_roles(side), contents
    contents = {}
    for i in range(len(side.bytes_)):
        if side.is_special[i] and side.bytes_[i]:
            contents.setdefault(side.bytes_[i].decode("utf-8", "replace"), i)
    return dict(side.roles), contents


def map_special_tokens(target: Any, base: Any) -> dict[int, int]:
    """Target special id → base special id.

    `target`/`base` are `SurfaceForms` (their `.roles`) or `tokenizers.Tokenizer`s. Tokens
    with identical special content map first (`<|endoftext|>` ↔ `<|endoftext|>`), then by
    role: chat markers, then bos/eos/pad/unk/mask/cls/sep. Each target id maps once.
    """
    return match_special(*roles_and_contents(target), *roles_and_contents(base))


def match_special(
    t_roles: dict[str, int],
    t_contents: dict[str, int],
    b_roles: dict[str, int],
    b_contents: dict[str, int],
) -> dict[int, int]:
    """The matching rule of `map_special_tokens` on precomputed roles and contents."""
    out: dict[int, int] = {}
    for content, ti in t_contents.items():
        if content in b_contents:
            out[ti] = b_contents[content]
    for role in CHAT_ROLES + BASIC_ROLES:
        if role in t_roles and role in b_roles:
            out.setdefault(t_roles[role], b_roles[role])
    return out
