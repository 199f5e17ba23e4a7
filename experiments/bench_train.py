"""Benchmark: hypernet training step time ÷ frozen base LM fwd+bwd alone (same batch, one run).

The hypernet's overhead is what it adds to a step that has to run the frozen LM anyway
(forward + backward to the embeddings). Goal: ratio ≤ 1.3.

    python experiments/bench_train.py [--quick]        # prints JSON

Uses real SmolLM2 (`zett prepare smollm2`) with the batch shape of configs/smollm2_cpu.yaml and
a synthetic batch (random ids over the subsampled vocabulary, real base-vocab decompositions),
so the timing measures compute only, not data loading.
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


def run(quick: bool = False) -> dict:
    from zett.config import load_config
    from zett.hypernet.model import build_hypernet, init_hypernet
    from zett.train import step as step_lib
    from zett.train.loop import base_heads, load_base

    cfg = load_config(ROOT / "configs" / "smollm2_cpu.yaml")
    bundle = load_base(cfg)
    frozen, module = bundle.frozen, bundle.loaded.module
    b, t, n, p = cfg.data.batch_size, cfg.data.seq_len, cfg.data.n_token_subsample, 7
    rng = np.random.default_rng(0)
    vocab_rows = frozen.base_in.shape[0]
    base_ids = rng.choice(vocab_rows, size=n, replace=False)
    batch = {
        "input_ids": rng.integers(0, n, (b, t)).astype(np.int32),
        "attention_mask": np.ones((b, t), np.int32),
        "piece_ids": np.zeros((n, p), np.int32),
        "piece_lengths": rng.integers(1, 4, n).astype(np.int32),
        "vocab_mask": np.ones(n, bool),
        "unigram_logprobs": np.zeros(n, np.float32),
        "shared_idx": np.arange(256, dtype=np.int32),
        "shared_base_ids": base_ids[:256].astype(np.int32),
        "shared_mask": np.ones(256, bool),
    }
    for i in range(n):
        batch["piece_ids"][i, : batch["piece_lengths"][i]] = rng.choice(
            vocab_rows, batch["piece_lengths"][i]
        )

    # (a) frozen LM alone: forward + backward to its input/output embeddings.
    emb_in = jnp.take(frozen.base_in, base_ids, axis=0)

    @jax.jit
    def lm_only(e):
        def loss(e):
            from zett.train.losses import causal_lm_loss

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

    # (b) the full training step (hypernet fwd + LM fwd/bwd + hypernet bwd + AdamW).
    hyper = build_hypernet(cfg.hypernet, frozen.base_in.shape[1], base_heads(bundle.loaded))
    params = init_hypernet(hyper, jax.random.PRNGKey(0), frozen.base_in)
    opt = step_lib.make_optimizer(cfg.train)
    state = step_lib.init_state(params, opt)
    loss_fn = step_lib.make_loss_fn(module, hyper, "clm", cfg.train.lw)
    train_step = jax.jit(step_lib.make_train_step(loss_fn, opt))
    key = jax.random.PRNGKey(0)

    reps = 2 if quick else 5
    lm_s = _time(lambda: lm_only(emb_in), reps)
    step_s = _time(lambda: train_step(state, batch, frozen, key)[1]["loss"], reps)
    return {
        "device": jax.devices()[0].device_kind,
        "batch": f"{b}x{t} tokens, {n} vocab rows x {p} pieces",
        "lm_fwd_bwd_s": lm_s,
        "train_step_s": step_s,
        "step_over_lm": step_s / lm_s,
        "goal_step_over_lm": 1.3,
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
