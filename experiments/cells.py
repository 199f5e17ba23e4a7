"""Result-cell caching for experiments: a cell's file name carries a hash of its inputs.

An experiment caches each (target, method) result as JSON so a rerun only computes what is
missing. The cache is only honest if a cell is found again exactly when every input that
changes its numbers is the same: `cell_file(folder, label, method, inputs)` names the file
`{label}-{method}-{digest}.json`, digest = sha256 of `inputs` as sorted JSON. Put in
`inputs` everything the numbers depend on — options, steps, lr, seed, text sizes, and the
*content* of model/hypernet/tokenizer files (`file_digest`), not their paths.

`write_cell` also stores the inputs beside the cell (`….inputs.json`), so that when a cell is
not found again (another machine, another asset build), `explain_miss` can say which input
changed instead of leaving a silent recomputation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from zett.atomic import atomic_write_text

CACHED_FILE_BYTES = 16 << 20
_FILE_DIGESTS: dict[tuple[int, int, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """sha256 (first 16 hex digits) of a file, or of a directory's files (names + bytes,
    sorted); "missing" when the path does not exist. A large file's digest (the base
    weights, hashed for every cell) is computed once per process while its inode, size and
    mtime stay the same; hashing it takes longer than the clock's tick, so an in-place
    rewrite cannot keep its mtime."""
    path = Path(path)
    if path.is_file():
        st = path.stat()
        if st.st_size < CACHED_FILE_BYTES:
            return _sha16(path.read_bytes())
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in _FILE_DIGESTS:
            _FILE_DIGESTS[key] = _sha16(path.read_bytes())
        return _FILE_DIGESTS[key]
    if not path.is_dir():
        return "missing"
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def hypernet_inputs(directory: str | Path, with_prior: bool = True) -> dict[str, str]:
    """A transfer's hypernet as cell inputs: its weights' digest (`hypernet`) and, when it
    has one and `with_prior`, its new-row prior's (`new_row_prior`, zett.transfer.prior;
    absent, so cells cached before priors existed, or scored with the prior ignored, keep
    the keys of a hypernet without one)."""
    directory = Path(directory)
    out = {"hypernet": file_digest(directory / "hypernet.safetensors")}
    prior = directory / "new_row_prior.json"
    if with_prior and prior.is_file():
        out["new_row_prior"] = file_digest(prior)
    return out


# Keys transformers writes into a config.json that say where and with which version it was
# saved, not what the model computes (`_name_or_path` is the absolute path of the source).
VOLATILE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "_model_name_or_path")


def config_digest(path: str | Path) -> str:
    """`file_digest` of a model's config.json as content: sorted JSON without the keys that
    change with the machine or the transformers version (VOLATILE_CONFIG_KEYS), so a
    cached cell is found again on another clone of the same model; "missing" when absent."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    config = json.loads(path.read_text())
    for key in VOLATILE_CONFIG_KEYS:
        config.pop(key, None)
    return _sha16(json.dumps(config, sort_keys=True).encode())


def _sha16(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def digest(inputs: dict[str, Any]) -> str:
    """10 hex digits naming `inputs` (JSON with sorted keys; non-JSON values as str)."""
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def cell_file(folder: str | Path, label: str, method: str, inputs: dict[str, Any]) -> Path:
    return Path(folder) / f"{label}-{method}-{digest(inputs)}.json"


def inputs_file(cell: Path) -> Path:
    """Where `write_cell` keeps the inputs a cell was computed from."""
    return cell.with_name(cell.stem + ".inputs.json")


def record_inputs(cell: Path, inputs: dict[str, Any]) -> None:
    """Keep the inputs a cell was computed from beside it (`inputs_file`)."""
    atomic_write_text(inputs_file(cell), json.dumps(_as_json(inputs), indent=1, sort_keys=True))


def write_cell(cell: Path, rows: Any, inputs: dict[str, Any]) -> None:
    """Write a cell's rows and, beside them, its inputs (each a temp file, then renamed)."""
    record_inputs(cell, inputs)
    atomic_write_text(cell, json.dumps(rows, indent=1))


def read_cell(cell: Path, inputs: dict[str, Any], tag: str, force: bool = False) -> Any | None:
    """A cached cell's rows (recording its inputs if it was cached before inputs were kept),
    or None when it must be computed: `force`, or not cached — then, if cells of the same
    label and method recorded their inputs, print which inputs differ (`explain_miss`)."""
    if cell.is_file() and not force:
        if not inputs_file(cell).is_file():
            record_inputs(cell, inputs)
        return json.loads(cell.read_text())
    changed = None if force else explain_miss(cell, inputs)
    if changed:
        print(f"[{tag}] {cell.name} not cached; inputs that differ from the cached cells of "
              f"this label and method: {changed}", flush=True)  # fmt: skip
    return None


def _as_json(inputs: dict[str, Any]) -> dict[str, Any]:
    """`inputs` as they read back from JSON (non-JSON values as str, like `digest`)."""
    return json.loads(json.dumps(inputs, default=str))


def explain_miss(cell: Path, inputs: dict[str, Any]) -> str | None:
    """For a cell that is not cached: which of `inputs` differ from those of the cached cells
    of the same label and method (their `….inputs.json`), e.g. "base, texts" per cached cell;
    None when no such cell recorded its inputs."""
    prefix = cell.name.rsplit("-", 1)[0] + "-"
    wanted = _as_json(inputs)
    diffs = []
    for other in sorted(cell.parent.glob(prefix + "*.inputs.json")):
        if "-" in other.name[len(prefix) :]:
            continue  # a longer label or method that shares the prefix
        old = json.loads(other.read_text())
        keys = sorted(k for k in set(old) | set(wanted) if old.get(k) != wanted.get(k))
        diffs.append(", ".join(keys) or "nothing")
    return "; ".join(diffs) or None
