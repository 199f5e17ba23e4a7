"""SmolLM2-135M forward+backward throughput: our JAX model vs transformers' PyTorch, same machine.

What it measures: tokens/s of one training-style step (causal-LM loss, gradients for all
parameters) on a batch of 1 × 512 tokens, float32, after compilation (JAX) / a warm-up step
(PyTorch). Steps alternate JAX / PyTorch in one process and medians are reported, so both
see the same machine load and the ratio is comparable.

Run: `.venv/bin/python experiments/bench_models.py [--quick]` (prints JSON; needs
`zett prepare smollm2`). Expected: on CPU the two are within ~2x of each other; compile time
is reported separately.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from zett.assets import base_model_dir
from zett.models.load import load_model


def _lm_loss(logits: jax.Array, ids: jax.Array) -> jax.Array:
    """Mean next-token cross-entropy: logits `[b, s, V]`, ids `[b, s]`."""
    logp = jax.nn.log_softmax(logits[:, :-1], axis=-1)
    return -jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1).mean()


def jax_step(path, ids: np.ndarray):
    """A zero-argument jitted fwd+bwd step (compiled here) and its compile time."""
    loaded = load_model(path)

    @jax.jit
    def step(params, ids):
        loss_fn = lambda p: _lm_loss(loaded.module.apply({"params": p}, ids), ids)  # noqa: E731
        return jax.value_and_grad(loss_fn)(params)

    ids = jnp.asarray(ids)
    t0 = time.perf_counter()
    jax.block_until_ready(step(loaded.params, ids))
    compile_s = time.perf_counter() - t0

    def run_step() -> float:
        loss, grads = step(loaded.params, ids)
        jax.block_until_ready(grads)
        return float(loss)

    return run_step, compile_s


def torch_step(path, ids: np.ndarray):
    """A zero-argument PyTorch fwd+bwd step (after one warm-up call)."""
    import torch
    import transformers as tf

    model = tf.AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    model.train()  # dropout is 0 in SmolLM2; train mode is what a training step uses
    ids_t = torch.tensor(ids)

    def run_step() -> float:
        model.zero_grad(set_to_none=True)
        loss = model(input_ids=ids_t, labels=ids_t).loss
        loss.backward()
        return float(loss.detach())

    run_step()
    return run_step


def _timed(fn) -> tuple[float, float]:
    t0 = time.perf_counter()
    loss = fn()
    return time.perf_counter() - t0, loss


def run(quick: bool = False) -> dict:
    path = base_model_dir("smollm2")
    seq, reps = (128, 2) if quick else (512, 5)
    ids = np.random.RandomState(0).randint(0, 49152, size=(1, seq))
    jx, compile_s = jax_step(path, ids)
    pt = torch_step(path, ids)
    jax_s, torch_s = [], []
    for _ in range(reps):  # interleaved, so both see the same load on a shared machine
        dt, loss_jax = _timed(jx)
        jax_s.append(dt)
        dt, loss_torch = _timed(pt)
        torch_s.append(dt)
    jax_step_s, torch_step_s = float(np.median(jax_s)), float(np.median(torch_s))
    tokens = ids.size
    return {
        "device": jax.devices()[0].device_kind,
        "batch": list(ids.shape),
        "reps": reps,
        "jax_compile_s": round(compile_s, 2),
        "jax_tokens_per_s": round(tokens / jax_step_s, 1),
        "torch_tokens_per_s": round(tokens / torch_step_s, 1),
        "jax_over_torch": round(torch_step_s / jax_step_s, 3),
        "loss_jax": round(loss_jax, 5),
        "loss_torch": round(loss_torch, 5),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="128 tokens, 2 reps")
    print(json.dumps(run(parser.parse_args().quick), indent=2))
