"""Transfer one base to one target tokenizer with several methods and score each export.

The demo and the experiment scripts share this: for every method it writes the HF export
(`zett transfer` / `zett baseline`), loads it back with plain transformers, and reports bits
per byte and tokens per byte per language under the same protocol as the original model.
Rows are flat dicts so they go straight into CSV and README tables.

A driver, not part of the eval layer: it runs transfers (`zett.transfer.run`) and scores
them (`zett.eval.bpb`), so it sits above both, beside `zett.demo` (which imports it, hence
zett/ and not experiments/); `zett.eval` itself imports nothing of transfer.
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path
from typing import Any

from zett import assets
from zett.assets import target_name
from zett.atomic import atomic_write_text
from zett.eval.bpb import evaluate_model
from zett.transfer import run as transfer_run

ORIGINAL = "original"


def export_method(
    method: str,
    base: str,
    target: str,
    out_dir: Path,
    hypernet: str | Path | None = None,
    options: dict[str, Any] | None = None,
) -> Path:
    """Write (or overwrite) the export of `method` for `target` under `out_dir`."""
    if method == "hypernet":
        if hypernet is None:
            raise ValueError("method hypernet needs a hypernet directory")
        prior = (options or {}).get("new_row_prior", True)
        return transfer_run.transfer(
            hypernet, base, target, out_dir, overwrite=True, new_row_prior=prior
        )
    return transfer_run.baseline(method, base, target, out_dir, overwrite=True, **(options or {}))


def compare_methods(
    base: str,
    target: str,
    methods: list[str],
    texts_by_lang: dict[str, list[str]],
    workdir: Path,
    hypernet: str | Path | None = None,
    include_original: bool = True,
    keep_exports: bool = False,
    options: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per (method, language) plus a `mean` row per method.

    Row keys: target, method, lang, bpb, tokens_per_byte, seconds (transfer + eval).
    The original model is evaluated with its own tokenizer (method `original`).
    """
    rows: list[dict[str, Any]] = []
    plan = ([ORIGINAL] if include_original else []) + list(methods)
    for method in plan:
        t0 = time.perf_counter()
        if method == ORIGINAL:
            model_dir = assets.resolve_model_dir(base)
        else:
            model_dir = export_method(
                method, base, target, workdir / f"{target_name(target)}-{method}",
                hypernet=hypernet, options=(options or {}).get(method),
            )  # fmt: skip
        report = evaluate_model(model_dir, texts_by_lang, progress=False)
        seconds = round(time.perf_counter() - t0, 1)
        tgt = "(own)" if method == ORIGINAL else target_name(target)
        for lang, res in report.per_lang.items():
            rows.append(
                {"target": tgt, "method": method, "lang": lang, "bpb": res.bpb,
                 "tokens_per_byte": res.tokens_per_byte, "seconds": seconds}
            )  # fmt: skip
        rows.append(
            {"target": tgt, "method": method, "lang": "mean", "bpb": report.mean_bpb,
             "tokens_per_byte": report.mean_tokens_per_byte, "seconds": seconds}
        )  # fmt: skip
        if method != ORIGINAL and not keep_exports:
            shutil.rmtree(model_dir, ignore_errors=True)
    return rows


def format_table(rows: list[dict[str, Any]], langs: list[str]) -> str:
    """Markdown table: one line per (target, method), bpb per language + mean, tokens/byte."""
    keyed: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:
        keyed.setdefault((r["target"], r["method"]), {})[r["lang"]] = r
    head = ["target", "method", *langs, "mean bpb", "tokens/byte"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (target, method), per in keyed.items():
        cells = [target, method]
        cells += [f"{per[lang]['bpb']:.3f}" if lang in per else "–" for lang in langs]
        mean = per.get("mean", {})
        cells += [f"{mean.get('bpb', float('nan')):.3f}",
                  f"{mean.get('tokens_per_byte', float('nan')):.3f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
    return path
