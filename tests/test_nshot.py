"""`zett nshot`: the schedule and packing are right, training on a tiny model lowers the loss,
embeddings-only training leaves every other tensor bit-identical, and the output loads."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zett.errors import ZettError
from zett.train import nshot

LANGS = ["en", "code"]


def _state(model_dir):
    from safetensors.numpy import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_lr_schedule_warms_up_then_decays():
    lrs = [nshot.lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))  # rising during warm-up
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # then never rising
    assert lrs[-1] == pytest.approx(nshot.MIN_LR_FRACTION)


@given(
    st.lists(st.lists(st.integers(3, 50), max_size=20), max_size=8),
    st.integers(2, 9),
    st.sampled_from([None, 2]),
)
def test_pack_blocks_is_the_cut_stream(docs, seq_len, eos):
    blocks = nshot.pack_blocks(docs, seq_len, eos)
    stream = [i for d in docs for i in ([*d, eos] if eos is not None else d)]
    assert all(len(b) == seq_len for b in blocks)
    assert len(blocks) == len(stream) // seq_len
    assert [i for b in blocks for i in b] == stream[: len(blocks) * seq_len]


@pytest.fixture(scope="module")
def embeddings_run(tiny_llama_dir, tiny_corpus_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("nshot") / "model"
    result = nshot.nshot(
        tiny_llama_dir, out, 30, lr=1e-2, batch_size=4, seq_len=64, eval_every=10,
        langs=LANGS, eval_bytes=1500, corpus=tiny_corpus_dir, progress=False,
    )  # fmt: skip
    return result


def test_embeddings_only_training_lowers_loss(embeddings_run):
    losses = embeddings_run.losses
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1
    log = embeddings_run.log
    assert [r["step"] for r in log] == [0, 10, 20, 30]
    assert [r["tokens"] for r in log] == [0, 2560, 5120, 7680]
    assert set(log[0]["bpb"]) == set(LANGS) and log[0]["train_loss"] is None
    assert log[-1]["mean_bpb"] < log[0]["mean_bpb"]  # held-out text improves too


def test_embeddings_only_freezes_the_rest(embeddings_run, tiny_llama_dir):
    before, after = _state(tiny_llama_dir), _state(embeddings_run.output_dir)
    assert set(before) == set(after)
    emb = "model.embed_tokens.weight"
    assert not (before[emb] == after[emb]).all()  # the embeddings did train
    for name in before:
        if name != emb:
            assert (before[name] == after[name]).all(), f"{name} changed"


def test_output_loads_with_transformers(embeddings_run):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = embeddings_run.output_dir
    model = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    with torch.no_grad():
        logits = model(**tok("def f(x): return x", return_tensors="pt")).logits
    assert torch.isfinite(logits).all()
    lines = (out / "nshot_log.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [0, 10, 20, 30]
    assert json.loads((out / "zett_nshot.json").read_text())["train_embeddings_only"] is True
    assert out.with_name(out.name + ".nshot.jsonl").is_file()


def test_all_weights_changes_the_body(tiny_llama_dir, tiny_corpus_dir, tmp_path):
    out = tmp_path / "all"
    nshot.nshot(
        tiny_llama_dir, out, 3, train_embeddings_only=False, lr=1e-3, batch_size=2, seq_len=32,
        eval_every=0, langs=["en"], eval_bytes=500, corpus=tiny_corpus_dir, progress=False,
    )  # fmt: skip
    before, after = _state(tiny_llama_dir), _state(out)
    name = "model.layers.0.mlp.up_proj.weight"
    assert not (before[name] == after[name]).all()


def test_bad_input_is_a_zett_error(tiny_llama_dir, tiny_corpus_dir, tmp_path):
    (tmp_path / "exists").mkdir()
    with pytest.raises(ZettError, match="already exists"):
        nshot.nshot(tiny_llama_dir, tmp_path / "exists", 1, corpus=tiny_corpus_dir)
    with pytest.raises(ZettError, match="steps"):
        nshot.nshot(tiny_llama_dir, tmp_path / "o", 0, corpus=tiny_corpus_dir)
    with pytest.raises(ZettError, match="klingon"):
        nshot.nshot(tiny_llama_dir, tmp_path / "o", 1, langs=["klingon"], corpus=tiny_corpus_dir)


def test_cli_arguments_parse():
    p = argparse.ArgumentParser()
    nshot.add_arguments(p)
    args = p.parse_args(["--model", "m", "--output", "o", "--steps", "5", "--all-weights"])
    assert args.all_weights and args.steps == 5 and args.langs == list(nshot.DEFAULT_LANGS)


# ------------------------------------------------------------- --objective distill


@pytest.fixture(scope="module")
def fvt_export(tiny_llama_dir, tmp_path_factory):
    """The tiny llama transferred by FVT to an unseen 400-token BPE (has zett_transfer.json)."""
    from zett.testing import make_tokenizer
    from zett.transfer.run import baseline

    root = tmp_path_factory.mktemp("fvt")
    make_tokenizer(root / "target", vocab_size=400)
    return baseline("fvt", tiny_llama_dir, root / "target", root / "fvt")


def test_distill_embeddings_only(fvt_export, tiny_llama_dir, tiny_corpus_dir, tmp_path):
    out = tmp_path / "distill"
    result = nshot.nshot(
        fvt_export, out, 6, objective="distill", lr=1e-2, batch_size=2, seq_len=32,
        eval_every=3, langs=LANGS, eval_bytes=600, corpus=tiny_corpus_dir, progress=False,
    )  # fmt: skip
    assert len(result.losses) == 6 and all(math.isfinite(x) and x >= 0 for x in result.losses)
    assert [r["step"] for r in result.log] == [0, 3, 6]
    assert 0 < result.log[1]["tokens"] < result.log[2]["tokens"]  # student tokens counted
    assert all("cpu_seconds" in r for r in result.log)
    info = json.loads((out / "zett_nshot.json").read_text())
    assert info["objective"] == "distill" and Path(info["teacher"]) == Path(tiny_llama_dir)
    before, after = _state(fvt_export), _state(out)
    emb = "model.embed_tokens.weight"
    assert not (before[emb] == after[emb]).all()
    assert all((before[k] == after[k]).all() for k in before if k != emb)


def test_distill_all_weights_and_cpu_budget(fvt_export, tiny_llama_dir, tiny_corpus_dir, tmp_path):
    out = tmp_path / "all"
    result = nshot.nshot(
        fvt_export, out, 50, objective="distill", teacher=tiny_llama_dir,
        train_embeddings_only=False, batch_size=2, seq_len=32, eval_every=0, langs=["en"],
        eval_bytes=400, corpus=tiny_corpus_dir, progress=False, max_cpu_seconds=1e-9,
    )  # fmt: skip
    assert len(result.losses) == 1 and [r["step"] for r in result.log] == [0, 1]  # budget spent
    name = "model.layers.0.mlp.up_proj.weight"
    assert not (_state(fvt_export)[name] == _state(out)[name]).all()


def test_distill_needs_a_teacher(tiny_llama_dir, tiny_corpus_dir, tmp_path):
    with pytest.raises(ZettError, match="--teacher"):
        nshot.nshot(tiny_llama_dir, tmp_path / "o", 1, objective="distill", corpus=tiny_corpus_dir)
    with pytest.raises(ZettError, match="objective"):
        nshot.nshot(tiny_llama_dir, tmp_path / "o", 1, objective="mlm", corpus=tiny_corpus_dir)


def test_lr_at_fraction_matches_lr_at():
    for step in range(2, 20):
        frac = (step - 2) / (20 - 2 - 1)
        assert nshot.lr_at_fraction(step, frac, 2, 1.0) == pytest.approx(
            nshot.lr_at(step, 20, 2, 1.0)
        )


def test_cli_objective_flags_parse():
    p = argparse.ArgumentParser()
    nshot.add_arguments(p)
    base = ["--model", "m", "--output", "o", "--steps", "5"]
    assert p.parse_args(base).objective == "clm"
    args = p.parse_args(
        [*base, "--objective", "distill", "--teacher", "t", "--max-cpu-seconds", "9"]
    )
    assert (args.objective, args.teacher, args.max_cpu_seconds, args.tau) == (
        "distill",
        "t",
        9.0,
        1.0,
    )


def _says_paris(model_dir) -> tuple[bool, str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    with torch.no_grad():
        ids = model.generate(**tok("The capital of France is", return_tensors="pt"),
                             max_new_tokens=6, do_sample=False)  # fmt: skip
    text = tok.decode(ids[0], skip_special_tokens=True)
    return "Paris" in text, text


@pytest.mark.slow
def test_distill_smollm2_keeps_paris(smollm2_dir, tmp_path):
    """Teacher SmolLM2, student its FVT transfer to llama2 (or, without it, a local 4k BPE):
    2 distill steps, then the output loads in plain transformers and generates; it must
    still say Paris whenever the FVT start does (FVT → llama2 does: "… is Paris.")."""
    from zett import assets
    from zett.transfer.run import baseline

    try:
        target = assets.find_tokenizer("llama2")
    except Exception:  # noqa: BLE001 - no llama2 here: a local BPE instead
        from zett.testing import tiny_texts
        from zett.tokenizers.convert import train_tokenizer

        texts = [t for ts in tiny_texts().values() for t in ts]
        texts += ["The capital of France is Paris. Paris is the capital of France."] * 50
        target = tmp_path / "target"
        target.mkdir()
        train_tokenizer("bpe", texts, 4000).save(str(target / "tokenizer.json"))
    student = baseline("fvt", smollm2_dir, target, tmp_path / "fvt")
    before, _ = _says_paris(student)
    out = tmp_path / "distilled"
    result = nshot.nshot(
        student, out, 2, objective="distill", batch_size=2, seq_len=64, eval_every=0,
        langs=["en"], eval_bytes=500, progress=False,
    )  # fmt: skip
    assert all(math.isfinite(x) for x in result.losses)
    after, text = _says_paris(out)
    assert text.startswith("The capital of France is")
    if before:
        assert after, text
