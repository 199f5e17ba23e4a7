"""Result-cell caching for experiments: a cell's file name carries a hash of its inputs.

An experiment caches each (target, method) result as JSON so a rerun only computes what is
missing. The cache is only honest if a cell is found again exactly when every input that
changes its numbers is the same: `cell_file(folder, label, method, inputs)` names the file
`{label}-{method}-{digest}.json`, digest = sha256 of `inputs` as sorted JSON. Put in
`inputs` everything the numbers depend on — options, steps, lr, seed, text sizes, and the
*content* of model/hypernet/tokenizer files (`file_digest`), not their paths.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def file_digest(path: str | Path) -> str:
    """sha256 (first 16 hex digits) of a file, or of a directory's files (names + bytes,
    sorted); "missing" when the path does not exist."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
    elif path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode() + b"\0")
            h.update(f.read_bytes())
    else:
        return "missing"
    return h.hexdigest()[:16]


def digest(inputs: dict[str, Any]) -> str:
    """10 hex digits naming `inputs` (JSON with sorted keys; non-JSON values as str)."""
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def cell_file(folder: str | Path, label: str, method: str, inputs: dict[str, Any]) -> Path:
    return Path(folder) / f"{label}-{method}-{digest(inputs)}.json"
