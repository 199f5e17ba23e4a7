"""Shared fixtures: real assets when present (skip with the reason when not)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from zett import assets  # noqa: E402


def _prepared(name: str) -> Path:
    path = assets.cache_dir() / name
    if not assets.is_prepared(path):
        pytest.skip(f"{name} not prepared: run `zett prepare {name}` (make test does)")
    return path


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    return _prepared("smollm2")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return _prepared("minilm")


@pytest.fixture(scope="session")
def shared_tokenizers() -> Path:
    path = assets.shared_tokenizers_dir()
    if path is not None:
        return path
    # a user's clone: the same four files, fetched by `zett prepare tokenizers`
    from zett.tokenizers.registry import is_current, prepared_root

    if all(is_current(n) for n in assets.SHARED_TOKENIZERS):
        return prepared_root()
    pytest.skip("../shared/tokenizers is absent and `zett prepare tokenizers` was not run")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    from zett.testing import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_corpus_dir(tmp_path_factory) -> Path:
    from zett.testing import make_tiny_corpus

    return make_tiny_corpus(tmp_path_factory.mktemp("tiny_corpus") / "corpus")
