"""Golden values: numbers the code must keep producing, committed in tests/golden/.

A refactor that changes any of these changes behaviour. Each check names its tolerance:

- MODEL_ATOL: logits of the three Flax families (llama with GQA + RoPE, gpt2, bert with
  its MLM head) on fixed ids, parameters drawn from a NumPy seed (no framework RNG, no
  transformers init code: the golden file pins *our* forward pass only);
- HYPERNET_ATOL: a seeded hypernet's predictions for fixed piece sequences;
- SHIPPED_RTOL: the shipped `hypernets/smollm2` on the real SmolLM2 embeddings, for fixed
  strings written in SmolLM2's pieces;
- BPB_ATOL: SmolLM2's bits per byte on a fixed text, with its own embeddings and with the
  shipped hypernet's predictions for its own vocabulary.

Regenerate after an *intended* change with `ZETT_UPDATE_GOLDEN=1 pytest tests/test_golden.py`
and say in the commit why the numbers moved.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zett.config import HypernetConfig
from zett.hypernet.model import build_hypernet, init_hypernet
from zett.models.load import abstract_params, config_from_hf
from zett.train import losses

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parents[1]
UPDATE = os.environ.get("ZETT_UPDATE_GOLDEN") == "1"
MODEL_ATOL = 2e-4
HYPERNET_ATOL = 1e-5
SHIPPED_RTOL = 1e-3
BPB_ATOL = 2e-3

# A short English paragraph, a German sentence, code: fixed, in this file.
TEXT = (
    "The committee met on Tuesday to review the budget for the coming year. After a long "
    "discussion, the members agreed to fund two new libraries and to repair the old bridge "
    "near the river.\nDie Sitzung wurde um acht Uhr beendet, und alle gingen nach Hause.\n"
    "def mean(values):\n    return sum(values) / max(len(values), 1)\n"
)
STRINGS = [" tokenizer", " Zürich", "def __init__", " 😀", " unbelievably", "ßtraße"]

HF_CONFIGS = {
    "llama": {
        "model_type": "llama", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": True, "hidden_act": "silu",
    },
    "gpt2": {
        "model_type": "gpt2", "vocab_size": 40, "n_embd": 16, "n_layer": 2, "n_head": 4,
        "n_positions": 32, "n_inner": None, "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
    },
    "bert": {
        "model_type": "bert", "architectures": ["BertForMaskedLM"], "vocab_size": 40,
        "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
        "num_attention_heads": 4, "max_position_embeddings": 32, "type_vocab_size": 2,
        "hidden_act": "gelu", "layer_norm_eps": 1e-12,
    },
}  # fmt: skip
IDS = np.array([[3, 17, 5, 39, 0, 22, 8, 11], [9, 9, 2, 31, 14, 6, 0, 0]], np.int32)
MASK = np.array([[1] * 8, [1] * 6 + [0, 0]], np.int32)


def seeded_like(tree, seed: int, scale: float = 0.3):
    """A parameter tree shaped like `tree`, values N(0, scale²) from a NumPy seed, in the
    tree's sorted leaf order (so the values do not depend on any framework's RNG)."""
    rng = np.random.default_rng(seed)
    leaves, treedef = jax.tree.flatten(tree)
    values = [jnp.asarray(rng.normal(0, scale, x.shape), jnp.float32) for x in leaves]
    return jax.tree.unflatten(treedef, values)


def check(name: str, values: dict, atol: float = 0.0, rtol: float = 0.0) -> None:
    """Compare `values` (name → list/float) with tests/golden/<name>.json, or write it."""
    path = GOLDEN / f"{name}.json"
    clean = {k: np.round(np.asarray(v, np.float64), 7).tolist() for k, v in values.items()}
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(clean, indent=1) + "\n")
        return
    if not path.is_file():
        pytest.fail(f"{path} missing: run ZETT_UPDATE_GOLDEN=1 pytest {__file__}")
    golden = json.loads(path.read_text())
    assert sorted(golden) == sorted(clean), f"{path}: keys differ"
    for key, want in golden.items():
        np.testing.assert_allclose(clean[key], want, atol=atol, rtol=rtol, err_msg=f"{name}/{key}")


@pytest.mark.parametrize("family", sorted(HF_CONFIGS))
def test_flax_model_logits(family) -> None:
    module = config_from_hf(HF_CONFIGS[family])
    params = seeded_like(abstract_params(module), seed=len(family))
    logits = module.apply({"params": params}, jnp.asarray(IDS), attention_mask=jnp.asarray(MASK))
    logits = np.asarray(logits)
    real = MASK.astype(bool)
    check(
        f"model_{family}",
        {
            "logits_first8": logits[:, :, :8][real],
            "logsumexp": np.asarray(jax.nn.logsumexp(logits, -1))[real],
        },
        atol=MODEL_ATOL,
    )


def test_seeded_hypernet_predictions() -> None:
    rng = np.random.default_rng(7)
    base_in = jnp.asarray(rng.normal(0, 0.05, (60, 16)), jnp.float32)
    cfg = HypernetConfig(num_layers=2, num_heads=4, max_pieces=4)
    module = build_hypernet(cfg, 16, 4)
    params = seeded_like(init_hypernet(module, jax.random.PRNGKey(0), base_in), seed=11, scale=0.2)
    ids = jnp.asarray([[5, 0, 0, 0], [5, 9, 0, 0], [9, 5, 0, 0], [1, 2, 3, 59]], jnp.int32)
    lengths = jnp.asarray([1, 2, 2, 4], jnp.int32)
    pred_in, pred_out, _ = module.apply({"params": params}, ids, lengths, base_in)
    assert pred_out is None
    check("hypernet_seeded", {"pred_in": np.asarray(pred_in)}, atol=HYPERNET_ATOL)


def test_masked_lm_loss_by_hand() -> None:
    """Two labelled positions of three; NLL = logsumexp − picked logit, by hand."""
    logits = jnp.asarray([[[2.0, 0.0, 0.0], [0.0, 1.0, 3.0], [1.0, 1.0, 1.0]]])
    labels = jnp.asarray([[0, 1, 2]])
    pick = jnp.asarray([[1, 1, 0]])
    total, n = losses.masked_lm_loss(logits, labels, pick)
    first = math.log(math.e**2 + 2) - 2.0
    second = math.log(1 + math.e + math.e**3) - 1.0
    assert float(n) == 2.0
    np.testing.assert_allclose(float(total), first + second, rtol=1e-6)
    none, zero = losses.masked_lm_loss(logits, labels, jnp.zeros_like(pick))
    assert float(none) == 0.0 and float(zero) == 0.0


# ------------------------------------------------------------------ the real model (slow)


@pytest.fixture(scope="module")
def smollm2(smollm2_dir):
    from zett.models.load import get_embeddings, load_model
    from zett.tokenizers.surface import load_tokenizer

    loaded = load_model(smollm2_dir)
    base_in, base_out, _ = get_embeddings(loaded, loaded.params)
    tok = load_tokenizer(smollm2_dir / "tokenizer.json")
    return loaded, jnp.asarray(base_in, jnp.float32), base_out, tok


def _shipped():
    from zett.hypernet.io import load_hypernet

    module, params, meta = load_hypernet(ROOT / "hypernets" / "smollm2")
    return module, jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params), meta


@pytest.mark.slow
def test_shipped_hypernet_predictions(smollm2) -> None:
    loaded, base_in, base_out, tok = smollm2
    module, params, _ = _shipped()
    p = module.dims.max_pieces
    ids = np.zeros((len(STRINGS), p), np.int32)
    lengths = np.zeros(len(STRINGS), np.int32)
    for i, s in enumerate(STRINGS):
        pieces = tok.encode(s, add_special_tokens=False).ids[:p]
        ids[i, : len(pieces)], lengths[i] = pieces, len(pieces)
    pred_in, _, _ = module.apply(
        {"params": params}, jnp.asarray(ids), jnp.asarray(lengths), base_in,
        complete=_complete_text(tok, base_in),
    )  # fmt: skip
    pred = np.asarray(pred_in)
    check(
        "hypernet_smollm2",
        {"first8": pred[:, :8], "norm": np.linalg.norm(pred, axis=1), "pieces": lengths},
        rtol=SHIPPED_RTOL,
        atol=1e-6,
    )


def _complete_text(tok, base_in) -> jax.Array:
    """The base's whole-UTF-8 token mask a `correct_fragments` hypernet needs (as training)."""
    from zett.tokenizers.surface import surface_forms

    return jnp.asarray(surface_forms(tok).complete_text(base_in.shape[0]))


def _in_loop_bpb(
    loaded, base_in, tok, piece_ids=None, piece_lengths=None, hypernet=None, params=None
):
    from zett.tokenizers.special import special_roles
    from zett.train.evaluate import EvalTarget, HeldoutEvaluator, tokenize_for_eval

    vocab = tok.get_vocab_size(with_added_tokens=True)
    target = EvalTarget("t", piece_ids, piece_lengths, vocab)
    target.chunks["x"] = tokenize_for_eval(
        lambda t: tok.encode(t, add_special_tokens=False).ids, [TEXT], vocab, 511
    )
    roles = special_roles(tok)
    start = roles.get("bos", roles.get("eos"))
    ev = HeldoutEvaluator(
        loaded.module, loaded.params, base_in, None, start, hypernet, [target],
        complete=_complete_text(tok, base_in),
    )  # fmt: skip
    return ev.evaluate(params)["t/x"]


@pytest.mark.slow
def test_bpb_golden_and_in_loop_agrees_with_zett_eval(smollm2, smollm2_dir) -> None:
    """SmolLM2 on TEXT: the in-loop JAX evaluator and `zett eval`'s PyTorch path agree, and
    both match the golden value; so does the shipped hypernet on SmolLM2's own vocabulary."""
    from zett.eval.bpb import bits_per_byte, load_causal_lm
    from zett.tokenizers.decompose import decompose
    from zett.tokenizers.surface import surface_forms

    loaded, base_in, _, tok = smollm2
    model, hf_tok = load_causal_lm(smollm2_dir)
    torch_bpb = bits_per_byte(model, hf_tok, [TEXT]).bpb
    jax_bpb = _in_loop_bpb(loaded, base_in, tok)
    assert abs(torch_bpb - jax_bpb) < 1e-3, (torch_bpb, jax_bpb)

    module, params, _ = _shipped()
    dec = decompose(surface_forms(tok), tok, module.dims.max_pieces)
    hyper_bpb = _in_loop_bpb(loaded, base_in, tok, dec.ids, dec.lengths, module, params)
    check(
        "bpb_smollm2",
        {"original": torch_bpb, "shipped_hypernet_own_vocab": hyper_bpb},
        atol=BPB_ATOL,
    )
