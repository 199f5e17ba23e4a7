"""Guards users hit: a hypernet for another base, special tokens the base lacks, a tokenizer
with more ids than embedding rows (and padded rows beyond the vocabulary), and a loss that
turns NaN/inf (stops with the step number, exit 2, last good checkpoint still loadable)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from tests.reliability import helpers as h


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> h.TinyAssets:
    return h.shared_assets(tmp_path_factory)


def _transfer(method: str, base: Path, target: Path, out: Path, **options):
    from zett.transfer.run import run_method

    return run_method(method, base, target, out, options={"progress": False, **options})


def _with_added_tokens(src: Path, dst: Path, tokens: list[str]) -> Path:
    """A copy of tokenizer dir `src` with extra special tokens (new ids past the vocab)."""
    from tokenizers import AddedToken, Tokenizer

    dst.mkdir(parents=True)
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    tok.add_special_tokens([AddedToken(t, special=True) for t in tokens])
    tok.save(str(dst / "tokenizer.json"))
    return dst


def test_hypernet_for_another_base_is_refused(assets, tmp_path):
    from zett.errors import ZettError
    from zett.testing import make_tiny_llama

    other = make_tiny_llama(tmp_path / "other", seed=1)
    res = h.guarded(
        lambda: _transfer(
            "hypernet", other, assets.tokenizer, tmp_path / "out", hypernet=str(assets.hypernet)
        ),
        "guard",
        "hypernet for another base",
    )
    assert res.outcome == "ok" and res.refused, res.detail
    assert "trained for base" in res.detail and not (tmp_path / "out").exists()
    with pytest.raises(ZettError, match="trained for base"):  # the same base passes the guard
        _transfer(
            "hypernet", other, assets.tokenizer, tmp_path / "o2", hypernet=str(assets.hypernet)
        )


@pytest.mark.parametrize("method", ["fvt", "hypernet"])
def test_target_special_tokens_the_base_lacks(assets, tmp_path, method):
    """ChatML/BERT-style specials unknown to the base: the export still loads and runs."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _with_added_tokens(
        assets.llama, tmp_path / "target", ["<|im_start|>", "<|im_end|>", "[MASK]", "<pad>"]
    )
    out = tmp_path / "out"
    res = h.guarded(
        lambda: _transfer(method, assets.llama, target, out, hypernet=str(assets.hypernet)),
        "guard",
        "specials the base lacks",
    )
    assert res.outcome == "ok" and not res.refused, res.detail
    model = AutoModelForCausalLM.from_pretrained(str(out))
    tok = AutoTokenizer.from_pretrained(str(out))
    ids = tok("<|im_start|>hello<|im_end|>", return_tensors="pt").input_ids
    assert int(ids.max()) < model.get_input_embeddings().weight.shape[0]
    with torch.no_grad():
        logits = model(ids).logits
    assert torch.isfinite(logits).all()


@pytest.fixture(scope="module")
def odd_bases(assets, tmp_path_factory) -> dict[str, Path]:
    """`more_ids`: tokenizer has 3 ids past the embedding rows; `padded`: 576 rows for 512
    tokens (as real checkpoints pad to a multiple of 64)."""
    from transformers import LlamaForCausalLM

    root = tmp_path_factory.mktemp("odd")
    more = root / "more_ids"
    shutil.copytree(assets.llama, more)
    (more / "tokenizer.json").unlink()
    tmp = _with_added_tokens(assets.llama, root / "tok", ["<x1>", "<x2>", "<x3>"])
    shutil.copy(tmp / "tokenizer.json", more / "tokenizer.json")
    padded = root / "padded"
    model = LlamaForCausalLM.from_pretrained(str(assets.llama))
    model.resize_token_embeddings(576)
    model.save_pretrained(str(padded))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(assets.llama / f, padded / f)
    return {"more_ids": more, "padded": padded}


@pytest.mark.parametrize("kind", ["more_ids", "padded"])
def test_vocab_and_matrix_sizes_differ_in_transfer(assets, odd_bases, tmp_path, kind):
    res = h.guarded(
        lambda: _transfer("fvt", odd_bases[kind], assets.tokenizer, tmp_path / "out"),
        "guard",
        f"vocab/matrix size ({kind})",
    )
    assert res.outcome == "ok", res.detail
    if not res.refused:
        assert h.hf_dir_loads(tmp_path / "out")
    else:
        assert str(odd_bases[kind]) in res.detail


@pytest.mark.parametrize("kind", ["more_ids", "padded"])
def test_vocab_and_matrix_sizes_differ_in_training(assets, odd_bases, tmp_path, kind):
    from zett.config import load_config
    from zett.train.loop import Trainer

    args = h.train_args(assets, tmp_path / "run", 2, 0, "--model.base", str(odd_bases[kind]))
    cfg = load_config(h.CONFIGS / "tiny.yaml", args[3:])
    res = h.guarded(
        lambda: Trainer(cfg, progress=False).run(), "guard", f"vocab/matrix size ({kind})", 120
    )
    assert res.outcome == "ok", res.detail
    if not res.refused:
        assert h.hypernet_loads(tmp_path / "run" / "hypernet")


def test_nan_loss_stops_with_step_and_keeps_good_checkpoint(assets, tmp_path):
    """`--train.lr 1e30` blows the weights up: exit 2, the message has the step number, and
    the latest checkpoint restores with finite parameters."""
    from zett.config import load_config
    from zett.train.loop import Trainer

    run = tmp_path / "run"
    args = h.train_args(assets, run, 8, 1, "--train.lr", "1e30", "--train.warmup_steps", "1")
    res = h.run_cli(args, timeout=300)
    outcome = h.cli_outcome(res, "step", "guard", "NaN/inf loss")
    assert outcome == "ok", (res.returncode, res.stderr[-2000:])
    assert "loss became" in res.stderr
    cfg = load_config(h.CONFIGS / "tiny.yaml", args[3:])
    trainer = Trainer(cfg, resume=True, progress=False)
    leaves = jax.tree.leaves(jax.device_get(trainer.state.params))
    finite = all(bool(np.isfinite(np.asarray(x)).all()) for x in leaves)
    h.record("guard", "NaN/inf loss", "ok" if finite else "corrupted")
    assert finite, f"checkpoint {trainer.start_step} holds non-finite parameters"
    step = int(res.stderr.split("at step ")[1].split(";")[0])
    assert trainer.start_step < step
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in metrics if "loss" in r)
