"""The paper's ablations next to the default recipe: held-out bits per byte at equal steps.

    python experiments/ablations.py                   # trains what is missing, writes results/ablations.*
    python experiments/ablations.py --until 100       # compare every variant after 100 steps
    python experiments/ablations.py --cached-only     # tables/plot from results/ablations/ only
    python experiments/ablations.py --zero-shot no_noise   # full schedule, test-split table
    python experiments/ablations.py --smoke           # tiny models, seconds (tests)

Each variant is a config in configs/ that changes one thing of `configs/smollm2_cpu.yaml`:

    no_identity  no identity warm-up stage (train.identity_steps: 0)
    no_noise     sampled tokenizers without noise on the unigram log-probs (data.noise_std: 0)
    untied       a separate head for output embeddings (hypernet.separate_out_head: true)
    lw0          no auxiliary loss on tokens shared with the base vocab (train.lw: 0)

All variants follow the default's learning-rate schedule (`train.steps` of the base config)
and are stopped after `--until` steps, where the in-loop evaluation (fixed unseen tokenizer,
corpus valid split) is read. Step 0 is the same for every variant: the heads start at zero,
so the prediction is FVT. A run directory that already has the evaluation at `--until`
(e.g. the default run) is read, not retrained; each finished cell is cached as JSON in
results/ablations/ so an interrupted sweep picks up where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))  # zero_shot.py, train_curve.py

VARIANTS = {
    "default": ("configs/smollm2_cpu.yaml", "the shipped CPU recipe"),
    "no_identity": ("configs/ablation_no_identity.yaml", "no identity warm-up"),
    "no_noise": ("configs/ablation_no_noise.yaml", "no noise in tokenizer sampling"),
    "untied": ("configs/ablation_untied.yaml", "separate output-embedding head"),
    "lw0": ("configs/ablation_lw0.yaml", "no auxiliary loss (lw = 0)"),
}


def eval_record(run: Path, step: int) -> dict | None:
    """The in-loop evaluation row of `run` at `step`, if that run logged one."""
    from train_curve import read_metrics

    if not (run / "metrics.jsonl").is_file():
        return None
    evals, _ = read_metrics(run)
    # The last one wins (a resumed run may have logged it twice).
    return next((e for e in reversed(evals) if e["step"] == step), None)


def train_until(cfg, until: int) -> float:
    """Train (or resume) `cfg` until step `until`; returns wall seconds spent here."""
    from zett.train.checkpoint import Checkpointer
    from zett.train.loop import Trainer

    ckpt_dir = Path(cfg.train.output_dir) / "checkpoints"
    latest = Checkpointer(ckpt_dir).latest_step() if ckpt_dir.is_dir() else None
    if latest is not None and latest > until:
        raise SystemExit(
            f"{ckpt_dir} is already past step {until} (at {latest}) but has no evaluation "
            f"there; remove {cfg.train.output_dir} or choose another --until"
        )
    t0 = time.perf_counter()
    Trainer(cfg, resume=latest is not None, progress=True).run(until=until)
    return time.perf_counter() - t0


def run_cell(name: str, config: Path, until: int, cells: Path, overrides: list[str]) -> dict:
    """One variant at step `until`: cached JSON, else an existing run's log, else train it."""
    from zett.atomic import atomic_write_text
    from zett.config import load_config

    cell = cells / f"{name}_step{until}.json"
    if cell.is_file():
        return json.loads(cell.read_text())
    # The step-0 evaluation is FVT for every variant (zero-init heads): skip it here.
    cfg = load_config(config, ["--train.eval_at_start", "false", *overrides])
    if cfg.train.eval_every <= 0 or until % cfg.train.eval_every:
        raise SystemExit(f"--until {until} must be a multiple of train.eval_every ({config})")
    run = Path(cfg.train.output_dir)
    rec, seconds = eval_record(run, until), None
    if rec is None:
        seconds = train_until(cfg, until)
        rec = eval_record(run, until)
        if rec is None:
            raise SystemExit(f"{run}/metrics.jsonl has no evaluation at step {until}")
    result = {
        "variant": name,
        "config": str(config),
        "step": until,
        "schedule_steps": cfg.train.steps,
        "train_s_this_call": seconds,
        "metrics": {k: v for k, v in rec.items() if k.startswith("eval/")},
        "fvt": {k: v for k, v in (eval_record(run, 0) or {}).items() if k.startswith("eval/")},
    }
    cells.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cell, json.dumps(result, indent=1) + "\n")
    return result


def tabulate(results: list[dict], out_prefix: Path) -> str:
    """CSV (variant, tokenizer, lang, bpb), a markdown table and a bar chart of the means."""
    from zett.atomic import atomic_write_text
    from zett.eval.plots import grouped_bar_chart

    rows = []  # (variant, tokenizer, lang, bpb)
    fvt = next((r["fvt"] for r in results if r["fvt"]), {})
    original = {}
    for r in results:
        for key, value in r["metrics"].items():
            _, tok, lang = key.split("/")
            if tok == "original":
                original[lang] = value
            else:
                rows.append((r["variant"], tok, lang, value))
    for key, value in fvt.items():
        _, tok, lang = key.split("/")
        if tok != "original":
            rows.append(("fvt (step 0)", tok, lang, value))
    rows += [("original", "own", lang, v) for lang, v in original.items()]
    atomic_write_text(
        out_prefix.with_suffix(".csv"),
        "variant,tokenizer,lang,bpb\n" + "".join(f"{v},{t},{la},{b:.6f}\n" for v, t, la, b in rows),
    )
    langs = [la for la in dict.fromkeys(la for _, _, la, _ in rows) if la != "mean"] + ["mean"]
    by = {(v, t): {} for v, t, _, _ in rows}
    for v, t, la, b in rows:
        by[(v, t)][la] = b
    default_mean = next((c["mean"] for (v, _), c in by.items() if v == "default"), None)
    what = {name: desc for name, (_, desc) in VARIANTS.items()}
    step = results[0]["step"] if results else 0
    head = f"| variant (step {step}) | change | tokenizer | " + " | ".join(langs) + " | Δ mean |"
    lines = [head, "|" + "---|" * (len(langs) + 4)]
    for (v, t), cells in by.items():
        delta = "" if default_mean is None or v == "original" else (
            f"{cells.get('mean', float('nan')) - default_mean:+.3f}"
        )  # fmt: skip
        vals = [f"{cells[la]:.3f}" if la in cells else "–" for la in langs]
        lines.append(f"| {v} | {what.get(v, '')} | {t} | " + " | ".join(vals) + f" | {delta} |")
    table = "\n".join(lines)
    atomic_write_text(out_prefix.with_suffix(".md"), table + "\n")
    # Differences are small next to the bpb itself: plot each variant minus the FVT start,
    # per language (below zero = better than where every variant started).
    start = {(t, la): b for v, t, la, b in rows if v == "fvt (step 0)"}
    deltas = {
        v: {la: c[la] - start[(t, la)] for la in langs if la in c and (t, la) in start}
        for (v, t), c in by.items()
        if v not in ("original", "fvt (step 0)")
    }
    if any(deltas.values()):
        grouped_bar_chart(
            deltas,
            out_prefix.with_suffix(".png"),
            title=f"Ablations, step {step}: bits per byte minus FVT start",
            ylabel="Δ bits per byte (lower is better)",
            reference={"*": 0.0},
        )
    return table


def zero_shot_variant(name: str, results_dir: Path, targets: list[str], cached_only: bool):
    """Test-split zero-shot rows (zero_shot.py's protocol) of a variant trained to the end of
    its schedule. `default`'s cells are the main zero-shot table's hypernet cells."""
    import zero_shot

    from zett.config import load_config

    cfg = load_config(ROOT / VARIANTS[name][0])
    run = Path(cfg.train.output_dir)
    root = results_dir if name == "default" else results_dir / "ablations" / name
    hypernet = run / "hypernet"
    label = "hypernet"
    if name == "default" and not (hypernet / "hypernet.json").is_file():
        hypernet = ROOT / "hypernets" / "smollm2_lm200"  # the committed export of this recipe
    args = argparse.Namespace(
        base="smollm2", hypernet=str(hypernet), results=str(root), force=False, label=label,
        workdir=str(ROOT / "outputs" / "zero_shot"), max_bytes=zero_shot.MAX_BYTES,
        langs=zero_shot.LANGS,
    )  # fmt: skip
    texts = zero_shot.held_out_texts()
    cells = {t: zero_shot.cell_path(t, "hypernet", texts, args) for t in targets}
    need = [t for t, c in cells.items() if c is None or not c.is_file()]
    if need and cached_only:
        print(f"skipping {name}: no cached zero-shot cells for {', '.join(need)}", file=sys.stderr)
        return []
    if need and not (hypernet / "hypernet.json").is_file():
        train_until(cfg, cfg.train.steps)
    rows = []
    for label in targets:
        target = zero_shot.target_for(label, Path(args.workdir)) if label in need else label
        for r in zero_shot.run_cell(target, label, "hypernet", texts, args):
            rows.append({**r, "variant": name})
    return rows


def tabulate_zero_shot(rows: list[dict], out_prefix: Path) -> str:
    """Mean test-split bpb per target (rows) and variant (columns), FVT from the main table."""
    from zett.atomic import atomic_write_text

    main_table = out_prefix.parent / "zero_shot.csv"  # FVT's cells: the main zero-shot table
    fvt_bpb: dict[str, float] = {}
    if main_table.is_file():
        with main_table.open(newline="") as f:
            for r in csv.DictReader(f):
                if r["method"] == "fvt" and r["lang"] == "mean":
                    fvt_bpb[r["target"]] = float(r["bpb"])
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    targets = list(dict.fromkeys(r["target"] for r in rows))
    mean = {(r["variant"], r["target"]): r["bpb"] for r in rows if r["lang"] == "mean"}
    lines = ["| target | fvt | " + " | ".join(variants) + " |", "|" + "---|" * (len(variants) + 2)]
    for t in targets:
        fvt = fvt_bpb.get(t)
        cells = [f"{mean[(v, t)]:.3f}" if (v, t) in mean else "–" for v in variants]
        lines.append(
            f"| {t} | {'–' if fvt is None else f'{fvt:.3f}'} | " + " | ".join(cells) + " |"
        )
    table = "\n".join(lines)
    atomic_write_text(out_prefix.with_suffix(".md"), table + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--until", type=int, default=100, help="compare variants at this step")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--results", default=str(ROOT / "results"))
    p.add_argument("--cached-only", action="store_true", help="do not train; use cached cells")
    p.add_argument(
        "--zero-shot",
        nargs="*",
        metavar="VARIANT",
        help="instead: train these variants to the end of their schedule and score their "
        "hypernets zero-shot on the test split (zero_shot.py's protocol and targets)",
    )
    p.add_argument("--targets", nargs="+", default=["llama2", "qwen3", "llama3", "gpt35turbo",
                                                     "local-de-16k"])  # fmt: skip
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    results_dir = Path(args.results)
    if args.smoke:
        return smoke(results_dir)
    if args.zero_shot is not None:
        rows = []
        for name in ["default", *[v for v in args.zero_shot if v != "default"]]:
            rows += zero_shot_variant(name, results_dir, args.targets, args.cached_only)
        print(tabulate_zero_shot(rows, results_dir / "ablations_zero_shot"))
        return 0
    cells = results_dir / "ablations"
    results = []
    for name in args.variants:
        cell = cells / f"{name}_step{args.until}.json"
        if args.cached_only and not cell.is_file():
            print(f"skipping {name}: no cached cell {cell}", file=sys.stderr)
            continue
        config = ROOT / VARIANTS[name][0]
        results.append(run_cell(name, config, args.until, cells, []))
    print(tabulate(results, results_dir / "ablations"))
    return 0


def smoke(results_dir: Path) -> int:
    from zett.testing import tiny_train_overrides, tiny_workspace

    with tiny_workspace() as ws:
        results = []
        for name, extra in [("default", []), ("lw0", ["--train.lw", "0"])]:
            overrides = [*tiny_train_overrides(ws, ws.root / name), *extra]
            config = ROOT / "configs" / "tiny.yaml"
            results.append(run_cell(name, config, 2, ws.root / "cells", overrides))
        print(tabulate(results, results_dir / "ablations_smoke"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
