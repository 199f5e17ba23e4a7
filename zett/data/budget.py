"""Texts cut to a UTF-8 byte budget: the one rule every held-out and training text
selection follows (`zett.data.corpus.texts_for`, `zett eval --texts`, `zett.eval.texts`).

Byte budgets, not character or text counts, so every tokenizer and method is scored on
exactly the same bytes. Stdlib only: importing this loads no corpus.
"""

from __future__ import annotations

from zett.errors import ZettError


def truncate_to_bytes(texts: list[str], max_bytes: int) -> list[str]:
    """The longest prefix of `texts` holding at most `max_bytes` UTF-8 bytes in total.

    Whole texts are kept in order; the one that crosses the limit is cut on a character
    boundary (never inside a multi-byte character); empty texts are dropped. Raises
    `ZettError` for a budget below one byte.
    """
    if max_bytes < 1:
        raise ZettError(f"max_bytes must be >= 1, got {max_bytes}")
    out: list[str] = []
    left = max_bytes
    for text in texts:
        data = text.encode("utf-8")
        if not data:
            continue
        if len(data) <= left:
            out.append(text)
            left -= len(data)
        else:
            cut = data[:left].decode("utf-8", errors="ignore")
            if cut:
                out.append(cut)
            left = 0
        if left == 0:
            break
    return out
