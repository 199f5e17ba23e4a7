"""Soak test: repeated SIGKILL-and-resume cycles of `zett train` on the tiny config.

    python experiments/soak.py                 # 10 cycles (make soak), a few minutes on CPU
    python experiments/soak.py --cycles 50 --seed 3

Each cycle starts a fresh run, kills it 1-2 times at random points (an outside SIGKILL at a
random time after the first step, or one armed inside a random checkpoint write), then
`zett train --resume` to the end. Reported: cycles, kills, resumed runs whose per-step losses
differ from an uninterrupted run's, corrupted outputs (final hypernet/ not loadable),
tracebacks (a non-zero exit other than our SIGKILL, or "Traceback" on stderr) and hangs
(a command past its time limit). Expected: every count but cycles and kills is 0.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from zett import testing as h

TIMEOUT_S = 300


def _check(res: h.CliResult, report: dict, killed_ok: bool = False) -> None:
    if res.returncode is None:
        report["hangs"] += 1
    elif res.returncode == -9 and killed_ok:
        report["kills"] += 1
    elif res.returncode != 0 or "Traceback" in res.stderr:
        report["tracebacks"] += 1
        report["errors"].append(res.stderr.strip().splitlines()[-1:] or [str(res.returncode)])


def one_cycle(assets, run: Path, reference: dict, rng: random.Random, steps: int, save_every: int,
              report: dict) -> None:  # fmt: skip
    args = h.train_args(assets, run, steps, save_every)
    for attempt in range(rng.choice([1, 2])):
        cmd = [*args, "--resume"] if attempt else args
        if rng.random() < 0.5:
            if h.kill_train_at_random(cmd, run, rng, window=1.0) == "killed":
                report["kills"] += 1
        else:
            nth = rng.randint(1, max(1, steps // save_every))
            kill = f"zett.train.checkpoint:Checkpointer.save {nth} {rng.uniform(0, 0.05):.4f}"
            _check(h.run_cli(cmd, TIMEOUT_S, kill=kill), report, killed_ok=True)
    resumable = (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir())
    final = [*args, "--resume"] if resumable else args
    if not resumable and run.exists():  # killed before any checkpoint: start over
        (run / "metrics.jsonl").unlink(missing_ok=True)
    res = h.run_cli(final, TIMEOUT_S)
    _check(res, report)
    if res.returncode == 0:
        if h.last_losses(run) != reference:
            report["resumed_runs_losses_differ"] += 1
        if not h.hypernet_loads(run / "hypernet"):
            report["corrupted_outputs"] += 1


def run(cycles: int = 10, seed: int = 0, steps: int = 8, save_every: int = 2) -> dict:
    """Run the soak; returns the counts (see the module docstring)."""
    rng = random.Random(seed)
    report = {
        "cycles": cycles, "kills": 0, "resumed_runs_losses_differ": 0,
        "corrupted_outputs": 0, "tracebacks": 0, "hangs": 0, "errors": [],
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="zett-soak-") as d:
        root = Path(d)
        assets = h.build_tiny_assets(root / "assets")
        ref_run = root / "reference"
        res = h.run_cli(h.train_args(assets, ref_run, steps, save_every), TIMEOUT_S)
        if res.returncode != 0:
            raise SystemExit(f"reference run failed:\n{res.stderr[-2000:]}")
        reference = h.last_losses(ref_run)
        for i in range(cycles):
            one_cycle(assets, root / f"cycle{i}", reference, rng, steps, save_every, report)
            print(f"cycle {i + 1}/{cycles}: {json.dumps({k: v for k, v in report.items() if k != 'errors'})}",
                  file=sys.stderr)  # fmt: skip
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--save-every", type=int, default=2)
    a = p.parse_args()
    print(json.dumps(run(a.cycles, a.seed, a.steps, a.save_every), indent=2))


if __name__ == "__main__":
    main()
