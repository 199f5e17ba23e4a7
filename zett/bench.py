"""`zett bench` / `make bench`: run every experiments/bench_*.py and collect one JSON file.

Each benchmark runs in its own process (some need their own XLA flags, e.g. 8 fake
devices) and prints one JSON object; results go to `results/bench.json` with the machine
they were measured on. Speed goals are *reported* (ratios measured within one run), never
asserted: this machine is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from zett.atomic import atomic_write_text
from zett.config import BenchArgs, add_flags, command_args
from zett.errors import USER_ERROR_EXIT_CODE, ZettError

ROOT = Path(__file__).resolve().parents[1]


def _last_json(stdout: str) -> dict:
    """The last top-level JSON object printed by a benchmark."""
    start = stdout.rfind("\n{")
    start = 0 if start < 0 and stdout.startswith("{") else start + 1
    return json.loads(stdout[start:])


def run_benchmarks(
    output: Path, only: list[str] | None = None, quick: bool = False, bench_dir: Path | None = None
) -> dict:
    """Run `bench_dir/bench_*.py` (default experiments/; `only`: those names) into `output`."""
    bench_dir = ROOT / "experiments" if bench_dir is None else Path(bench_dir)
    scripts = sorted(bench_dir.glob("bench_*.py"))
    if not scripts:
        raise ZettError(f"no benchmarks in {bench_dir}; run from a zett checkout")
    if only:
        names = [s.stem.removeprefix("bench_") for s in scripts]
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ZettError(
                f"zett bench --only: no benchmark named {', '.join(unknown)}; "
                f"choose from {', '.join(names)}"
            )
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in only]
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "benchmarks": {},
    }
    if only and output.is_file():  # re-run some, keep the others (each entry has its date)
        try:
            results["benchmarks"] = json.loads(output.read_text()).get("benchmarks", {})
        except (json.JSONDecodeError, AttributeError) as e:
            raise ZettError(f"{output}: not a bench JSON ({e}); remove it or pick --output") from e
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        print(f"[bench] {name} ...", flush=True)
        t0 = time.perf_counter()
        cmd = [sys.executable, str(script)] + (["--quick"] if quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        entry: dict
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-3:]
            entry = {"error": f"exit {proc.returncode}: {' | '.join(tail)}"}
        else:
            try:
                entry = _last_json(proc.stdout)
            except json.JSONDecodeError:
                entry = {"error": "benchmark printed no JSON object"}
        entry["wall_s"] = round(time.perf_counter() - t0, 1)
        entry["measured"] = time.strftime("%Y-%m-%d %H:%M:%S")
        results["benchmarks"][name] = entry
        print(json.dumps({name: entry}, indent=2), flush=True)
    atomic_write_text(output, json.dumps(results, indent=2) + "\n")
    print(f"[bench] wrote {output}")
    return results


def main(argv: list[str] | None = None) -> int:
    """`python -m zett.bench`: the flags of `zett bench` (`zett.config.BenchArgs`)."""
    p = argparse.ArgumentParser(prog="python -m zett.bench", description=__doc__)
    add_flags(p, BenchArgs)
    try:
        cfg = command_args(BenchArgs, p.parse_args(argv))
        run_benchmarks(Path(cfg.output), cfg.only, cfg.quick)
    except ZettError as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
