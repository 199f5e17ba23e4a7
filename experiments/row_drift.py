"""Which target-token rows does more LM training move, and are they the ones it never sees?

Run:      .venv/bin/python experiments/row_drift.py --before DIR_A --after DIR_B [--target llama3]
Needs:    `zett prepare smollm2`, `zett prepare corpus`, the target tokenizer.
Writes:   results/row_drift.json and .md.

Between two exports of one training run (`--before`, `--after`), this transfers SmolLM2 to
`--target` with each and measures how far every target row moved, relative to its norm
before, weighted by how often the token occurs in held-out text (corpus valid split,
`--bytes` per language). Rows are grouped by whether the token's text would be one
pre-token under the GPT-2 pre-tokenizer, which every sampled training tokenizer used before
`data.pretokenizers`: tokens spanning several GPT-2 pre-tokens (`(self`, `):` + newline)
never occur in those samples, so the LM loss never trains their rows, and how they move is
a side effect of training the others.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "results" / "row_drift"


def _shown(path: Path) -> str:
    """`path` relative to the repository when inside it (as the tables show it)."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def weighted_mean(values: np.ndarray, weights: np.ndarray, mask: np.ndarray) -> float:
    """Mean of `values[mask]` weighted by `weights[mask]` (0 when nothing is selected)."""
    return float((values[mask] * weights[mask]).sum() / max(weights[mask].sum(), 1.0))


def spans_pretokens(tok, ids: np.ndarray) -> np.ndarray:
    """bool per id: the token's text is more than one GPT-2 pre-token."""
    from zett.data.sampler import pre_tokenizer

    pre = pre_tokenizer("gpt2")
    return np.array([len(pre.pre_tokenize_str(tok.decode([int(i)]))) > 1 for i in ids])


def run(before: Path, after: Path, target: str, langs: list[str], n_bytes: int, top: int):
    from zett.data.corpus import texts_for
    from zett.transfer.baselines import METHODS, build_inputs
    from zett.transfer.load import load_pair

    # the base loaded once; each hypernet's input rows as `zett transfer` would export them
    _, loaded, base_tok, _, tok = load_pair("smollm2", target)
    rows = {}
    for name, hypernet in (("before", before), ("after", after)):
        inputs = build_inputs(loaded, base_tok, tok, {"hypernet": str(hypernet)})
        rows[name] = np.asarray(METHODS["hypernet"](inputs).input, np.float32)
    norm = np.linalg.norm(rows["before"], axis=1) + 1e-6
    rel = np.linalg.norm(rows["after"] - rows["before"], axis=1) / norm
    res: dict = {"before": _shown(before), "after": _shown(after), "target": target, "langs": {}}
    for lang in langs:
        counts: Counter[int] = Counter()
        for text in texts_for("valid", lang, n_bytes):
            counts.update(tok.encode(text, add_special_tokens=False).ids)
        ids = np.array(sorted(counts))
        w = np.array([counts[i] for i in ids], dtype=np.float64)
        spans = spans_pretokens(tok, ids)
        r = rel[ids]
        order = np.argsort(-(r * w))[:top]
        res["langs"][lang] = {
            "tokens": int(w.sum()),
            "spanning_share": round(float(w[spans].sum() / w.sum()), 4),
            "drift_spanning": round(weighted_mean(r, w, spans), 4),
            "drift_one_pretoken": round(weighted_mean(r, w, ~spans), 4),
            "top": [
                {
                    "token": tok.decode([int(ids[j])]),
                    "count": int(w[j]),
                    "drift": round(float(r[j]), 4),
                    "spans": bool(spans[j]),
                }
                for j in order
            ],  # fmt: skip
        }
        print(lang, {k: v for k, v in res["langs"][lang].items() if k != "top"}, flush=True)
    return res


def to_markdown(res: dict) -> str:
    lines = [
        f"Relative change of SmolLM2's {res['target']} input rows, `{res['before']}` → "
        f"`{res['after']}`, weighted by token counts in held-out text (valid split), split by "
        "whether a token's text is one GPT-2 pre-token (what the training sampler could form).",
        "",
        "| lang | tokens | share spanning | drift spanning | drift one pre-token |",
        "|---|---|---|---|---|",
    ]
    for lang, d in res["langs"].items():
        lines.append(
            f"| {lang} | {d['tokens']:,} | {d['spanning_share']:.1%} | {d['drift_spanning']:.3f} "
            f"| {d['drift_one_pretoken']:.3f} |"
        )
    for lang, d in res["langs"].items():
        lines += ["", f"Most moved × most frequent in {lang}:", ""]
        lines.append(
            ", ".join(f"`{t['token']!r}` ({t['drift']:.2f}, ×{t['count']})" for t in d["top"])
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", type=Path, default=ROOT / "hypernets" / "smollm2_cont2522")
    ap.add_argument("--after", type=Path, default=ROOT / "hypernets" / "smollm2_cont2681")
    ap.add_argument("--target", default="llama3", help="target tokenizer (name or path)")
    ap.add_argument("--langs", nargs="*", default=["en", "python"])
    ap.add_argument("--bytes", type=int, default=20000, help="valid-split bytes per language")
    ap.add_argument("--top", type=int, default=12, help="tokens listed per language")
    ap.add_argument("--output", type=Path, default=OUT, help="writes OUTPUT.json and OUTPUT.md")
    args = ap.parse_args(argv)
    res = run(args.before, args.after, args.target, args.langs, args.bytes, args.top)
    from zett.atomic import atomic_write_text

    atomic_write_text(args.output.with_suffix(".json"), json.dumps(res, indent=1) + "\n")
    atomic_write_text(args.output.with_suffix(".md"), to_markdown(res))
    print(to_markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
