"""Plot + table of a training run: held-out bits per byte vs step, and the training loss.

    python experiments/train_curve.py --run runs/smollm2_cpu     # writes results/train_curve.*
    python experiments/train_curve.py --smoke                     # tiny run, seconds (tests)

Reads `<run>/metrics.jsonl` written by `zett train`; the eval rows hold bits per byte of the
frozen base with hypernet-predicted embeddings for each fixed held-out tokenizer, and of the
original model with its own tokenizer (the line to approach). Step 0 is the FVT init.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def read_metrics(run: Path) -> tuple[list[dict], list[dict]]:
    """(eval records, train-step records) of a run."""
    evals, steps = [], []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if any(k.startswith("eval/") for k in rec):
            evals.append(rec)
        elif "loss" in rec:
            steps.append(rec)
    return evals, steps


def _progress(evals: list[dict], steps: list[dict]) -> list[tuple[str, int, float]]:
    """(stage, LM tokens seen, wall hours) at each eval, from the last logged step record at
    or before it. Records without `wall_s` (older runs) get the sum of logged step times ×
    the steps they stand for, plus earlier evals' time: the compute, without data waits."""
    out = []
    for e in evals:
        prior = [s for s in steps if s["step"] <= e["step"]]
        last = prior[-1] if prior else {}
        wall = last.get("wall_s")
        if wall is None:
            wall, prev = 0.0, 0
            for s in prior:
                wall += s.get("step_s", s.get("compile_s", 0.0)) * (s["step"] - prev)
                prev = s["step"]
            wall += sum(x.get("eval_s", 0.0) for x in evals if x["step"] < e["step"])
        out.append((last.get("stage", "start"), int(last.get("lm_tokens", 0)), wall / 3600))
    return out


def summarize(run: Path, out_prefix: Path) -> str:
    from zett.atomic import atomic_write_text
    from zett.eval.plots import line_plot

    evals, steps = read_metrics(run)
    if not evals:
        raise SystemExit(f"{run}/metrics.jsonl has no eval records")
    keys = sorted({k for e in evals for k in e if k.startswith("eval/")})
    curves = {
        k.removeprefix("eval/"): [(e["step"], e[k]) for e in evals if k in e]
        for k in keys
        if k.endswith("/mean") and not k.startswith("eval/original")
    }
    orig = evals[-1].get("eval/original/mean")
    hlines = {"original": orig} if orig is not None else None
    line_plot(
        curves, out_prefix.with_suffix(".png"),
        title=f"{run.name}: held-out bits per byte", hlines=hlines,
    )  # fmt: skip
    prog = _progress(evals, steps)
    at = {e["step"]: p for e, p in zip(evals, prog)}
    for suffix, idx, xlabel in (("_tokens", 1, "LM tokens seen"), ("_hours", 2, "wall hours")):
        # one point per x: the latest eval (all compose-stage evals sit at 0 LM tokens)
        by_x = {
            name: list({at[s][idx]: y for s, y in pts if at[s][idx] == at[s][idx]}.items())
            for name, pts in curves.items()
        }
        line_plot(
            by_x, out_prefix.with_name(out_prefix.name + suffix + ".png"), xlabel=xlabel,
            title=f"{run.name}: held-out bpb vs {xlabel}", hlines=hlines,
        )  # fmt: skip
    langs = sorted({k.split("/")[2] for k in keys if k.count("/") == 2})
    targets = sorted({k.split("/")[1] for k in keys if k.count("/") == 2})
    head = "| step | stage | LM tokens | wall h | tokenizer | " + " | ".join(langs)
    lines = [head + " | compose mse |", "|" + "---|" * (len(langs) + 6)]
    for e, (stage, tokens, hours) in zip(evals, prog):
        cmse = f"{e['eval/compose_mse']:.3f}" if "eval/compose_mse" in e else "–"
        for t in targets:
            cells = [f"{e[f'eval/{t}/{lang}']:.3f}" if f"eval/{t}/{lang}" in e else "–"
                     for lang in langs]  # fmt: skip
            lines.append(f"| {e['step']} | {stage} | {tokens:,} | {hours:.2f} | {t} | "
                         + " | ".join(cells) + f" | {cmse} |")  # fmt: skip
    table = "\n".join(lines)
    atomic_write_text(out_prefix.with_suffix(".md"), table + "\n")
    loss_png = out_prefix.with_name(out_prefix.name + "_loss.png")
    lm = [(s["step"], s["loss"]) for s in steps if s.get("stage") == "lm"]
    if lm:
        line_plot({"train loss (sampled tokenizers)": lm}, loss_png, ylabel="loss (nats/token)")
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", default="runs/smollm2_cpu")
    p.add_argument("--out", default="results/train_curve")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        return smoke(Path(args.out))
    print(summarize(Path(args.run), Path(args.out)))
    return 0


def smoke(out: Path) -> int:
    from zett.config import load_config
    from zett.testing import tiny_train_overrides, tiny_workspace
    from zett.train.loop import Trainer

    with tiny_workspace() as ws:
        overrides = tiny_train_overrides(ws, ws.root / "run", eval_bytes=2000)
        Trainer(load_config(ROOT / "configs" / "tiny.yaml", overrides), progress=False).run()
        print(summarize(ws.root / "run", out.with_name(out.name + "_smoke")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
