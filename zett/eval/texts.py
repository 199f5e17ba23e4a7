"""Held-out evaluation texts, per language (and `code`).

The real ones come from the prepared corpus (`heldout_texts`: split `test` for `zett eval`,
`valid` for the trainer's in-loop eval), capped at `max_bytes` UTF-8 bytes per language
(`zett.data.budget.truncate_to_bytes`) so every method is scored on exactly the same
bytes. Tests instead use `local_texts()`: real English prose and real
Python code already on disk (the standard library's docstrings and source), so they stay
hermetic and still see natural text rather than random strings.
"""

from __future__ import annotations

import ast
import json
import sysconfig
from pathlib import Path

from zett.data.budget import truncate_to_bytes
from zett.data.corpus import load_corpus, texts_for
from zett.errors import ZettError

# Standard-library modules read by `local_texts`: prose-rich docstrings, plain Python.
_STDLIB_MODULES = (
    "textwrap",
    "difflib",
    "fractions",
    "statistics",
    "heapq",
    "bisect",
    "shlex",
    "calendar",
    "argparse",
    "string",
)
_MIN_DOCSTRING_CHARS = 200


def heldout_texts(
    split: str = "test",
    langs: list[str] | None = None,
    max_bytes: int = 50_000,
    corpus: str | Path = "default",
) -> dict[str, list[str]]:
    """`{lang: texts}` from `corpus`'s `split`, ≤ `max_bytes` bytes per language.

    The selection per language is `zett.data.corpus.texts_for` -- whole documents (rows of
    one `doc_id` joined back) in stored order, the last cut on a character boundary. Both
    `zett eval` (split `test`) and the trainer's in-loop eval (`zett.train.evaluate`, split
    `valid`) take their texts from here. Languages default to all in the split, sorted.
    Raises `ZettError` naming `zett prepare corpus` when the corpus is not built.
    """
    if max_bytes < 1:
        raise ZettError(f"max_bytes must be >= 1, got {max_bytes}")
    try:
        ds = load_corpus(corpus)
    except ZettError as e:
        raise ZettError(f"no prepared corpus ({e}); run `zett prepare corpus` first") from e
    if split not in ds:
        raise ZettError(f"corpus has no split {split!r}; choose one of {sorted(ds)}")
    available = sorted(set(ds[split]["lang"]))
    wanted = available if not langs else list(langs)
    missing = [lang for lang in wanted if lang not in available]
    if missing:
        raise ZettError(
            f"corpus split {split!r} has no texts for {', '.join(missing)}; "
            f"choose from {', '.join(available)}"
        )
    return {lang: texts_for(split, lang, max_bytes, corpus=ds) for lang in wanted}


def load_texts_file(path: str | Path) -> dict[str, list[str]]:
    """`--texts` input: a JSON object `{lang: [text, ...]}` or a `.txt` file (lang = its stem)."""
    path = Path(path)
    if not path.is_file():
        raise ZettError(f"{path}: texts file not found; give a JSON {{lang: [texts]}} or a .txt")
    raw = path.read_text(encoding="utf-8")
    if path.suffix != ".json":
        return {path.stem: [raw]}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ZettError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from e
    ok = isinstance(data, dict) and all(
        isinstance(v, list) and all(isinstance(t, str) for t in v) for v in data.values()
    )
    if not ok or not data:
        raise ZettError(f"{path}: expected a JSON object mapping language to a list of strings")
    return data


def _stdlib_sources() -> list[tuple[str, str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for name in _STDLIB_MODULES:
        path = stdlib / f"{name}.py"
        if path.is_file():
            out.append((name, path.read_text(encoding="utf-8")))
    return out


def local_texts(max_bytes: int = 20_000) -> dict[str, list[str]]:
    """`{"en": docstrings, "code": Python source}` from the local standard library.

    English: module, class and function docstrings of at least 200 characters (real prose
    written by people). Code: the same modules' source files, whole. Deterministic for a
    given Python installation; for tests and quick checks, not for reported figures.
    """
    sources = _stdlib_sources()
    if not sources:
        raise ZettError(f"no standard-library sources under {sysconfig.get_paths()['stdlib']}")
    prose: list[str] = []
    for _, source in sources:
        tree = ast.parse(source)
        nodes = [tree] + [
            n
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
        for node in nodes:
            doc = ast.get_docstring(node)
            if doc and len(doc) >= _MIN_DOCSTRING_CHARS:
                prose.append(doc)
    code = [source for _, source in sources]
    return {"en": truncate_to_bytes(prose, max_bytes), "code": truncate_to_bytes(code, max_bytes)}
