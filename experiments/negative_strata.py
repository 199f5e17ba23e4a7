"""How far off were the sampled-softmax offsets of the CPU configs' batches before
`data.negative_strata`? Data only, no model.

Run:      .venv/bin/python experiments/negative_strata.py [--config configs/smollm2_cpu_metaspace3.yaml]
          [--steps 3720 --n 20]
Needs:    `zett prepare smollm2`, `zett prepare corpus`.
Writes:   results/negative_strata.json and .md.

With `data.short_rows`, `short_first` puts the subsample's rows into `short_rows` slots of ≤
`short_pieces` pieces and the rest at full length; the batch's own tokens always get a slot,
the random negatives fill what is left and are dropped when their kind of slot runs out. The
offsets of `negative_offsets` assume every sampled negative is kept, so on such a step each
kept one stands for more absent tokens than its offset says. This builds each step's batch
twice (same seed and step: the same sampled tokenizer and negatives), with `short_rows` off
and on, counts the negatives of each length stratum sampled and kept, and reports the log
of sampled / kept (what `stratum_offsets` adds; 0 when nothing is dropped), i.e. by how many
nats the old offsets underestimated that stratum's share of the partition function.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "results"


def strata_counts(plain, split, short_pieces: int) -> dict:
    """Negatives per stratum (`long`: > short_pieces pieces) sampled in `plain` (the batch
    without short_rows) and kept in `split` (the same batch with them), and the present
    tokens."""
    neg = plain.vocab_mask & (plain.logit_offset > 0)
    long_ = plain.piece_lengths > short_pieces
    kept_neg = split.vocab_mask & (split.logit_offset > 0)
    # `split`'s lengths are cut to short_pieces in the short slots: take each id's length
    length = {int(v): int(n) for v, n in zip(plain.vocab_ids, plain.piece_lengths, strict=True)}
    kept_long = sum(length[int(v)] > short_pieces for v in split.vocab_ids[kept_neg])
    return {
        "vocab_size": int(plain.vocab_size),
        "present": int((plain.vocab_mask & (plain.logit_offset == 0)).sum()),
        "sampled_short": int((neg & ~long_).sum()),
        "sampled_long": int((neg & long_).sum()),
        "kept_short": int(kept_neg.sum()) - kept_long,
        "kept_long": kept_long,
    }


def under(sampled: int, kept: int) -> float:
    """Nats by which a kept negative's old offset was too small (log sampled / kept)."""
    return math.log(sampled / kept) if kept else 0.0


def to_markdown(config: str, rows: list[dict], command: str) -> str:
    lines = [
        f"Batches of `{config}` built with `short_rows` off and on (same sampled tokenizer and "
        "negatives): random negatives per length stratum (`long`: more pieces than "
        "`short_pieces`) sampled and kept, and log(sampled / kept) = nats by which the offsets "
        "before `data.negative_strata` underestimated that stratum's mass in the partition "
        "function (what `stratum_offsets` now adds).",
        "",
        f"Command: `{command}`",
        "",
        "| step | vocab | present | short: sampled / kept | long: sampled / kept "
        "| short: nats | long: nats |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['step']} | {r['vocab_size']} | {r['present']} "
            f"| {r['sampled_short']} / {r['kept_short']} | {r['sampled_long']} / {r['kept_long']} "
            f"| {r['short_nats']:.2f} | {r['long_nats']:.2f} |"
        )
    n = len(rows)
    dropped = sum(r["long_nats"] > 0 or r["short_nats"] > 0 for r in rows)
    mean_long = sum(r["long_nats"] for r in rows) / max(n, 1)
    lines += [
        "",
        f"{dropped} of {n} steps drop negatives; the long stratum's offsets were "
        f"{mean_long:.2f} nats too small on average (max "
        f"{max((r['long_nats'] for r in rows), default=0):.2f}), the short stratum's "
        f"{sum(r['short_nats'] for r in rows) / max(n, 1):.2f}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from zett import assets
    from zett.atomic import atomic_write_text
    from zett.config import load_config
    from zett.data.corpus import load_corpus
    from zett.data.pipeline import BaseVocab, TextMixture, make_batch
    from zett.tokenizers.surface import load_tokenizer

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default="configs/smollm2_cpu_metaspace3.yaml")
    p.add_argument("--steps", type=int, default=3720, help="first step")
    p.add_argument("--n", type=int, default=20, help="steps to build")
    p.add_argument("--out", default=str(OUT / "negative_strata"), help="output path stem")
    args = p.parse_args(argv)
    cfg = load_config(args.config, [])
    dc = cfg.data
    if not 0 < dc.short_rows < dc.n_token_subsample:
        print(f"{args.config}: data.short_rows is off; nothing is dropped", file=sys.stderr)
        return 2
    mixture = TextMixture(load_corpus(dc.corpus)["train"], dc.langs)
    base = BaseVocab(
        load_tokenizer(assets.resolve_model_dir(cfg.model.base)), cfg.hypernet.max_pieces
    )
    plain_cfg = dataclasses.replace(dc, short_rows=0, negative_correction=True)
    split_cfg = dataclasses.replace(dc, negative_strata=False, negative_correction=True)
    rows = []
    for step in range(args.steps, args.steps + args.n):
        plain = make_batch(mixture, base, plain_cfg, step)
        split = make_batch(mixture, base, split_cfg, step)
        r = {"step": step, **strata_counts(plain, split, dc.short_pieces)}
        r["short_nats"] = under(r["sampled_short"], r["kept_short"])
        r["long_nats"] = under(r["sampled_long"], r["kept_long"])
        rows.append(r)
        print(json.dumps(r), flush=True)
    out = Path(args.out)
    command = "python experiments/negative_strata.py " + " ".join(argv or sys.argv[1:])
    atomic_write_text(out.with_suffix(".json"), json.dumps(rows, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), to_markdown(args.config, rows, command.strip()))
    print(f"wrote {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
