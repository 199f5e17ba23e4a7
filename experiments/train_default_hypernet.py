"""Reproduce the default hypernetwork shipped in hypernets/smollm2/.

    python experiments/train_default_hypernet.py [--config configs/smollm2_cpu.yaml]

Trains with `zett train` (resuming if the run directory has checkpoints) and replaces
hypernets/smollm2/ with the run's exported hypernet (bf16 safetensors + JSON), keeping
TRAINING.md. ~35 min on a 2-core CPU with the CPU config.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from zett.config import load_config
    from zett.train.checkpoint import Checkpointer
    from zett.train.loop import train

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default=str(ROOT / "configs" / "smollm2_cpu.yaml"))
    p.add_argument("--dest", default=str(ROOT / "hypernets" / "smollm2"))
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    run = Path(cfg.train.output_dir)
    resume = (run / "checkpoints").is_dir() and Checkpointer(run / "checkpoints").latest_step()
    train(cfg, resume=bool(resume))
    dest = Path(args.dest)
    notes = (dest / "TRAINING.md").read_text() if (dest / "TRAINING.md").is_file() else None
    tmp = dest.with_name(dest.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(run / "hypernet", tmp)
    if notes:
        (tmp / "TRAINING.md").write_text(notes)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    print(f"default hypernet updated: {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
