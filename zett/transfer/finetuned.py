"""Transfer a *fine-tuned* variant of the base model with the base's hypernetwork.

A hypernetwork is trained for one base model (its embedding fingerprint), but fine-tuned
variants of that base (instruction tuning, a domain) keep the base's tokenizer and mostly
its embedding geometry. As in the reference, the variant is transferred by

1. predicting the target embeddings **for the base** (the hypernet sees the base's
   embedding matrices, which it was trained on), and giving them to the fine-tuned model;
2. optionally, when a transferred base was further trained on the target tokenizer
   (n-shot, `--transferred-trained`), adding that training's update of the non-embedding
   weights as a task vector (Ilharco et al. 2023):

       W_new = W_ft + λ · (W_transferred_trained − W_base)     for every non-embedding W

   and taking the trained model's (already target-vocabulary) embeddings instead of the
   zero-shot prediction, since they are what the trained weights were fitted to.

Embedding leaves are recognised by shape: a leaf whose shape differs between the three
models (vocabulary rows) is an embedding and is replaced, not merged. A fine-tuned model
with another architecture (a tensor of another shape than the base's, other than the
embeddings) is refused with the tensor's name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Set as AbstractSet
from pathlib import Path

import jax
import numpy as np

from zett import assets
from zett.errors import ZettError
from zett.models.load import LoadedModel, get_embeddings, load_model
from zett.transfer.baselines import METHODS, NewEmbeddings, build_inputs
from zett.transfer.export import export_transferred
from zett.transfer.load import check_output, load_pair


def _path_name(path) -> str:
    return ".".join(str(getattr(k, "key", k)) for k in path)


def _embedding_ids(loaded: LoadedModel) -> set[int]:
    return {id(m) for m in get_embeddings(loaded, loaded.params) if m is not None}


def check_same_architecture(base: LoadedModel, other: LoadedModel, source: Path) -> None:
    """Refuse a model whose non-embedding tensors differ in shape from the base's."""
    if other.family != base.family or other.tied != base.tied:
        raise ZettError(
            f"{source}: a {other.family} model (tied={other.tied}) is not a variant of the "
            f"{base.family} base (tied={base.tied})"
        )
    skip = _embedding_ids(base) | _embedding_ids(other)
    flat_b = dict(jax.tree_util.tree_flatten_with_path(base.params)[0])
    for path, leaf in jax.tree_util.tree_flatten_with_path(other.params)[0]:
        ref = flat_b.get(path)
        if ref is None:
            raise ZettError(f"{source}: tensor {_path_name(path)} is not in the base model")
        if id(leaf) in skip or id(ref) in skip:
            continue
        if ref.shape != leaf.shape:
            raise ZettError(
                f"{source}: tensor {_path_name(path)} has shape {leaf.shape}, the base's "
                f"{ref.shape}; --finetuned must be a fine-tuned variant of --base"
            )


def task_vector_merge(
    ft: dict, base: dict, trained: dict, lam: float, skip: AbstractSet[int] = frozenset()
) -> dict:
    """ft + λ (trained − base), leaf by leaf (float32); leaves whose id is in `skip` or whose
    shapes disagree (embeddings, vocabulary-sized) keep the fine-tuned value."""

    def merge(f, b, t):
        if id(f) in skip or f.shape != b.shape or f.shape != t.shape:
            return f
        f32 = np.asarray(f, np.float32)
        return f32 + lam * (np.asarray(t, np.float32) - np.asarray(b, np.float32))

    return jax.tree_util.tree_map(merge, ft, base, trained)


def transfer_finetuned(
    hypernet_dir: str | Path,
    base: str | Path,
    finetuned: str | Path,
    target_tokenizer: str | Path,
    output: str | Path,
    overwrite: bool = False,
    *,
    lam: float = 1.0,
    transferred_trained: str | Path | None = None,
    block: int = 4096,
    new_row_prior: bool = True,
) -> Path:
    """Write `finetuned` with target-tokenizer embeddings (see the module docstring)."""
    output = check_output(output, overwrite)
    base_dir, loaded, base_tok, target_path, target_tok = load_pair(base, target_tokenizer)
    ft_dir = assets.resolve_model_dir(finetuned)
    ft = load_model(ft_dir)
    check_same_architecture(loaded, ft, ft_dir)
    opts = {"hypernet": str(hypernet_dir), "new_row_prior": new_row_prior}
    inputs = build_inputs(loaded, base_tok, target_tok, opts)
    params = ft.params
    provenance: dict = {"finetuned": str(ft_dir), "hypernet": str(hypernet_dir)}
    if transferred_trained is None:
        inputs.options["block"] = block
        new = METHODS["hypernet"](inputs)  # checks the hypernet against the *base*
    else:
        tt_dir = assets.resolve_model_dir(transferred_trained)
        tt = load_model(tt_dir)
        if tt.family != ft.family or tt.tied != ft.tied:
            raise ZettError(f"{tt_dir}: not a transferred variant of the base ({tt.family})")
        tt_in, tt_out, tt_bias = get_embeddings(tt, tt.params)
        inp = np.asarray(tt_in)[: inputs.n_target]
        out = None if tt_out is None else np.asarray(tt_out)[: inputs.n_target]
        bias = None if tt_bias is None else np.asarray(tt_bias)[: inputs.n_target]
        if inp.shape[0] < inputs.n_target:
            raise ZettError(f"{tt_dir}: fewer embedding rows than the target tokenizer has ids")
        new = NewEmbeddings(inp, out, bias)  # trained rows, specials included: kept as-is
        skip = _embedding_ids(ft)
        params = task_vector_merge(ft.params, loaded.params, tt.params, lam, skip)
        provenance.update({"transferred_trained": str(tt_dir), "lam": lam})
    merged = dataclasses.replace(ft, params=params)
    return export_transferred(
        ft_dir, merged, target_path, new, output, overwrite,
        method="hypernet-finetuned", provenance=provenance,
    )  # fmt: skip
