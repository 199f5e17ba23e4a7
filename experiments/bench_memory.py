"""Per-device memory of one training step for a Llama-3-8B-sized base on 8 devices.

    .venv/bin/python experiments/bench_memory.py [--quick] [--out results/bench_memory.json]

Nothing is materialized: the base, the hypernet, the optimizer state and the batch are
`jax.ShapeDtypeStruct`s carrying the shardings `zett.sharding` assigns, and the sharded step
is only lowered and compiled (`.compile().memory_analysis()`), on 8 fake CPU devices. The
numbers are XLA's per-device buffer sizes (arguments, outputs, temporaries) of the partitioned
program; a GPU/TPU compile schedules differently, so read them as the sharding's effect, not
as an exact device budget. Meshes compared in one run (data × fsdp × model):
8×1×1 (everything replicated: the baseline), 1×1×8 (tensor parallel), 1×2×4 (fsdp × model).

Base: Llama-3-8B shapes (vocab 128,256, width 4,096, 32 layers, 32/8 heads, MLP 14,336,
untied), weights bfloat16, embedding tables float32 as `zett.train.loop.load_base` keeps them.
Hypernet: 3 layers, width 4,096, MLP 2×, 7 pieces (the paper's setting), float32 + AdamW.
Batch: 16 × 128 tokens, 8,192 sampled-vocabulary rows. `--quick` uses 2 base layers.

Measured (jax 0.10.2, 8 fake CPU devices, full 32 layers, < 1 min), GiB per device:

    mesh 8×1×1  arguments 22.2  temporaries 35.8   (base 16.9 + hypernet state 5.3, replicated)
    mesh 1×1×8  arguments  7.4  temporaries 14.7   (base /8; hypernet state still replicated)
    mesh 1×2×4  arguments  7.2  temporaries 15.5

so tensor parallelism cuts the base's share 8× and the step fits an 80 GB GPU per device;
what remains is dominated by the replicated hypernet state (params + AdamW, 5.3 GiB).
"""

from __future__ import annotations

import os
import sys

if "jax" not in sys.modules:  # fake devices must be requested before JAX starts
    flag = "--xla_force_host_platform_device_count=8"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

LLAMA3_8B = dict(
    vocab_size=128256,
    hidden_size=4096,
    intermediate_size=14336,
    num_layers=32,
    num_heads=32,
    num_kv_heads=8,
    head_dim=128,
    rope_theta=500000.0,
    tie_word_embeddings=False,
)
MESHES = ((8, 1, 1), (1, 1, 8), (1, 2, 4))
GIB = 2**30


def _abstract(tree, shardings, dtype=None):
    import jax

    def one(x, s):
        return jax.ShapeDtypeStruct(x.shape, dtype or x.dtype, sharding=s)

    return jax.tree.map(one, tree, shardings)


def _nbytes(tree) -> int:
    import jax
    import numpy as np

    return sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def measure(mesh_shape, layers: int, batch: int, seq: int, n_tokens: int) -> dict:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from zett import sharding
    from zett.config import HypernetConfig, MeshConfig, TrainConfig
    from zett.hypernet.model import build_hypernet, init_hypernet
    from zett.models.llama import Llama, LlamaConfig
    from zett.train import step as step_lib

    data, fsdp, model = mesh_shape
    mesh = sharding.make_mesh(MeshConfig(data=data, fsdp=fsdp, model=model))
    llama = Llama(LlamaConfig(**{**LLAMA3_8B, "num_layers": layers}), dtype=jnp.bfloat16)
    ids = jnp.zeros((1, 1), jnp.int32)
    base = nn.meta.unbox(jax.eval_shape(llama.init, jax.random.key(0), ids))["params"]
    emb = jax.ShapeDtypeStruct(base["embed_tokens"]["embedding"].shape, jnp.float32)
    frozen = step_lib.Frozen(params=base, base_in=emb, base_out=emb)
    fs = sharding.frozen_shardings(llama, frozen, mesh)
    frozen = frozen.replace(
        params=_abstract(base, fs.params, jnp.bfloat16),
        base_in=_abstract(emb, fs.base_in),
        base_out=_abstract(emb, fs.base_out),
    )

    hcfg = HypernetConfig(num_layers=3, max_pieces=7)
    hypernet = build_hypernet(hcfg, LLAMA3_8B["hidden_size"], LLAMA3_8B["num_heads"])
    optimizer = step_lib.make_optimizer(TrainConfig())
    state = jax.eval_shape(
        lambda e: step_lib.init_state(init_hypernet(hypernet, jax.random.key(0), e, e), optimizer),
        emb,
    )
    ps = sharding.hypernet_shardings(hypernet, emb, emb, mesh)
    ss = sharding.state_shardings(optimizer, state, ps, mesh)
    state = _abstract(state, ss)

    i32, f32 = jnp.int32, jnp.float32
    shapes = {
        "input_ids": ((batch, seq), i32),
        "attention_mask": ((batch, seq), i32),
        "piece_ids": ((n_tokens, hcfg.max_pieces), i32),
        "piece_lengths": ((n_tokens,), i32),
        "vocab_mask": ((n_tokens,), jnp.bool_),
        "unigram_logprobs": ((n_tokens,), f32),
        "shared_idx": ((1024,), i32),
        "shared_base_ids": ((1024,), i32),
        "shared_mask": ((1024,), jnp.bool_),
    }
    batch_sds = {k: jax.ShapeDtypeStruct(s, d) for k, (s, d) in shapes.items()}
    bs = sharding.batch_sharding(mesh, batch_sds)
    batch_sds = _abstract(batch_sds, bs)
    rng = jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=sharding.replicated(mesh))

    loss_fn = step_lib.make_loss_fn(llama, hypernet, "clm", lw=0.5)
    step = sharding.shard_train_step(step_lib.make_train_step(loss_fn, optimizer), mesh, ss, fs, bs)
    t0 = time.perf_counter()
    compiled = step.lower(state, batch_sds, frozen, rng).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    return {
        "mesh": dict(mesh.shape),
        "argument_gib": mem.argument_size_in_bytes / GIB,
        "output_gib": mem.output_size_in_bytes / GIB,
        "temp_gib": mem.temp_size_in_bytes / GIB,
        "alias_gib": mem.alias_size_in_bytes / GIB,
        "compile_s": compile_s,
        "global_base_gib": _nbytes(frozen) / GIB,
        "global_state_gib": _nbytes(state) / GIB,
    }


def run(quick: bool = False) -> dict:
    import jax

    layers = 2 if quick else LLAMA3_8B["num_layers"]
    setting = {"layers": layers, "batch": 16, "seq": 128, "n_tokens": 8192}
    results = {"x".join(map(str, m)): measure(m, **setting) for m in MESHES}
    base = results["8x1x1"]["argument_gib"]
    for r in results.values():
        r["argument_ratio_vs_replicated"] = base / r["argument_gib"]
    return {
        "devices": jax.device_count(),
        "platform": jax.devices()[0].platform,
        "jax": jax.__version__,
        "setting": setting,
        "meshes": results,
    }


def main() -> None:
    from zett.atomic import atomic_write_text

    quick = "--quick" in sys.argv
    result = json.dumps(run(quick=quick), indent=1)
    if "--out" in sys.argv:
        atomic_write_text(Path(sys.argv[sys.argv.index("--out") + 1]), result + "\n")
    print(result)


if __name__ == "__main__":
    main()
