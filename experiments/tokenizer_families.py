"""Issue 16: every real tokenizer family, transferred from SmolLM2-135M with FVT and the hypernet.

    python experiments/tokenizer_families.py                 # every prepared tokenizer + MiniLM's
    python experiments/tokenizer_families.py --targets gpt2 clip --methods fvt
    python experiments/tokenizer_families.py --cached-only   # tabulate what is cached so far
    python experiments/tokenizer_families.py --smoke         # tiny random model, seconds (tests)

One row per tokenizer of zett/tokenizers/sources.json that resolves here (`zett prepare
tokenizers`, or ../shared/tokenizers), plus MiniLM's WordPiece when `zett prepare minilm` ran:

- family (sources.json / the prepared manifest.json; the surface layout's kind otherwise),
  vocabulary size (ids, added tokens included);
- shared: the share of its ids that `zett.tokenizers.decompose.shared_tokens` pairs with a
  SmolLM2 token (equal canonical bytes and special flag, and SmolLM2 writes those bytes
  with that very token): the rows FVT/hypernet copy instead of predicting;
- pieces/token: mean SmolLM2 pieces per token (`decompose`, max_pieces=None) over the
  tokens with at least one piece (neutral rows, i.e. unmatched special tokens, left out);
- tokens/byte and bits per byte on the corpus test split (en, de, python; --max-bytes per
  language) of the model `zett baseline --method fvt` and `zett transfer` with the shipped
  hypernet (hypernets/smollm2) export, scored by `zett.compare.compare_methods` as in
  the zero-shot table; SmolLM2 with its own tokenizer is the reference line.

Each (tokenizer, method) cell is cached as JSON under results/tokenizer_families/cells/,
its file name a hash of every input (tokenizer file digest, base model digest, method,
hypernet weights digest, langs, bytes): a rerun computes only what is missing or changed.
Writes results/tokenizer_families.csv (one row per tokenizer × method × language + a mean
row) and results/tokenizer_families.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

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

METHODS = ["fvt", "hypernet"]
LANGS = ["en", "de", "python"]
MAX_BYTES = 2000  # test-split bytes scored per language
STATS_VERSION = 1  # bump when `tokenizer_stats` changes what it measures
NAMES = {"fvt": "FVT", "hypernet": "hypernet", "original": "original"}


def family_of(name: str, path: Path) -> str:
    """The family sources.json / the prepared manifest records; else the layout's kind."""
    from zett.tokenizers.registry import sources
    from zett.tokenizers.surface import load_tokenizer, tokenizer_layout

    manifest = path.parent / "manifest.json"
    if manifest.is_file():
        family = json.loads(manifest.read_text(encoding="utf-8")).get("family")
        if family:
            return family
    if name in sources():
        return sources()[name]["family"]
    return tokenizer_layout(load_tokenizer(path))["kind"]


def tokenizer_stats(path: Path, base_tokenizer: Path) -> dict[str, Any]:
    """Vocabulary size, share of ids shared with the base, mean base pieces per token."""
    from zett.tokenizers.decompose import decompose, shared_tokens
    from zett.tokenizers.surface import load_tokenizer, surface_forms

    base_tok = load_tokenizer(base_tokenizer)
    forms = surface_forms(load_tokenizer(path))
    dec = decompose(forms, base_tok, max_pieces=None)
    t_ids, _ = shared_tokens(forms, surface_forms(base_tok), decomposition=dec)
    pieces = dec.lengths[dec.lengths > 0]
    return {
        "vocab": len(forms),
        "n_shared": int(len(t_ids)),
        "shared": float(len(t_ids) / len(forms)),
        "pieces_per_token": float(pieces.mean()) if pieces.size else 0.0,
        "max_pieces": int(dec.lengths.max(initial=0)),
    }


def hypernet_digest(hypernet: Path, with_prior: bool = True) -> dict[str, str]:
    """What a hypernet's transfer depends on: its weights, its hypernet.json less the
    `provenance` notes (experiments/hypernet_card.py adds those; they change no number) and,
    when it has one and `with_prior`, its new-row prior (`cells.hypernet_inputs`)."""
    meta = json.loads((hypernet / "hypernet.json").read_text(encoding="utf-8"))
    meta.pop("provenance", None)
    prior = hypernet_inputs(hypernet, with_prior)
    prior.pop("hypernet")  # the weights' digest, kept under its own key below
    return {"weights": file_digest(hypernet / "hypernet.safetensors"), "config": digest(meta),
            **prior}  # fmt: skip


def round_trip(path: Path, texts: dict[str, list[str]]) -> tuple[int, int]:
    """(texts whose tokens' surface bytes give back the text exactly, texts). A tokenizer
    that lower-cases, normalizes, collapses whitespace or drops characters is scored on a
    different (usually easier) text than the others, so its bpb is not comparable."""
    from zett.tokenizers.surface import encode_ids, join_surfaces, load_tokenizer, surface_forms

    tok = load_tokenizer(path)
    forms = surface_forms(tok)
    every = [t for ts in texts.values() for t in ts if t]
    exact = 0
    for text in every:
        got = join_surfaces(forms, encode_ids(tok, text))
        if got.startswith(b" ") and not text.startswith(" "):  # a prefix space (Llama 2)
            got = got[1:]
        exact += got == text.encode("utf-8")
    return exact, len(every)


def cached(cells: Path, label: str, method: str, inputs: dict, force: bool, compute) -> Any:
    """The cell of (label, method, inputs): read back, else computed and written with its
    inputs beside it (experiments/cells.py)."""
    path = cell_file(cells, label, method, inputs)
    value = read_cell(path, inputs, "tokenizer_families", force)
    if value is None:
        value = compute()
        write_cell(path, value, inputs)
    return value


def run_table(
    targets: dict[str, Path],
    base: str,
    hypernet: Path | None,
    texts: dict[str, list[str]],
    methods: list[str],
    cells: Path,
    workdir: Path,
    out: Path,
    max_bytes: int,
    force: bool = False,
    cached_only: bool = False,
    with_prior: bool = True,
) -> tuple[list[dict], str]:
    """Compute (or read cached) every cell, write `out`.csv and `out`.md; (rows, table).
    `with_prior=False` transfers without the hypernet's new-row prior."""
    from zett import assets
    from zett.compare import compare_methods, write_csv

    base_dir = assets.resolve_model_dir(base)
    base_tok = base_dir / "tokenizer.json"
    common = {
        "base": file_digest(base_dir / "model.safetensors"),
        "base_config": config_digest(base_dir / "config.json"),
        "base_tokenizer": file_digest(base_tok),
        "langs": sorted(texts),
        "max_bytes": max_bytes,
    }
    hn_digest = None if hypernet is None else hypernet_digest(hypernet, with_prior)
    options = {} if with_prior else {"hypernet": {"new_row_prior": False}}
    rows: list[dict] = []
    failed: dict[str, str] = {}
    stats: dict[str, dict] = {}
    families: dict[str, str] = {}
    lossless: dict[str, str] = {}
    ref = "smollm2" if base == "smollm2" else "base"  # the reference line: own tokenizer
    plan = [(ref, base_tok, "original")] + [(n, p, m) for n, p in targets.items() for m in methods]
    for label, path in [(ref, base_tok), *targets.items()]:
        key = {"tokenizer": file_digest(path), "base_tokenizer": common["base_tokenizer"],
               "version": STATS_VERSION}  # fmt: skip
        stats[label] = cached(
            cells, label, "stats", key, force, lambda p=path: tokenizer_stats(p, base_tok)
        )
        families[label] = family_of(label, path)
        exact, n = round_trip(path, texts)
        lossless[label] = "yes" if exact == n else f"no ({exact}/{n} texts)"
    for label, path, method in plan:
        if method == "hypernet" and hn_digest is None:
            continue
        inputs = {**common, "method": method, "tokenizer": file_digest(path)}
        if method == "hypernet":
            inputs["hypernet"] = hn_digest
        if cached_only and not cell_file(cells, label, method, inputs).is_file():
            continue
        print(f"[tokenizer_families] {label} × {method}", flush=True)

        def compute(path=path, method=method) -> list[dict]:
            return compare_methods(
                str(base_dir), str(path), [] if method == "original" else [method], texts,
                workdir, hypernet=hypernet, include_original=method == "original",
                options=options,
            )  # fmt: skip

        try:
            cell = cached(cells, label, method, inputs, force, compute)
        except Exception as e:  # one tokenizer's failure must not lose the others' rows
            failed[f"{label} × {method}"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
            print(f"[tokenizer_families] FAILED {label} × {method}: {e}", flush=True)
            continue
        s = stats[label]
        for r in cell:
            rows.append(
                {"target": label, "family": families[label], "method": method, "lang": r["lang"],
                 "bpb": r["bpb"], "tokens_per_byte": r["tokens_per_byte"],
                 "seconds": r["seconds"], "vocab_size": s["vocab"],
                 "shared_share": round(s["shared"], 6),
                 "mean_pieces": round(s["pieces_per_token"], 6), "lossless": lossless[label]}
            )  # fmt: skip
    table = format_table(rows, sorted(texts), max_bytes, failed, list(targets))
    out.parent.mkdir(parents=True, exist_ok=True)
    if rows:
        write_csv(rows, out.with_suffix(".csv"))
    from zett.atomic import atomic_write_text

    atomic_write_text(out.with_suffix(".md"), table + "\n")
    return rows, table


def format_table(
    rows: list[dict], langs: list[str], max_bytes: int, failed: dict[str, str], order: list[str]
) -> str:
    """One line per tokenizer (family-grouped), the reference line first."""
    mean: dict[tuple[str, str], dict] = {}
    for r in rows:
        if r["lang"] == "mean":
            mean[(r["target"], r["method"])] = r
    info = {r["target"]: r for r in rows}
    head = ["tokenizer", "family", "vocab", "shared with SmolLM2", "SmolLM2 pieces/token",
            "lossless", "tokens/byte", "FVT bpb", "hypernet bpb", "hypernet − FVT"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def bpb(target: str, method: str) -> str:
        r = mean.get((target, method))
        return "–" if r is None else f"{r['bpb']:.3f}"

    def line(target: str, name: str, cols: list[str]) -> str:
        r = info[target]
        tpb = next((m["tokens_per_byte"] for (t, _), m in mean.items() if t == target), None)
        cells = [name, r["family"], f"{r['vocab_size']:,}", f"{100 * r['shared_share']:.1f}%",
                 f"{r['mean_pieces']:.2f}", r["lossless"], "–" if tpb is None else f"{tpb:.3f}", *cols]  # fmt: skip
        return "| " + " | ".join(cells) + " |"

    refs = [t for (t, m) in mean if m == "original"]
    for t in refs:
        lines.append(line(t, f"**{t} (original)**", [f"{bpb(t, 'original')} (own)", "–", "–"]))
    targets = [t for t in order if t in info]
    targets.sort(key=lambda t: (info[t]["family"], order.index(t)))
    for t in targets:
        fvt, hn = mean.get((t, "fvt")), mean.get((t, "hypernet"))
        delta = f"{hn['bpb'] - fvt['bpb']:+.3f}" if fvt and hn else "–"
        lines.append(line(t, t, [bpb(t, "fvt"), bpb(t, "hypernet"), delta]))
    seconds = sum({(r["target"], r["method"]): r["seconds"] for r in rows}.values())  # one per cell
    lines += [
        "",
        f"Bits per byte (lower is better) of SmolLM2-135M with each tokenizer's transferred "
        f"embeddings, mean over {', '.join(langs)} (up to {max_bytes:,} bytes each of the corpus "
        "test split; per language in results/tokenizer_families.csv). `shared`: ids whose "
        "bytes SmolLM2 writes as one identical token (copied, not predicted); pieces/token: "
        "SmolLM2 pieces per token over tokens with at least one piece; lossless: the "
        "tokens' bytes give back every scored text exactly (a lossy tokenizer — lower-casing, "
        "whitespace-collapsing, dropping unknown characters — is scored on an easier text, "
        "so its bpb is not comparable with the others'); tokens/byte: "
        f"sequence length per byte under the tokenizer. Cells: {seconds / 60:.0f} min of "
        "transfer + eval in total.",
    ]
    if failed:
        lines += ["", "Not scored: " + "; ".join(f"{k} ({v})" for k, v in failed.items())]
    return "\n".join(lines)


def default_targets() -> dict[str, Path]:
    from zett import assets

    out = {n: assets.find_tokenizer(n) for n in assets.tokenizer_names() if assets.has_tokenizer(n)}
    if assets.has_tokenizer("minilm"):  # `zett prepare minilm`
        out["minilm"] = assets.find_tokenizer("minilm")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", default="smollm2")
    p.add_argument("--hypernet", default=str(ROOT / "hypernets" / "smollm2"))
    p.add_argument("--targets", nargs="*", help="default: every prepared tokenizer + minilm")
    p.add_argument("--methods", nargs="*", default=METHODS, choices=METHODS)
    p.add_argument("--langs", nargs="*", default=LANGS)
    p.add_argument("--max-bytes", type=int, default=MAX_BYTES, help="test bytes per language")
    p.add_argument("--workdir", default="outputs/tokenizer_families")
    p.add_argument("--results", default="results")
    p.add_argument("--force", action="store_true", help="recompute cached cells")
    p.add_argument("--cached-only", action="store_true", help="only tabulate cached cells")
    p.add_argument(
        "--without-prior", action="store_true",
        help="transfer without the hypernet's new-row prior (new_row_prior.json); "
        "the table goes to tokenizer_families_noprior.md/.csv",
    )  # fmt: skip
    p.add_argument("--smoke", action="store_true", help="tiny random model, seconds")
    args = p.parse_args(argv)
    if args.smoke:
        return smoke(Path(args.results))

    from zett import assets
    from zett.data.corpus import texts_for

    t0 = time.perf_counter()
    if args.targets:
        targets = {t: assets.find_tokenizer(t) for t in args.targets}
    else:
        targets = default_targets()
    texts = {lang: texts_for("test", lang, args.max_bytes) for lang in args.langs}
    hypernet = Path(args.hypernet)
    if not (hypernet / "hypernet.json").is_file():
        print(f"skip hypernet: no {hypernet}/hypernet.json", flush=True)
        hypernet = None
    results = Path(args.results)
    _, table = run_table(
        targets, args.base, hypernet, texts, args.methods, results / "tokenizer_families" / "cells",
        Path(args.workdir), results / f"tokenizer_families{'_noprior' * args.without_prior}",
        args.max_bytes, args.force, args.cached_only, not args.without_prior,
    )  # fmt: skip
    print(table)
    print(f"[tokenizer_families] done in {time.perf_counter() - t0:.0f} s")
    return 0


def smoke(results: Path) -> int:
    """The same table on a tiny random Llama, two tiny target tokenizers (byte-level BPE,
    WordPiece) and a random tiny hypernet: what tests run."""
    from zett.testing import make_hypernet, tiny_texts, tiny_workspace
    from zett.tokenizers.convert import train_tokenizer

    with tiny_workspace() as ws:
        all_texts = tiny_texts()
        wp = ws.root / "wordpiece"
        wp.mkdir()
        train_tokenizer("wordpiece", [t for ts in all_texts.values() for t in ts], 300).save(
            str(wp / "tokenizer.json")
        )
        hypernet = make_hypernet(ws.base, ws.root / "hypernet")
        texts = {
            k: [t[:1500] for t in v[:3]] for k, v in all_texts.items() if k in ("en", "de", "code")
        }
        n_bytes = max(sum(len(t.encode()) for t in v) for v in texts.values())
        _, table = run_table(
            {"tiny-bpe": ws.target / "tokenizer.json", "tiny-wordpiece": wp / "tokenizer.json"},
            str(ws.base), hypernet, texts, METHODS, ws.root / "cells", ws.root / "work",
            results / "tokenizer_families_smoke", max_bytes=n_bytes,
        )  # fmt: skip
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
