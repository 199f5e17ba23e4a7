"""Special-token roles come from tokenizer_config.json, the post-processor and known names."""

from __future__ import annotations

import json

import pytest

from zett.tokenizers.convert import save_tokenizer, train_tokenizer
from zett.tokenizers.special import map_special_tokens, special_roles
from zett.tokenizers.surface import load_tokenizer, surface_forms

TEXTS = ["hello world, the fox jumps over the dog"] * 20


def test_roles_from_config_beside_file(tmp_path) -> None:
    tok = train_tokenizer("bpe", TEXTS, 300, byte_level=False)
    save_tokenizer(tok, tmp_path)
    assert special_roles(load_tokenizer(tmp_path)) == {"bos": 1, "eos": 2, "unk": 0}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": {"content": "<s>"}}))
    roles = special_roles(load_tokenizer(tmp_path))
    assert roles["eos"] == 1  # the config wins over the known name
    assert special_roles(tok, {"pad_token": "</s>"})["pad"] == 2


def test_bad_config_is_user_error(tmp_path) -> None:
    from zett.errors import ZettError

    save_tokenizer(train_tokenizer("wordpiece", TEXTS, 100), tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("{oops")
    with pytest.raises(ZettError, match="tokenizer_config.json"):
        load_tokenizer(tmp_path)


def test_map_between_families() -> None:
    sp = train_tokenizer("bpe", TEXTS, 300, byte_level=False)
    wp = train_tokenizer("wordpiece", TEXTS, 100)
    assert special_roles(wp)["cls"] == wp.token_to_id("[CLS]")
    m = map_special_tokens(surface_forms(sp), wp)
    assert m == {0: wp.token_to_id("[UNK]")}  # only unk shares a role
    m = map_special_tokens(sp, sp)
    assert m == {0: 0, 1: 1, 2: 2}


def test_real_roles(shared_tokenizers, smollm2_dir, minilm_dir) -> None:
    smol = load_tokenizer(smollm2_dir)
    qwen = load_tokenizer(shared_tokenizers / "qwen3")
    llama3 = load_tokenizer(shared_tokenizers / "llama3")
    llama2 = load_tokenizer(shared_tokenizers / "llama2")
    r = special_roles(llama3)
    assert r["bos"] == 128000 and r["eot_id"] == llama3.token_to_id("<|eot_id|>")
    assert special_roles(llama2)["bos"] == 1 and special_roles(qwen)["im_start"] == 151644
    m = map_special_tokens(surface_forms(qwen), surface_forms(smol))
    assert m[151644] == smol.token_to_id("<|im_start|>")
    assert m[151643] == smol.token_to_id("<|endoftext|>")  # same content beats the pad role
    m = map_special_tokens(llama2, load_tokenizer(minilm_dir))
    assert m == {0: 100}  # <unk> → [UNK]; bos/eos have no BERT counterpart
    m = map_special_tokens(llama2, smol)
    assert m[1] == smol.token_to_id("<|im_start|>") and m[2] == smol.token_to_id("<|im_end|>")
