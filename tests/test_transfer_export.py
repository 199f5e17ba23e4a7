"""Hypernet transfer → HF export: PyTorch logits equal our JAX logits; safety of the output."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from tests.test_transfer_baselines import make_target
from zett.errors import ZettError
from zett.testing import make_hypernet
from zett.transfer import run

MODEL_TOL = 1e-4  # whole-model logits, float32
TEXT = "The quick brown fox jumps over the lazy dog. Größere Übungen!"


@pytest.fixture(scope="module")
def target_path(tmp_path_factory) -> Path:
    return make_target(tmp_path_factory.mktemp("target"), "bpe", byte_level=False, vocab=420)


@pytest.fixture(scope="module")
def hypernet_dir(tiny_llama_dir, tmp_path_factory) -> Path:
    return make_hypernet(tiny_llama_dir, tmp_path_factory.mktemp("hn") / "hypernet")


@pytest.fixture(scope="module")
def exported(tiny_llama_dir, target_path, hypernet_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exp") / "model"
    return run.transfer(hypernet_dir, tiny_llama_dir, target_path, out)


def _jax_logits(base_dir, target_path, hypernet_dir, ids: np.ndarray) -> np.ndarray:
    """Our module with the hypernet's embeddings (unpadded): [1, T, V_t] logits."""
    from zett.models.load import load_model, set_embeddings, with_vocab_size
    from zett.tokenizers.surface import load_tokenizer
    from zett.transfer.baselines import METHODS, build_inputs

    loaded = load_model(base_dir)
    inputs = build_inputs(
        loaded,
        load_tokenizer(base_dir / "tokenizer.json"),
        load_tokenizer(target_path),
        {"hypernet": str(hypernet_dir), "progress": False},
    )
    new = METHODS["hypernet"](inputs)
    fvt = METHODS["fvt"](inputs)
    assert np.abs(new.input - fvt.input).max() > 1e-2  # the hypernet changed something
    params = set_embeddings("llama", loaded.params, jnp.asarray(new.input))
    module = with_vocab_size(loaded.module, new.input.shape[0])
    x = jnp.asarray(ids)[None]
    return np.asarray(module.apply({"params": params}, input_ids=x, attention_mask=x >= 0))


def test_torch_logits_equal_jax_logits(exported, tiny_llama_dir, target_path, hypernet_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(exported), local_files_only=True)
    ids = tok(TEXT)["input_ids"]
    assert len(ids) > 10
    model = AutoModelForCausalLM.from_pretrained(str(exported), local_files_only=True).eval()
    with torch.no_grad():
        torch_logits = model(torch.tensor([ids])).logits.numpy()
    jax_logits = _jax_logits(tiny_llama_dir, target_path, hypernet_dir, np.asarray(ids))
    v = jax_logits.shape[-1]
    assert torch_logits.shape[-1] % 64 == 0 and torch_logits.shape[-1] >= v
    np.testing.assert_allclose(torch_logits[..., :v], jax_logits, atol=MODEL_TOL, rtol=0)


def test_length_grouped_prediction_equals_padded(tiny_llama_dir, hypernet_dir):
    from zett.hypernet.io import load_hypernet
    from zett.hypernet.predict import predict_vocab
    from zett.models.load import get_embeddings, load_model
    from zett.tokenizers.decompose import Decomposition

    module, params, _ = load_hypernet(hypernet_dir)
    loaded = load_model(tiny_llama_dir)
    base_in = jnp.asarray(get_embeddings(loaded, loaded.params)[0])
    rng = np.random.default_rng(0)
    p = module.dims.max_pieces
    lengths = rng.integers(0, p + 1, 300).astype(np.int32)  # every group, empty tokens too
    ids = rng.integers(0, base_in.shape[0], (300, p)).astype(np.int32)
    ids[np.arange(p)[None, :] >= lengths[:, None]] = 0
    d = Decomposition(ids, lengths, 0)
    logp = np.zeros(len(d.lengths), np.float32)
    # predict_vocab groups tokens by piece count and trims the ids; one padded call is the
    # reference.
    grouped = predict_vocab(module, params, d.ids, d.lengths, base_in, None, logp, 128, False)
    padded, _, _ = module.apply({"params": params}, d.ids, d.lengths, base_in, None, logp)
    np.testing.assert_allclose(grouped.input, padded, atol=1e-5)


def test_export_contents(exported, target_path):
    from safetensors.numpy import load_file

    state = load_file(str(exported / "model.safetensors"))
    assert "lm_head.weight" not in state  # tied: stored once
    emb = state["model.embed_tokens.weight"]
    cfg = json.loads((exported / "config.json").read_text())
    info = json.loads((exported / "zett_transfer.json").read_text())
    target = json.loads(target_path.read_text())
    n_target = info["target_vocab_size"]
    assert emb.shape[0] == cfg["vocab_size"] == info["padded_vocab_size"]
    assert cfg["vocab_size"] % 64 == 0 and n_target == 420
    np.testing.assert_allclose(emb[n_target:], np.broadcast_to(emb[:n_target].mean(0),
                               emb[n_target:].shape), atol=1e-6)  # fmt: skip
    assert info["method"] == "hypernet" and info["base_fingerprint"]
    assert cfg["eos_token_id"] == 2 and cfg["bos_token_id"] == 1  # target's </s>, <s>
    assert (exported / "tokenizer.json").read_text() == target_path.read_text()
    assert target["model"]["byte_fallback"]


def test_existing_output_is_refused_and_untouched(tiny_llama_dir, target_path, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ZettError, match="--overwrite"):
        run.baseline("fvt", tiny_llama_dir, target_path, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"
    run.baseline("fvt", tiny_llama_dir, target_path, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_hypernet_for_another_base_is_refused(tiny_llama_dir, target_path, tmp_path):
    hn = make_hypernet(tiny_llama_dir, tmp_path / "hn", fingerprint="0123456789abcdef")
    with pytest.raises(ZettError, match="trained for base"):
        run.transfer(hn, tiny_llama_dir, target_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unreadable_target_is_a_user_error(tiny_llama_dir, tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(ZettError, match="tokenizer.json"):
        run.baseline("fvt", tiny_llama_dir, bad, tmp_path / "out")
    with pytest.raises(ZettError, match="not found"):
        run.baseline("fvt", tiny_llama_dir, tmp_path / "missing", tmp_path / "out")


def test_unknown_method_is_a_user_error(tiny_llama_dir, target_path, tmp_path):
    with pytest.raises(ZettError, match="--method"):
        run.baseline("nope", tiny_llama_dir, target_path, tmp_path / "out")


def test_chat_template_of_the_base_is_kept(tiny_llama_dir, target_path, tmp_path):
    from transformers import AutoTokenizer

    base = tmp_path / "base"
    shutil.copytree(tiny_llama_dir, base)
    template = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    (base / "chat_template.jinja").write_text(template)
    out = run.baseline("mean", base, target_path, tmp_path / "out")
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert text == "<s>user: hi</s>"
    assert tok.eos_token == "</s>" and tok.eos_token_id == 2


def _perturbed_copy(src: Path, dst: Path, seed: int, scale: float = 0.01) -> Path:
    """A 'fine-tuned' variant: every tensor + small noise; same config and tokenizer."""
    from safetensors.numpy import load_file, save_file

    shutil.copytree(src, dst)
    state = load_file(str(dst / "model.safetensors"))
    rng = np.random.default_rng(seed)
    state = {
        k: (v + scale * rng.standard_normal(v.shape)).astype(v.dtype) for k, v in state.items()
    }
    save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


def test_finetuned_gets_base_embeddings_and_task_vector(
    tiny_llama_dir, target_path, hypernet_dir, exported, tmp_path
):
    from safetensors.numpy import load_file

    ft = _perturbed_copy(tiny_llama_dir, tmp_path / "ft", seed=1)
    out = run.transfer(hypernet_dir, tiny_llama_dir, target_path, tmp_path / "o1", finetuned=ft)
    got, ft_state = (
        load_file(str(out / "model.safetensors")),
        load_file(str(ft / "model.safetensors")),
    )
    zero_shot = load_file(str(exported / "model.safetensors"))
    key = "model.layers.0.mlp.up_proj.weight"
    np.testing.assert_array_equal(got[key], ft_state[key])
    np.testing.assert_array_equal(got["model.embed_tokens.weight"],
                                  zero_shot["model.embed_tokens.weight"])  # fmt: skip

    trained = _perturbed_copy(exported, tmp_path / "trained", seed=2)
    base_state = load_file(str(tiny_llama_dir / "model.safetensors"))
    tt_state = load_file(str(trained / "model.safetensors"))
    out2 = run.transfer(hypernet_dir, tiny_llama_dir, target_path, tmp_path / "o2",
                        finetuned=ft, transferred_trained=trained, lam=0.5)  # fmt: skip
    got2 = load_file(str(out2 / "model.safetensors"))
    want = ft_state[key] + 0.5 * (tt_state[key] - base_state[key])
    np.testing.assert_allclose(got2[key], want, atol=1e-6)
    n = 420  # target rows: the trained model's own; padding rows are re-made (mean)
    np.testing.assert_array_equal(got2["model.embed_tokens.weight"][:n],
                                  tt_state["model.embed_tokens.weight"][:n])  # fmt: skip


def test_cli_arguments_parse():
    p = argparse.ArgumentParser()
    run.add_transfer_arguments(p)
    a = p.parse_args(["--hypernet", "h", "--target-tokenizer", "llama2", "--output", "o",
                      "--finetuned", "f", "--lam", "0.5"])  # fmt: skip
    assert (a.hypernet, a.base, a.finetuned, a.lam, a.overwrite) == (
        "h",
        "smollm2",
        "f",
        0.5,
        False,
    )
    p = argparse.ArgumentParser()
    run.add_baseline_arguments(p)
    a = p.parse_args(
        ["--method", "omp", "--target-tokenizer", "t", "--output", "o", "--donor", "d"]
    )
    assert (a.method, a.donor) == ("omp", "d")
