"""The device mesh and the logical-axis rules: the only module that names mesh axes.

Mesh axes, outermost first:

    data   copies of the step over different rows of the batch (pure data parallelism);
    fsdp   also splits the batch, and additionally shards parameters along their `embed` axis
           (ZeRO-3 style: XLA all-gathers a weight right before it is used);
    model  tensor parallelism of the frozen base LM: attention heads, MLP width, vocabulary.

`model` is innermost so that on a GPU node / TPU slice its devices are the closest ones.

Model code only names *logical* axes on its parameters ("vocab", "embed", "heads", ...,
"hyper_embed", ... via `nn.with_logical_partitioning`); `LOGICAL_RULES` maps them to mesh axes
here. A dimension is sharded only when the mesh axes' total size divides it; otherwise that
dimension falls back to replication (the leaf stays correct, it just is not split), so a small
model can run on any mesh. A mesh axis is never used twice within one array.

What the step sees (shapes as in `zett.train.step`):
  - frozen base parameters and its embedding matrices [V, D]: sharded by the rules
    (V over `model`, D over `fsdp`, heads/MLP over `model`);
  - hypernet parameters and optimizer state: `hyper_*` axes replicated, its output
    projections' `embed` axis over `fsdp`; the AdamW moments follow their parameter. (Mapping
    "hyper_embed" to "fsdp" gives ZeRO-3 for the hypernet too, but without activation sharding
    constraints inside the hypernet XLA then splits its [N, P, hidden] activations badly:
    35 vs 10 GiB temporaries per device at 8B scale, experiments/bench_memory.py.)
  - batch rows [B, T] (input_ids, attention_mask, ref_*): B over ("data", "fsdp");
  - the sampled vocabulary's rows [N, ...] (piece_ids [N, P], piece_lengths, vocab_mask,
    unigram_logprobs, base_ids): N over ("data", "fsdp", "model"), i.e. every device. The
    hypernet forward over N tokens × P pieces costs about as much as the LM step and its
    activations [N, P, hidden] dominate memory at 8B scale, so each device runs it for its
    share of the tokens; XLA all-gathers the predicted [N, D] embeddings where the LM looks
    them up. The shared-token arrays [S] are small and replicated.

Many hosts: every process runs the same program; `maybe_initialize_distributed` connects them,
`jax.devices()` then lists all hosts' devices and the mesh spans them. Each host either builds
the whole (deterministic) global batch and `place` keeps only its own shards, or builds just the
rows it owns (`process_rows`) and `from_process_rows` assembles the global array.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from zett.errors import ZettError

AXES = ("data", "fsdp", "model")
BATCH_AXES = ("data", "fsdp")

# logical axis name -> mesh axis (or axes, or None = replicated)
LOGICAL_RULES: dict[str, str | tuple[str, ...] | None] = {
    "batch": BATCH_AXES,
    # Rows of the sampled vocabulary [N, ...]: split over every device. The hypernet's own
    # weights are not tensor-parallel, so the `model` axis can split its tokens too.
    "tokens": (*BATCH_AXES, "model"),
    "vocab": "model",
    "embed": "fsdp",
    "heads": "model",
    "kv_heads": "model",
    "mlp": "model",
    "norm": None,
    "position": None,
    "type": None,
    "hyper_embed": None,
    "hyper_mlp": None,
    "hyper_heads": None,
    "hyper_in": None,
}

# Batch arrays by what their leading dimension counts (see `zett.train.step`).
ROW_KEYS = ("input_ids", "attention_mask", "ref_input_ids", "ref_attention_mask")
TOKEN_KEYS = (
    "piece_ids",
    "piece_lengths",
    "vocab_mask",
    "unigram_logprobs",
    "logit_offset",
    "base_ids",
    "compose_piece_ids",
    "compose_piece_lengths",
    "compose_base_ids",
)


# -- mesh -----------------------------------------------------------------------------------
def mesh_shape(mesh_cfg: Any, n_devices: int) -> tuple[int, int, int]:
    """(data, fsdp, model) sizes for `n_devices`; `data=-1` takes what the others leave."""
    data, fsdp, model = int(mesh_cfg.data), int(mesh_cfg.fsdp), int(mesh_cfg.model)
    for key, value in (("mesh.fsdp", fsdp), ("mesh.model", model)):
        if value < 1:
            raise ZettError(f"config key {key}: {value} must be >= 1")
    if data == -1:
        if n_devices % (fsdp * model):
            raise ZettError(
                f"config keys mesh.fsdp × mesh.model = {fsdp * model} does not divide the "
                f"{n_devices} devices; choose sizes whose product divides {n_devices}"
            )
        data = n_devices // (fsdp * model)
    if data < 1:
        raise ZettError(f"config key mesh.data: {data} must be >= 1 or -1 (all remaining)")
    if data * fsdp * model != n_devices:
        raise ZettError(
            f"config keys mesh.data × mesh.fsdp × mesh.model = {data}×{fsdp}×{model} = "
            f"{data * fsdp * model}, but there are {n_devices} devices; make the product "
            f"{n_devices} (or set mesh.data to -1)"
        )
    return data, fsdp, model


def make_mesh(mesh_cfg: Any, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A ("data", "fsdp", "model") mesh over `devices` (default: every device of every host)."""
    devices = list(jax.devices() if devices is None else devices)
    shape = mesh_shape(mesh_cfg, len(devices))
    try:  # topology-aware order on TPU/GPU (keeps `model` on neighbouring chips)
        from jax.experimental import mesh_utils

        grid = mesh_utils.create_device_mesh(shape, devices, allow_split_physical_axes=True)
    except (ValueError, NotImplementedError, AssertionError):
        grid = np.array(devices).reshape(shape)
    return Mesh(grid, AXES)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


# -- logical names -> shardings -------------------------------------------------------------
def logical_to_spec(
    shape: Sequence[int],
    names: Sequence[str | None] | None,
    axis_sizes: Mapping[str, int],
    rules: Mapping[str, Any] = LOGICAL_RULES,
) -> PartitionSpec:
    """Mesh PartitionSpec for an array of `shape` whose dimensions carry logical `names`.

    Per dimension, the rule's mesh axes are used if their total size divides the dimension;
    otherwise trailing mesh axes are dropped until it does (("data", "fsdp") → ("data",) → none),
    so an indivisible dimension is replicated rather than rejected. Mesh axes of size 1 and
    mesh axes already used by an earlier dimension are skipped. Unknown names, and names whose
    count does not match the rank, mean replicated.
    """
    if names is None or len(names) != len(shape):
        return PartitionSpec()
    used: set[str] = set()
    spec: list[Any] = []
    for dim, name in zip(shape, names, strict=True):
        rule = rules.get(name) if name is not None else None
        axes = (rule,) if isinstance(rule, str) else tuple(rule or ())
        axes = tuple(a for a in axes if a not in used and axis_sizes.get(a, 1) > 1)
        while axes and dim % math.prod(axis_sizes[a] for a in axes):
            axes = axes[:-1]
        used.update(axes)
        spec.append(None if not axes else axes[0] if len(axes) == 1 else axes)
    while spec and spec[-1] is None:
        spec.pop()
    return PartitionSpec(*spec)


def logical_sharding(
    shape: Sequence[int],
    names: Sequence[str | None] | None,
    mesh: Mesh,
    rules: Mapping[str, Any] = LOGICAL_RULES,
) -> NamedSharding:
    return NamedSharding(mesh, logical_to_spec(shape, names, dict(mesh.shape), rules))


def _is_box(x: Any) -> bool:
    return isinstance(x, nn.Partitioned)


def param_shardings(
    abstract_boxed_tree: Any, mesh: Mesh, rules: Mapping[str, Any] = LOGICAL_RULES
) -> Any:
    """NamedShardings for a parameter tree, from its `nn.Partitioned` boxes' logical names.

    `abstract_boxed_tree` is what `jax.eval_shape(module.init, ...)` returns (boxes around
    ShapeDtypeStructs); the result has the *unboxed* tree's structure. Leaves without logical
    names are replicated.
    """

    def one(leaf):
        if _is_box(leaf):
            return logical_sharding(leaf.value.shape, leaf.names, mesh, rules)
        return replicated(mesh)

    return jax.tree.map(one, abstract_boxed_tree, is_leaf=_is_box)


def _match_tree(tree: Any, by_path: Any, mesh: Mesh) -> Any:
    """`by_path`'s shardings laid over `tree` by key path; leaves it lacks are replicated.

    The loaded base tree and the module's init tree normally agree; matching by path keeps a
    harmless difference (an optional head) from breaking placement.
    """
    table = {
        jax.tree_util.keystr(p): s for p, s in jax.tree_util.tree_flatten_with_path(by_path)[0]
    }
    return jax.tree_util.tree_map_with_path(
        lambda p, _: table.get(jax.tree_util.keystr(p), replicated(mesh)), tree
    )


def base_shardings(
    module: nn.Module, params: Any, mesh: Mesh, rules: Mapping[str, Any] = LOGICAL_RULES
) -> Any:
    """Shardings of a base LM's parameter tree (laid over `params`), from the module's names."""
    ids = jnp.zeros((1, 1), jnp.int32)
    boxed = jax.eval_shape(module.init, jax.random.key(0), ids)["params"]
    return _match_tree(params, param_shardings(boxed, mesh, rules), mesh)


def frozen_shardings(
    module: nn.Module, frozen: Any, mesh: Mesh, rules: Mapping[str, Any] = LOGICAL_RULES
) -> Any:
    """Shardings for `zett.train.step.Frozen`: base params by the rules, [V, D] tables as
    ("vocab", "embed"), the [D] mask row and rescaler statistics as ("embed",), the [V]
    complete-text mask replicated (it is tiny and gathered by arbitrary piece ids)."""

    def table(x, names):
        return None if x is None else logical_sharding(x.shape, names, mesh, rules)

    return frozen.replace(
        params=base_shardings(module, frozen.params, mesh, rules),
        base_in=table(frozen.base_in, ("vocab", "embed")),
        base_out=table(frozen.base_out, ("vocab", "embed")),
        mask_embedding=table(frozen.mask_embedding, ("embed",)),
        stats=jax.tree.map(lambda x: table(x, ("embed",)), frozen.stats),
        complete=table(frozen.complete, (None,)),
    )


def hypernet_shardings(
    hypernet: nn.Module,
    base_in: Any,
    base_out: Any,
    mesh: Mesh,
    rules: Mapping[str, Any] = LOGICAL_RULES,
) -> Any:
    """Shardings of the hypernet's (unboxed) parameter tree, traced abstractly: no memory."""
    p = hypernet.dims.max_pieces
    sds = jax.ShapeDtypeStruct
    boxed = jax.eval_shape(
        hypernet.init,
        jax.random.key(0),
        sds((8, p), jnp.int32),
        sds((8,), jnp.int32),
        sds(base_in.shape, base_in.dtype),
        None if base_out is None else sds(base_out.shape, base_out.dtype),
        sds((8,), jnp.float32),
        None,
        None,
        sds(base_in.shape[:1], jnp.bool_),
    )["params"]
    return param_shardings(boxed, mesh, rules)


def state_shardings(
    optimizer: optax.GradientTransformation, state: Any, params_shardings: Any, mesh: Mesh
) -> Any:
    """Shardings for a `TrainState`: optimizer moments follow their parameter; counters and
    the step are replicated. `state` may be concrete or abstract (`jax.eval_shape`)."""
    opt = optax.tree_map_params(
        optimizer,
        lambda _, s: s,
        state.opt_state,
        params_shardings,
        transform_non_params=lambda _: replicated(mesh),
    )
    return state.replace(step=replicated(mesh), params=params_shardings, opt_state=opt)


def batch_sharding(mesh: Mesh, batch: Mapping[str, Any] | None = None) -> Any:
    """Sharding of batch arrays.

    Without `batch`: the sharding of an array whose leading dimension is batch rows.
    With a dict of arrays (or anything with `.shape`): a dict of shardings per key — batch rows
    [B, ...] and vocabulary rows [N, ...] over ("data", "fsdp") when divisible, the rest
    replicated.
    """
    if batch is None:
        return NamedSharding(mesh, PartitionSpec(BATCH_AXES))
    out = {}
    for key, x in batch.items():
        shape = np.shape(x)
        lead = "batch" if key in ROW_KEYS else "tokens" if key in TOKEN_KEYS else None
        names = (lead,) + (None,) * (len(shape) - 1) if shape else ()
        out[key] = logical_sharding(shape, names, mesh)
    return out


# -- placement --------------------------------------------------------------------------------
def place(tree: Any, shardings: Any) -> Any:
    """Put a tree of host-identical values onto its shardings (works across hosts: each
    process only materializes the shards its own devices hold)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)

    def one(x, s):
        host = np.asarray(jax.device_get(x)) if isinstance(x, jax.Array) else np.asarray(x)
        return jax.make_array_from_callback(host.shape, s, lambda idx: host[idx])

    return jax.tree.map(one, tree, shardings)


def process_rows(global_rows: int, sharding: NamedSharding) -> slice:
    """The rows [start, stop) of a global array's leading dimension that this process's
    devices hold under `sharding` (what this host should load)."""
    index = sharding.addressable_devices_indices_map((global_rows,))
    spans = {
        (s[0].start or 0, global_rows if s[0].stop is None else s[0].stop)
        for s in index.values()
        if s is not None  # typed Optional by jax; a device of this sharding always has one
    }
    start, stop = min(a for a, _ in spans), max(b for _, b in spans)
    covered = sorted(spans)
    if any(b < c for (_, b), (c, _) in zip(covered, covered[1:], strict=False)):
        raise ZettError(
            "mesh: this host's devices hold non-contiguous batch rows; keep `data`/`fsdp` as the "
            "outer mesh axes (the default device order) for per-host data loading"
        )
    return slice(start, stop)


def from_process_rows(
    local: np.ndarray, sharding: NamedSharding, global_shape: Sequence[int]
) -> jax.Array:
    """The global array assembled from each process's own rows (`process_rows`)."""
    return jax.make_array_from_process_local_data(sharding, local, tuple(global_shape))


def maybe_initialize_distributed(mesh_cfg: Any) -> bool:
    """Connect the processes of a multi-host job when `mesh.distributed` is true.

    Must run before anything touches a JAX device. On Cloud TPU, SLURM, Open MPI and similar
    clusters `jax.distributed.initialize()` finds everything itself; elsewhere set
    JAX_COORDINATOR_ADDRESS=host:port (process 0's address), JAX_NUM_PROCESSES and
    JAX_PROCESS_ID on every process. Returns whether it initialized.
    """
    if not mesh_cfg.distributed or jax.distributed.is_initialized():
        return False
    kwargs: dict[str, Any] = {}
    for env, key in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
        if os.environ.get(env):
            kwargs[key] = int(os.environ[env])
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ZettError(
            f"config key mesh.distributed: jax.distributed.initialize() failed ({first}); "
            "set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID, or run under "
            "a cluster launcher (SLURM, Open MPI, Cloud TPU)"
        ) from e
    return True


# -- the sharded step -------------------------------------------------------------------------
def shard_train_step(
    step_fn: Callable,
    mesh: Mesh,
    state_shardings: Any,
    frozen_shardings: Any,
    batch_shardings: Any,
) -> Callable:
    """`jax.jit` of `step(state, batch, frozen, rng) -> (state, metrics)` for `mesh`.

    The state comes back with the same shardings it came in with (so the step can be called
    in a loop), metrics and the rng are replicated. The incoming state is donated: its
    buffers are reused for the new state, so the caller must not touch the old one.
    """
    rep = replicated(mesh)
    return jax.jit(
        step_fn,
        in_shardings=(state_shardings, batch_shardings, frozen_shardings, rep),
        out_shardings=(state_shardings, rep),
        donate_argnums=0,
    )


class ShardedStep:
    """A sharded step for batches of any keys/shapes: places a host batch (numpy dict) with
    `batch_sharding` and calls the `shard_train_step` jit for that batch's signature (one
    compile per distinct set of keys and shapes, e.g. identity vs LM batches)."""

    def __init__(self, step_fn: Callable, mesh: Mesh, state_shardings: Any, frozen_shardings: Any):
        self.step_fn, self.mesh = step_fn, mesh
        self.state_shardings, self.frozen_shardings = state_shardings, frozen_shardings
        self._jitted: dict[tuple, tuple[Callable, dict]] = {}

    def __call__(self, state: Any, batch: Mapping[str, Any], frozen: Any, rng: jax.Array):
        sig = tuple(sorted((k, np.shape(v)) for k, v in batch.items()))
        if sig not in self._jitted:
            shardings = batch_sharding(self.mesh, batch)
            fn = shard_train_step(
                self.step_fn, self.mesh, self.state_shardings, self.frozen_shardings, shardings
            )
            self._jitted[sig] = (fn, shardings)
        fn, shardings = self._jitted[sig]
        batch = place(dict(batch), shardings)
        rng = place(rng, replicated(self.mesh))
        return fn(state, batch, frozen, rng)
