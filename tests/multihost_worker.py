"""Subprocess worker for the sharding tests (needs its own JAX process: fake device counts
must be set before JAX starts, and the rest of the suite runs with one device).

    python tests/multihost_worker.py meshes OUT.json
        one process, 8 fake CPU devices: the pure step on several meshes vs one device, and a
        checkpoint written on an fsdp mesh restored onto another mesh;
    python tests/multihost_worker.py trainer OUT.json BASE CORPUS RUNS
        one process, 8 fake CPU devices: the real `Trainer` on mesh (4,2), and its checkpoint
        of step 2 resumed on (8,1);
    python tests/multihost_worker.py multihost OUT.json PORT PROCESS_ID
        one of 2 processes × 4 fake CPU devices joined by `jax.distributed` on loopback: a few
        steps on a mesh spanning both processes, and the same steps on one local device.

Writes a JSON report to OUT.json (multihost: OUT.json.<process_id>).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

N_STEPS = 3


def tiny_setup():
    """A random Llama (hidden 64, 4 heads, 4 kv heads, MLP 128: divisible by model=2 and 4),
    a 1-layer hypernet, AdamW, and N_STEPS synthetic batches; all from fixed seeds."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import linen as nn

    from zett.config import HypernetConfig, TrainConfig
    from zett.hypernet.model import build_hypernet, init_hypernet
    from zett.models.llama import Llama, LlamaConfig
    from zett.train import step as step_lib

    vocab, d = 256, 64
    llama = Llama(
        LlamaConfig(
            vocab_size=vocab,
            hidden_size=d,
            intermediate_size=128,
            num_layers=1,
            num_heads=4,
            num_kv_heads=4,
            head_dim=16,
            tie_word_embeddings=True,
        )
    )
    base = nn.meta.unbox(llama.init(jax.random.PRNGKey(1), jnp.zeros((1, 4), jnp.int32)))
    base = base["params"]
    frozen = step_lib.Frozen(params=base, base_in=base["embed_tokens"]["embedding"], base_out=None)
    hcfg = HypernetConfig(num_layers=1, num_heads=2, hidden_dim=32, max_pieces=4)
    hypernet = build_hypernet(hcfg, d, 4)
    tcfg = TrainConfig(steps=10, lr=1e-3, end_lr=1e-4, warmup_steps=0, grad_clip=1.0)
    optimizer = step_lib.make_optimizer(tcfg)
    params = init_hypernet(hypernet, jax.random.PRNGKey(2), frozen.base_in)
    # Host copies: every run places its own device buffers (the step donates its state).
    state = jax.device_get(step_lib.init_state(params, optimizer))
    loss_fn = step_lib.make_loss_fn(llama, hypernet, "clm", lw=0.5)
    step_fn = step_lib.make_train_step(loss_fn, optimizer)

    def batch(i: int) -> dict:
        r = np.random.default_rng((7, i))
        n, p, b, t, s = 64, 4, 8, 16, 16
        mask = np.ones((b, t), np.int32)
        mask[-1, t // 2 :] = 0
        return {
            "input_ids": r.integers(0, n - 4, (b, t)).astype(np.int32),  # real rows only
            "attention_mask": mask,
            "piece_ids": r.integers(0, vocab, (n, p)).astype(np.int32),
            "piece_lengths": r.integers(1, p + 1, (n,)).astype(np.int32),
            "vocab_mask": np.arange(n) < n - 4,
            "unigram_logprobs": -r.random(n).astype(np.float32) * 5,
            "shared_idx": r.integers(0, n - 4, (s,)).astype(np.int32),
            "shared_base_ids": r.integers(0, vocab, (s,)).astype(np.int32),
            "shared_mask": np.arange(s) < s - 2,
        }

    batches = [batch(i) for i in range(N_STEPS + 2)]
    return llama, hypernet, optimizer, step_fn, state, frozen, batches


def run_steps(mesh, setup, steps, state=None, first=0, after=None):
    """Place everything on `mesh` by the rules and run `steps` sharded steps, calling
    `after(step_number, state)` after each. Returns (losses, final state, shardings)."""
    import jax

    from zett import sharding

    llama, hypernet, optimizer, step_fn, state0, frozen, batches = setup
    ps = sharding.hypernet_shardings(hypernet, frozen.base_in, None, mesh)
    ss = sharding.state_shardings(optimizer, state0, ps, mesh)
    fs = sharding.frozen_shardings(llama, frozen, mesh)
    state = sharding.place(state0 if state is None else state, ss)
    frozen = sharding.place(frozen, fs)
    fn = sharding.ShardedStep(step_fn, mesh, ss, fs)
    losses = []
    for i in range(first, first + steps):
        rng = jax.random.fold_in(jax.random.PRNGKey(0), i)
        state, metrics = fn(state, batches[i], frozen, rng)
        losses.append(float(metrics["loss"]))
        if after is not None:
            after(i + 1, state)
    return losses, state, (ss, fs)


def _host(tree):
    import jax
    import numpy as np

    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


def _max_diff(a, b) -> float:
    import numpy as np

    return max(float(np.max(np.abs(x - y))) if x.size else 0.0 for x, y in zip(a, b, strict=True))


def _spec(s) -> str:
    return str(tuple(s.spec))


def meshes(out: Path) -> None:
    import tempfile

    import jax

    from zett import sharding
    from zett.config import MeshConfig
    from zett.train.checkpoint import Checkpointer, abstract_like

    setup = tiny_setup()
    one = sharding.make_mesh(MeshConfig(data=1), jax.devices()[:1])
    ref_losses, ref_state, _ = run_steps(one, setup, N_STEPS)
    ref_params = _host(ref_state.params)
    report: dict = {"devices": jax.device_count(), "reference": ref_losses, "meshes": {}}
    tmp = tempfile.TemporaryDirectory()
    ckpt = Checkpointer(Path(tmp.name) / "ck")
    saved: dict = {}

    def save_at_2(step, state):  # the (2, 2, 2) run also writes a checkpoint after step 2
        if step == 2:
            ckpt.save(2, state, {"step": 2})
            saved["spec"] = _spec(state.params["out_in"]["kernel"].sharding)

    for data, fsdp, model in ((8, 1, 1), (4, 1, 2), (2, 1, 4), (2, 2, 2)):
        mesh = sharding.make_mesh(MeshConfig(data=data, fsdp=fsdp, model=model))
        hook = save_at_2 if (data, fsdp, model) == (2, 2, 2) else None
        losses, state, (ss, fs) = run_steps(mesh, setup, N_STEPS, after=hook)
        layer = fs.params["layers_0"]
        q_kernel = layer["self_attn"]["q_proj"]["kernel"]
        report["meshes"][f"{data}x{fsdp}x{model}"] = {
            "losses": losses,
            "max_param_diff": _max_diff(_host(state.params), ref_params),
            "max_param_change": _max_diff(_host(state.params), _host(setup[4].params)),
            "mesh_shape": dict(mesh.shape),
            "q_proj": _spec(q_kernel),
            "down_proj": _spec(layer["mlp"]["down_proj"]["kernel"]),
            "base_in": _spec(fs.base_in),
            "input_ids": _spec(sharding.batch_sharding(mesh, setup[-1][0])["input_ids"]),
            "piece_ids": _spec(sharding.batch_sharding(mesh, setup[-1][0])["piece_ids"]),
            "hyper_out_in": _spec(ss.params["out_in"]["kernel"]),
            "adam_mu_out_in": _spec(ss.opt_state[1][0].mu["out_in"]["kernel"]),
            "state_out_in": _spec(state.params["out_in"]["kernel"].sharding),
            "n_shards_q_proj": len(
                {str(i) for i in q_kernel.devices_indices_map((64, 64)).values()}
            ),
        }
    # Restore the (2, 2, 2) checkpoint onto (8, 1, 1) and take step 3 there.
    dst = sharding.make_mesh(MeshConfig(data=8))
    _, _, (ss, _) = run_steps(dst, setup, 0)
    abstract = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), setup[4], ss
    )
    restored, meta = ckpt.restore(abstract)
    after = abstract_like(restored)
    losses, _, _ = run_steps(dst, setup, 1, state=restored, first=2)
    report["checkpoint"] = {
        "saved_spec": saved["spec"],
        "restored_spec": _spec(after.params["out_in"]["kernel"].sharding),
        "restored_mesh": dict(after.params["out_in"]["kernel"].sharding.mesh.shape),
        "meta_step": meta["step"],
        "loss_step3": losses[0],
    }
    ckpt.close()
    tmp.cleanup()
    out.write_text(json.dumps(report, indent=1))


def trainer(out: Path, base: str, corpus: str, runs: str) -> None:
    from zett.config import load_config
    from zett.train.loop import Trainer

    configs = Path(__file__).parents[1] / "configs"

    def cfg(name: str, data: int, model: int, *extra: str):
        return load_config(
            configs / "tiny.yaml",
            [
                "--model.base", base, "--data.corpus", corpus,
                "--train.output_dir", str(Path(runs) / name), "--data.prefetch", "0",
                "--data.batch_size", "8", "--train.steps", "4", "--train.log_every", "1",
                "--train.save_every", "2", "--mesh.data", str(data), "--mesh.model", str(model),
                *extra,
            ],
        )  # fmt: skip

    import shutil

    # Uninterrupted on (4, 2): 4 steps, checkpoints after steps 2 and 4.
    t = Trainer(cfg("m4x2", 4, 2), progress=False)
    report: dict = {"m4x2": {"mesh": dict(t.mesh.shape)}}
    t.run()
    # "Killed" after step 2: a run dir holding only the (4, 2) checkpoint of step 2, resumed
    # on (8, 1) — orbax restores onto the new mesh's shardings.
    shutil.copytree(Path(runs) / "m4x2/checkpoints/2", Path(runs) / "resharded/checkpoints/2")
    t = Trainer(cfg("resharded", 8, 1), resume=True, progress=False)
    leaf = t.state.opt_state[1][0].mu["out_in"]["kernel"]
    report["resharded"] = {"start_step": t.start_step, "mesh": dict(leaf.sharding.mesh.shape)}
    t.run()
    out.write_text(json.dumps(report, indent=1))


def multihost(out: Path, port: int, pid: int) -> None:
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid)
    import numpy as np

    from zett import sharding
    from zett.config import MeshConfig

    setup = tiny_setup()
    mesh = sharding.make_mesh(MeshConfig(data=4, model=2))
    # Per-host data loading: each process builds only its own rows of input_ids.
    rows = sharding.process_rows(8, sharding.batch_sharding(mesh))
    ids = setup[-1][0]["input_ids"]
    local = sharding.from_process_rows(ids[rows], sharding.batch_sharding(mesh), ids.shape)
    # This host's shards (each row block sits on `model` devices; keep one copy of each).
    blocks = {s.index[0].start: np.asarray(s.data) for s in local.addressable_shards}
    assembled = np.concatenate([blocks[k] for k in sorted(blocks)])
    losses, state, _ = run_steps(mesh, setup, N_STEPS)
    one = sharding.make_mesh(MeshConfig(data=1), jax.local_devices()[:1])
    ref, _, _ = run_steps(one, setup, N_STEPS)
    report = {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "global_devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        "mesh": dict(mesh.shape),
        "rows": [rows.start, rows.stop],
        "local_rows_match": bool(np.array_equal(assembled, ids[rows])),
        "losses": losses,
        "single_device": ref,
    }
    jax.distributed.shutdown()
    Path(f"{out}.{pid}").write_text(json.dumps(report, indent=1))


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    sys.path.insert(0, str(Path(__file__).parents[1]))
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if mode == "meshes":
        meshes(out)
    elif mode == "trainer":
        trainer(out, *sys.argv[3:6])
    elif mode == "multihost":
        multihost(out, int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
