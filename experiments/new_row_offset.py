"""Are a transfer's new rows over- or under-confident? Bits per byte when a constant `c` is
added to the logit of every row the base vocabulary lacks.

Run:      .venv/bin/python experiments/new_row_offset.py [--targets llama3 local-code-16k]
          [--hypernet hypernets/smollm2] [--methods hypernet] [--offsets -1 -0.5 0 0.5]
Needs:    `zett prepare smollm2`, `zett prepare corpus`, the target tokenizers (a local 16k
          one is trained on first use, as experiments/zero_shot.py trains it).
Writes:   results/new_row_offset.json and .md.

A target token whose bytes are also a SmolLM2 token (a *shared* row, experiments/token_bits
shared_rows) has a row the frozen body was trained with; every other row is new, predicted
from its pieces. If the new rows' logits are calibrated, no constant shift of them lowers
the test bits; if the bits fall for some `c < 0`, the new rows take too much probability
mass (too large a vocabulary of new tokens competing for each position), for `c > 0` too
little. A Hugging Face Llama head has no bias to export such a constant in, but SmolLM2's
final hidden states share one direction (their mean is ~3/4 of their norm): moving every new
row by `s · v`, with `v` along that mean and scaled so h · v averages 1 over the valid split's
texts, adds ~`s` to those rows' logits in an ordinary tied checkpoint (it moves their input
rows too). `--shifts` scores that exportable version (`tied shift` columns). Same texts,
bytes, chunking and context starter as the zero-shot table (`c = 0` is its cell); one forward
pass per chunk serves every `c`. A few minutes per target and method on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "results"


def offset_bits(model, tok, texts: list[str], new, offsets: list[float]) -> list[float]:
    """Total bits of `texts` under `model` (its tokenizer `tok`) for each offset in
    `offsets` added to the logits of the rows where the bool tensor `new` is true."""
    import torch.nn.functional as F

    from experiments.token_bits import chunk_logits
    from zett.eval.bpb import DEFAULT_CHUNK_TOKENS, context_start_id

    start = context_start_id(tok, model.config)
    totals = [0.0] * len(offsets)
    shift = new.float()
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        for _, logits, y in chunk_logits(model, ids, start, DEFAULT_CHUNK_TOKENS):
            for i, c in enumerate(offsets):
                nll = F.cross_entropy(logits + c * shift, y, reduction="sum")
                totals[i] += float(nll) / math.log(2)
    return totals


def mean_direction(model, tok, texts: list[str], max_tokens: int = 512):
    """[d] vector along the mean of `model`'s final hidden states over `texts` (each cut to
    `max_tokens`), scaled so that their dot product with it averages 1."""
    import torch

    states = []
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"][:max_tokens]
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
        states.append(out.hidden_states[-1][0])
    h = torch.cat(states)
    unit = h.mean(0) / h.mean(0).norm()
    return unit / (h @ unit).mean()


def new_rows(model_dir: Path, tok, n_rows: int):
    """Bool tensor [n_rows]: the tokenizer's rows that are not shared with SmolLM2's."""
    from experiments.token_bits import shared_rows

    new = ~shared_rows(model_dir, n_rows)
    new[len(tok) :] = False  # padding rows past the vocab are no token
    return new


def to_markdown(
    rows: list[dict],
    offsets: list[float],
    command: str,
    shifts: list[float] | None = None,
    split: str = "test",
) -> str:
    shifts = shifts or []
    lines = [
        f"{split.capitalize()}-split bits per byte of SmolLM2 transferred zero-shot, with a "
        "constant `c` added to the logit of every row SmolLM2's vocabulary lacks (`c = 0`: "
        "the transfer as exported, on the test split the zero-shot table's cell; the best `c` "
        "per row in bold). `new rows` = share of the target vocabulary that is not a SmolLM2 "
        "token. `tied shift s` = every new row (input and "
        "output: one tied matrix) moved by `s` along the final hidden states' mean direction, "
        "scaled so it adds `s` to their logits on average: the constant in an exportable "
        "form.",
        "",
        f"Command: `{command}`",
        "",
        "| target | method | lang | new rows | "
        + " | ".join([f"c = {c:g}" for c in offsets] + [f"tied shift {v:g}" for v in shifts])
        + " |",
        "|" + "---|" * (4 + len(offsets) + len(shifts)),
    ]
    for r in rows:
        best = min(r["bpb"])
        cells = " | ".join(
            [f"**{b:.3f}**" if b == best else f"{b:.3f}" for b in r["bpb"]]
            + [f"{b:.3f}" for b in r.get("shift_bpb", [])]
        )
        lines.append(
            f"| {r['target']} | {r['method']} | {r['lang']} | {100 * r['new_share']:.0f}% "
            f"| {cells} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch

    from experiments.zero_shot import LANGS, MAX_BYTES, held_out_texts, target_for
    from zett.atomic import atomic_write_text
    from zett.compare import export_method
    from zett.eval.bpb import load_causal_lm

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--targets", nargs="*", default=["llama3", "local-code-16k"])
    p.add_argument("--hypernet", default=str(ROOT / "hypernets" / "smollm2"))
    p.add_argument("--methods", nargs="*", default=["hypernet"])
    p.add_argument("--offsets", nargs="*", type=float, default=[-1.0, -0.5, -0.25, 0.0, 0.5])
    p.add_argument(
        "--shifts", nargs="*", type=float, default=[-1.0], help="tied row shifts to score"
    )
    p.add_argument("--langs", nargs="*", default=LANGS)
    p.add_argument(
        "--split", default="test", choices=["test", "valid"], help="corpus split to score"
    )
    p.add_argument("--max-bytes", type=int, default=MAX_BYTES)
    p.add_argument("--workdir", default="outputs/zero_shot", help="local tokenizers, exports")
    p.add_argument("--out", default=str(OUT / "new_row_offset"), help="output path stem")
    args = p.parse_args(argv)
    workdir = Path(args.workdir)
    texts = held_out_texts(args.langs, args.max_bytes, args.split)
    valid = []  # the tied shifts' direction: two valid texts per language, read only for them
    if args.shifts:
        valid = [t for ts in held_out_texts(args.langs, 3000, "valid").values() for t in ts[:2]]
    rows = []
    for target in args.targets:
        for method in args.methods:
            out_dir = workdir / f"offset-{target}-{method}"
            model_dir = export_method(
                method, "smollm2", target_for(target, workdir), out_dir, hypernet=args.hypernet
            )
            model, tok = load_causal_lm(model_dir, "cpu")
            new = new_rows(model_dir, tok, model.config.vocab_size)
            share = float(new.sum()) / len(tok)
            rows_in = model.get_input_embeddings().weight
            if args.shifts:  # only the tied shifts need the direction
                direction = mean_direction(model, tok, valid)
                unshifted = rows_in[new].detach().clone()
            none = torch.zeros_like(new)
            per_lang = []
            for lang in args.langs:
                bits = offset_bits(model, tok, texts[lang], new, args.offsets)
                for shift in args.shifts:
                    with torch.no_grad():
                        rows_in[new] = unshifted + shift * direction
                    bits += offset_bits(model, tok, texts[lang], none, [0.0])
                    with torch.no_grad():
                        rows_in[new] = unshifted  # restored exactly, not by subtracting
                size = sum(len(t.encode("utf-8")) for t in texts[lang])
                per_lang.append([b / size for b in bits])
                print(f"{target} {method} {lang}: " + " ".join(f"{x:.3f}" for x in per_lang[-1]))
            means = [sum(col) / len(col) for col in zip(*per_lang, strict=True)]
            for lang, bpb in [*zip(args.langs, per_lang, strict=True), ("mean", means)]:
                rows.append(
                    {
                        "target": target,
                        "method": method,
                        "lang": lang,
                        "new_share": share,
                        "offsets": args.offsets,
                        "bpb": bpb[: len(args.offsets)],
                        "shifts": args.shifts,
                        "shift_bpb": bpb[len(args.offsets) :],
                    }
                )
            shutil.rmtree(model_dir, ignore_errors=True)
    out = Path(args.out)
    command = "python experiments/new_row_offset.py " + " ".join(argv or sys.argv[1:])
    atomic_write_text(out.with_suffix(".json"), json.dumps(rows, indent=1) + "\n")
    atomic_write_text(
        out.with_suffix(".md"),
        to_markdown(rows, args.offsets, command.strip(), args.shifts, args.split),
    )
    print(f"wrote {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
