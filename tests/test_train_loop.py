"""Training end to end on a tiny random Llama: loss falls, ablations step, resume is exact."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from zett.config import load_config
from zett.errors import ZettError
from zett.hypernet import io as hypernet_io
from zett.train.loop import Trainer, export_checkpoint

CONFIGS = Path(__file__).parents[1] / "configs"


def _cfg(base: Path, corpus: Path, out: Path, *extra: str):
    return load_config(
        CONFIGS / "tiny.yaml",
        [
            "--model.base", str(base),
            "--data.corpus", str(corpus),
            "--train.output_dir", str(out),
            "--data.prefetch", "0",
            *extra,
        ],
    )  # fmt: skip


def _losses(run: Path) -> dict[int, float]:
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "loss" in rec:
            out[rec["step"]] = rec["loss"]
    return out


def test_loss_falls_and_exports(tiny_llama_dir, tiny_corpus_dir, tmp_path):
    cfg = _cfg(tiny_llama_dir, tiny_corpus_dir, tmp_path / "run", "--train.log_every", "1")
    Trainer(cfg, progress=False).run()
    losses = _losses(tmp_path / "run")
    assert len(losses) == 50
    first, last = (
        np.mean([losses[s] for s in range(1, 6)]),
        np.mean([losses[s] for s in range(46, 51)]),
    )
    assert last < first - 0.1, (first, last)
    _, params, meta = hypernet_io.load_hypernet(tmp_path / "run" / "hypernet")
    assert meta["steps"] == 50 and meta["base_fingerprint"]
    # `zett export`: an intermediate checkpoint becomes a transferable hypernet.
    out = export_checkpoint(tmp_path / "run", step=25)
    _, params25, meta25 = hypernet_io.load_hypernet(out)
    assert meta25["steps"] == 25 and out.name == "hypernet-step25"
    diffs = [
        float(np.abs(a - b).max())
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params25))
    ]
    assert max(diffs) > 0  # a different (earlier) state


ABLATIONS = {
    "no_identity": [],
    "identity": ["--train.identity_steps", "2"],
    "no_noise": ["--data.noise_std", "0", "--data.noise_mean", "0"],
    "untied": ["--hypernet.separate_out_head", "true"],
    "lw0": ["--train.lw", "0"],
    "unigram_bias": ["--hypernet.use_unigram_bias", "true", "--hypernet.prior_input", "true"],
    "vocab_attention": ["--hypernet.vocab_attention", "true"],
    "grad_accum_bf16": ["--train.grad_accum", "2", "--train.bf16", "true"],
}


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_one_step_per_ablation(name, tiny_llama_dir, tiny_corpus_dir, tmp_path):
    steps = "4" if name == "identity" else "2"
    cfg = _cfg(
        tiny_llama_dir, tiny_corpus_dir, tmp_path / name, "--train.steps", steps,
        "--train.log_every", "1", *ABLATIONS[name],
    )  # fmt: skip
    Trainer(cfg, progress=False).run()
    losses = _losses(tmp_path / name)
    assert len(losses) == int(steps) and all(np.isfinite(list(losses.values())))


def test_resume_reproduces_uninterrupted_run(tiny_llama_dir, tiny_corpus_dir, tmp_path):
    common = ["--train.steps", "8", "--train.save_every", "4", "--train.log_every", "1",
              "--train.identity_steps", "2"]  # fmt: skip
    full = _cfg(tiny_llama_dir, tiny_corpus_dir, tmp_path / "full", *common)
    Trainer(full, progress=False).run()
    # "Kill" after step 4: run a 4-step job into the same dir, then resume to 8.
    part = _cfg(tiny_llama_dir, tiny_corpus_dir, tmp_path / "part", *common)
    Trainer(part, progress=False).run(until=4)
    with pytest.raises(ZettError, match="--resume"):
        Trainer(_cfg(tiny_llama_dir, tiny_corpus_dir, tmp_path / "part", *common), progress=False)
    resumed = _cfg(tiny_llama_dir, tiny_corpus_dir, tmp_path / "part", *common)
    Trainer(resumed, resume=True, progress=False).run()
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "part")
    assert sorted(a) == sorted(b) == list(range(1, 9))
    for s in range(1, 9):
        assert a[s] == b[s], (s, a[s], b[s])


@pytest.mark.parametrize("mlm", [False, True], ids=["sentence", "mlm"])
def test_encoder_objectives_step(mlm, tiny_corpus_dir, tmp_path):
    """Encoders: label-free sentence agreement (no MLM head) and MLM (with head)."""
    from tests.tiny import make_tiny_bert

    base = make_tiny_bert(tmp_path / "bert", mlm=mlm)
    cfg = _cfg(base, tiny_corpus_dir, tmp_path / "run", "--train.steps", "3",
               "--train.log_every", "1")  # fmt: skip
    trainer = Trainer(cfg, progress=False)
    assert trainer.objective == ("mlm" if mlm else "sentence")
    trainer.run()
    losses = _losses(tmp_path / "run")
    assert len(losses) == 3 and all(np.isfinite(list(losses.values())))
