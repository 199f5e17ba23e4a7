"""N-shot: bits per byte vs continued-training tokens, hypernet init vs FVT (vs FOCUS) init.

    python experiments/nshot.py                          # SmolLM2 → llama2, ~15-20 min on CPU
    python experiments/nshot.py --methods fvt            # what runs without a trained hypernet
    python experiments/nshot.py --methods hypernet fvt focus --steps 200 --eval-every 25
    python experiments/nshot.py --smoke                  # tiny model, seconds (used by tests)

The paper's claim (its Fig. 3) is that the hypernet's zero-shot embeddings are not only a
better start than FVT but stay ahead during continued training, i.e. the same bits per byte
needs fewer tokens. For each initialization method this script exports SmolLM2-135M with the
target tokenizer (`zett transfer` / `zett baseline`), then runs `zett nshot` (embeddings
only, AdamW with warm-up) on the corpus train split and records held-out bits per byte
(valid split, `--langs`, `--eval-bytes` per language) every `--eval-every` steps.

Defaults are sized for a 2-core CPU: 40 steps × 4 × 128 tokens (20k tokens), eval on
en + python × 2 KB every 10 steps; about 5-8 minutes per method. The curves are therefore the
very start of the paper's curves (it trains for millions of tokens).
The hypernet is used when `--hypernet DIR/hypernet.json` exists, else skipped with a note.
The target is llama2 when present (../shared or `zett prepare tokenizers`), else a 16k SentencePiece-style BPE trained
here on corpus text (`local-bpe-16k`); `--target local-de-16k` / `local-code-16k` trains
zero_shot.py's German-only / code-only 16k BPE (same recipe, same corpus text) instead.

Writes results/nshot.csv (method, step, tokens, lang, bpb; `lang = mean` rows too),
results/nshot.md (mean bpb per method and step) and results/nshot.png (mean bpb vs tokens;
dotted: the original model with its own tokenizer). Each method's log is cached as JSON under
results/nshot/cells/ so reruns only add what is missing (`--force` recomputes).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))  # cells.py

import zero_shot  # noqa: E402
from cells import cell_file, file_digest, hypernet_inputs, read_cell, write_cell  # noqa: E402

METHODS = ["hypernet", "fvt"]


def local_target(workdir: Path, corpus="default") -> Path:
    """A 16k SentencePiece-style BPE on corpus en + python text (when llama2 is not to be had)."""
    from zett.data.corpus import texts_for
    from zett.tokenizers.convert import cached_tokenizer

    def texts() -> list[str]:
        return [t for lang in ("en", "python") for t in texts_for("train", lang, 2_000_000)]

    out = workdir / "tokenizers" / "local-bpe-16k"
    return cached_tokenizer(out, "bpe", texts, 16000, byte_level=False)


def resolve_target(target: str | None, workdir: Path) -> str:
    """What `--target` names as a tokenizer `zett transfer` takes: llama2 when present, else
    `local_target`, for None; zero_shot.py's local-de-16k / local-code-16k trained (once,
    under `workdir`) by its recipe; anything else as given."""
    from zett import assets

    if target is None:
        return "llama2" if assets.has_tokenizer("llama2") else str(local_target(workdir))
    if target in zero_shot.LOCAL:
        return str(zero_shot.local_tokenizer(target, workdir))
    return target


def run_method(method: str, target: str, args, corpus="default") -> list[dict]:
    """Export `method`'s transfer, train it with `zett nshot`; return its eval log rows."""
    from zett.compare import export_method
    from zett.train.nshot import nshot

    work = Path(args.workdir)
    export = export_method(method, args.base, target, work / f"{method}-zero", args.hypernet)
    result = nshot(
        export, work / f"{method}-nshot", args.steps, lr=args.lr, batch_size=args.batch_size,
        seq_len=args.seq_len, eval_every=args.eval_every, langs=args.langs,
        eval_bytes=args.eval_bytes, seed=args.seed, corpus=corpus, overwrite=True,
        log_path=work / f"{method}.nshot.jsonl",
    )  # fmt: skip
    if not args.keep:
        shutil.rmtree(export, ignore_errors=True)
        shutil.rmtree(result.output_dir, ignore_errors=True)
    return result.log


def cell_inputs(method: str, args) -> dict:
    """Everything a method's n-shot log depends on (see experiments/cells.py)."""
    from zett import assets

    inputs = {
        "method": method, "base": args.base,
        "target": file_digest(assets.find_tokenizer(args.target)),
        "steps": args.steps, "lr": args.lr, "batch_size": args.batch_size,
        "seq_len": args.seq_len, "eval_every": args.eval_every, "langs": list(args.langs),
        "eval_bytes": args.eval_bytes, "seed": args.seed,
    }  # fmt: skip
    if method == "hypernet":
        inputs.update(hypernet_inputs(args.hypernet))
    return inputs


def original_bpb(args, corpus="default") -> dict[str, float]:
    """The base with its own tokenizer on the same valid texts (the target to reach)."""
    from zett.data.corpus import texts_for
    from zett.eval.bpb import evaluate_model

    texts = {lang: texts_for("valid", lang, args.eval_bytes, corpus=corpus) for lang in args.langs}
    report = evaluate_model(args.base, texts, progress=False)
    return {**{k: r.bpb for k, r in report.per_lang.items()}, "mean": report.mean_bpb}


def rows_of(method: str, log: list[dict]) -> list[dict]:
    rows = []
    for entry in log:
        for lang, bpb in [*entry["bpb"].items(), ("mean", entry["mean_bpb"])]:
            rows.append({"method": method, "step": entry["step"], "tokens": entry["tokens"],
                         "lang": lang, "bpb": bpb})  # fmt: skip
    return rows


def table(logs: dict[str, list[dict]], original: dict[str, float]) -> str:
    steps = sorted({e["step"] for log in logs.values() for e in log})
    head = ["method", *[f"step {s}" for s in steps]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, log in logs.items():
        by_step = {e["step"]: e["mean_bpb"] for e in log}
        cells = [f"{by_step[s]:.3f}" if s in by_step else "–" for s in steps]
        lines.append("| " + " | ".join([method, *cells]) + " |")
    lines.append(f"\noriginal model, own tokenizer: mean bpb {original['mean']:.3f}")
    tokens = {e["step"]: e["tokens"] for log in logs.values() for e in log}
    lines.append("tokens seen: " + ", ".join(f"step {s} = {tokens[s]}" for s in steps))
    return "\n".join(lines)


def write_outputs(logs, original, out: Path, name: str, title: str) -> str:
    from zett.atomic import atomic_write_text
    from zett.compare import write_csv
    from zett.eval.plots import line_plot

    rows = [r for method, log in logs.items() for r in rows_of(method, log)]
    rows += [{"method": "original", "step": 0, "tokens": 0, "lang": k, "bpb": v}
             for k, v in original.items()]  # fmt: skip
    write_csv(rows, out / f"{name}.csv")
    md = table(logs, original)
    atomic_write_text(out / f"{name}.md", md + "\n")
    curves = {m: [(e["tokens"], e["mean_bpb"]) for e in log] for m, log in logs.items()}
    line_plot(curves, out / f"{name}.png", xlabel="continued-training tokens",
              title=title, hlines={"original": original["mean"]})  # fmt: skip
    return md


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", default="smollm2")
    p.add_argument(
        "--target", default=None,
        help="a tokenizer name or directory, or zero_shot.py's local-de-16k / local-code-16k "
        "(trained here on first use); default: llama2 if ../shared, else local BPE",
    )  # fmt: skip
    p.add_argument("--hypernet", default=str(ROOT / "hypernets" / "smollm2"))
    p.add_argument("--methods", nargs="*", default=METHODS, help="hypernet, fvt, focus, ...")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--lr", type=float, default=None, help="default: zett.train.nshot.EMBEDDING_LR")
    p.add_argument("--langs", nargs="*", default=["en", "python"])
    p.add_argument("--eval-bytes", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default="outputs/nshot")
    p.add_argument("--results", default="results")
    p.add_argument("--keep", action="store_true", help="keep the exported and trained models")
    p.add_argument("--force", action="store_true", help="recompute cached methods")
    p.add_argument("--smoke", action="store_true", help="tiny random model, seconds")
    args = p.parse_args(argv)
    if args.smoke:
        return smoke(args)

    t0 = time.perf_counter()
    args.target = resolve_target(args.target, Path(args.workdir))
    label = Path(args.target).name
    cells = Path(args.results) / "nshot" / "cells"
    logs: dict[str, list[dict]] = {}
    for method in args.methods:
        if method == "hypernet" and not (Path(args.hypernet) / "hypernet.json").is_file():
            print(f"[nshot] skip hypernet: no {args.hypernet}/hypernet.json", flush=True)
            continue
        inputs = cell_inputs(method, args)
        cell = cell_file(cells, label, method, inputs)
        logs[method] = read_cell(cell, inputs, "nshot", args.force)
        if logs[method] is not None:
            continue
        print(f"[nshot] {label} × {method}", flush=True)
        logs[method] = run_method(method, args.target, args)
        write_cell(cell, logs[method], inputs)
    if not logs:
        print("[nshot] nothing ran; give --methods", file=sys.stderr)
        return 2
    original = original_bpb(args)
    title = f"{args.base} → {label}: n-shot (embeddings only)"
    print(write_outputs(logs, original, Path(args.results), "nshot", title))
    print(f"[nshot] done in {time.perf_counter() - t0:.0f} s")
    return 0


def smoke(args) -> int:
    """End to end on a tiny random Llama + tiny corpus + random hypernet (what tests run)."""
    from zett.testing import make_hypernet, tiny_workspace

    with tiny_workspace() as ws:
        args.base = str(ws.base)
        args.hypernet = str(make_hypernet(ws.base, ws.root / "hypernet", perturb=0.05))
        args.workdir, args.steps, args.eval_every = str(ws.root / "work"), 4, 2
        args.batch_size, args.seq_len, args.langs, args.eval_bytes = 2, 32, ["en", "code"], 600
        logs = {m: run_method(m, str(ws.target), args, ws.corpus) for m in ("hypernet", "fvt")}
        original = original_bpb(args, ws.corpus)
        print(write_outputs(logs, original, Path(args.results), "nshot_smoke", "smoke"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
