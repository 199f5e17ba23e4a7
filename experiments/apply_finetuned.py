"""Apply-to-fine-tuned: the base's transferred embeddings given to a fine-tuned variant.

    python experiments/apply_finetuned.py                  # SmolLM2, 50 fine-tuning steps
    python experiments/apply_finetuned.py --ft-steps 300 --methods hypernet fvt
    python experiments/apply_finetuned.py --smoke          # tiny model, seconds (tests)

The paper's claim (its §5, "Transferring fine-tuned models"): a hypernet trained for a base
model also serves models fine-tuned from it, because fine-tuning barely moves the embedding
geometry -- the fine-tuned body with the *base's* transferred embeddings keeps most of what
the fine-tuning taught. No fine-tuned SmolLM2 exists offline, so this script makes one:
full fine-tuning (every weight, `zett nshot --all-weights`) of SmolLM2 on one domain of the
corpus train split (`--ft-lang`, default python). It then scores, with bits per byte on the
test split of the fine-tuning domain and of general text (`--eval-langs`, default python
and en):

- `base` and `finetuned`, each with the original tokenizer (the gap fine-tuning opened);
- `base → T (m)`: the base transferred to the target tokenizer T with method m;
- `finetuned + base's m`: the fine-tuned body with the base's transferred embeddings
  (`zett transfer --finetuned` for the hypernet; the same graft for baselines) -- the
  experiment. It should beat `base → T (m)` on the fine-tuning domain;
- `finetuned → T (fvt)`: FVT computed from the fine-tuned model's own embeddings, a
  reference that needs no base at all (baselines only; a hypernet is tied to its base).

Cost on a 2-core CPU: fine-tuning is ~15 s per step at 4 × 128 tokens, so the default 50
steps (25k tokens, lr 5e-5) take ~12-15 min; each of the ~6 evaluations takes ~1 min. That
is a very light fine-tune: expect a small domain gain, not the paper's instruction-tuning
gap. The hypernet rows run when `--hypernet DIR/hypernet.json` exists.

Writes results/apply_finetuned.csv (model, lang, bpb, tokens_per_byte) and
results/apply_finetuned.md. The fine-tuned model is kept in --workdir and reused.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ["hypernet", "fvt"]
EMBEDDING_NAMES = ("embed_tokens", "lm_head", "wte", "word_embeddings")


def graft_body(transferred: Path, finetuned: Path, out: Path) -> Path:
    """`transferred`'s directory (tokenizer, config, embeddings) with every non-embedding
    tensor taken from `finetuned`; tensors are matched by name and must have equal shapes."""
    from safetensors.numpy import load_file, save_file

    from zett.atomic import atomic_dir
    from zett.errors import ZettError

    state = load_file(str(transferred / "model.safetensors"))
    ft = load_file(str(finetuned / "model.safetensors"))
    for name, value in state.items():
        if any(e in name for e in EMBEDDING_NAMES):
            continue
        if name not in ft or ft[name].shape != value.shape:
            raise ZettError(
                f"{finetuned}: tensor {name} missing or of another shape than the base's"
            )
        state[name] = ft[name]
    with atomic_dir(out, overwrite=True) as tmp:
        for f in transferred.iterdir():
            if f.is_file() and f.name != "model.safetensors":
                shutil.copyfile(f, tmp / f.name)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    return out


def finetune(args, corpus="default") -> Path:
    """Full fine-tuning of the base on `--ft-lang` (reused when already in --workdir)."""
    from zett.train.nshot import nshot

    out = Path(args.workdir) / f"finetuned-{args.ft_lang}-{args.ft_steps}"
    if (out / "config.json").is_file():
        return out
    nshot(
        args.base, out, args.ft_steps, train_embeddings_only=False, lr=args.ft_lr,
        batch_size=args.batch_size, seq_len=args.seq_len, eval_every=0, langs=[args.ft_lang],
        eval_bytes=args.eval_bytes, seed=0, corpus=corpus, overwrite=True,
    )  # fmt: skip
    return out


def models_to_score(args, ft: Path, target: str) -> dict[str, Path]:
    """Export every model of the comparison; returns {row label: HF dir}."""
    from zett.assets import target_name
    from zett.compare import export_method
    from zett.transfer import run as transfer_run

    work, t = Path(args.workdir), target_name(target)
    models: dict[str, Path] = {"base": Path(args.base), "finetuned": ft}
    for m in args.methods:
        if m == "hypernet" and not (Path(args.hypernet) / "hypernet.json").is_file():
            print(f"[apply_finetuned] skip hypernet: no {args.hypernet}/hypernet.json", flush=True)
            continue
        base_t = export_method(m, args.base, target, work / f"base-{m}", args.hypernet)
        models[f"base → {t} ({m})"] = base_t
        label = f"finetuned + base's {m}"
        if m == "hypernet":
            models[label] = transfer_run.transfer(
                args.hypernet, args.base, target, work / f"ft-{m}", overwrite=True, finetuned=ft
            )
        else:
            models[label] = graft_body(base_t, ft, work / f"ft-{m}")
            models[f"finetuned → {t} ({m})"] = export_method(
                m, str(ft), target, work / f"ftown-{m}"
            )
    return models


def score(models: dict[str, Path], texts: dict[str, list[str]]) -> list[dict]:
    from zett.eval.bpb import evaluate_model

    rows = []
    for label, path in models.items():
        print(f"[apply_finetuned] eval {label}", flush=True)
        report = evaluate_model(path, texts, progress=False)
        for lang, r in report.per_lang.items():
            rows.append({"model": label, "lang": lang, "bpb": r.bpb,
                         "tokens_per_byte": r.tokens_per_byte})  # fmt: skip
    return rows


def table(rows: list[dict], langs: list[str]) -> str:
    by_model: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["lang"]] = r
    head = ["model", *[f"{lang} bpb" for lang in langs], *[f"{lang} tok/byte" for lang in langs]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, per in by_model.items():
        cells = [f"{per[lang]['bpb']:.3f}" for lang in langs]
        cells += [f"{per[lang]['tokens_per_byte']:.3f}" for lang in langs]
        lines.append("| " + " | ".join([model, *cells]) + " |")
    return "\n".join(lines)


def run(args, target: str, corpus="default") -> str:
    from zett.atomic import atomic_write_text
    from zett.compare import write_csv
    from zett.data.corpus import texts_for

    ft = finetune(args, corpus)
    models = models_to_score(args, ft, target)
    texts = {lang: texts_for(args.eval_split, lang, args.eval_bytes, corpus=corpus)
             for lang in args.eval_langs}  # fmt: skip
    rows = score(models, texts)
    out = Path(args.results)
    write_csv(rows, out / f"{args.name}.csv")
    md = table(rows, args.eval_langs)
    md += (f"\n\nfine-tuning: {args.ft_steps} steps × {args.batch_size} × {args.seq_len} tokens of "
           f"{args.ft_lang}, lr {args.ft_lr}, every weight")  # fmt: skip
    atomic_write_text(out / f"{args.name}.md", md + "\n")
    return md


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", default="smollm2")
    p.add_argument(
        "--target",
        default=None,
        help="default: llama2 if ../shared or `zett prepare tokenizers` has it, else a local BPE",
    )
    p.add_argument("--hypernet", default=str(ROOT / "hypernets" / "smollm2"))
    p.add_argument("--methods", nargs="*", default=METHODS)
    p.add_argument("--ft-lang", default="python", help="corpus language to fine-tune on")
    p.add_argument("--ft-steps", type=int, default=50)
    p.add_argument("--ft-lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--eval-langs", nargs="*", default=["python", "en"])
    p.add_argument("--eval-bytes", type=int, default=3000)
    p.add_argument("--eval-split", default="test", help="corpus split scored")
    p.add_argument("--workdir", default="outputs/apply_finetuned")
    p.add_argument("--results", default="results")
    p.add_argument("--smoke", action="store_true", help="tiny random model, seconds")
    args = p.parse_args(argv)
    args.name = "apply_finetuned"
    if args.smoke:
        return smoke(args)

    from experiments.nshot import local_target
    from zett import assets

    t0 = time.perf_counter()
    if args.target is None:
        has_llama2 = assets.has_tokenizer("llama2")
        args.target = "llama2" if has_llama2 else str(local_target(Path(args.workdir)))
    print(run(args, args.target))
    print(f"[apply_finetuned] done in {time.perf_counter() - t0:.0f} s")
    return 0


def smoke(args) -> int:
    """Tiny random Llama, its 'fine-tune' on tiny code text, a random hypernet (tests)."""
    from zett.testing import make_hypernet, tiny_workspace

    with tiny_workspace() as ws:
        args.base = str(ws.base)
        args.hypernet = str(make_hypernet(ws.base, ws.root / "hypernet", perturb=0.05))
        args.workdir = str(ws.root / "work")
        args.ft_steps, args.ft_lr, args.ft_lang = 4, 1e-3, "code"
        args.batch_size, args.seq_len, args.eval_langs, args.eval_bytes = 2, 32, ["code", "en"], 800
        args.methods, args.name = ["hypernet", "fvt"], "apply_finetuned_smoke"
        args.eval_split = "valid"  # the tiny corpus's test split has no code
        print(run(args, str(ws.target), ws.corpus))
    return 0


if __name__ == "__main__":
    sys.exit(main())
