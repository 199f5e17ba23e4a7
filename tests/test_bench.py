"""`zett bench --only`: re-runs the named benchmarks and keeps the other entries."""

from __future__ import annotations

import json

import pytest

from zett.bench import run_benchmarks
from zett.errors import ZettError


def test_only_keeps_other_entries(tmp_path) -> None:
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"benchmarks": {"train": {"ratio": 4.8}}}))
    res = run_benchmarks(out, only=["no_such_benchmark"])
    assert res["benchmarks"] == {"train": {"ratio": 4.8}}
    assert json.loads(out.read_text())["benchmarks"]["train"]["ratio"] == 4.8
    out.write_text("{not json")
    with pytest.raises(ZettError, match="bench.json"):
        run_benchmarks(out, only=["no_such_benchmark"])
    assert out.read_text() == "{not json"  # nothing half-written
