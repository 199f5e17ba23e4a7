"""Does the LM stage's sampled softmax point the hypernet's gradient the wrong way?

Run:      .venv/bin/python experiments/softmax_bias.py [--hypernet DIR] [--batches K]
Needs:    `zett prepare smollm2`, `zett prepare corpus`.
Writes:   results/softmax_bias.json and results/softmax_bias.md.

An LM step embeds only `data.n_token_subsample` rows of the sampled vocabulary (the batch's
own tokens, then random others) and takes the softmax over those. For the first K LM batches
of configs/smollm2_cpu_compose.yaml this computes the hypernet's CLM loss and gradient three
ways, from the same hypernet:

  full       every token of the sampled vocabulary is a row (the softmax held-out eval uses);
  sampled    the configured subsample, no correction (how every run before the fix trained);
  corrected  the same rows + log(1/q) on each random row (`data.negative_correction`).

It reports each variant's loss and the cosine of its gradient with the full one. The
gradient, not the loss, is what training follows: a low cosine means the subsample trains
toward another objective than the one we measure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "smollm2_cpu_compose.yaml"


def _flat(tree):
    import jax
    import jax.numpy as jnp

    return jnp.concatenate([x.ravel().astype(jnp.float32) for x in jax.tree.leaves(tree)])


def run(hypernet_dir: Path, n_batches: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from zett.config import load_config
    from zett.data.corpus import load_corpus
    from zett.data.pipeline import BaseVocab, TextMixture, make_batch
    from zett.hypernet import io as hypernet_io
    from zett.train import step as step_lib
    from zett.train.loop import batch_arrays, load_base

    cfg = load_config(CONFIG)
    bundle = load_base(cfg)
    module, params, meta = hypernet_io.load_hypernet(hypernet_dir)
    hypernet_io.check_base(meta, bundle.fingerprint, hypernet_dir)
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    dc = cfg.data
    variants = {
        "full": dataclasses.replace(
            dc, n_token_subsample=dc.vocab_size_max, short_rows=0, negative_correction=False
        ),
        "sampled": dataclasses.replace(dc, negative_correction=False),
        "corrected": dataclasses.replace(dc, negative_correction=True),
    }
    mixture = TextMixture(load_corpus(dc.corpus)["train"], dc.langs)
    base = BaseVocab(bundle.tokenizer, cfg.hypernet.max_pieces)
    grad_fns = {}
    for name, vc in variants.items():
        split = (vc.short_rows, vc.short_pieces) if vc.short_rows > 0 else None
        loss_fn = step_lib.make_loss_fn(
            bundle.loaded.module, module, "clm", 0.0, compose_weight=0.0, split=split
        )
        grad_fns[name] = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    rows = []
    t0 = time.perf_counter()
    for step in range(n_batches):
        out: dict = {"step": step}
        grads = {}
        for name, vc in variants.items():
            batch = make_batch(mixture, base, vc, step)
            arrays = batch_arrays(batch, step_lib.BATCH_KEYS)
            (loss, _), g = grad_fns[name](params, arrays, bundle.frozen, jax.random.PRNGKey(0))
            out[f"{name}_loss"] = float(loss)
            grads[name] = _flat(g)
            if name == "full":
                out["vocab_size"] = int(batch.vocab_size)
            else:
                out["rows"] = int(batch.vocab_mask.sum())
                out["present"] = int(np.unique(batch.input_ids[batch.attention_mask > 0]).size)
        ref = grads["full"]
        for name in ("sampled", "corrected"):
            g = grads[name]
            out[f"{name}_cos"] = float(g @ ref / (jnp.linalg.norm(g) * jnp.linalg.norm(ref)))
        rows.append(out)
        print(json.dumps(out), flush=True)
    mean = {
        k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k.endswith(("_loss", "_cos"))
    }
    return {
        "hypernet": str(
            hypernet_dir.relative_to(ROOT) if hypernet_dir.is_relative_to(ROOT) else hypernet_dir
        ),
        "config": str(CONFIG.relative_to(ROOT)),
        "batches": rows,
        "mean": mean,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def markdown(res: dict) -> str:
    m = res["mean"]
    lines = [
        f"CLM loss (nats/token) and gradient cosine with the full-vocabulary softmax, "
        f"mean over {len(res['batches'])} LM batches of `{res['config']}`, "
        f"hypernet `{res['hypernet']}`:",
        "",
        "| softmax over | loss | cos(grad, full grad) |",
        "|---|---|---|",
        f"| the whole sampled vocabulary | {m['full_loss']:.3f} | 1 |",
        f"| subsample, uncorrected | {m['sampled_loss']:.3f} | {m['sampled_cos']:.3f} |",
        f"| subsample + log(1/q) on random rows | {m['corrected_loss']:.3f} | "
        f"{m['corrected_cos']:.3f} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--hypernet",
        type=Path,
        default=ROOT / "hypernets" / "smollm2_compose_only",
        help="hypernet dir whose gradients are compared (default: hypernets/smollm2_compose_only)",
    )
    ap.add_argument("--batches", type=int, default=6, help="LM batches to average (default 6)")
    ap.add_argument(
        "--output", type=Path, default=ROOT / "results" / "softmax_bias.json", help="result JSON"
    )
    args = ap.parse_args(argv)
    res = run(args.hypernet.resolve(), args.batches)
    from zett.atomic import atomic_write_text as write_text

    write_text(args.output, json.dumps(res, indent=1) + "\n")
    write_text(args.output.with_suffix(".md"), markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
