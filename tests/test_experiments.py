"""Every experiment script runs end to end on the tiny config (`--smoke`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("script", ["zero_shot.py", "train_curve.py", "ablations.py"])
def test_experiment_smoke(script, tmp_path):
    out = tmp_path / "results"
    args = ["--results", str(out)] if script != "train_curve.py" else ["--out", str(out / "tc")]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / script), "--smoke", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "|" in proc.stdout  # printed a table
    written = list(out.rglob("*.csv")) + list(out.rglob("*.md"))
    assert written and all(p.stat().st_size > 0 for p in written)
