"""Table 1: zero-shot transfer of SmolLM2-135M to unseen tokenizers, every method.

    python experiments/zero_shot.py                      # full table (hours on a 2-core CPU)
    python experiments/zero_shot.py --targets llama2 --methods fvt lexical
    python experiments/zero_shot.py --smoke              # tiny model, seconds (used by tests)

For each target tokenizer and method it exports the transferred model (HF checkpoint), loads
it with transformers and scores bits per byte + tokens per byte per language on the corpus
test split (the bits-per-byte protocol of zett/eval/bpb.py, fp32). Each (target, method) cell is cached as JSON under
results/zero_shot/cells/, its file name a digest of every input (base model and target
tokenizer file contents, the scored texts, method, hypernet weights and new-row prior:
`cell_inputs`), so an interrupted run resumes, new methods can be added later, and a changed
input is recomputed. A hypernet with a new_row_prior.json (zett.transfer.prior) is scored as
`zett transfer` exports it, prior applied; `--without-prior LABEL=DIR` adds rows without.
Writes results/zero_shot.csv, results/zero_shot.md and results/zero_shot.png.

Targets: ../shared/tokenizers (llama2, llama3, qwen3, gpt35turbo) when present, plus
tokenizers trained here on corpus text (German-only and code-only SentencePiece-style BPE).
OMP needs a donor model that already uses the target tokenizer; none is available offline,
so it is listed as not run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments.cells import (  # noqa: E402
    cell_file,
    config_digest,
    digest,
    file_digest,
    hypernet_inputs,
    read_cell,
    write_cell,
)

SHARED = ["llama2", "llama3", "qwen3", "gpt35turbo"]
LOCAL = {"local-de-16k": ["de"], "local-code-16k": ["python", "c", "javascript"]}
METHODS = ["hypernet", "fvt", "lexical", "focus", "mean", "random"]
LANGS = ["en", "de", "ru", "python"]
MAX_BYTES = 4000  # test-split bytes scored per language


def local_tokenizer(name: str, workdir: Path) -> Path:
    """Train (once) a 16k SentencePiece-style BPE on corpus text of the given languages."""
    from zett.data.corpus import texts_for
    from zett.tokenizers.convert import cached_tokenizer

    def texts() -> list[str]:
        return [t for lang in LOCAL[name] for t in texts_for("train", lang, 3_000_000)]

    return cached_tokenizer(workdir / "tokenizers" / name, "bpe", texts, 16000, byte_level=False)


def target_for(label: str, workdir: Path) -> str:
    """What `compare_methods` takes for a target label: the trained local tokenizer's
    directory for LOCAL ones (trained on first use), else the label itself."""
    return str(local_tokenizer(label, workdir)) if label in LOCAL else label


def held_out_texts(
    langs: list[str] = LANGS, max_bytes: int = MAX_BYTES, split: str = "test"
) -> dict[str, list[str]]:
    """{lang: the corpus `split`'s texts, up to `max_bytes` each}: the scored texts."""
    from zett.data.corpus import texts_for

    return {lang: texts_for(split, lang, max_bytes) for lang in langs}


def cell_inputs(label: str, method: str, texts: dict[str, list[str]], args) -> dict | None:
    """Everything a (target, method) cell's numbers depend on (experiments/cells.py): the
    base model's and the target tokenizer's file contents, the scored texts, the method
    and, for hypernet rows, the weights. None when the target tokenizer is not here (a
    local one not trained yet in --cached-only mode: its cells cannot be looked up)."""
    from zett import assets

    base_dir = assets.resolve_model_dir(args.base)
    inputs: dict = {
        "method": method,
        "base": file_digest(base_dir / "model.safetensors"),
        "base_config": config_digest(base_dir / "config.json"),
        "texts": digest(texts),
    }
    if method != "original":
        tok = Path(args.workdir) / "tokenizers" / label if label in LOCAL else label
        if not assets.has_tokenizer(tok):
            return None
        inputs["target"] = file_digest(assets.find_tokenizer(tok))
    if method == "hypernet":
        inputs.update(hypernet_inputs(args.hypernet, with_prior=uses_prior(args)))
    return inputs


def uses_prior(args) -> bool:
    """Whether hypernet rows apply the hypernet's new-row prior: `--without-prior` rows do
    not (callers building their own args, as experiments/ablations.py does, get the prior)."""
    return getattr(args, "new_row_prior", True)


def cell_path(label: str, method: str, texts: dict[str, list[str]], args) -> Path | None:
    """Where a (target, method) cell is cached: its name carries a digest of its inputs, so
    a cached cell is never shown for another base, tokenizer, text or hypernet."""
    inputs = cell_inputs(label, method, texts, args)
    return None if inputs is None else _cell_file(label, method, inputs, args)


def _cell_file(label: str, method: str, inputs: dict, args) -> Path:
    name = args.label if method == "hypernet" else method
    return cell_file(Path(args.results) / "zero_shot" / "cells", label, name, inputs)


def run_cell(target: str, label: str, method: str, texts, args) -> list[dict]:
    from zett.compare import compare_methods

    inputs = cell_inputs(label, method, texts, args)
    assert inputs is not None  # the target was resolved (trained) before
    cell = _cell_file(label, method, inputs, args)
    cached = read_cell(cell, inputs, "zero_shot", args.force)
    if cached is not None:
        return cached
    rows = compare_methods(
        args.base, target, [method] if method != "original" else [], texts,
        Path(args.workdir), hypernet=args.hypernet, include_original=method == "original",
        options={"hypernet": {"new_row_prior": uses_prior(args)}},
    )  # fmt: skip
    for r in rows:
        r["target"] = label if method != "original" else "(own)"
        if method == "hypernet":
            r["method"] = args.label
    write_cell(cell, rows, inputs)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", default="smollm2")
    p.add_argument("--hypernet", default=str(ROOT / "hypernets" / "smollm2"))
    p.add_argument("--label", default="hypernet", help="method name of the hypernet's rows")
    p.add_argument(
        "--also", nargs="*", default=[], metavar="LABEL=DIR",
        help="more hypernets to add as rows (e.g. hypernet-lm200=hypernets/smollm2_lm200)",
    )  # fmt: skip
    p.add_argument(
        "--without-prior", nargs="*", default=[], metavar="LABEL=DIR",
        help="more hypernets to add as rows, each with its new-row prior ignored "
        "(zett.transfer.prior)",
    )  # fmt: skip
    p.add_argument("--targets", nargs="*", help="default: shared ones present + local ones")
    p.add_argument("--methods", nargs="*", default=METHODS)
    p.add_argument("--langs", nargs="*", default=LANGS)
    p.add_argument("--max-bytes", type=int, default=MAX_BYTES)
    p.add_argument("--workdir", default="outputs/zero_shot")
    p.add_argument("--results", default="results")
    p.add_argument("--force", action="store_true", help="recompute cached cells")
    p.add_argument("--cached-only", action="store_true", help="only tabulate cached cells")
    p.add_argument("--smoke", action="store_true", help="tiny random model, seconds")
    args = p.parse_args(argv)

    from zett import assets
    from zett.compare import format_table, write_csv
    from zett.eval.plots import grouped_bar_chart

    if args.smoke:
        return smoke(args)
    t0 = time.perf_counter()
    texts = held_out_texts(args.langs, args.max_bytes)
    targets = args.targets or [n for n in SHARED if assets.has_tokenizer(n)] + list(LOCAL)
    rows = run_cell("", "(own)", "original", texts, args)
    for label in targets:
        target = label if args.cached_only else target_for(label, Path(args.workdir))
        runs = [(m, args) for m in args.methods]
        extras = [(e, False) for e in args.without_prior] + [(e, True) for e in args.also]
        for extra, prior in extras if "hypernet" in args.methods else []:
            name, _, directory = extra.partition("=")
            runs.append(("hypernet", argparse.Namespace(**{**vars(args), "label": name,
                         "hypernet": directory, "new_row_prior": prior})))  # fmt: skip
        for method, a in runs:
            if method == "hypernet" and not (Path(a.hypernet) / "hypernet.json").is_file():
                print(f"skip hypernet: no {a.hypernet}/hypernet.json", flush=True)
                continue
            if a.cached_only:
                cached = cell_path(label, method, texts, a)
                if cached is None or not cached.is_file():
                    continue
            print(
                f"[zero_shot] {label} × {a.label if method == 'hypernet' else method}", flush=True
            )
            rows += run_cell(target, label, method, texts, a)
    out = Path(args.results)
    write_csv(rows, out / "zero_shot.csv")
    table = format_table(rows, args.langs)
    (out / "zero_shot.md").write_text(table + "\n")
    values: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["lang"] == "mean" and r["method"] != "original":
            values.setdefault(r["method"], {})[r["target"]] = r["bpb"]
    orig = next(r["bpb"] for r in rows if r["method"] == "original" and r["lang"] == "mean")
    grouped_bar_chart(
        values, out / "zero_shot.png", reference={"*": orig},
        title="SmolLM2-135M zero-shot transfer: mean bits per byte (dashed: original)",
    )  # fmt: skip
    print(table)
    print(f"[zero_shot] done in {time.perf_counter() - t0:.0f} s")
    return 0


def smoke(args) -> int:
    """End to end on a tiny random Llama + tiny corpus (what tests run)."""
    from zett.compare import compare_methods, format_table, write_csv
    from zett.testing import tiny_texts, tiny_workspace

    with tiny_workspace() as ws:
        texts = {k: v[:3] for k, v in tiny_texts().items()}
        methods = ["fvt", "lexical", "mean"]
        rows = compare_methods(str(ws.base), str(ws.target), methods, texts, ws.root)
        write_csv(rows, Path(args.results) / "zero_shot_smoke.csv")
        print(format_table(rows, sorted(texts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
