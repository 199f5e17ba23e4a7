"""Reproduce the default hypernetwork shipped in hypernets/smollm2/ (fourteen stages).

    python experiments/train_default_hypernet.py [--dest hypernets/smollm2]

Stage by stage, each a `zett train` run warm-started (`train.init_from`) from the previous
stage's export and stopped at the step the shipped hypernet was exported at:

1. configs/smollm2_cpu_compose.yaml to step 1500: the compose stage (no LM), ~13 min;
2. configs/smollm2_cpu_compose_zett.yaml to step 1900: 400 LM steps of ~1k tokens, zett sampler,
   ~1 h on one core;
3. configs/smollm2_cpu_long.yaml to step 2310: 410 LM steps of ~4,000 tokens (2.02M LM tokens
   in all), ~3 h on two cores;
4. configs/smollm2_cpu_continue.yaml to step 2522: 212 more LM steps with
   `hypernet.correct_fragments` on (2.85M LM tokens in all), ~1 h (`train.max_minutes` is
   switched off here, so every stage ends at its step, not at a wall-clock limit);
5. the same config on to step 2681 (3.47M LM tokens in all), ~1 h;
6. configs/smollm2_cpu_pretok.yaml to step 2938: 257 LM steps whose sampled tokenizers draw
   their pre-tokenizer from `gpt2` and `punct_attach` (4.48M LM tokens in all), ~1.5 h;
7. configs/smollm2_cpu_cooldown.yaml to step 3248: 310 more such steps, the last 258 with the
   learning rate falling linearly towards 0 (5.68M LM tokens in all), ~1.5 h;
8. configs/smollm2_cpu_metaspace.yaml to step 3470: stage 7's run continued from its
   checkpoint (AdamW moments kept), a third sampler pre-tokenizer (`metaspace`), the rate
   re-warmed and cooled down again (6.55M LM tokens in all), ~1.5 h;
9. configs/smollm2_cpu_metaspace2.yaml to step 3719: stage 8's run continued from its
   checkpoint with the same recipe, re-warmed and cooled down once more (7.52M LM tokens in
   all), ~1.7 h;
10. configs/smollm2_cpu_metaspace3.yaml to step 3920: a warm start from stage 9's export
   (fresh AdamW moments, as shipped: the step-3719 checkpoint was not on the machine), the
   same recipe with the sampled-softmax offsets fixed (`data.negative_strata`), cooled down
   once more (8.31M LM tokens in all), ~45 min;
11. configs/smollm2_cpu_bigvocab.yaml to step 4180: stage 10's run continued from its
   checkpoint, sampled vocabularies of 16k-256k drawn log-uniformly, cooled down once more
   (9.29M LM tokens in all), ~50 min;
12. configs/smollm2_cpu_bigvocab2.yaml to step 4480: stage 11's run continued from its
   checkpoint, the same recipe for 300 more steps, cooled down once more (10.44M LM tokens
   in all), ~65 min;
13. configs/smollm2_cpu_bigvocab3.yaml to step 4730: stage 12's run continued from its
   checkpoint, 1.5x the softmax rows with 512 always left for random negatives
   (`data.min_negatives`), cooled down once more (11.39M LM tokens in all), ~60 min;
14. configs/smollm2_cpu_bigvocab4.yaml to step 5100: stage 13's run continued from its
   checkpoint, the same recipe for 370 more steps, cooled down once more (12.79M LM tokens
   in all), ~85 min.

A stage whose run directory has checkpoints resumes. The result replaces `--dest` (bf16
safetensors + JSON), keeping its TRAINING.md; its new-row prior (new_row_prior.json,
zett/transfer/prior.py) is fitted to the weights, not trained, so it is dropped: refit it with
README's `experiments/new_row_offset.py --fit` command. Not bit-identical to the shipped file: stage 2
of the shipped run had a warm start that restarted the lr schedule (fixed since, see
hypernets/smollm2_compose_zett/TRAINING.md), so its LM steps ran at ≈3e-4, here at the
configured schedule; and the shipped stage 3 was three warm starts (at steps 1900, 2000 and
2050: fresh AdamW moments each time, cosine horizon 2200, then 2300, then 2310), here one run.
Stage 4 is as shipped (one warm start at step 2310, stopped at 2522 by its wall-clock limit);
stage 5 resumes stage 4's run (the shipped one was a warm start at 2522: fresh AdamW moments);
stage 6 is as shipped up to its resume at step 2833 (the shipped run resumed with its
checkpoint, so nothing was lost there); stage 7 is as shipped up to its resume at step 2990
(the shipped run resumed with its checkpoint there; it was stopped at 3248 by its wall-clock
limit, 22 steps before the cool-down's end, and here stops at 3248 by `until`); stage 8
starts from stage 7's checkpoint as shipped (the third field of its STAGES entry) and is as
shipped up to its resume at step 3290, where the shipped run's cool-down was shortened from
290 to 170 steps (the rate before step 3300 is the same in both); stage 9 starts from stage
8's checkpoint and is as shipped (stopped at 3719 by its wall-clock limit, one step before
its cool-down's end; here by `until`); stage 10 is as shipped (one uninterrupted run);
stage 11 starts from stage 10's checkpoint and is as shipped (one uninterrupted run);
stage 12 starts from stage 11's checkpoint and is as shipped up to its resume at step 4250,
where the shipped run's end was moved from 4560 to 4480 (its cool-down then starts at 4350
instead of 4430; the rate before step 4350 is the same in both); stage 13 starts from stage
12's checkpoint and is as shipped up to its resume at step 4600, where the shipped run's end
was moved from 4780 to 4730 (the rate before step 4600 is the same in both); stage 14
starts from stage 13's checkpoint and is as shipped (one uninterrupted run).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STAGES = [  # (config, stop after this step, start from the previous stage's checkpoint)
    ("configs/smollm2_cpu_compose.yaml", 1500, False),
    ("configs/smollm2_cpu_compose_zett.yaml", 1900, False),
    ("configs/smollm2_cpu_long.yaml", 2310, False),
    ("configs/smollm2_cpu_continue.yaml", 2522, False),
    ("configs/smollm2_cpu_continue.yaml", 2681, False),
    ("configs/smollm2_cpu_pretok.yaml", 2938, False),
    ("configs/smollm2_cpu_cooldown.yaml", 3248, False),
    ("configs/smollm2_cpu_metaspace.yaml", 3470, True),
    ("configs/smollm2_cpu_metaspace2.yaml", 3719, True),
    ("configs/smollm2_cpu_metaspace3.yaml", 3920, False),
    ("configs/smollm2_cpu_bigvocab.yaml", 4180, True),
    ("configs/smollm2_cpu_bigvocab2.yaml", 4480, True),
    ("configs/smollm2_cpu_bigvocab3.yaml", 4730, True),
    ("configs/smollm2_cpu_bigvocab4.yaml", 5100, True),
]
# A stage with the third field True continues the previous stage's run from its checkpoint
# (AdamW moments kept) instead of warm-starting from its export, as the shipped run did.


def run_stage(
    config: Path,
    until: int,
    init_from: Path | None,
    carry: tuple[Path, int] | None = None,
    keep_checkpoint: bool = False,
) -> tuple[Path, Path]:
    """Train `config` to step `until` and export it; returns (run dir, exported hypernet
    dir). The run resumes its own checkpoints if it has some; else, with `carry` = (run dir,
    step) of the previous stage, it starts from that run's checkpoint; else it warm-starts
    from `init_from`. `keep_checkpoint` makes sure a checkpoint at `until` exists (for a
    next stage that carries this one)."""
    from zett.config import load_config
    from zett.train.checkpoint import Checkpointer
    from zett.train.loop import Trainer

    overrides = ["--train.max_minutes", "0"]  # every stage ends at `until`
    overrides += ["--train.init_from", str(init_from)] if init_from else []
    cfg = load_config(config, overrides)
    run = Path(cfg.train.output_dir)
    ckpts = run / "checkpoints"
    resume = ckpts.is_dir() and Checkpointer(ckpts).latest_step() is not None
    if carry and not resume:
        shutil.copytree(carry[0] / "checkpoints" / str(carry[1]), ckpts / str(carry[1]))
        shutil.copy(carry[0] / "metrics.jsonl", run / "metrics.jsonl")
        resume = True
    trainer = Trainer(cfg, resume=bool(resume))
    trainer.run(until=until)
    if keep_checkpoint and trainer.ckpt.latest_step() != until:
        trainer.save(until)
    return run, trainer.export(run / f"hypernet-step{until}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dest", default=str(ROOT / "hypernets" / "smollm2"), help="where to put it")
    args = p.parse_args(argv)
    exported: Path | None = None
    previous: tuple[Path, int] | None = None
    for i, (config, until, carries) in enumerate(STAGES):
        next_carries = i + 1 < len(STAGES) and STAGES[i + 1][2]
        carry = previous if carries else None
        run, exported = run_stage(ROOT / config, until, exported, carry, next_carries)
        previous = (run, until)
    assert exported is not None
    dest = Path(args.dest)
    notes = (dest / "TRAINING.md").read_text() if (dest / "TRAINING.md").is_file() else None
    tmp = dest.with_name(dest.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(exported, tmp)
    if notes:
        (tmp / "TRAINING.md").write_text(notes)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    print(f"default hypernet updated: {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
