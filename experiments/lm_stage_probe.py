"""Where does an LM stage hurt: the input side or the output side of the embeddings?

Run:      .venv/bin/python experiments/lm_stage_probe.py --before DIR_A --after DIR_B
Needs:    `zett prepare smollm2`, `zett prepare corpus`, llama2 (../shared or prepared).
Writes:   results/lm_stage_probe.json and .md.

SmolLM2 ties its embeddings, so a hypernet predicts one row per token used both to read the
token (input) and to score it (output). This scores held-out llama2 text (the compose
config's eval: valid split, its languages and bytes) with the input rows of one hypernet
and the output rows of another, all four ways, so a regression between `before` and
`after` is located on one side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "configs" / "smollm2_cpu_compose.yaml"


def run(before: Path, after: Path) -> dict:
    import jax
    import jax.numpy as jnp

    from zett.config import load_config
    from zett.hypernet import io as hypernet_io
    from zett.train.evaluate import build_evaluator
    from zett.train.loop import load_base

    cfg = load_config(CONFIG)
    bundle = load_base(cfg)
    rows = {}
    for name, d in (("before", before), ("after", after)):
        module, params, meta = hypernet_io.load_hypernet(d)
        hypernet_io.check_base(meta, bundle.fingerprint, d)
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
        ev = build_evaluator(cfg, bundle, module)
        target = next(t for t in ev.targets if t.name != "original")
        rows[name] = ev._embeddings(params, target)
    out = {}
    for i in ("before", "after"):
        for o in ("before", "after"):
            scores = ev.score(target, rows[i][0], rows[o][1])
            out[f"in={i} out={o}"] = {k.split("/")[1]: round(v, 4) for k, v in scores.items()}
            print(f"in={i} out={o}", out[f"in={i} out={o}"], flush=True)
    return {"before": str(before), "after": str(after), "target": target.name, "bpb": out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", type=Path, required=True, help="hypernet dir before the stage")
    ap.add_argument("--after", type=Path, required=True, help="hypernet dir after it")
    ap.add_argument(
        "--output", type=Path, default=ROOT / "results" / "lm_stage_probe.json", help="JSON out"
    )
    args = ap.parse_args(argv)
    res = run(args.before, args.after)
    from zett.atomic import atomic_write_text

    langs = list(next(iter(res["bpb"].values())))
    lines = [
        f"Held-out {res['target']} bits per byte (valid split) with the input rows of one "
        f"hypernet and the output rows of another; before = `{res['before']}`, "
        f"after = `{res['after']}`.",
        "",
        "| input rows | output rows | " + " | ".join(langs) + " |",
        "|---|---|" + "---|" * len(langs),
    ]
    for key, scores in res["bpb"].items():
        i, o = (part.split("=")[1] for part in key.split())
        lines.append(f"| {i} | {o} | " + " | ".join(f"{scores[k]:.3f}" for k in langs) + " |")
    atomic_write_text(args.output, json.dumps(res, indent=1) + "\n")
    atomic_write_text(args.output.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
