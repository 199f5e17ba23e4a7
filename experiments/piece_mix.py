"""Which hypernet predicts which tokens better? Mix two transfers' rows by piece count.

Run:      .venv/bin/python experiments/piece_mix.py [--a hypernets/smollm2]
          [--b hypernets/smollm2_lm200] [--targets toke mon llama3] [--ranges 4- 1-3]
Needs:    `zett prepare smollm2`, `zett prepare corpus`, the target tokenizers.
Writes:   results/piece_mix.md and .csv.

Two hypernets for the same base predict rows in the same embedding space (the body is
frozen), so their transfers can be mixed row by row. For each target this exports the
transfer of `--a` and of `--b` (both without a new-row prior, so the rows are the nets'
own), and per `--ranges` entry (`4-`: 4 or more base pieces, `1-3`, `1-1`) one more model
that takes `--b`'s rows for the tokens whose base piece count is in the range and `--a`'s
for the rest. If a mix beats `--a`, `--b` predicts those tokens better: the question behind
the step-5100 default losing to the 200-step one on toke and mon
(results/tokenizer_families.md). Scored as tokenizer_families.py
scores (test split, en/de/python, 2,000 bytes each). A minute or two per target.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LANGS = ["en", "de", "python"]


def piece_counts(target: Path, base_tokenizer: Path) -> np.ndarray:
    """Base pieces per target id (0 for ids with none), untruncated."""
    from zett.tokenizers.decompose import decompose
    from zett.tokenizers.surface import load_tokenizer, surface_forms

    forms = surface_forms(load_tokenizer(target))
    return decompose(forms, load_tokenizer(base_tokenizer), max_pieces=None).lengths


def mix_exports(a: Path, b: Path, take_b: np.ndarray, out: Path) -> Path:
    """`a`'s export with the rows `take_b` of every vocabulary tensor ([n_target, d],
    padded to PAD_MULTIPLE rows with their mean row) taken from `b`."""
    from safetensors.numpy import load_file, save_file

    from zett.transfer.export import PAD_MULTIPLE

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(a, tmp)
    ta, tb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    n = len(take_b)
    mixed = 0
    for key, value in ta.items():
        if value.ndim == 2 and 0 <= value.shape[0] - n < PAD_MULTIPLE:
            value = value.copy()
            value[:n][take_b] = tb[key][:n][take_b]
            value[n:] = value[:n].mean(0)  # the padding, as export.pad_rows makes it
            ta[key] = value
            mixed += 1
    if not mixed:
        raise ValueError(f"{a}: no tensor with {n} rows to mix")
    save_file(ta, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def run(args: argparse.Namespace, targets: dict[str, Path], texts: dict, base: Path) -> list:
    from zett.compare import export_method
    from zett.eval.bpb import evaluate_model

    rows = []
    work = Path(args.workdir)
    for name, path in targets.items():
        t0 = time.perf_counter()
        lengths = piece_counts(path, base / "tokenizer.json")
        exports = {
            label: export_method(
                "hypernet",
                str(base),
                str(path),
                work / f"{name}-{label}",
                hypernet=hn,
                options={"new_row_prior": False},
            )  # fmt: skip
            for label, hn in (("a", args.a), ("b", args.b))
        }
        taken = {label: np.zeros(len(lengths), bool) for label in exports}
        for i, spec in enumerate(args.ranges):
            lo, hi = parse_range(spec)
            taken[spec] = (lengths >= lo) & (lengths <= hi)
            exports[spec] = mix_exports(
                exports["a"], exports["b"], taken[spec], work / f"{name}-mix{i}"
            )
        for label, model_dir in exports.items():
            report = evaluate_model(model_dir, texts, progress=False)
            per = {lang: r.bpb for lang, r in report.per_lang.items()}
            rows.append({"target": name, "model": label, **per, "mean": report.mean_bpb,
                         "rows_from_b": int(taken[label].sum()), "vocab": len(lengths)})  # fmt: skip
        print(f"[piece_mix] {name}: {time.perf_counter() - t0:.0f} s", flush=True)
        if not args.keep:
            for model_dir in exports.values():
                shutil.rmtree(model_dir, ignore_errors=True)
    return rows


def parse_range(spec: str) -> tuple[int, float]:
    """`4-` → (4, inf), `1-3` → (1, 3): base piece counts, both ends included."""
    lo, _, hi = spec.partition("-")
    try:
        return int(lo), float(hi) if hi else float("inf")
    except ValueError:
        msg = f"--ranges {spec}: write LO-HI or LO- (piece counts), e.g. 4- or 1-3"
        raise ValueError(msg) from None


def table(rows: list[dict], args: argparse.Namespace, langs: list[str]) -> str:
    names = {"a": f"a = {args.a}", "b": f"b = {args.b}"}
    names.update({spec: f"a, with b's rows of {spec.rstrip('-')}{'+' * spec.endswith('-')} "
                  "pieces" for spec in args.ranges})  # fmt: skip
    lines = [
        "| target | model | rows from b | " + " | ".join(langs) + " | mean bpb |",
        "|---|---|---|" + "---|" * (len(langs) + 1),
    ]
    for r in rows:
        share = "–" if r["model"] in ("a", "b") else f"{r['rows_from_b']:,} of {r['vocab']:,}"
        vals = " | ".join(f"{r[lang]:.3f}" for lang in [*langs, "mean"])
        lines.append(f"| {r['target']} | {names[r['model']]} | {share} | {vals} |")
    return "\n".join(lines)


def write(rows: list[dict], args: argparse.Namespace, results: Path, langs: list[str]) -> str:
    from zett.atomic import atomic_write_text
    from zett.compare import write_csv

    md = table(rows, args, langs)
    command = "python experiments/piece_mix.py " + " ".join(sys.argv[1:])
    atomic_write_text(
        results.with_suffix(".md"),
        f"Command: `{command.strip()}`\n\n{md}\n\nBoth transfers without a new-row prior. "
        "Bits per byte, test split, up to 2,000 bytes per language.\n",
    )
    write_csv(rows, results.with_suffix(".csv"))
    return md


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", default="smollm2", help="base model (default: smollm2)")
    p.add_argument("--a", default="hypernets/smollm2", help="the hypernet whose rows are kept")
    p.add_argument(
        "--b", default="hypernets/smollm2_lm200", help="the hypernet whose rows are mixed in"
    )
    p.add_argument("--targets", nargs="+", default=["toke", "mon", "llama3"])
    p.add_argument(
        "--ranges", nargs="+", default=["4-"],
        help="one mix per range of base piece counts whose rows come from b: LO-HI or LO-",
    )  # fmt: skip
    p.add_argument("--langs", nargs="+", default=LANGS)
    p.add_argument("--max-bytes", type=int, default=2000, help="test bytes per language")
    p.add_argument("--workdir", default="outputs/piece_mix")
    p.add_argument("--results", default="results/piece_mix", help="stem of the .md and .csv")
    p.add_argument("--keep", action="store_true", help="keep every export (a, b, each mix)")
    p.add_argument("--smoke", action="store_true", help="tiny random models, seconds (tests)")
    args = p.parse_args(argv)
    for spec in args.ranges:  # a bad range fails (exit 2) before any transfer
        try:
            parse_range(spec)
        except ValueError as e:
            p.error(str(e))

    from zett import assets
    from zett.data.corpus import texts_for

    if args.smoke:
        from zett.testing import make_hypernet, tiny_texts, tiny_workspace

        with tiny_workspace() as ws:
            args.a = str(make_hypernet(ws.base, ws.root / "ha", perturb=0.3))
            args.b = str(make_hypernet(ws.base, ws.root / "hb", perturb=0.6))
            args.workdir, args.ranges = str(ws.root / "work"), ["1-", "1-1"]
            texts = {k: [t[:800] for t in v[:2]] for k, v in tiny_texts().items() if k == "en"}
            rows = run(args, {"tiny": ws.target / "tokenizer.json"}, texts, ws.base)
        print(write(rows, args, Path(args.results), ["en"]))
        return 0
    base = assets.resolve_model_dir(args.base)
    targets = {t: assets.find_tokenizer(t) for t in args.targets}
    texts = {lang: texts_for("test", lang, args.max_bytes) for lang in args.langs}
    print(write(run(args, targets, texts, base), args, Path(args.results), args.langs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
