"""The tokenizer layer (pure Python/NumPy): surface forms, decomposition, special tokens,
training/conversion. See each module's docstring for the conventions."""

from zett.tokenizers.convert import save_tokenizer, train_tokenizer, unigramify
from zett.tokenizers.decompose import Decomposition, decompose, shared_tokens
from zett.tokenizers.special import map_special_tokens, special_roles
from zett.tokenizers.surface import (
    SurfaceForms,
    encode_surfaces,
    join_surfaces,
    load_tokenizer,
    normalized_text,
    surface_forms,
)

__all__ = [
    "Decomposition",
    "SurfaceForms",
    "decompose",
    "encode_surfaces",
    "join_surfaces",
    "load_tokenizer",
    "map_special_tokens",
    "normalized_text",
    "save_tokenizer",
    "shared_tokens",
    "special_roles",
    "surface_forms",
    "train_tokenizer",
    "unigramify",
]
