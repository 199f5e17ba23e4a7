"""Do the tokenizers the hypernet trains on look like the real ones it is meant for?

Run:      .venv/bin/python experiments/sampled_vs_real.py [--hypernets DIR ...] [--samples 3]
Needs:    `zett prepare smollm2`, `zett prepare corpus`, llama2 (../shared or prepared).
Writes:   results/sampled_vs_real.json and .md.

The LM stage lowers the training loss on sampled tokenizers while held-out bits per byte
with a real tokenizer (llama2) get worse (results/lm_stage_probe.md). Two explanations
predict different things on *held-out text scored with sampled tokenizers*:

- the LM stage learns what sampled tokenizers need but real ones do not (a train/test
  mismatch of tokenizer distributions): held-out bpb with sampled tokenizers improves;
- it overfits the few training texts: held-out bpb with sampled tokenizers gets worse too.

This scores the compose config's held-out valid texts (its languages and bytes) with
llama2 and with `--samples` tokenizers drawn exactly as training draws them (the train
split, `make_batch`'s rng for steps 0, 1, ...), for each hypernet, and reports bytes per
token of every tokenizer and language (how finely each segments the same text).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "configs" / "smollm2_cpu_compose.yaml"
HYPERNETS = [
    "hypernets/smollm2_compose_only",
    "hypernets/smollm2_compose_nc_lm250",
    "hypernets/smollm2_compose_lm500",
    "hypernets/smollm2_lm200",
]
OUT = ROOT / "results" / "sampled_vs_real"


def training_tokenizers(cfg, n: int, method: str) -> list:
    """The sampled tokenizers of training steps 0..n-1 (as `make_batch` draws them) with
    sampler `method`."""
    from zett.data.corpus import load_corpus
    from zett.data.pipeline import TextMixture, sample_step_tokenizer

    mixture = TextMixture(load_corpus(cfg.data.corpus)["train"], cfg.data.langs)
    out = []
    for step in range(n):
        _, _, sampled = sample_step_tokenizer(mixture, cfg.data, step, method)
        out.append((f"{method}{step}", sampled.tokenizer))
    return out


def run(hypernets: list[str], samples: int, methods: list[str]) -> dict:
    import jax
    import jax.numpy as jnp

    from zett import assets
    from zett.config import load_config
    from zett.eval.texts import heldout_texts
    from zett.hypernet import io as hypernet_io
    from zett.tokenizers.surface import load_tokenizer
    from zett.train.evaluate import build_evaluator, make_target
    from zett.train.loop import load_base

    cfg = load_config(CONFIG)
    bundle = load_base(cfg)
    texts = heldout_texts(
        split="valid", langs=cfg.eval.langs, max_bytes=cfg.train.eval_bytes, corpus=cfg.data.corpus
    )
    toks = [("llama2", load_tokenizer(assets.find_tokenizer("llama2")))]
    for method in methods:
        toks += training_tokenizers(cfg, samples, method)
    bytes_per_token = {}
    for name, tok in [("smollm2 (own)", bundle.tokenizer)] + toks:
        bytes_per_token[name] = {}
        for lang, lang_texts in texts.items():
            n_tok = sum(len(e.ids) for e in tok.encode_batch(lang_texts, add_special_tokens=False))
            n_bytes = sum(len(t.encode("utf-8")) for t in lang_texts)
            bytes_per_token[name][lang] = round(n_bytes / max(n_tok, 1), 3)
        print(name, "bytes/token", bytes_per_token[name], flush=True)

    bpb: dict[str, dict] = {}
    ev = None
    targets = None
    for d in hypernets:
        module, params, meta = hypernet_io.load_hypernet(ROOT / d)
        hypernet_io.check_base(meta, bundle.fingerprint, d)
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
        if ev is None:
            ev = build_evaluator(cfg, bundle, module)
            targets = [t for t in ev.targets if t.name != "original"]
            for name, tok in toks[1:]:
                targets.append(
                    make_target(
                        name,
                        tok,
                        bundle.tokenizer,
                        cfg.hypernet.max_pieces,
                        texts,
                        cfg.eval.chunk_tokens,
                    )
                )
        ev.hypernet = module
        ev.targets = targets
        scores = ev.evaluate(params)
        bpb[d] = {k: round(v, 4) for k, v in scores.items()}
        print(d, {k: v for k, v in bpb[d].items() if k.endswith("/mean")}, flush=True)
    return {
        "config": str(CONFIG.relative_to(ROOT)),
        "methods": methods,
        "bytes_per_token": bytes_per_token,
        "bpb": bpb,
    }


def to_markdown(res: dict) -> str:
    toks = list(res["bytes_per_token"])
    langs = list(next(iter(res["bytes_per_token"].values())))
    lines = [
        "# Sampled training tokenizers vs a real one (llama2), same held-out texts",
        "",
        f"Config: `{res['config']}` (valid split). Written by `experiments/sampled_vs_real.py`.",
        "",
        "## Bytes per token",
        "",
        "| tokenizer | " + " | ".join(langs) + " |",
        "|---|" + "---|" * len(langs),
    ]
    for t in toks:
        lines.append(
            f"| {t} | " + " | ".join(f"{res['bytes_per_token'][t][lg]:.2f}" for lg in langs) + " |"
        )
    lines += ["", "## Mean bits per byte (lower is better)", ""]
    toks = [t for t in toks if not t.endswith("(own)")]
    methods = res["methods"]
    lines.append(
        "| hypernet | " + " | ".join(toks) + " | " + " | ".join(f"{m} mean" for m in methods) + " |"
    )
    lines.append("|---|" + "---|" * (len(toks) + len(methods)))
    for h, scores in res["bpb"].items():
        cells = [scores[f"{t}/mean"] for t in toks]
        means = [
            np.mean([scores[f"{t}/mean"] for t in toks if t.rstrip("0123456789") == m])
            for m in methods
        ]
        lines.append(
            f"| {Path(h).name} | "
            + " | ".join(f"{c:.4f}" for c in cells)
            + " | "
            + " | ".join(f"{m:.4f}" for m in means)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hypernets", nargs="+", default=HYPERNETS, help="exported hypernet dirs")
    ap.add_argument("--samples", type=int, default=3, help="sampled training tokenizers to score")
    ap.add_argument(
        "--samplers",
        nargs="+",
        default=["log_gumbel", "zett"],
        help="data.sampler methods to draw with",
    )
    ap.add_argument("--output", type=Path, default=OUT, help="results path stem (.json, .md)")
    args = ap.parse_args(argv)
    res = run(args.hypernets, args.samples, args.samplers)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    args.output.with_suffix(".md").write_text(to_markdown(res))
    print(to_markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
