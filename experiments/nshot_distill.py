"""N-shot objectives at equal CPU time: causal LM (clm) vs cross-tokenizer distillation (ALM).

    python experiments/nshot_distill.py                         # SmolLM2 → llama2, FVT init
    python experiments/nshot_distill.py --inits fvt hypernet --cpu-seconds 240
    python experiments/nshot_distill.py --objectives distill    # one objective (cells cache)
    python experiments/nshot_distill.py --smoke                 # tiny models, seconds (tests)

`zett nshot --objective clm` trains the transferred model on next-token cross-entropy with
the new tokenizer; `--objective distill` instead matches the original SmolLM2 (teacher, own
tokenizer, frozen) chunk by chunk (approximate likelihood matching, zett/distill.py). The
distill step also runs the teacher forward, so the fair comparison is at equal compute:
each run gets the same budget of process CPU seconds in training steps (`--cpu-seconds`,
`zett nshot --max-cpu-seconds`; evaluations excluded, the cosine decay spans the budget),
with `--threads` torch threads. Held-out bits per byte (valid split, en + python, 2,000
bytes each: the texts of experiments/nshot.py) every `--eval-every` steps, with the tokens
and CPU seconds spent so far.

The init is SmolLM2-135M exported with the target tokenizer by FVT (`zett baseline`) and,
with `--inits ... hypernet`, by hypernets/smollm2 (`zett transfer`); exports are reused from
`--workdir` when present. Target: llama2 when it resolves (`zett.assets.find_tokenizer`),
else a 16k SentencePiece-style BPE trained on corpus text (as experiments/nshot.py).

Writes results/nshot_distill.csv (init, objective, step, tokens, cpu_seconds, lang, bpb),
results/nshot_distill.md (per run: its evals, and mean bpb at the common CPU budget),
results/nshot_distill.png (mean bpb vs CPU seconds) and results/nshot_distill_tokens.png
(mean bpb vs tokens). Each run's log is cached under results/nshot_distill/cells/ by its
inputs (experiments/cells.py), so runs of one objective can go in separate processes and a
last call only collects (`--force` recomputes).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))  # cells.py, nshot.py

from cells import cell_file, file_digest, hypernet_inputs, read_cell, write_cell  # noqa: E402

OBJECTIVES = ["clm", "distill"]


def export_init(init: str, args) -> Path:
    """The zero-shot export of `init` (fvt / hypernet / ...) for the target, reused if there."""
    from zett.compare import export_method

    out = Path(args.workdir) / f"{init}-zero"
    if (out / "zett_transfer.json").is_file() and not args.force:
        return out
    return export_method(init, args.base, args.target, out, args.hypernet)


def run_cell(init: str, objective: str, args, corpus="default") -> list[dict]:
    """Train the `init` export with `objective` on the CPU budget; return its eval log."""
    import torch

    from zett.train.nshot import nshot

    torch.set_num_threads(args.threads)
    export = export_init(init, args)
    out = Path(args.workdir) / f"{init}-{objective}"
    result = nshot(
        export, out, args.max_steps, lr=args.lr, batch_size=args.batch_size,
        seq_len=args.seq_len, eval_every=args.eval_every, langs=args.langs,
        eval_bytes=args.eval_bytes, seed=args.seed, corpus=corpus, overwrite=True,
        log_path=Path(args.workdir) / f"{init}-{objective}.nshot.jsonl", objective=objective,
        teacher=args.base, tau=args.tau, max_cpu_seconds=args.cpu_seconds, warmup=args.warmup,
    )  # fmt: skip
    if not args.keep:
        shutil.rmtree(result.output_dir, ignore_errors=True)
    return result.log


def cell_inputs(init: str, objective: str, args) -> dict:
    """Everything a run's log depends on (experiments/cells.py)."""
    from zett import assets

    inputs = {
        "init": init, "objective": objective, "base": args.base,
        "target": file_digest(assets.find_tokenizer(args.target)),
        "cpu_seconds": args.cpu_seconds, "max_steps": args.max_steps, "lr": args.lr,
        "warmup": args.warmup, "batch_size": args.batch_size, "seq_len": args.seq_len,
        "eval_every": args.eval_every, "langs": list(args.langs), "eval_bytes": args.eval_bytes,
        "seed": args.seed, "tau": args.tau, "threads": args.threads,
    }  # fmt: skip
    if init == "hypernet":
        inputs.update(hypernet_inputs(args.hypernet))
    return inputs


def bpb_at(log: list[dict], cpu: float) -> float | None:
    """Mean bpb at `cpu` training CPU seconds, linearly interpolated between evals."""
    pts = sorted((e["cpu_seconds"], e["mean_bpb"]) for e in log)
    if not pts or cpu > pts[-1][0] + 1e-9:
        return None
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= cpu <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (cpu - x0) / (x1 - x0)
    return pts[0][1]


def table(logs: dict[tuple[str, str], list[dict]], original: dict[str, float]) -> str:
    common = min(log[-1]["cpu_seconds"] for log in logs.values())
    lines = [
        "| init | objective | steps | tokens | CPU s | wall s | mean bpb at step 0 | "
        f"at {common:.0f} CPU s | final |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (init, objective), log in logs.items():
        last, at = log[-1], bpb_at(log, common)
        lines.append(
            f"| {init} | {objective} | {last['step']} | {last['tokens']} | "
            f"{last['cpu_seconds']:.0f} | {last['seconds']:.0f} | {log[0]['mean_bpb']:.3f} | "
            f"{at:.3f} | {last['mean_bpb']:.3f} |"
        )
    lines.append(f"\noriginal model, own tokenizer: mean bpb {original['mean']:.3f}\n")
    lines.append("Every eval (mean bpb @ step / tokens / training CPU s):\n")
    for (init, objective), log in logs.items():
        pts = ", ".join(
            f"{e['mean_bpb']:.3f} @ {e['step']}/{e['tokens']}/{e['cpu_seconds']:.0f}" for e in log
        )
        lines.append(f"- {init} {objective}: {pts}")
    return "\n".join(lines)


def write_outputs(logs, original, out: Path, name: str, title: str) -> str:
    from zett.atomic import atomic_write_text
    from zett.compare import write_csv
    from zett.eval.plots import line_plot

    rows = []
    for (init, objective), log in logs.items():
        for e in log:
            for lang, bpb in [*e["bpb"].items(), ("mean", e["mean_bpb"])]:
                rows.append({"init": init, "objective": objective, "step": e["step"],
                             "tokens": e["tokens"], "cpu_seconds": e["cpu_seconds"],
                             "lang": lang, "bpb": bpb})  # fmt: skip
    rows += [{"init": "original", "objective": "", "step": 0, "tokens": 0, "cpu_seconds": 0,
              "lang": k, "bpb": v} for k, v in original.items()]  # fmt: skip
    write_csv(rows, out / f"{name}.csv")
    md = table(logs, original)
    atomic_write_text(out / f"{name}.md", md + "\n")
    hl = {"original": original["mean"]}
    by_cpu = {
        f"{i} {o}": [(e["cpu_seconds"], e["mean_bpb"]) for e in g] for (i, o), g in logs.items()
    }
    by_tok = {f"{i} {o}": [(e["tokens"], e["mean_bpb"]) for e in g] for (i, o), g in logs.items()}
    line_plot(by_cpu, out / f"{name}.png", xlabel="training CPU seconds", title=title, hlines=hl)
    line_plot(by_tok, out / f"{name}_tokens.png", xlabel="training tokens", title=title, hlines=hl)
    return md


def collect(args, corpus="default", label: str = "") -> dict[tuple[str, str], list[dict]]:
    cells = Path(args.results) / "nshot_distill" / "cells"
    logs: dict[tuple[str, str], list[dict]] = {}
    for init in args.inits:
        if init == "hypernet" and not (Path(args.hypernet) / "hypernet.json").is_file():
            print(f"[nshot_distill] skip hypernet: no {args.hypernet}/hypernet.json", flush=True)
            continue
        for objective in args.objectives:
            inputs = cell_inputs(init, objective, args)
            cell = cell_file(cells, label, f"{init}-{objective}", inputs)
            log = read_cell(cell, inputs, "nshot_distill", args.force)
            if log is None and not args.collect_only:
                print(f"[nshot_distill] {label} × {init} × {objective}", flush=True)
                log = run_cell(init, objective, args, corpus)
                write_cell(cell, log, inputs)
            if log is not None:
                logs[(init, objective)] = log
    return logs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", default="smollm2", help="base model = teacher (default smollm2)")
    p.add_argument("--target", default=None, help="default: llama2 if it resolves, else local BPE")
    p.add_argument("--hypernet", default=str(ROOT / "hypernets" / "smollm2"))
    p.add_argument("--inits", nargs="+", default=["fvt"], help="fvt, hypernet, focus, ...")
    p.add_argument("--objectives", nargs="+", default=OBJECTIVES, choices=OBJECTIVES)
    p.add_argument("--cpu-seconds", type=float, default=180.0, help="training CPU s per run")
    p.add_argument("--max-steps", type=int, default=1000, help="upper bound on steps")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--lr", type=float, default=None, help="default: zett.train.nshot.EMBEDDING_LR")
    p.add_argument("--warmup", type=int, default=2, help="warm-up steps (default 2)")
    p.add_argument("--tau", type=float, default=1.0, help="distill temperature (default 1)")
    p.add_argument("--langs", nargs="*", default=["en", "python"])
    p.add_argument("--eval-bytes", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default="outputs/nshot_distill")
    p.add_argument("--results", default="results")
    p.add_argument("--keep", action="store_true", help="keep the trained models")
    p.add_argument("--force", action="store_true", help="recompute cached runs and exports")
    p.add_argument("--collect-only", action="store_true", help="only write outputs from cells")
    p.add_argument("--smoke", action="store_true", help="tiny random models, seconds")
    args = p.parse_args(argv)
    if args.smoke:
        return smoke(args)

    from experiments.nshot import local_target, original_bpb
    from zett import assets

    t0 = time.perf_counter()
    if args.target is None:
        has_llama2 = assets.has_tokenizer("llama2")
        args.target = "llama2" if has_llama2 else str(local_target(Path(args.workdir)))
    label = Path(args.target).name
    logs = collect(args, label=label)
    if not logs:
        print("[nshot_distill] nothing ran or cached", file=sys.stderr)
        return 2
    original = original_bpb(args)
    title = f"{args.base} → {label}: n-shot, clm vs distill"
    print(write_outputs(logs, original, Path(args.results), "nshot_distill", title))
    print(f"[nshot_distill] done in {time.perf_counter() - t0:.0f} s")
    return 0


def smoke(args) -> int:
    """End to end on a tiny random Llama (teacher) and its FVT export to an unseen tokenizer."""
    from experiments.nshot import original_bpb
    from zett.testing import tiny_workspace

    with tiny_workspace() as ws:
        args.base, args.target, args.workdir = str(ws.base), str(ws.target), str(ws.root / "work")
        args.cpu_seconds, args.max_steps, args.eval_every, args.inits = 2.0, 6, 2, ["fvt"]
        args.batch_size, args.seq_len, args.langs, args.eval_bytes = 2, 32, ["en", "code"], 600
        logs = {
            (i, o): run_cell(i, o, args, ws.corpus) for i in args.inits for o in args.objectives
        }
        original = original_bpb(args, ws.corpus)
        print(write_outputs(logs, original, Path(args.results), "nshot_distill_smoke", "smoke"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
