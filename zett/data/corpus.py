"""The prepared corpus, read back: `load_corpus`, a portable copy, texts per language.

`load_corpus()` returns the DatasetDict `zett prepare corpus` built (`zett.data.build`; a
plain saved DatasetDict of the user's own loads too), or, for a portable copy
(`write_portable`: `{split}.jsonl.gz` files, for a machine without `datasets`/pyarrow), a
dict of `TextTable`s with the same interface. `texts_for` is the one selection of texts
every evaluation and transfer reads: whole documents of one language, in stored order, up
to a UTF-8 byte budget (`zett.data.budget.truncate_to_bytes`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zett.atomic import atomic_dir, atomic_write_text
from zett.cache import COMPLETE_MARKER, is_prepared
from zett.data.budget import truncate_to_bytes
from zett.data.build import default_corpus_dir
from zett.errors import ZettError


class TextTable:
    """One split of a portable corpus: the slice of `datasets.Dataset` that zett uses
    (`t["lang"]` → column, `t[i]` → row dict, `t[:k]` → dict of columns, `select`,
    `column_names`, iteration), over plain Python rows. No pyarrow needed."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.column_names = list(rows[0]) if rows else ["text", "lang"]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return [r[key] for r in self.rows]
        if isinstance(key, slice):
            part = self.rows[key]
            return {c: [r[c] for r in part] for c in self.column_names}
        return self.rows[int(key)]

    def select(self, indices: Any) -> TextTable:
        return TextTable([self.rows[int(i)] for i in indices])


def write_portable(out: str | Path, corpus: Any = "default") -> Path:
    """Write the corpus as `{split}.jsonl.gz` (+ manifest) under `out`: a compact copy that
    `load_corpus(out)` reads without `datasets`/pyarrow (e.g. on a bare GPU machine)."""
    ds = corpus if hasattr(corpus, "keys") else load_corpus(corpus)
    src = default_corpus_dir() if str(corpus) == "default" else None
    out = Path(out)
    with atomic_dir(out, overwrite=True) as tmp:
        for split in ds:
            part = ds[split]
            cols = [c for c in ("text", "lang", "doc_id") if c in part.column_names]
            with gzip.open(tmp / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
                for row in part:
                    f.write(json.dumps({c: row[c] for c in cols}, ensure_ascii=False) + "\n")
        if src is not None and (src / "manifest.json").is_file():
            atomic_write_text(tmp / "manifest.json", (src / "manifest.json").read_text())
        atomic_write_text(tmp / COMPLETE_MARKER, "ok\n")
    return out


def _load_portable(root: Path) -> dict[str, TextTable]:
    tables = {}
    for path in sorted(root.glob("*.jsonl.gz")):
        split = path.name.removesuffix(".jsonl.gz")
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                rows = [json.loads(line) for line in f if line.strip()]
            if rows and not all(isinstance(r.get("text"), str) for r in rows):
                raise ValueError("a row without a text string")
        except (OSError, EOFError, ValueError) as e:
            raise ZettError(
                f"corpus {path}: damaged portable split ({str(e)[:200] or type(e).__name__}); "
                "write it again (`zett prepare corpus --portable DIR`)"
            ) from e
        tables[split] = TextTable(rows)
    return tables


def load_corpus(path_or_default: str | Path = "default"):
    """The prepared corpus as a `datasets.DatasetDict` (train/valid/test), or a ZettError.

    A portable corpus (a folder of `{split}.jsonl.gz`, `write_portable`) loads as a dict of
    `TextTable`s instead, without importing `datasets`.
    """
    root = default_corpus_dir() if str(path_or_default) == "default" else Path(path_or_default)
    if (root / "train.jsonl.gz").is_file():
        return _load_portable(root)
    import datasets
    import pyarrow

    if (root / "dataset_dict.json").is_file():  # a plain saved DatasetDict
        where = root
    elif not is_prepared(root) or not (root / "dataset").is_dir():
        raise ZettError(f"corpus {root} is not prepared; run `zett prepare corpus` first")
    else:
        where = root / "dataset"
    try:
        ds = datasets.load_from_disk(str(where))
        for split in ds:  # touch every split's text so a damaged file fails here, not mid-run
            _ = ds[split][:1]["text"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, pyarrow.ArrowException) as e:
        first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ZettError(
            f"corpus {where}: damaged or not a saved DatasetDict with a text column ({first}); "
            "rebuild it (`zett prepare corpus --force`)"
        ) from e
    return ds


def texts_for(split: str, lang: str, max_bytes: int, corpus: Any = "default") -> list[str]:
    """Whole documents of `lang` from `split`, in stored order, until `max_bytes` UTF-8
    bytes, cut by `truncate_to_bytes` (the last text at a character boundary, so the total
    is ≤ max_bytes; a budget below one byte is a ZettError).

    `corpus` is a path/`"default"` or an already loaded DatasetDict. Chunks of one
    document are joined back, so evaluation sees real document boundaries.
    """
    ds = corpus if hasattr(corpus, "keys") else load_corpus(corpus)
    if split not in ds:
        raise ZettError(f"corpus has no split {split!r}; choose one of {', '.join(ds.keys())}")
    part = ds[split]
    langs = part["lang"]
    if lang not in set(langs):
        raise ZettError(
            f"corpus split {split!r} has no language {lang!r}; have {', '.join(sorted(set(langs)))}"
        )
    idx = [i for i, lg in enumerate(langs) if lg == lang]
    docs: list[str] = []
    last_doc = None
    total = 0
    has_doc_id = "doc_id" in part.column_names  # a user's own corpus may lack it
    for i, row in zip(idx, part.select(idx)):
        chunk = row["text"]
        doc = row["doc_id"] if has_doc_id else i
        if doc == last_doc and docs:
            docs[-1] += chunk
        else:
            docs.append(chunk)
        last_doc = doc
        total += len(chunk.encode("utf-8"))
        if total >= max_bytes:
            break
    return truncate_to_bytes(docs, max_bytes)
