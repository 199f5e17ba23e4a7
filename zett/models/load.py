"""Hugging Face checkpoints ⇄ our Linen parameter trees.

One table per family lists, for every tensor of transformers' PyTorch checkpoint, where it lives
in our tree and how it is laid out (`nn.Linear` weights `[out, in]` are transposed to Flax
kernels `[in, out]`; GPT-2's `Conv1D` weights already are `[in, out]`; GPT-2's fused `c_attn`
is split into q/k/v). The same table drives both directions, so import and export cannot drift.
Every converted tensor is checked against the shapes `jax.eval_shape(module.init)` expects, so a
wrong config or a truncated checkpoint fails with the tensor's name and file, not deep in XLA.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zett.errors import ZettError
from zett.models.bert import Bert, BertConfig
from zett.models.gpt2 import GPT2, GPT2Config
from zett.models.llama import Llama, LlamaConfig

FAMILIES = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "qwen3": "llama",
    "gpt2": "gpt2",
    "bert": "bert",
    "roberta": "bert",
    "xlm-roberta": "bert",
}
ROBERTA_TYPES = ("roberta", "xlm-roberta")

# How one HF tensor maps to one of our leaves: "copy", "linear" (transpose) or "split:i/n"
# (the i-th of n equal slices of the last axis, for GPT-2's fused c_attn).
Entry = tuple[str, tuple[str, ...], str]


@dataclasses.dataclass
class LoadedModel:
    """A base LM ready to `module.apply({"params": params}, ...)`."""

    family: str  # "llama" | "gpt2" | "bert"
    module: nn.Module
    params: dict
    hf_config: Any  # transformers.PretrainedConfig
    is_decoder: bool
    has_lm_head: bool
    tied: bool


def _as_hf_config(hf_config: Any) -> Any:
    if isinstance(hf_config, Mapping):
        from transformers import AutoConfig

        d = dict(hf_config)
        if "model_type" not in d:
            raise ZettError("config.json: no `model_type`; is this a transformers model config?")
        return AutoConfig.for_model(d.pop("model_type"), **d)
    return hf_config


def family_of(hf_config: Any) -> str:
    """ "llama" | "gpt2" | "bert" for a transformers config, or ZettError naming the model_type."""
    model_type = getattr(_as_hf_config(hf_config), "model_type", None)
    if model_type not in FAMILIES:
        raise ZettError(
            f"config.json: model_type {model_type!r} is unsupported; "
            f"zett supports {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[model_type]


def _rope(cfg: Any) -> dict:
    """transformers 5 `rope_parameters`, or older `rope_theta` + `rope_scaling`, as one dict."""
    params = dict(getattr(cfg, "rope_parameters", None) or {})
    if not params:
        params = dict(getattr(cfg, "rope_scaling", None) or {})
        params.setdefault("rope_theta", getattr(cfg, "rope_theta", 10000.0))
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type not in ("default", "llama3", "linear"):
        raise ZettError(
            f"config.json: rope_type {rope_type!r} is unsupported; use default, linear or llama3"
        )
    params["rope_type"] = rope_type
    return params


def _llama_config(cfg: Any) -> LlamaConfig:
    model_type = cfg.model_type
    layer_types = getattr(cfg, "layer_types", None) or []
    if model_type in ("qwen2", "qwen3") and "sliding_attention" in layer_types:
        raise ZettError(f"config.json: {model_type} with use_sliding_window is unsupported")
    rope = _rope(cfg)
    attention_bias = bool(getattr(cfg, "attention_bias", False))
    heads = cfg.num_attention_heads
    return LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_layers=cfg.num_hidden_layers,
        num_heads=heads,
        num_kv_heads=getattr(cfg, "num_key_value_heads", None) or heads,
        head_dim=getattr(cfg, "head_dim", None) or cfg.hidden_size // heads,
        rms_norm_eps=float(cfg.rms_norm_eps),
        hidden_act=cfg.hidden_act,
        rope_theta=float(rope.get("rope_theta", 10000.0)),
        rope_type=rope["rope_type"],
        rope_factor=float(rope.get("factor", 1.0)),
        rope_low_freq_factor=float(rope.get("low_freq_factor", 1.0)),
        rope_high_freq_factor=float(rope.get("high_freq_factor", 4.0)),
        rope_original_max_position=int(rope.get("original_max_position_embeddings", 8192)),
        qkv_bias=attention_bias or model_type == "qwen2",
        o_bias=attention_bias,
        mlp_bias=bool(getattr(cfg, "mlp_bias", False)),
        qk_norm=model_type == "qwen3",
        sliding_window=getattr(cfg, "sliding_window", None) if model_type == "mistral" else None,
        tie_word_embeddings=bool(getattr(cfg, "tie_word_embeddings", False)),
    )


def _gpt2_config(cfg: Any) -> GPT2Config:
    if getattr(cfg, "scale_attn_by_inverse_layer_idx", False):
        raise ZettError("config.json: scale_attn_by_inverse_layer_idx=true is unsupported")
    return GPT2Config(
        vocab_size=cfg.vocab_size,
        n_positions=cfg.n_positions,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_inner=cfg.n_inner or 4 * cfg.n_embd,
        activation_function=cfg.activation_function,
        layer_norm_epsilon=float(cfg.layer_norm_epsilon),
        scale_attn_weights=bool(cfg.scale_attn_weights),
        tie_word_embeddings=bool(getattr(cfg, "tie_word_embeddings", True)),
    )


def _bert_config(cfg: Any, has_lm_head: bool | None, has_pooler: bool | None) -> BertConfig:
    if getattr(cfg, "position_embedding_type", "absolute") not in (None, "absolute"):
        raise ZettError(
            f"config.json: position_embedding_type {cfg.position_embedding_type!r} is unsupported"
        )
    archs = " ".join(getattr(cfg, "architectures", None) or [])
    if has_lm_head is None:  # bare `BertModel`-style architectures have no head
        has_lm_head = not archs or "MaskedLM" in archs or "PreTraining" in archs
    if has_pooler is None:
        has_pooler = not has_lm_head
    roberta = cfg.model_type in ROBERTA_TYPES
    return BertConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_hidden_layers,
        num_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        type_vocab_size=cfg.type_vocab_size,
        hidden_act=cfg.hidden_act,
        layer_norm_eps=float(cfg.layer_norm_eps),
        pad_token_id=cfg.pad_token_id if cfg.pad_token_id is not None else 0,
        roberta_positions=roberta,
        has_lm_head=has_lm_head,
        head_act="gelu" if roberta else cfg.hidden_act,
        tie_word_embeddings=bool(getattr(cfg, "tie_word_embeddings", True)),
        has_pooler=has_pooler,
    )


def config_from_hf(
    hf_config: Any,
    *,
    dtype: Any = jnp.float32,
    remat: bool = False,
    has_lm_head: bool | None = None,
    has_pooler: bool | None = None,
) -> nn.Module:
    """The Linen module for a transformers config (object or config.json dict).

    `has_lm_head` / `has_pooler` matter only for BERT-family encoders; None infers them from
    `architectures` (`*ForMaskedLM` → head, bare `BertModel` → pooler and no head).
    """
    cfg = _as_hf_config(hf_config)
    family = family_of(cfg)
    dtype = jnp.dtype(dtype)
    if family == "llama":
        return Llama(_llama_config(cfg), dtype=dtype, remat=remat)
    if family == "gpt2":
        return GPT2(_gpt2_config(cfg), dtype=dtype, remat=remat)
    return Bert(_bert_config(cfg, has_lm_head, has_pooler), dtype=dtype, remat=remat)


def _linear(hf: str, ours: tuple[str, ...], bias: bool) -> list[Entry]:
    out = [(f"{hf}.weight", (*ours, "kernel"), "linear")]
    return out + [(f"{hf}.bias", (*ours, "bias"), "copy")] if bias else out


def _norm(hf: str, ours: tuple[str, ...], bias: bool = True, names=("weight", "bias")):
    out = [(f"{hf}.{names[0]}", (*ours, "scale"), "copy")]
    return out + [(f"{hf}.{names[1]}", (*ours, "bias"), "copy")] if bias else out


def _llama_entries(c: LlamaConfig) -> list[Entry]:
    e: list[Entry] = [("model.embed_tokens.weight", ("embed_tokens", "embedding"), "copy")]
    for i in range(c.num_layers):
        hf, us = f"model.layers.{i}", f"layers_{i}"
        for p in ("q", "k", "v"):
            e += _linear(f"{hf}.self_attn.{p}_proj", (us, "self_attn", f"{p}_proj"), c.qkv_bias)
        e += _linear(f"{hf}.self_attn.o_proj", (us, "self_attn", "o_proj"), c.o_bias)
        if c.qk_norm:
            e += _norm(f"{hf}.self_attn.q_norm", (us, "self_attn", "q_norm"), bias=False)
            e += _norm(f"{hf}.self_attn.k_norm", (us, "self_attn", "k_norm"), bias=False)
        for p in ("gate", "up", "down"):
            e += _linear(f"{hf}.mlp.{p}_proj", (us, "mlp", f"{p}_proj"), c.mlp_bias)
        e += _norm(f"{hf}.input_layernorm", (us, "input_norm"), bias=False)
        e += _norm(f"{hf}.post_attention_layernorm", (us, "post_attn_norm"), bias=False)
    e += _norm("model.norm", ("norm",), bias=False)
    if not c.tie_word_embeddings:
        e.append(("lm_head.weight", ("lm_head", "embedding"), "copy"))
    return e


def _gpt2_entries(c: GPT2Config) -> list[Entry]:
    t = "transformer"
    e: list[Entry] = [
        (f"{t}.wte.weight", ("wte", "embedding"), "copy"),
        (f"{t}.wpe.weight", ("wpe", "embedding"), "copy"),
    ]
    for i in range(c.n_layer):
        hf, us = f"{t}.h.{i}", f"layers_{i}"
        for j, p in enumerate(("q_proj", "k_proj", "v_proj")):
            e.append((f"{hf}.attn.c_attn.weight", (us, p, "kernel"), f"split:{j}/3"))
            e.append((f"{hf}.attn.c_attn.bias", (us, p, "bias"), f"split:{j}/3"))
        for hf_name, ours in (("attn.c_proj", "c_proj"), ("mlp.c_fc", "c_fc"), ("mlp.c_proj", "mlp_proj")):  # fmt: skip
            e.append((f"{hf}.{hf_name}.weight", (us, ours, "kernel"), "copy"))
            e.append((f"{hf}.{hf_name}.bias", (us, ours, "bias"), "copy"))
        e += _norm(f"{hf}.ln_1", (us, "ln_1")) + _norm(f"{hf}.ln_2", (us, "ln_2"))
    e += _norm(f"{t}.ln_f", ("ln_f",))
    if not c.tie_word_embeddings:
        e.append(("lm_head.weight", ("lm_head", "embedding"), "copy"))
    return e


def _bert_entries(c: BertConfig, prefix: str, roberta: bool) -> list[Entry]:
    emb = f"{prefix}embeddings"
    e: list[Entry] = [
        (f"{emb}.{n}.weight", (n, "embedding"), "copy")
        for n in ("word_embeddings", "position_embeddings", "token_type_embeddings")
    ]
    e += _norm(f"{emb}.LayerNorm", ("embeddings_norm",))
    for i in range(c.num_layers):
        hf, us = f"{prefix}encoder.layer.{i}", f"layers_{i}"
        for p in ("query", "key", "value"):
            e += _linear(f"{hf}.attention.self.{p}", (us, p), True)
        e += _linear(f"{hf}.attention.output.dense", (us, "attn_out"), True)
        e += _norm(f"{hf}.attention.output.LayerNorm", (us, "attn_norm"))
        e += _linear(f"{hf}.intermediate.dense", (us, "intermediate"), True)
        e += _linear(f"{hf}.output.dense", (us, "output"), True)
        e += _norm(f"{hf}.output.LayerNorm", (us, "output_norm"))
    if c.has_pooler:
        e += _linear(f"{prefix}pooler.dense", ("pooler",), True)
    if c.has_lm_head:
        if roberta:
            head, transform, ln = "lm_head", "lm_head.dense", "lm_head.layer_norm"
        else:
            head, transform, ln = "cls.predictions", "cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm"  # fmt: skip
        e += _linear(transform, ("mlm_head", "dense"), True)
        e += _norm(ln, ("mlm_head", "layer_norm"))
        # transformers 5 uses decoder.bias (== `{head}.bias` only when tied); old files lack it
        e.append((f"{head}.decoder.bias", ("mlm_head", "bias"), "copy"))
        if not c.tie_word_embeddings:
            e.append((f"{head}.decoder.weight", ("mlm_head", "decoder", "embedding"), "copy"))
    return e


def _bert_prefix(model_type: str, has_lm_head: bool) -> str:
    if not has_lm_head:
        return ""
    return "roberta." if model_type in ROBERTA_TYPES else "bert."


def _entries(module: nn.Module, model_type: str) -> list[Entry]:
    cfg = module.config
    if isinstance(cfg, LlamaConfig):
        return _llama_entries(cfg)
    if isinstance(cfg, GPT2Config):
        return _gpt2_entries(cfg)
    prefix = _bert_prefix(model_type, cfg.has_lm_head)
    return _bert_entries(cfg, prefix, model_type in ROBERTA_TYPES)


def abstract_params(module: nn.Module) -> dict:
    """Shapes/dtypes (float32) of the module's parameter tree, without allocating it."""
    ids = jnp.zeros((1, 1), jnp.int32)
    variables = jax.eval_shape(module.init, jax.random.key(0), ids)
    return nn.meta.unbox(variables)["params"]


def _get(tree: Mapping, path: tuple[str, ...]):
    for k in path:
        tree = tree[k]
    return tree


def _set(tree: dict, path: tuple[str, ...], value) -> None:
    for k in path[:-1]:
        tree = tree.setdefault(k, {})
    tree[path[-1]] = value


def _normalize_keys(family: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """Accept the common alternative spellings: GPT-2 hub files lack the `transformer.` prefix."""
    if family == "gpt2" and "transformer.wte.weight" not in state and "wte.weight" in state:
        return {
            (k if k.startswith("lm_head.") else f"transformer.{k}"): v for k, v in state.items()
        }
    state = dict(state)
    for head in ("cls.predictions", "lm_head"):
        if f"{head}.bias" in state and f"{head}.decoder.bias" not in state:
            state[f"{head}.decoder.bias"] = state[f"{head}.bias"]
    return state


def _infer_bert_parts(state: Mapping[str, Any]) -> tuple[bool, bool]:
    has_head = "cls.predictions.bias" in state or "lm_head.bias" in state
    has_pooler = any(k.endswith("pooler.dense.weight") for k in state)
    return has_head, has_pooler


def params_from_hf_state(
    family: str,
    hf_config: Any,
    state: Mapping[str, Any],
    *,
    source: str | Mapping[str, str] = "state dict",
    module: nn.Module | None = None,
) -> dict:
    """Our parameter tree (numpy leaves) from transformers' PyTorch tensor names → arrays.

    `source` names where tensors came from (a file, or tensor name → file with "*" for tensors
    not found) for error messages.
    `module` defaults to `config_from_hf` (for BERT, head/pooler inferred from the tensors).
    """
    cfg = _as_hf_config(hf_config)
    state = _normalize_keys(family, state)
    if module is None:
        head, pooler = _infer_bert_parts(state) if family == "bert" else (None, None)
        module = config_from_hf(cfg, has_lm_head=head, has_pooler=pooler)
    expected = abstract_params(module)

    def where(key: str) -> str:
        if isinstance(source, Mapping):
            return source.get(key, source.get("*", "checkpoint"))
        return source

    params: dict = {}
    for hf_key, path, kind in _entries(module, cfg.model_type):
        if hf_key not in state:
            raise ZettError(f"{where(hf_key)}: tensor {hf_key!r} is missing; is this a "
                            f"complete {cfg.model_type} checkpoint matching config.json?")  # fmt: skip
        value = np.asarray(state[hf_key])
        if kind == "linear":
            value = value.T
        elif kind.startswith("split:"):
            i, n = (int(x) for x in kind[6:].split("/"))
            if value.shape[-1] % n:
                raise ZettError(f"{where(hf_key)}: tensor {hf_key!r} has shape {value.shape}, "
                                f"last axis not divisible by {n}")  # fmt: skip
            value = np.split(value, n, axis=-1)[i]
        want = _get(expected, path).shape
        if value.shape != want:
            raise ZettError(f"{where(hf_key)}: tensor {hf_key!r} has shape "
                            f"{tuple(np.asarray(state[hf_key]).shape)}, but config.json implies "
                            f"{want} (after layout conversion); config and weights disagree")  # fmt: skip
        _set(params, path, value)
    return params


def params_to_hf_state(
    family: str, hf_config: Any, params: Mapping, *, include_tied: bool = True
) -> dict[str, np.ndarray]:
    """transformers' PyTorch tensor names → numpy arrays, from our parameter tree.

    With `include_tied`, tied output matrices are written too (`lm_head.weight` = input
    embeddings), as `model.state_dict()` has them, so `load_state_dict(strict=True)` accepts
    the result. The vocabulary size is read from the params, not the config.
    """
    cfg = _as_hf_config(hf_config)
    params = nn.meta.unbox(params)
    module = _module_for_params(family, cfg, params)
    state: dict[str, np.ndarray] = {}
    splits: dict[str, list] = {}
    for hf_key, path, kind in _entries(module, cfg.model_type):
        value = np.asarray(jax.device_get(_get(params, path)))
        if kind == "linear":
            state[hf_key] = np.ascontiguousarray(value.T)
        elif kind.startswith("split:"):
            splits.setdefault(hf_key, []).append(value)
        else:
            state[hf_key] = value
    for hf_key, parts in splits.items():
        state[hf_key] = np.concatenate(parts, axis=-1)
    if include_tied:
        _add_tied(module, cfg.model_type, state)
    return state


def _module_for_params(family: str, cfg: Any, params: Mapping) -> nn.Module:
    if family == "bert":
        module = config_from_hf(
            cfg, has_lm_head="mlm_head" in params, has_pooler="pooler" in params
        )
    else:
        module = config_from_hf(cfg)
    if family_of(cfg) != family:
        raise ZettError(f"config.json: model_type {cfg.model_type!r} is not a {family} model")
    return module


def _add_tied(module: nn.Module, model_type: str, state: dict) -> None:
    """Add the tensors a torch `state_dict()` has but our tree stores once."""
    c = module.config
    if isinstance(c, BertConfig) and c.has_lm_head:
        head = "lm_head" if model_type in ROBERTA_TYPES else "cls.predictions"
        state[f"{head}.bias"] = state[f"{head}.decoder.bias"]
        if c.tie_word_embeddings:
            prefix = _bert_prefix(model_type, True)
            state[f"{head}.decoder.weight"] = state[f"{prefix}embeddings.word_embeddings.weight"]
    elif isinstance(c, LlamaConfig) and c.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    elif isinstance(c, GPT2Config) and c.tie_word_embeddings:
        state["lm_head.weight"] = state["transformer.wte.weight"]


_EMBEDDING_PATHS = {
    # family: (input path, untied output path, output bias path)
    "llama": (("embed_tokens", "embedding"), ("lm_head", "embedding"), None),
    "gpt2": (("wte", "embedding"), ("lm_head", "embedding"), None),
    "bert": (
        ("word_embeddings", "embedding"),
        ("mlm_head", "decoder", "embedding"),
        ("mlm_head", "bias"),
    ),
}


def get_embeddings(loaded_or_family: LoadedModel | str, params: Mapping):
    """(input_emb `[V, D]`, output_emb `[V, D]` or None when tied, output_bias `[V]` or None)."""
    family = loaded_or_family if isinstance(loaded_or_family, str) else loaded_or_family.family
    inp, out, bias = _EMBEDDING_PATHS[family]
    params = nn.meta.unbox(params)

    def maybe(path):
        try:
            return _get(params, path) if path else None
        except KeyError:
            return None

    return _get(params, inp), maybe(out), maybe(bias)


def set_embeddings(family: str, params: Mapping, input_emb, output_emb=None, output_bias=None):
    """A new parameter tree with the embedding matrices replaced (vocabulary size may change).

    `output_emb` must be given exactly when the model is untied; `output_bias` exactly when it
    has one (BERT MLM head). When the vocabulary size changes, apply the tree with a module
    whose config has the new `vocab_size` (`with_vocab_size`), since Linen checks shapes.
    """
    inp, out, bias = _EMBEDDING_PATHS[family]
    new = jax.tree_util.tree_map(lambda x: x, nn.meta.unbox(dict(params)))
    _, old_out, old_bias = get_embeddings(family, new)
    if (old_out is None) != (output_emb is None):
        raise ValueError("output_emb must be given iff the model has an untied output matrix")
    if (old_bias is None) != (output_bias is None):
        raise ValueError("output_bias must be given iff the model has an output bias")
    _set(new, inp, input_emb)
    if output_emb is not None:
        _set(new, out, output_emb)
    if output_bias is not None and bias is not None:  # a bias exists iff its path does
        _set(new, bias, output_bias)
    return new


def with_vocab_size(module: nn.Module, vocab_size: int) -> nn.Module:
    """The same module for a vocabulary of `vocab_size` tokens (after `set_embeddings`)."""
    return module.clone(config=dataclasses.replace(module.config, vocab_size=vocab_size))


def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All tensors of a HF directory (single file or sharded index) and tensor → file name."""
    from safetensors import SafetensorError, safe_open

    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as e:
            raise ZettError(f"{index}: unreadable index ({e}); re-download the checkpoint") from e
        files = sorted(set(weight_map.values()))
    elif (path / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise ZettError(f"{path}: no model.safetensors(.index.json); give a HF safetensors dir")
    state: dict[str, np.ndarray] = {}
    source = {"*": str(index if index.is_file() else path / files[0])}
    for name in files:
        file = path / name
        if not file.is_file():
            raise ZettError(f"{file}: shard listed in {index.name} is missing")
        try:
            with safe_open(str(file), framework="flax") as f:  # flax: bf16 survives
                for key in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                    state[key] = np.asarray(f.get_tensor(key))
                    source[key] = str(file)
        except (SafetensorError, OSError, ValueError, TypeError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ZettError(f"{file}: unreadable safetensors ({first}); re-create the file") from e
    return state, source


def load_model(path: str | Path, dtype: Any = "float32", remat: bool = False) -> LoadedModel:
    """Read config.json + safetensors from a HF directory into our module and params.

    Parameters are cast to `dtype`, which is also the module's compute dtype.
    """
    from transformers import AutoConfig

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ZettError(f"{path}: no config.json; give a Hugging Face model directory")
    from huggingface_hub.errors import StrictDataclassError  # transformers 5 field checks

    try:
        hf_config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (ValueError, KeyError, OSError, TypeError, AttributeError, StrictDataclassError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ZettError(f"{path / 'config.json'}: transformers cannot read it ({first})") from e
    family = family_of(hf_config)
    state, source = _read_safetensors(path)
    state, source = _normalize_keys(family, state), _normalize_keys(family, source)
    head, pooler = _infer_bert_parts(state) if family == "bert" else (None, None)
    try:
        module = config_from_hf(
            hf_config, dtype=dtype, remat=remat, has_lm_head=head, has_pooler=pooler
        )
    except (TypeError, ValueError, AttributeError) as e:  # a field of the wrong type
        raise ZettError(f"{path / 'config.json'}: a field has a bad value ({e})") from e
    params = params_from_hf_state(family, hf_config, state, source=source, module=module)
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype=jnp.dtype(dtype)), params)
    return LoadedModel(
        family=family,
        module=module,
        params=params,
        hf_config=hf_config,
        is_decoder=family != "bert",
        has_lm_head=family != "bert" or module.config.has_lm_head,
        tied=bool(module.config.tie_word_embeddings),
    )
