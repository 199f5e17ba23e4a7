"""Every target tokenizer family exports to a directory transformers loads and generates with,
and special tokens land on the base row of their role."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.test_transfer_baselines import make_target
from zett.transfer import run

TEXT = "The city lies on the river. Größere Übungen sind schwierig."

FAMILIES = {
    "sentencepiece_byte_fallback": ("bpe", False),
    "byte_level_bpe": ("bpe", True),
    "wordpiece": ("wordpiece", True),
    "unigram": ("unigram", False),
}


def _check_export(out: Path, base_dir: Path, role: str | None = None) -> None:
    """Loads with Auto* offline, tokenizes, generates; the role's row equals the base's."""
    import torch
    from safetensors.numpy import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zett.tokenizers.special import special_roles
    from zett.tokenizers.surface import load_tokenizer

    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True).eval()
    enc = tok(TEXT, return_tensors="pt")
    assert enc["input_ids"].shape[1] > 5
    with torch.no_grad():
        gen = model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert gen.shape[1] >= enc["input_ids"].shape[1] + 1
    assert isinstance(tok.decode(gen[0]), str)

    roles_t = special_roles(load_tokenizer(out / "tokenizer.json"))
    roles_b = special_roles(load_tokenizer(base_dir / "tokenizer.json"))
    role = role or ("eos" if "eos" in roles_t else "unk")
    new = load_file(str(out / "model.safetensors"))
    old = load_file(str(base_dir / "model.safetensors"))
    key = "model.embed_tokens.weight"
    np.testing.assert_array_equal(new[key][roles_t[role]], old[key][roles_b[role]])
    cfg = json.loads((out / "config.json").read_text())
    if "eos" in roles_t:
        assert cfg["eos_token_id"] == roles_t["eos"] == tok.eos_token_id


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_exports_load_and_generate(family, tiny_llama_dir, tmp_path):
    kind, byte_level = FAMILIES[family]
    target = make_target(tmp_path / "tok", kind, byte_level=byte_level, vocab=400)
    out = run.baseline("fvt", tiny_llama_dir, target, tmp_path / "out")
    _check_export(out, tiny_llama_dir)


def test_shared_llama2_target(shared_tokenizers, tiny_llama_dir, tmp_path):
    out = run.baseline("lexical", tiny_llama_dir, shared_tokenizers / "llama2", tmp_path / "out")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["vocab_size"] == 32000 and (cfg["bos_token_id"], cfg["eos_token_id"]) == (1, 2)
    _check_export(out, tiny_llama_dir)


@pytest.mark.slow
def test_smollm2_to_llama2_fvt(smollm2_dir, shared_tokenizers, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = run.baseline("fvt", smollm2_dir, shared_tokenizers / "llama2", tmp_path / "out")
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True).eval()
    enc = tok("The capital of France is", return_tensors="pt")
    assert enc["input_ids"][0, 0].item() == tok.bos_token_id == 1
    with torch.no_grad():
        gen = model.generate(**enc, max_new_tokens=8, do_sample=False)
    text = tok.decode(gen[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert text.strip(), "generated nothing"
    assert tok.chat_template is not None  # SmolLM2's template is kept
    _check_export(out, smollm2_dir, role="eos")


def test_bert_encoder_exports_for_automodel(tmp_path):
    """An encoder base (BERT without MLM head, like MiniLM) exports for `AutoModel`."""
    import shutil

    import torch
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    base = tmp_path / "bert"
    tok_file = make_target(tmp_path / "btok", "wordpiece", vocab=300)
    torch.manual_seed(0)
    n = json.loads(tok_file.read_text())["model"]["vocab"]
    cfg = BertConfig(vocab_size=len(n), hidden_size=32, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=64, pad_token_id=0)  # fmt: skip
    BertModel(cfg).save_pretrained(str(base))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(tok_file.parent / name, base / name)
    target = make_target(tmp_path / "ttok", "bpe", byte_level=True, vocab=350)
    out = run.baseline("lexical", base, target, tmp_path / "out")
    model = AutoModel.from_pretrained(str(out), local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    with torch.no_grad():
        hidden = model(**tok(TEXT, return_tensors="pt")).last_hidden_state
    assert hidden.shape[-1] == 32 and torch.isfinite(hidden).all()
    assert json.loads((out / "config.json").read_text())["vocab_size"] % 64 == 0
