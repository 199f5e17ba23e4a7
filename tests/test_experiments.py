"""Every experiment script runs end to end on the tiny config (`--smoke`), and the numbers
it writes obey what such a table must: finite, in range, each `mean` row the mean of its
languages."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize(
    "script", ["zero_shot.py", "train_curve.py", "ablations.py", "tokenizer_families.py"]
)
def test_experiment_smoke(script, tmp_path):
    out = tmp_path / "results"
    args = ["--results", str(out)] if script != "train_curve.py" else ["--out", str(out / "tc")]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / script), "--smoke", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = list(out.rglob("*.csv")) + list(out.rglob("*.md"))
    assert written and all(p.stat().st_size > 0 for p in written)
    for table in out.rglob("*.csv"):
        check_bpb_table(table)
    if script == "train_curve.py":
        md = (out / "tc_smoke.md").read_text()
        assert md.count("\n| ") >= 3  # header + at least two eval rows


MEASURED = {"lang", "bpb", "tokens_per_byte", "seconds"}


def check_bpb_table(path: Path) -> int:
    """Every bpb finite and plausible (0 < bpb, bits per token ≤ 2 × log2 of a 64k vocab),
    tokens per byte in (0, 1], and each group's `mean` row the mean of its languages.
    Returns the number of groups with a mean row (so callers can insist there are some)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert rows, path
    groups: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in rows:
        bpb = float(r["bpb"])
        assert math.isfinite(bpb) and bpb > 0, (path, r)
        if r.get("tokens_per_byte"):
            tpb = float(r["tokens_per_byte"])
            assert 0 < tpb <= 1.0, (path, r)
            assert bpb / tpb <= 32, (path, r)
        key = tuple(v for k, v in r.items() if k not in MEASURED)
        groups[key][r["lang"]] = bpb
    with_mean = 0
    for key, langs in groups.items():
        if "mean" in langs and len(langs) > 1:
            others = [v for k, v in langs.items() if k != "mean"]
            assert abs(langs["mean"] - sum(others) / len(others)) < 1e-4, (path, key)
            with_mean += 1
    return with_mean
