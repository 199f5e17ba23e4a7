"""results/reliability.md: what the reliability tests fuzzed and injected, and what happened.

    python experiments/reliability_table.py                 # pytest tests/reliability + 3 soak cycles
    python experiments/reliability_table.py --soak-cycles 0 # tests only (~5 min on 2 CPU cores)

Runs pytest on tests/reliability in this process, so the counters that the shared routines
(`zett.testing`, which tests/reliability/helpers.py re-exports) fill during the tests — one
entry per fuzzed input and per injected fault, with its outcome — are read back and
tabulated; nothing is hard-coded.
Expected: tracebacks, hangs, corrupted outputs and differing resumed runs all 0.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

from zett import testing as h
from zett.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]

OUTCOME_COLUMNS = ("ok", "traceback", "hang", "corrupted", "differs")
TITLES = {
    "fuzz": "Inputs fuzzed (in-process loaders)",
    "cli": "Inputs fuzzed (`zett` subprocess)",
    "fault": "Faults injected",
    "guard": "Guards",
}


class _Summary:
    """pytest plugin: pass/fail/skip counts."""

    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.counts[report.outcome] += 1
            if report.outcome == "failed":
                self.failed.append(report.nodeid)


def run_tests(extra: list[str]) -> _Summary:
    import pytest

    summary = _Summary()
    pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "reliability"), *extra],
                plugins=[summary])  # fmt: skip
    return summary


def table(outcomes: collections.Counter) -> list[str]:
    rows: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    for (category, kind, outcome), n in outcomes.items():
        rows[(category, kind)][outcome] += n
    lines = []
    for category, title in TITLES.items():
        kinds = sorted(k for c, k in rows if c == category)
        if not kinds:
            continue
        lines += [f"### {title}", "", "| kind | cases | " + " | ".join(OUTCOME_COLUMNS) + " |"]
        lines.append("|---|---:|" + "---:|" * len(OUTCOME_COLUMNS))
        for kind in kinds:
            c = rows[(category, kind)]
            cells = " | ".join(str(c[o]) for o in OUTCOME_COLUMNS)
            lines.append(f"| {kind} | {sum(c.values())} | {cells} |")
        lines.append("")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default=str(ROOT / "results" / "reliability.md"))
    p.add_argument("--soak-cycles", type=int, default=3)
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments, e.g. -k fuzz")
    a = p.parse_args()
    t0 = time.perf_counter()
    summary = run_tests(a.pytest_args)
    test_s = time.perf_counter() - t0
    soak = None
    if a.soak_cycles > 0:
        from experiments.soak import run as soak_run

        soak = soak_run(cycles=a.soak_cycles)
    bad = {o: sum(n for (_, _, oc), n in h.OUTCOMES.items() if oc == o) for o in h.BAD_OUTCOMES}
    if soak:
        bad["traceback"] += soak["tracebacks"]
        bad["hang"] += soak["hangs"]
        bad["corrupted"] += soak["corrupted_outputs"]
        bad["differs"] += soak["resumed_runs_losses_differ"]
    total = sum(h.OUTCOMES.values())
    lines = [
        "# Reliability: fuzzed inputs and injected faults",
        "",
        "Written by `python experiments/reliability_table.py` from the counters that "
        "tests/reliability fills while it runs (plus a short soak, `experiments/soak.py`).",
        "`ok` = loaded, or refused with one `error:` line (ZettError); any other exception "
        "is a `traceback`.",
        "",
        "## Outcome",
        "",
        f"- cases: {total} in tests ({test_s:.0f} s; pytest: "
        f"{dict(summary.counts)}{', failed: ' + ', '.join(summary.failed) if summary.failed else ''})",
        f"- tracebacks: {bad['traceback']}",
        f"- hangs: {bad['hang']}",
        f"- corrupted outputs: {bad['corrupted']}",
        f"- resumed runs whose losses differ: {bad['differs']}",
    ]
    if soak:
        lines.append(
            f"- soak: {soak['cycles']} kill-and-resume cycles, {soak['kills']} SIGKILLs, "
            f"{soak['resumed_runs_losses_differ']} differing, {soak['corrupted_outputs']} "
            f"corrupted, {soak['tracebacks']} tracebacks, {soak['hangs']} hangs"
        )
    lines += ["", *table(h.OUTCOMES)]
    atomic_write_text(Path(a.output), "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps({"output": a.output, **bad}))


if __name__ == "__main__":
    main()
