"""`zett bench --only`: re-runs the named benchmarks, keeps the other entries, and refuses a
name that is no benchmark."""

from __future__ import annotations

import json

import pytest

from zett.bench import run_benchmarks
from zett.errors import ZettError


@pytest.fixture()
def bench_dir(tmp_path):
    d = tmp_path / "benches"
    d.mkdir()
    (d / "bench_fast.py").write_text('import json\nprint(json.dumps({"ratio": 1.5}))\n')
    return d


def test_only_keeps_other_entries(tmp_path, bench_dir) -> None:
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"benchmarks": {"train": {"ratio": 4.8}}}))
    res = run_benchmarks(out, only=["fast"], bench_dir=bench_dir)
    assert res["benchmarks"]["train"] == {"ratio": 4.8}
    assert res["benchmarks"]["fast"]["ratio"] == 1.5
    saved = json.loads(out.read_text())["benchmarks"]
    assert saved["train"]["ratio"] == 4.8 and saved["fast"]["ratio"] == 1.5
    out.write_text("{not json")
    with pytest.raises(ZettError, match="bench.json"):
        run_benchmarks(out, only=["fast"], bench_dir=bench_dir)
    assert out.read_text() == "{not json"  # nothing half-written


def test_unknown_name_is_an_error(tmp_path, bench_dir) -> None:
    out = tmp_path / "bench.json"
    with pytest.raises(ZettError, match="no benchmark named typo; choose from fast"):
        run_benchmarks(out, only=["typo"], bench_dir=bench_dir)
    assert not out.exists()


def test_unknown_name_on_the_command_line_is_one_line_exit_2(tmp_path, capsys) -> None:
    """`zett bench --only typo` and `python -m zett.bench --only typo`: one line, exit 2."""
    from zett import bench, cli

    out = str(tmp_path / "bench.json")
    for run in (lambda: cli.main(["bench", "--only", "typo", "--output", out]),
                lambda: bench.main(["--only", "typo", "--output", out])):  # fmt: skip
        assert run() == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no benchmark named typo; choose from" in err[0], err
    assert not (tmp_path / "bench.json").exists()
