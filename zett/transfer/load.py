"""What every transfer command does first: refuse an existing output, then load the pair.

`check_output` runs before any heavy work, so a typo'd `--output` costs nothing; `load_pair`
resolves the base (`smollm2`, `minilm` or a HF dir) and the target tokenizer (a path, a dir or
a short name such as `llama2`), reading the target first so a bad one fails before the
weights load. `zett.transfer.run` (base-model transfer) and `zett.transfer.finetuned`
(a fine-tuned variant) both start here.
"""

from __future__ import annotations

from pathlib import Path

import tokenizers

from zett import assets
from zett.errors import ZettError
from zett.models.load import LoadedModel, load_model
from zett.tokenizers.surface import load_tokenizer


def check_output(output: str | Path, overwrite: bool) -> Path:
    """`output` as a Path; a `ZettError` if it exists and `overwrite` is not set."""
    output = Path(output)
    if output.exists() and not overwrite:
        raise ZettError(f"{output} already exists; pass --overwrite to replace it")
    return output


def load_pair(
    base: str | Path, target_tokenizer: str | Path
) -> tuple[Path, LoadedModel, tokenizers.Tokenizer, Path, tokenizers.Tokenizer]:
    """(base dir, LoadedModel, base tokenizer, target tokenizer path, target tokenizer)."""
    base_dir = assets.resolve_model_dir(base)
    target_path = assets.find_tokenizer(target_tokenizer)
    target_tok = load_tokenizer(target_path)  # fail on a bad target before loading weights
    if not (base_dir / "tokenizer.json").is_file():
        raise ZettError(f"{base_dir}: no tokenizer.json beside the base model")
    base_tok = load_tokenizer(base_dir / "tokenizer.json")
    loaded = load_model(base_dir)
    return base_dir, loaded, base_tok, target_path, target_tok
