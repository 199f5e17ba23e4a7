"""The accelerator path (`make gpu-train`) end to end on this CPU: DRY_RUN=1, tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_train_dry_run(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "ZETT_DEVICE_STORE": str(tmp_path / "store"),
           "JAX_PLATFORMS": "cpu"}  # fmt: skip
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "gpu_train.py"), "all", "--output", str(out)],
        env=env, capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    meta = json.loads((out / "hypernet" / "hypernet.json").read_text())
    assert meta["steps"] == 4 and meta["lm_tokens"] > 0
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "loss" in r][-1] == 4
    # without the carried parts `run` refuses with a clear message
    bad = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "gpu_train.py"), "run", "--output",
         str(tmp_path / "o2")],
        env={**env, "ZETT_DEVICE_STORE": str(tmp_path / "empty")}, capture_output=True,
        text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert bad.returncode != 0 and "receive" in bad.stderr
