"""A user's clone has no ../shared: every named tokenizer must come from `zett prepare
tokenizers`, and the shipped configs and README's transfer command must still run.

`ZETT_TOKENIZERS` pointing at an empty folder hides ../shared (it is looked up first), so
these tests see what a clone sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from zett import assets
from zett.config import load_config
from zett.tokenizers.registry import prepared_dir

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.fixture()
def clone_env(tmp_path, monkeypatch):
    empty = tmp_path / "no-shared"
    empty.mkdir()
    monkeypatch.setenv("ZETT_TOKENIZERS", str(empty))
    if prepared_dir("llama2") is None:
        pytest.skip("tokenizers not prepared: run `zett prepare tokenizers` (make test does)")
    return {**os.environ, "ZETT_TOKENIZERS": str(empty)}


def _named_tokenizers(path: Path) -> list[str]:
    cfg = load_config(path)
    return [t for t in cfg.train.eval_tokenizers if not Path(t).exists()]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_config_tokenizer_resolves_without_shared(config, clone_env) -> None:
    for name in _named_tokenizers(config):
        path = assets.find_tokenizer(name)
        assert path.is_file() and "no-shared" not in str(path)
        assert path.parent == prepared_dir(name), (config.name, name, path)


def test_config_tokenizer_names_are_ones_prepare_knows() -> None:
    """The named tokenizers are all ones `zett prepare tokenizers` knows (no typo'd name
    that only ../shared would have)."""
    known = set(assets.tokenizer_names())
    for config in CONFIGS:
        raw = yaml.safe_load(config.read_text()) or {}
        for name in (raw.get("train") or {}).get("eval_tokenizers") or []:
            assert name in known, (config.name, name)


def _zett(args: list[str], env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zett.cli", *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout,
    )  # fmt: skip


@pytest.mark.slow
def test_readme_transfer_and_shipped_config_run_without_shared(
    clone_env, smollm2_dir, tmp_path
) -> None:
    out = tmp_path / "llama2-model"
    res = _zett(
        ["transfer", "--hypernet", "hypernets/smollm2", "--base", "smollm2",
         "--target-tokenizer", "llama2", "--output", str(out)], clone_env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((out / "config.json").read_text())["vocab_size"] >= 32000

    run = tmp_path / "run"
    res = _zett(
        ["train", "--config", "configs/smollm2_cpu.yaml", "--train.steps", "2",
         "--train.output_dir", str(run), "--train.eval_bytes", "600"], clone_env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first = records[0]
    assert first["step"] == 0 and first["eval/llama2/mean"] > first["eval/original/mean"] > 0
    assert any("loss" in r for r in records)  # the config logs every 5th step (and step 1)
    assert json.loads((run / "hypernet" / "hypernet.json").read_text())["step"] == 2


def test_has_tokenizer(clone_env, tmp_path) -> None:
    assert assets.has_tokenizer("llama2")
    assert not assets.has_tokenizer("no-such-tokenizer")
    assert not assets.has_tokenizer(tmp_path / "missing-dir")
