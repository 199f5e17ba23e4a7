"""Write a base model with new embeddings + the target tokenizer as a plain HF directory.

The output loads with `AutoModelForCausalLM` / `AutoModel` + `AutoTokenizer` offline, with
no zett installed:

    model.safetensors        every tensor of the base, embeddings replaced (fp32); tied
                             models store the matrix once (no `lm_head.weight`)
    config.json              the base config with the new `vocab_size` (padded) and the
                             target's bos/eos/pad ids
    generation_config.json   the base's, with the target's special ids
    tokenizer.json           the target tokenizer, byte for byte
    tokenizer_config.json    the target's special tokens; the base's chat template when the
                             base has one (SmolLM2: chat_template.jinja)
    zett_transfer.json       provenance: method, base, target, date, base fingerprint

Rows are padded to a multiple of `pad_multiple` (64: tensor-core friendly) with the mean new
embedding, so the padded ids (never produced by the tokenizer) behave like an average token.
Everything is written into a temp sibling and renamed (`atomic_dir`).
"""

from __future__ import annotations

import copy
import datetime
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from zett.atomic import atomic_dir
from zett.errors import ZettError
from zett.hypernet.io import embedding_fingerprint
from zett.models.load import LoadedModel, get_embeddings, params_to_hf_state, set_embeddings
from zett.tokenizers.special import special_roles
from zett.tokenizers.surface import load_tokenizer
from zett.transfer.baselines import NewEmbeddings

PAD_MULTIPLE = 64  # vocab rows of an export are padded to a multiple of this

PROVENANCE = "zett_transfer.json"
TOKEN_ROLES = ("bos", "eos", "pad", "unk", "mask", "cls", "sep")


def pad_rows(matrix: np.ndarray, multiple: int) -> np.ndarray:
    """[V, ...] → [ceil(V / multiple) · multiple, ...], new rows = the mean row."""
    v = matrix.shape[0]
    target = -(-v // multiple) * multiple if multiple > 1 else v
    if target == v:
        return np.ascontiguousarray(matrix, dtype=np.float32)
    fill = np.broadcast_to(matrix.mean(0), (target - v, *matrix.shape[1:]))
    return np.concatenate([matrix, fill]).astype(np.float32)


def padded_embeddings(new: NewEmbeddings, multiple: int) -> NewEmbeddings:
    return NewEmbeddings(
        input=pad_rows(new.input, multiple),
        output=None if new.output is None else pad_rows(new.output, multiple),
        bias=None if new.bias is None else pad_rows(new.bias, multiple),
    )


def _tied_aliases(family: str, model_type: str, tied: bool) -> list[str]:
    """Tensor names a tied checkpoint does not store (transformers re-ties them on load)."""
    if not tied:
        return []
    if family == "bert":
        if model_type in ("roberta", "xlm-roberta"):
            return ["lm_head.decoder.weight"]
        return ["cls.predictions.decoder.weight"]
    return ["lm_head.weight"]


def model_state(loaded: LoadedModel, new: NewEmbeddings) -> tuple[dict[str, np.ndarray], Any]:
    """(HF tensor name → float32 array, config with the new vocab_size) for padded `new`."""
    params = set_embeddings(loaded.family, loaded.params, new.input, new.output, new.bias)
    cfg = copy.deepcopy(loaded.hf_config)
    cfg.vocab_size = int(new.input.shape[0])
    state = params_to_hf_state(loaded.family, cfg, params)
    for key in _tied_aliases(loaded.family, cfg.model_type, loaded.tied):
        state.pop(key, None)
    state = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}
    return state, cfg


def target_special_ids(tok) -> dict[str, int]:
    """Role → id of the target tokenizer (tokenizer_config.json first, then conventions)."""
    return special_roles(tok)


def _config_json(cfg: Any, family: str, roles: dict[str, int], n_rows: int) -> dict:
    d = cfg.to_dict()
    d["vocab_size"] = n_rows
    for key in ("_name_or_path", "_model_name_or_path", "quantization_config", "dtype"):
        d.pop(key, None)
    d["torch_dtype"] = "float32"
    d["bos_token_id"] = roles.get("bos", roles.get("cls"))
    d["eos_token_id"] = roles.get("eos", roles.get("sep"))
    if "pad" in roles:
        d["pad_token_id"] = roles["pad"]
    elif family != "bert":  # decoders: pad with eos (generate wants one); BERT keeps its own
        d["pad_token_id"] = d["eos_token_id"]
    if "unk_token_id" in d:
        d["unk_token_id"] = roles.get("unk")
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if d.get(key) is None and key != "pad_token_id":
            d.pop(key, None)
    return d


def _generation_config(base_dir: Path, config: dict) -> dict:
    file = base_dir / "generation_config.json"
    gen = json.loads(file.read_text()) if file.is_file() else {"_from_model_config": True}
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if config.get(key) is not None:
            gen[key] = config[key]
        else:
            gen.pop(key, None)
    return gen


def _base_chat_template(base_dir: Path) -> str | None:
    jinja = base_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    cfg = base_dir / "tokenizer_config.json"
    if cfg.is_file():
        template = json.loads(cfg.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(template, str):
            return template
    return None


def tokenizer_config(tok, roles: dict[str, int], chat_template: str | None) -> dict:
    """tokenizer_config.json for the target: its own settings minus slow-tokenizer keys,
    class `PreTrainedTokenizerFast` (tokenizer.json is used exactly as written), and the
    contents of its special tokens by role."""
    cfg = dict(getattr(tok, "zett_config", None) or {})
    for key in ("sp_model_kwargs", "legacy", "added_tokens_decoder", "auto_map", "chat_template"):
        cfg.pop(key, None)
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg.setdefault("clean_up_tokenization_spaces", False)
    for role in TOKEN_ROLES:
        cfg.pop(f"{role}_token", None)
        if role in roles:
            cfg[f"{role}_token"] = tok.id_to_token(roles[role])
    if "pad" not in roles:
        # Batching needs a pad token; padded positions are masked, so eos (or unk) is safe
        # and matches config.json's pad_token_id for decoders.
        fallback = roles.get("eos", roles.get("unk"))
        if fallback is not None:
            cfg["pad_token"] = tok.id_to_token(fallback)
    if chat_template is not None:
        cfg["chat_template"] = chat_template
    return cfg


def export_transferred(
    base_dir: str | Path,
    loaded: LoadedModel,
    target_tokenizer_path: str | Path,
    new: NewEmbeddings,
    out_dir: str | Path,
    overwrite: bool = False,
    *,
    method: str = "unknown",
    provenance: dict | None = None,
    pad_multiple: int = PAD_MULTIPLE,
) -> Path:
    """Write `loaded` with embeddings `new` ([V_t, D]) and the target tokenizer to `out_dir`.

    Refuses an existing `out_dir` unless `overwrite` (the old one stays untouched until the
    new one is complete). Returns `out_dir`.
    """
    from safetensors.numpy import save_file

    base_dir, out_dir = Path(base_dir), Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ZettError(f"{out_dir} already exists; pass --overwrite to replace it")
    tok = load_tokenizer(target_tokenizer_path)
    tok_file = Path(tok.zett_source)  # type: ignore[attr-defined]  # set by load_tokenizer
    n_target = tok.get_vocab_size(with_added_tokens=True)
    if new.input.shape[0] < n_target:
        raise ValueError(f"{new.input.shape[0]} embedding rows < {n_target} target ids")
    roles = target_special_ids(tok)
    padded = padded_embeddings(new, pad_multiple)
    state, cfg = model_state(loaded, padded)
    config = _config_json(cfg, loaded.family, roles, padded.input.shape[0])
    template = _base_chat_template(base_dir)
    info = {
        "method": method,
        "base": str(base_dir),
        "target_tokenizer": str(tok_file),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "base_fingerprint": embedding_fingerprint(get_embeddings(loaded, loaded.params)[0]),
        "target_vocab_size": int(new.input.shape[0]),
        "padded_vocab_size": int(padded.input.shape[0]),
        "special_tokens": {r: int(i) for r, i in roles.items()},
        "chat_template_from_base": template is not None,
        **(provenance or {}),
    }
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        gen = _generation_config(base_dir, config)
        (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2, sort_keys=True))
        shutil.copyfile(tok_file, tmp / "tokenizer.json")
        tcfg = tokenizer_config(tok, roles, None)  # the template goes in its .jinja file
        (tmp / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2, ensure_ascii=False))
        if template is not None:
            (tmp / "chat_template.jinja").write_text(template, encoding="utf-8")
        (tmp / PROVENANCE).write_text(json.dumps(info, indent=2, sort_keys=True))
    return out_dir
