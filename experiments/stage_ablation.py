"""Which training stages pay off at equal CPU time: LM-only, compose-only, compose → LM,
compose → LM + compose aux; every variant gets the same 12 wall minutes of training on the
2-core CPU (`train.max_minutes` as a hard stop, step counts sized to end their schedules
about then), then zero-shot on every target of the zero-shot table (test split, the
protocol of experiments/zero_shot.py).

    python experiments/stage_ablation.py                 # train what is missing, eval, tabulate
    python experiments/stage_ablation.py --cached-only   # table and plot from what is there

Variants (configs/stage_*.yaml, all on top of configs/smollm2_cpu_compose.yaml's hypernet
and batch: 2 layers, copy_single, 8 × 128 LM tokens and 1,024 vocabulary rows per step, the
zett sampler):

    lm_only         LM steps from the FVT start, no compose term
    compose_only    composition pretraining only (no LM step)
    compose_lm      half the time compose, then LM steps (compose_weight 0)
    compose_lm_aux  as compose_lm, the compose loss kept as an aux term (weight 0.5)
    compose_lm_aux_fragments
                    as compose_lm_aux with `hypernet.correct_fragments`: one-piece tokens
                    that are a lone byte of a character get the net's correction (not a
                    stage: the A/B of that switch at the same budget)

Each run lives in runs/stage_ablation/<variant>/ (resumable; its export in hypernet/), its
training cost in results/stage_ablation/<variant>.json (the trainer's wall seconds, steps,
LM tokens, from the export's hypernet.json); zero-shot cells are cached in
results/stage_ablation/zero_shot/cells. Writes results/stage_ablation.{md,csv,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))  # zero_shot.py

VARIANTS = {
    "lm_only": ("configs/stage_lm_only.yaml", "LM steps only"),
    "compose_only": ("configs/stage_compose_only.yaml", "compose stage only"),
    "compose_lm": ("configs/stage_compose_lm.yaml", "compose, then LM"),
    "compose_lm_aux": ("configs/stage_compose_lm_aux.yaml", "compose, then LM + compose aux"),
    "compose_lm_aux_fragments": (
        "configs/stage_compose_lm_aux_fragments.yaml",
        "as compose_lm_aux, fragments corrected",
    ),
}
RESULTS = ROOT / "results" / "stage_ablation"


def train_variant(name: str) -> dict:
    """Train (or resume) one variant to its export; returns its cost, read from the export
    (totals over every session of the run, so a resumed run counts whole)."""
    from zett.atomic import atomic_write_text
    from zett.config import load_config
    from zett.train.checkpoint import Checkpointer
    from zett.train.loop import Trainer

    cfg = load_config(ROOT / VARIANTS[name][0])
    run = ROOT / cfg.train.output_dir
    if not (run / "hypernet" / "hypernet.json").is_file():
        ckpt = run / "checkpoints"
        resume = ckpt.is_dir() and Checkpointer(ckpt).latest_step() is not None
        Trainer(cfg, resume=resume, progress=True).run()
    rec = cost_record(name, run, cfg.train)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"{name}.json", json.dumps(rec, indent=1) + "\n")
    return rec


def cost_record(name: str, run: Path, tc) -> dict:
    """Steps, LM tokens and the trainer's wall seconds (every session of the run) of the
    export in `run`/hypernet, which the trainer writes when it stops."""
    meta = json.loads((run / "hypernet" / "hypernet.json").read_text())
    return {
        "variant": name,
        "config": VARIANTS[name][0],
        "train_wall_s": meta["train_wall_s"],
        "steps": meta["step"],
        "schedule_steps": tc.steps,
        "compose_steps": min(tc.compose_steps, meta["step"]),
        "lm_tokens": meta["lm_tokens"],
        "max_minutes": tc.max_minutes,
    }


def zero_shot_all(names: list[str], cached_only: bool) -> None:
    """The zero-shot protocol over every target for each variant's export, plus FVT."""
    import zero_shot

    dirs = {n: ROOT / load_dir(n) / "hypernet" for n in names}
    first, *rest = names
    argv = ["--hypernet", str(dirs[first]), "--label", first, "--methods", "hypernet", "fvt"]
    argv += ["--also", *[f"{n}={dirs[n]}" for n in rest]] if rest else []
    argv += ["--results", str(RESULTS)] + (["--cached-only"] if cached_only else [])
    zero_shot.main(argv)


def load_dir(name: str) -> str:
    from zett.config import load_config

    return load_config(ROOT / VARIANTS[name][0]).train.output_dir


def tabulate(names: list[str], results: Path = RESULTS) -> str:
    """`results`.{md,csv,png}: mean test bpb per target and variant, with each one's cost
    (`results`/<variant>.json), from `results`/zero_shot.csv."""
    import csv

    from zett.atomic import atomic_write_text
    from zett.eval.plots import grouped_bar_chart

    with open(results / "zero_shot.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["lang"] == "mean"]
    bpb = {(r["method"], r["target"]): float(r["bpb"]) for r in rows}
    orig = next(v for (m, _), v in bpb.items() if m == "original")
    targets = list(dict.fromkeys(t for m, t in bpb if m != "original"))
    cost = {n: json.loads((results / f"{n}.json").read_text()) for n in names}
    head = "| variant | train min (wall) | compose steps | LM steps | LM tokens | "
    lines = [head + " | ".join(targets) + " | mean / original |"]
    lines.append("|" + "---|" * (len(targets) + 6))
    for m in ["fvt", *names]:
        vals = [bpb.get((m, t)) for t in targets]
        c = cost.get(m)
        meta = "| – | – | – | – |" if c is None else (
            f"| {c['train_wall_s'] / 60:.1f} | {c['compose_steps']} | "
            f"{c['steps'] - c['compose_steps']} | {c['lm_tokens']:,} |"
        )  # fmt: skip
        cells = " | ".join("–" if v is None else f"{v:.3f}" for v in vals)
        known = [v for v in vals if v is not None]
        ratio = f"{sum(known) / len(known) / orig:.2f}×" if known else "–"
        label = m if m == "fvt" else f"{m} ({VARIANTS[m][1]})"
        lines.append(f"| {label} {meta} {cells} | {ratio} |")
    lines.append(f"| original (own tokenizer) | | | | | {orig:.3f} (every target) | 1.00× |")
    table = "\n".join(lines)
    atomic_write_text(results.with_suffix(".md"), table + "\n")
    atomic_write_text(
        results.with_suffix(".csv"),
        "variant,target,mean_bpb\n"
        + "".join(f"{m},{t},{v:.6f}\n" for (m, t), v in bpb.items() if m != "original"),
    )
    grouped_bar_chart(
        {m: {t: bpb[(m, t)] for t in targets if (m, t) in bpb} for m in ["fvt", *names]},
        results.with_suffix(".png"),
        title="Stages at equal CPU time (12 min each): zero-shot mean bpb (dashed: original)",
        reference={"*": orig},
    )
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--cached-only", action="store_true", help="no training, cached cells only")
    args = p.parse_args(argv)
    os.chdir(ROOT)  # configs name their run directories relative to the repository
    names = args.variants
    if not args.cached_only:
        for n in names:
            rec = train_variant(n)
            print(f"[stage_ablation] {n}: {rec}", flush=True)
    have = [n for n in names if (ROOT / load_dir(n) / "hypernet" / "hypernet.json").is_file()]
    if not have:
        raise SystemExit("no variant has an exported hypernet yet; run without --cached-only")
    zero_shot_all(have, args.cached_only)
    print(tabulate(have))
    return 0


if __name__ == "__main__":
    sys.exit(main())
