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
from zett.train import step as step_lib
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
    # lr above tiny.yaml's: with the default (zett) sampler's word-like pieces a random tiny
    # model has less to learn per step than with near-character vocabularies (log_gumbel).
    cfg = _cfg(
        tiny_llama_dir, tiny_corpus_dir, tmp_path / "run", "--train.log_every", "1",
        "--train.lr", "1e-2",
    )  # fmt: skip
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
    "compose": ["--train.compose_steps", "2", "--train.compose_weight", "0.5"],
    "short_rows": ["--data.short_rows", "192", "--data.short_pieces", "2"],
    "correct_fragments": ["--hypernet.copy_single", "true", "--hypernet.correct_fragments", "true"],
}


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_one_step_per_ablation(name, tiny_llama_dir, tiny_corpus_dir, tmp_path):
    steps = "4" if name in ("identity", "compose") else "2"
    cfg = _cfg(
        tiny_llama_dir, tiny_corpus_dir, tmp_path / name, "--train.steps", steps,
        "--train.log_every", "1", *ABLATIONS[name],
    )  # fmt: skip
    Trainer(cfg, progress=False).run()
    losses = _losses(tmp_path / name)
    assert len(losses) == int(steps) and all(np.isfinite(list(losses.values())))


def test_correct_fragments_trains_and_evaluates(tiny_llama_dir, tiny_corpus_dir, tmp_path):
    # The base's complete-text mask reaches the step and the in-loop evaluator (a target
    # tokenizer there: the base's own, decomposed like any other), and the export records
    # the switch so transfers read it back.
    cfg = _cfg(
        tiny_llama_dir, tiny_corpus_dir, tmp_path / "run", "--train.steps", "2",
        "--hypernet.copy_single", "true", "--hypernet.correct_fragments", "true",
        "--train.eval_every", "2", "--train.eval_tokenizers", f"[{tiny_llama_dir}]",
    )  # fmt: skip
    Trainer(cfg, progress=False).run()
    evals = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    evals = [e for e in evals if f"eval/{tiny_llama_dir.name}/mean" in e]
    assert evals and all(np.isfinite(v) for e in evals for k, v in e.items() if "/" in k)
    module, _, meta = hypernet_io.load_hypernet(tmp_path / "run" / "hypernet")
    assert module.cfg.correct_fragments and meta["hypernet"]["correct_fragments"]


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
    from zett.testing import make_tiny_bert

    base = make_tiny_bert(tmp_path / "bert", mlm=mlm)
    cfg = _cfg(base, tiny_corpus_dir, tmp_path / "run", "--train.steps", "3",
               "--train.log_every", "1")  # fmt: skip
    trainer = Trainer(cfg, progress=False)
    assert trainer.objective == ("mlm" if mlm else "sentence")
    trainer.run()
    losses = _losses(tmp_path / "run")
    assert len(losses) == 3 and all(np.isfinite(list(losses.values())))


def test_compose_stage_learns_and_is_logged(tiny_llama_dir, tiny_corpus_dir, tmp_path):
    """Compose steps need no LM; their held-out reconstruction error falls and is logged."""
    cfg = _cfg(
        tiny_llama_dir, tiny_corpus_dir, tmp_path / "c", "--train.steps", "32",
        "--train.compose_steps", "30", "--train.compose_lr", "3e-3", "--train.log_every", "1",
        "--train.eval_every", "30", "--train.compose_valid", "0.2",
    )  # fmt: skip
    Trainer(cfg, progress=False).run()
    recs = [json.loads(x) for x in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()]
    stages = [r["stage"] for r in recs if "stage" in r]
    assert stages[:30] == ["compose"] * 30 and stages[30:] == ["lm", "lm"]
    evals = [r["eval/compose_mse"] for r in recs if "eval/compose_mse" in r]
    assert len(evals) == 2 and evals[1] < evals[0], evals  # step 0 (= FVT) vs step 30
    compose = [r["loss"] for r in recs if r.get("stage") == "compose"]
    assert np.mean(compose[-5:]) < np.mean(compose[:5])


def test_warm_start_from_exported_hypernet(tiny_llama_dir, tiny_corpus_dir, tmp_path):
    """A fresh machine continues a run from the committed hypernet: step and tokens carry."""
    common = ["--train.steps", "6", "--train.log_every", "1"]
    first = _cfg(tiny_llama_dir, tiny_corpus_dir, tmp_path / "a", *common)
    tr = Trainer(first, progress=False)
    tr.run(until=3)
    exported = tr.export(tmp_path / "exp")
    _, _, meta = hypernet_io.load_hypernet(exported)
    assert meta["step"] == 3 and meta["lm_tokens"] > 0 and meta["train_wall_s"] > 0
    cont = _cfg(tiny_llama_dir, tiny_corpus_dir, tmp_path / "b", *common,
                "--train.init_from", str(exported))  # fmt: skip
    tr2 = Trainer(cont, resume=True, progress=False)
    assert tr2.start_step == 3 and tr2.lm_tokens == meta["lm_tokens"]
    # the learning-rate schedule continues at step 3, it does not restart from warm-up
    assert step_lib.schedule_count(tr2.state.opt_state) == 3
    tr2.run()
    _, _, meta2 = hypernet_io.load_hypernet(tmp_path / "b" / "hypernet")
    assert meta2["steps"] == 6 and meta2["lm_tokens"] > meta["lm_tokens"]
    with pytest.raises(ZettError, match="dims"):
        Trainer(_cfg(tiny_llama_dir, tiny_corpus_dir, tmp_path / "c", *common,
                     "--train.init_from", str(exported), "--hypernet.num_layers", "2"),
                progress=False)  # fmt: skip


def test_short_row_split_gives_the_same_loss(tiny_llama_dir, tiny_corpus_dir, tmp_path):
    """data.short_rows only changes how many piece positions run, not the result."""
    from zett.train import step as step_lib
    from zett.train.loop import batch_arrays

    cfg = _cfg(tiny_llama_dir, tiny_corpus_dir, tmp_path / "s",
               "--data.short_rows", "192", "--data.short_pieces", "2")  # fmt: skip
    tr = Trainer(cfg, progress=False)
    tr.state = tr.state.replace(params=jax.tree.map(lambda x: x + 0.05, tr.state.params))
    arrays = batch_arrays(next(tr.data()), step_lib.BATCH_KEYS)
    f = tr.bundle.frozen
    losses = []
    for split in ((192, 2), None):
        fn = step_lib.make_loss_fn(tr.bundle.loaded.module, tr.hypernet, "clm", 0.5, split=split)
        losses.append(float(fn(tr.state.params, arrays, f, jax.random.PRNGKey(0))[0]))
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
