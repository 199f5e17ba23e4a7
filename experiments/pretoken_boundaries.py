"""How many tokens of each real tokenizer cross the pre-token boundaries of the sampler's
pre-tokenizers?

Run:      .venv/bin/python experiments/pretoken_boundaries.py [--targets llama2 local-code-16k ...]
Needs:    `zett prepare smollm2`, `zett prepare corpus`, the target tokenizers (../shared or
          prepared; the local 16k ones are trained on first use, as experiments/zero_shot.py
          trains them, into --workdir).
Writes:   results/pretoken_boundaries.json and .md.

A sampled training tokenizer (zett/data/sampler.py) only ever has pieces inside one
pre-token of the pre-tokenizer it drew (`data.pretokenizers`). A real target token that
crosses such a boundary (`(self` under `gpt2`, `os` + newline + `import` under `gpt2` and
`punct_attach`) never occurs in training samples drawn with that pre-tokenizer, so the LM
loss never trains a row like it. This tokenizes the zero-shot table's test texts (the same
languages and bytes) with each target and reports, per pre-tokenizer, the share of tokens
whose character span contains a pre-token boundary. Runs in seconds (once the local
tokenizers exist).
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "results" / "pretoken_boundaries"


def boundaries(text: str, pretokenizer: str) -> list[int]:
    """Character positions inside `text` where the sampler's `pretokenizer` starts a new
    pre-token (sorted, 0 excluded)."""
    from zett.data.sampler import pre_tokenizer

    starts = [start for _, (start, _) in pre_tokenizer(pretokenizer).pre_tokenize_str(text)]
    return [s for s in starts if s > 0]


def crosses(span: tuple[int, int], cuts: list[int]) -> bool:
    """Whether the character span (start, end) has a cut (sorted) strictly inside it."""
    start, end = span
    i = bisect.bisect_right(cuts, start)
    return i < len(cuts) and cuts[i] < end


def crossing(spans: list[tuple[int, int]], cuts: list[int]) -> int:
    """How many character spans (start, end) contain a cut strictly inside them."""
    return sum(crosses(span, cuts) for span in spans)


def token_spans(tok, text: str) -> list[tuple[int, int]]:
    """Character spans of `text`'s tokens under `tok` (a `tokenizers.Tokenizer` with its
    post-processor off, so no special tokens and untrimmed offsets)."""
    return [tuple(o) for o in tok.encode(text, add_special_tokens=False).offsets]


def measure(tok, texts: list[str], pretokenizers: list[str]) -> dict:
    """Tokens of `texts` under `tok` and, per pre-tokenizer, the share crossing its cuts."""
    total = 0
    crossed = dict.fromkeys(pretokenizers, 0)
    for text in texts:
        spans = token_spans(tok, text)
        total += len(spans)
        for name in pretokenizers:
            crossed[name] += crossing(spans, boundaries(text, name))
    return {"tokens": total, **{n: c / max(total, 1) for n, c in crossed.items()}}


def load_target(label: str, workdir: Path):
    from tokenizers import Tokenizer

    from experiments.zero_shot import target_for
    from zett import assets

    tok = Tokenizer.from_file(str(assets.find_tokenizer(target_for(label, workdir))))
    tok.post_processor = None
    return tok


def to_markdown(rows: list[dict], pretokenizers: list[str], command: str) -> str:
    head = "| target | lang | tokens | " + " | ".join(pretokenizers) + " |"
    lines = [
        "Share of each target's tokens (test split) whose text crosses a pre-token boundary of "
        "the sampler's pre-tokenizers: such tokens never occur in a sampled tokenizer drawn "
        "with that pre-tokenizer.",
        "",
        f"Command: `{command}`",
        "",
        head,
        "|" + "---|" * (3 + len(pretokenizers)),
    ]
    for r in rows:
        shares = " | ".join(f"{100 * r[n]:.1f}%" for n in pretokenizers)
        lines.append(f"| {r['target']} | {r['lang']} | {r['tokens']} | {shares} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from experiments.zero_shot import LANGS, LOCAL, MAX_BYTES, SHARED, held_out_texts
    from zett import assets
    from zett.atomic import atomic_write_text
    from zett.data.sampler import PRETOKENIZERS

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--targets", nargs="*", help="default: smollm2, shared ones present, local ones")
    p.add_argument("--langs", nargs="*", default=LANGS)
    p.add_argument("--max-bytes", type=int, default=MAX_BYTES)
    p.add_argument("--workdir", default="outputs/zero_shot", help="where local tokenizers live")
    p.add_argument("--out", default=str(OUT), help="writes OUT.json and OUT.md")
    args = p.parse_args(argv)
    targets = args.targets or (
        ["smollm2"] + [t for t in SHARED if assets.has_tokenizer(t)] + list(LOCAL)
    )
    texts = held_out_texts(args.langs, args.max_bytes)
    pretoks = list(PRETOKENIZERS)
    rows = []
    for label in targets:
        tok = load_target(label, Path(args.workdir))
        for lang in args.langs:
            rows.append({"target": label, "lang": lang, **measure(tok, texts[lang], pretoks)})
            shares = ", ".join(f"{n} {100 * rows[-1][n]:.1f}%" for n in pretoks)
            print(f"{label:16s} {lang:8s} {shares}", flush=True)
    out = Path(args.out)
    command = "python experiments/pretoken_boundaries.py " + " ".join(argv or sys.argv[1:])
    atomic_write_text(out.with_suffix(".json"), json.dumps(rows, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), to_markdown(rows, pretoks, command.strip()))
    print(f"wrote {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
