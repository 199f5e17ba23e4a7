"""Where do a transfer's bits go: tokens where both tokenizers agree, tokens across GPT-2
pre-token boundaries, or other segmentations?

Run:      .venv/bin/python experiments/token_bits.py [--target local-code-16k]
          [--hypernet hypernets/smollm2] [--methods hypernet fvt]
Needs:    `zett prepare smollm2`, `zett prepare corpus`, the target tokenizer (a local 16k one
          is trained on first use, as experiments/zero_shot.py trains it, into --workdir).
Writes:   results/token_bits_<target>.json and .md.

SmolLM2's own tokens never cross a GPT-2 pre-token boundary, so a target token that does
(`os` + newline + `import`, `(self`, `.\\n\\n`) asks one input row to stand for what the
frozen body always saw as several positions, and one output row to predict several of its
tokens at once. This transfers SmolLM2 to `--target` with each method, scores the zero-shot
table's test texts (same languages, bytes, chunking and context starter as `zett eval`),
and splits each language's bits by the predicted token's class: `same` (SmolLM2's own
tokenization of the text has a token with exactly this span: the tokenizers agree here),
`cross` (crosses a boundary) or `other` (inside one pre-token, but SmolLM2 cuts it
elsewhere: a fragment of, or a merge of, its tokens): share of tokens, share of bits, bits
per token and the bits per byte each class contributes. The original model's bits on the
same texts are the reference, overall and on the `same` spans. A few minutes per method
on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Container
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "results"


def chunk_logits(model, ids: list[int], start_id: int | None, chunk_tokens: int):
    """Yield (index in `ids` of the first predicted token, float32 logits [n, V], target ids
    [n]) for each chunk of one text, with the chunking `zett eval` uses
    (zett.eval.bpb.chunk_token_ids): every predicted token exactly once."""
    import torch

    from zett.eval.bpb import chunk_token_ids

    first = 0 if start_id is not None else 1  # the first id `chunk_token_ids` predicts
    for chunk, n_pred in chunk_token_ids(ids, chunk_tokens, start_id):
        x = torch.tensor([chunk], dtype=torch.long)
        with torch.no_grad():
            logits = model(input_ids=x).logits[0, :-1].float()
        yield first, logits[-n_pred:], x[0, 1:][-n_pred:]
        first += n_pred


def token_nll(
    model, ids: list[int], start_id: int | None, chunk_tokens: int, keep=None
) -> dict[int, tuple[float, float]]:
    """(NLL, restricted NLL) in nats of every predicted token of one text, keyed by its
    index in `ids` (chunk_logits). The restricted NLL takes the softmax over the rows where
    the bool tensor `keep` is true only (the NLL itself where `keep` is None or the token
    is not kept)."""
    import torch
    import torch.nn.functional as F

    out: dict[int, tuple[float, float]] = {}
    for first, logits, y in chunk_logits(model, ids, start_id, chunk_tokens):
        nll = F.cross_entropy(logits, y, reduction="none")
        kept = nll
        if keep is not None:
            kept = F.cross_entropy(logits.masked_fill(~keep, -torch.inf), y, reduction="none")
            kept = torch.where(keep[y], kept, nll)
        for k, (a, b) in enumerate(zip(nll, kept, strict=True)):
            out[first + k] = (float(a), float(b))
    return out


def shared_rows(model_dir: Path | str, n_rows: int, base: str = "smollm2"):
    """Bool tensor [n_rows] over `model_dir`'s embedding rows: true where the token's
    canonical bytes are also a token of `base`'s tokenizer (the rows both vocabularies
    have); rows past the tokenizer's vocab (padding) are false."""
    import torch

    from zett import assets
    from zett.tokenizers.surface import load_tokenizer, surface_forms

    def forms(path):
        return surface_forms(load_tokenizer(assets.resolve_model_dir(path)))

    known = set(forms(base).canonical())
    keep = [bool(key) and key in known for key in forms(model_dir).canonical()]
    return torch.tensor((keep + [False] * n_rows)[:n_rows])


CLASSES = ("same", "cross", "other")


def token_class(span: tuple[int, int], base_spans: Container, cuts: list[int]) -> str:
    """`same` if `span` is one of the base tokenization's spans, else `cross` if it
    crosses a pre-token cut, else `other`."""
    from experiments.pretoken_boundaries import crosses

    if span in base_spans:
        return "same"
    return "cross" if crosses(span, cuts) else "other"


def span_bits(model_dir: Path | str, texts: list[str], restrict: bool = False) -> list[list]:
    """Per text, (character span, bits, restricted bits) of every predicted token under
    the model in `model_dir` with its own tokenizer (byte pieces of one character share
    its span). Restricted bits (with `restrict`) take the softmax over the shared_rows
    only: what the token would cost if no row the base vocabulary lacks competed for it."""
    from zett.eval.bpb import DEFAULT_CHUNK_TOKENS, context_start_id, load_causal_lm

    model, tok = load_causal_lm(model_dir, "cpu")
    start = context_start_id(tok, model.config)
    keep = shared_rows(model_dir, model.config.vocab_size) if restrict else None
    out = []
    for text in texts:
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        nll = token_nll(model, enc["input_ids"], start, DEFAULT_CHUNK_TOKENS, keep)
        spans = enc["offset_mapping"]
        out.append(
            [
                (tuple(spans[i]), a / math.log(2), b / math.log(2))
                for i, (a, b) in sorted(nll.items())
            ]
        )
    return out


def split_bits(texts: list[str], bits: list[list], original: list[list]) -> dict:
    """Split the bits of `texts` (span_bits of a transfer) by CLASSES (token_class against
    the original's spans); for `same` spans also the original's bits on them."""
    from experiments.pretoken_boundaries import boundaries

    total = dict.fromkeys(CLASSES, 0.0)
    count = dict.fromkeys(CLASSES, 0)
    same_original = same_restricted = 0.0
    for text, text_bits, base in zip(texts, bits, original, strict=True):
        cuts = boundaries(text, "gpt2")
        base_bits: dict[tuple[int, int], float] = {}
        for span, b, *_ in base:
            base_bits[span] = base_bits.get(span, 0.0) + b
        same: set[tuple[int, int]] = set()
        for span, b, *restricted in text_bits:
            kind = token_class(span, base_bits, cuts)
            total[kind] += b
            count[kind] += 1
            if kind == "same":
                same.add(span)
                same_restricted += restricted[0] if restricted else b
        same_original += sum(base_bits[span] for span in same)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    all_bits, tokens = sum(total.values()), sum(count.values())
    row = {"bpb": all_bits / n_bytes, "tokens": tokens, "bytes": n_bytes}
    for kind in CLASSES:
        row[f"{kind}_token_share"] = count[kind] / max(tokens, 1)
        row[f"{kind}_bit_share"] = total[kind] / max(all_bits, 1e-9)
        row[f"{kind}_bits_per_token"] = total[kind] / max(count[kind], 1)
        row[f"{kind}_bpb"] = total[kind] / n_bytes
    row["same_original_bpb"] = same_original / n_bytes
    row["same_restricted_bpb"] = same_restricted / n_bytes
    return row


def to_markdown(target: str, rows: list[dict], original: dict[str, float], command: str) -> str:
    lines = [
        f"Bits of SmolLM2 transferred to `{target}` on the test split, split by the predicted "
        "token: `same` = SmolLM2's tokenization of the text has a token with this span, "
        "`cross` = it crosses a GPT-2 pre-token boundary (no SmolLM2 token does), `other` = "
        "inside one pre-token, but SmolLM2 cuts it elsewhere. Shares are of tokens / of bits; "
        "the three bpb columns add up to `bpb`. The last column is what the original model (its "
        "own tokenization) pays for the `same` spans, against `same bpb`; the one after it what "
        "the transfer pays for them with the softmax over the rows both vocabularies have "
        "(no new row competes): `same bpb` minus it bounds what the new rows' competition costs "
        "(from above: some of that mass rightly goes to longer new tokens).",
        "",
        f"Command: `{command}`",
        "",
        "| method | lang | bpb | original bpb | "
        + " | ".join(f"{c} tokens / bits | {c} bits/token | {c} bpb" for c in CLASSES)
        + " | same: original bpb | same: shared-rows softmax bpb |",
        "|" + "---|" * (6 + 3 * len(CLASSES)),
    ]
    for r in rows:
        cells = " | ".join(
            f"{100 * r[f'{c}_token_share']:.1f}% / {100 * r[f'{c}_bit_share']:.1f}% "
            f"| {r[f'{c}_bits_per_token']:.2f} | {r[f'{c}_bpb']:.3f}"
            for c in CLASSES
        )
        lines.append(
            f"| {r['method']} | {r['lang']} | {r['bpb']:.3f} | {original[r['lang']]:.3f} | {cells} "
            f"| {r['same_original_bpb']:.3f} | {r['same_restricted_bpb']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from experiments.zero_shot import LANGS, MAX_BYTES, held_out_texts, target_for
    from zett.atomic import atomic_write_text
    from zett.compare import export_method

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--target", default="local-code-16k", help="a zero-shot table target")
    p.add_argument("--hypernet", default=str(ROOT / "hypernets" / "smollm2"))
    p.add_argument("--methods", nargs="*", default=["hypernet", "fvt"])
    p.add_argument("--langs", nargs="*", default=LANGS)
    p.add_argument("--max-bytes", type=int, default=MAX_BYTES)
    p.add_argument("--workdir", default="outputs/zero_shot", help="local tokenizers, exports")
    p.add_argument("--out", default=None, help="default: results/token_bits_<target>")
    args = p.parse_args(argv)
    workdir = Path(args.workdir)
    texts = held_out_texts(args.langs, args.max_bytes)
    target = target_for(args.target, workdir)
    base_bits = {lang: span_bits("smollm2", texts[lang]) for lang in args.langs}
    original = {
        lang: sum(b for text in base_bits[lang] for _, b, _ in text)
        / sum(len(t.encode("utf-8")) for t in texts[lang])
        for lang in args.langs
    }
    rows = []
    for method in args.methods:
        out_dir = workdir / f"token-bits-{args.target}-{method}"
        model_dir = export_method(method, "smollm2", target, out_dir, hypernet=args.hypernet)
        for lang in args.langs:
            bits = span_bits(model_dir, texts[lang], restrict=True)
            rows.append(
                {"method": method, "lang": lang, **split_bits(texts[lang], bits, base_bits[lang])}
            )
            r = rows[-1]
            print(
                f"{method:9s} {lang:7s} bpb {r['bpb']:.3f} (original {original[lang]:.3f}); "
                f"cross: {100 * r['cross_token_share']:.1f}% of tokens, "
                f"{100 * r['cross_bit_share']:.1f}% of bits",
                flush=True,
            )
        shutil.rmtree(model_dir, ignore_errors=True)
    out = Path(args.out) if args.out else OUT / f"token_bits_{args.target}"
    command = "python experiments/token_bits.py " + " ".join(argv or sys.argv[1:])
    atomic_write_text(out.with_suffix(".json"), json.dumps(rows, indent=1) + "\n")
    atomic_write_text(
        out.with_suffix(".md"), to_markdown(args.target, rows, original, command.strip())
    )
    print(f"wrote {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
