"""Benchmark: hypernet training step time ÷ frozen base LM fwd+bwd alone (same batch, one run).

The hypernet's overhead is what it adds to a step that has to run the frozen LM anyway
(forward + backward to the embeddings). Goal: ratio ≤ 1.3.

    python experiments/bench_train.py [--quick] [--config configs/X.yaml]   # prints JSON

Uses real SmolLM2 (`zett prepare smollm2`) and the real step-0 batch of the config (default
configs/smollm2_cpu_bigvocab4.yaml, the CPU recipe of the default hypernet's last stage:
3,072 softmax rows, 2,304 of them at 3 piece positions; configs/smollm2_cpu_long.yaml is the
2,048-row recipe of its first long LM stage)
(sampled tokenizer, decompositions through SmolLM2's tokenizer, compose rows), built before
timing, so the timing measures compute only, not data loading. Also times the same step
without the short/long row split, for the ratio the split buys.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _time(fn, reps: int) -> float:
    jax.block_until_ready(fn())  # compile + warm up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _real_batch(cfg, bundle) -> dict:
    """Training step 0's batch of the config (sampled tokenizer, real decompositions through
    the base tokenizer, `short_rows` layout) plus its compose rows."""
    from zett.data.corpus import load_corpus
    from zett.data.pipeline import BatchIterator
    from zett.train import step as step_lib
    from zett.train.loop import CompositionBatches, batch_arrays

    it = BatchIterator(
        load_corpus(cfg.data.corpus)["train"], bundle.tokenizer, cfg.data, cfg.hypernet.max_pieces
    )
    batch = batch_arrays(it.batch(0), step_lib.BATCH_KEYS)
    if cfg.train.compose_weight > 0:
        batch.update(CompositionBatches(bundle, cfg).batch(0, prefix="compose_"))
    return batch


CONFIG = ROOT / "configs" / "smollm2_cpu_bigvocab4.yaml"


def run(quick: bool = False, config: Path = CONFIG) -> dict:
    from zett.config import load_config
    from zett.hypernet.model import untrained_hypernet
    from zett.train import step as step_lib
    from zett.train.loop import base_heads, load_base
    from zett.train.losses import causal_lm_loss

    cfg = load_config(config)
    bundle = load_base(cfg)
    frozen, module = bundle.frozen, bundle.loaded.module
    batch = _real_batch(cfg, bundle)
    n, p = batch["piece_ids"].shape
    b, t = batch["input_ids"].shape
    lengths = batch["piece_lengths"][batch["vocab_mask"]]

    # (a) frozen LM alone: forward + backward to its input/output embeddings [N, D].
    emb_in = jnp.take(frozen.base_in, jnp.asarray(batch["piece_ids"][:, 0]), axis=0)

    @jax.jit
    def lm_only(e):
        def loss(e):
            x = jnp.take(e, batch["input_ids"], axis=0)
            logits = module.apply(
                {"params": frozen.params},
                inputs_embeds=x,
                attention_mask=batch["attention_mask"],
                output_embeddings=e,
            )
            s, c = causal_lm_loss(logits, batch["input_ids"], batch["attention_mask"])
            return s / c

        return jax.grad(loss)(e)

    # (b) the full training step (hypernet fwd + LM fwd/bwd + hypernet bwd + AdamW), as the
    # config runs it (short/long row split, compose term) and (c) without the split.
    hyper, params = untrained_hypernet(
        cfg.hypernet, frozen.base_in, None, base_heads(bundle.loaded)
    )
    opt = step_lib.make_optimizer(cfg.train)
    state = step_lib.init_state(params, opt)
    dc = cfg.data
    split = (dc.short_rows, dc.short_pieces) if dc.short_rows > 0 else None
    steps = {}
    for name, sp in (("train_step_s", split), ("train_step_unsplit_s", None)):
        loss_fn = step_lib.make_loss_fn(
            module, hyper, "clm", cfg.train.lw, compose_weight=cfg.train.compose_weight, split=sp
        )
        steps[name] = jax.jit(step_lib.make_train_step(loss_fn, opt))
    key = jax.random.PRNGKey(0)

    reps = 2 if quick else 5
    lm_s = _time(lambda: lm_only(emb_in), reps)
    out = {
        "config": str(Path(config).resolve().relative_to(ROOT))
        if Path(config).resolve().is_relative_to(ROOT)
        else str(config),
        "device": jax.devices()[0].device_kind,
        "batch": f"{b}x{t} tokens, {n} vocab rows x {p} pieces "
        f"(short rows: {dc.short_rows} x {dc.short_pieces}), compose rows: "
        f"{cfg.train.compose_rows if cfg.train.compose_weight > 0 else 0}",
        "hypernet_layers": cfg.hypernet.num_layers,
        "mean_pieces_per_row": round(float(lengths.mean()), 3),
        "lm_fwd_bwd_s": lm_s,
    }
    for name, fn in steps.items():
        out[name] = _time(lambda fn=fn: fn(state, batch, frozen, key)[1]["loss"], reps)
    lm_tokens = int(batch["attention_mask"].sum())
    out.update(
        step_over_lm=out["train_step_s"] / lm_s,
        unsplit_step_over_lm=out["train_step_unsplit_s"] / lm_s,
        lm_tokens_per_step=lm_tokens,
        train_lm_tokens_per_s=lm_tokens / out["train_step_s"],
        goal_step_over_lm=1.3,
    )
    return out


if __name__ == "__main__":
    argv = sys.argv[1:]
    config = Path(argv[argv.index("--config") + 1]) if "--config" in argv else CONFIG
    print(json.dumps(run(quick="--quick" in argv, config=config), indent=2))
