"""zett's cache root and its "prepared" convention, below everything that fills the cache.

`cache_dir()` is `$ZETT_CACHE` or `~/.cache/zett`. Whatever is built there (base models,
the corpus, real tokenizers) counts as prepared only when its `COMPLETE_MARKER` file exists:
builds happen in a temp sibling that is renamed into place, so a killed build is rebuilt,
never loaded. `zett.assets`, `zett.data.corpus` and `zett.tokenizers.registry` all use this;
it imports nothing of zett, so the tokenizer layer can reach the cache without `zett.assets`.
"""

from __future__ import annotations

import os
from pathlib import Path

COMPLETE_MARKER = "COMPLETE"


def cache_dir() -> Path:
    """Root of zett's cache: `$ZETT_CACHE` or `~/.cache/zett`."""
    return Path(os.environ.get("ZETT_CACHE", Path.home() / ".cache" / "zett")).expanduser()


def is_prepared(path: Path) -> bool:
    return (Path(path) / COMPLETE_MARKER).is_file()
