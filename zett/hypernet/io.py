"""Save / load a trained hypernetwork as a small, framework-neutral directory.

    <dir>/hypernet.safetensors   flat tensors named `layer_0.attn.query.kernel`, …
    <dir>/hypernet.json          hypernet config, resolved dims, base-model fingerprint
                                 (`embedding_fingerprint`), and how it was trained (steps,
                                 tokens, hardware, time)

Both JAX (`load_hypernet`) and PyTorch (`zett.hypernet.torch_port`) read this format, so a
transfer needs neither orbax nor the training state. Weights may be stored in bfloat16
(the default export keeps the repo copy small); they are upcast to float32 on load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from zett.atomic import atomic_dir
from zett.config import HypernetConfig, apply_dict
from zett.errors import ZettError
from zett.hypernet.model import Hypernet, HypernetDims, init_hypernet, untrained_hypernet

WEIGHTS = "hypernet.safetensors"
META = "hypernet.json"
FORMAT_VERSION = 1


def embedding_fingerprint(matrix: Any) -> str:
    """Short, stable hash of a base embedding matrix [V, D] (shape + float32 values): the
    `base_fingerprint` a hypernet (and a training checkpoint) is stored with."""
    arr = np.asarray(jax.device_get(matrix), dtype=np.float32)
    h = hashlib.sha256(str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def unflatten(flat: dict[str, Any]) -> dict:
    tree: dict = {}
    for key, v in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return tree


def save_hypernet(
    directory: Path,
    params: dict,
    cfg: HypernetConfig,
    dims: HypernetDims,
    meta: dict,
    dtype: str = "bfloat16",
    overwrite: bool = False,
) -> Path:
    """Write params (+ config and `meta`, which must hold `base_fingerprint`) atomically."""
    import ml_dtypes
    from safetensors.numpy import save_file

    if "base_fingerprint" not in meta:
        raise ValueError("meta must contain base_fingerprint")
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float32
    flat = {k: np.asarray(v, dtype=np.float32).astype(np_dtype) for k, v in flatten(params).items()}
    info = {
        "format_version": FORMAT_VERSION,
        "hypernet": dataclasses.asdict(cfg),
        "dims": dataclasses.asdict(dims),
        "dtype": dtype,
        **meta,
    }
    with atomic_dir(Path(directory), overwrite=overwrite) as tmp:
        save_file(flat, str(tmp / WEIGHTS))
        (tmp / META).write_text(json.dumps(info, indent=2, sort_keys=True))
    return Path(directory)


def save_untrained(
    directory: Path,
    cfg: HypernetConfig,
    base_in: Any,
    base_out: Any | None,
    base_heads: int,
    base_model: str,
    *,
    fingerprint: str | None = None,
    perturb: float = 0.0,
    dtype: str = "float32",
    overwrite: bool = False,
) -> Path:
    """An untrained hypernet for a base, saved as `save_hypernet` writes a trained one:
    `untrained_hypernet` at seed 0, with `base_fingerprint` (of `base_in`, unless given)
    and `base_model` as its meta. Zero-initialized heads predict exactly FVT; `perturb` > 0
    replaces the input head's kernel by `perturb` × N(0, 1) (seed 1) so predictions differ
    from FVT (tests and smoke runs)."""
    module, params = untrained_hypernet(cfg, base_in, base_out, base_heads)
    if perturb:
        kernel = params["out_in"]["kernel"]
        params["out_in"]["kernel"] = perturb * jax.random.normal(
            jax.random.PRNGKey(1), kernel.shape
        )
    meta = {
        "base_fingerprint": fingerprint or embedding_fingerprint(base_in),
        "base_model": base_model,
    }
    return save_hypernet(directory, params, cfg, module.dims, meta, dtype, overwrite)


def read_hypernet(directory: Path) -> tuple[dict[str, np.ndarray], dict]:
    """(flat float32 tensors, meta) with one-line errors for a missing/broken directory."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    directory = Path(directory)
    if not (directory / META).is_file() or not (directory / WEIGHTS).is_file():
        raise ZettError(
            f"{directory}: not a hypernet directory (needs {META} and {WEIGHTS}); "
            "export one with `zett train` or use the default in hypernets/"
        )
    try:
        meta = json.loads((directory / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ZettError(f"{directory / META}: not valid JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise ZettError(f"{directory / META}: unknown format (expected version {FORMAT_VERSION})")
    try:
        flat = load_file(str(directory / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as e:
        raise ZettError(f"{directory / WEIGHTS}: unreadable weights ({e})") from e
    return {k: np.asarray(v, dtype=np.float32) for k, v in flat.items()}, meta


def load_hypernet(directory: Path) -> tuple[Hypernet, dict, dict]:
    """(module, params, meta) of a saved hypernet, ready for `module.apply`."""
    flat, meta = read_hypernet(directory)
    cfg = HypernetConfig()
    try:
        apply_dict(cfg, meta["hypernet"], "hypernet.", stored=True)  # older files: retired keys
        dims = HypernetDims(**meta["dims"])
    except (KeyError, TypeError, AttributeError) as e:  # AttributeError: a section not a dict
        raise ZettError(f"{Path(directory) / META}: missing or bad field ({e})") from e
    try:
        params = unflatten({k: jnp.asarray(v) for k, v in flat.items()})
    except (AttributeError, TypeError) as e:  # a tensor name nested under another tensor
        raise ZettError(f"{Path(directory) / WEIGHTS}: clashing tensor names ({e})") from e
    return Hypernet(cfg, dims), params, meta


def check_base(meta: dict, fingerprint: str, source: Path) -> None:
    """Refuse a hypernet trained for another base model (different embeddings)."""
    if meta.get("base_fingerprint") != fingerprint:
        raise ZettError(
            f"{source}: this hypernet was trained for base {meta.get('base_model', '?')!r} "
            f"(fingerprint {meta.get('base_fingerprint')}), not for the given base "
            f"(fingerprint {fingerprint}); use the hypernet trained for this model"
        )


def check_params(module: Hypernet, params: dict, base_in: Any, base_out: Any, source: Path) -> None:
    """Refuse weights whose names or shapes differ from what `module` builds for this base
    (a damaged or hand-edited file), before they reach `apply` as a shape traceback.

    `base_in` / `base_out`: the base's [V, D] embedding matrices the hypernet reads.
    """

    def shapes(tree: dict) -> dict[str, tuple]:
        return {k: tuple(v.shape) for k, v in flatten(tree).items()}

    try:
        expected = jax.eval_shape(
            lambda: init_hypernet(module, jax.random.PRNGKey(0), base_in, base_out)
        )
    except (TypeError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ZettError(f"{Path(source) / META}: settings do not build a hypernet ({first})") from e
    want, got = shapes(expected), shapes(params)
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or extra:
        raise ZettError(
            f"{Path(source) / WEIGHTS}: tensors do not match {META} (missing "
            f"{missing[:3]}, unexpected {extra[:3]}); re-export the hypernet"
        )
    bad = [k for k in want if want[k] != got[k]]
    if bad:
        k = bad[0]
        raise ZettError(
            f"{Path(source) / WEIGHTS}: tensor {k!r} has shape {got[k]}, expected {want[k]} "
            f"for this base; re-export the hypernet"
        )
