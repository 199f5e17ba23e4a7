"""Record in a hypernet's own JSON what produced it and how the *stored* file scores.

Run:      .venv/bin/python experiments/hypernet_card.py --hypernet hypernets/smollm2 \
              [--config configs/smollm2_cpu.yaml] [--set key=value ...]
Needs:    the hypernet's base (`zett prepare smollm2`), `zett prepare corpus`, its eval tokenizers.
Writes:   `provenance` in DIR/hypernet.json (atomically): the config file, every `--set`
          (for runs whose export predates these fields: steps, LM tokens, wall time, commit),
          and `eval_of_stored_file`: held-out bits per byte of the weights *as stored* (e.g.
          bfloat16), by the in-loop evaluator on the config's eval tokenizers, languages and
          bytes — the in-loop figures of a run use the fp32 parameters and may differ slightly.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def evaluate_stored(hypernet_dir: Path, config: Path) -> dict:
    import jax
    import jax.numpy as jnp

    from zett.config import load_config
    from zett.hypernet import io as hypernet_io
    from zett.train.evaluate import build_evaluator
    from zett.train.loop import load_base

    cfg = load_config(config)
    bundle = load_base(cfg)
    module, params, meta = hypernet_io.load_hypernet(hypernet_dir)
    hypernet_io.check_base(meta, bundle.fingerprint, hypernet_dir)
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)  # bf16 values, exact

    t0 = time.perf_counter()
    scores = build_evaluator(cfg, bundle, module).evaluate(params)
    return {
        "split": "valid",
        "langs": list(cfg.eval.langs),
        "bytes_per_lang": cfg.train.eval_bytes,
        "stored_dtype": meta.get("dtype"),
        "bpb": {k: round(v, 4) for k, v in scores.items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hypernet", type=Path, required=True, help="hypernet dir to describe")
    ap.add_argument(
        "--config", type=Path, required=True,
        help="the config it was trained with, e.g. configs/smollm2_cpu.yaml",
    )  # fmt: skip
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE",
        help="facts to record (plain decimals become numbers), e.g. lm_tokens=97280 git_commit=422e037",
    )  # fmt: skip
    args = ap.parse_args(argv)
    from zett.atomic import atomic_write_text

    path = args.hypernet / "hypernet.json"
    meta = json.loads(path.read_text())
    facts = {}
    for item in args.set:
        key, _, value = item.partition("=")
        # plain decimals become numbers; anything else (e.g. a commit "422e037") stays text
        facts[key] = json.loads(value) if re.fullmatch(r"-?\d+(\.\d+)?", value) else value
    provenance = {
        "config": str(args.config),
        **facts,
        "eval_of_stored_file": evaluate_stored(args.hypernet, args.config),
    }
    meta["provenance"] = provenance
    atomic_write_text(path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(json.dumps(provenance, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
