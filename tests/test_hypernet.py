"""The hypernetwork: step-0 equals mean of pieces (FVT); ablation switches build; IO round-trips."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zett.config import HypernetConfig
from zett.errors import ZettError
from zett.hypernet import io
from zett.hypernet.model import build_hypernet, init_hypernet, untrained_hypernet

D, V, P = 16, 50, 4


def _inputs(seed=0, n=12):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=(n, P)).astype(np.int32)
    lengths = rng.integers(1, P + 1, size=n).astype(np.int32)
    ids = np.where(np.arange(P)[None] < lengths[:, None], ids, 0)
    return jnp.asarray(ids), jnp.asarray(lengths), jnp.asarray(rng.normal(size=n), jnp.float32)


def _fvt(table, ids, lengths):
    out = []
    for row, n in zip(np.asarray(ids), np.asarray(lengths)):
        out.append(np.asarray(table)[row[:n]].mean(0))
    return np.stack(out)


SWITCHES = [
    {},
    {"separate_out_head": True},
    {"use_unigram_bias": True},
    {"prior_input": True},
    {"vocab_attention": True},
]


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: ",".join(s) or "default")
@pytest.mark.parametrize("untied_base", [False, True])
def test_step0_is_mean_of_pieces(switches, untied_base):
    cfg = HypernetConfig(num_layers=2, num_heads=2, hidden_dim=24, max_pieces=P, **switches)
    base_in = jax.random.normal(jax.random.PRNGKey(0), (V, D)) * 0.1 + 0.3
    base_out = jax.random.normal(jax.random.PRNGKey(1), (V, D)) if untied_base else None
    model = build_hypernet(cfg, D, 4)
    params = init_hypernet(model, jax.random.PRNGKey(2), base_in, base_out)
    ids, lengths, logp = _inputs()
    pred_in, pred_out, bias = model.apply({"params": params}, ids, lengths, base_in, base_out, logp)
    np.testing.assert_allclose(pred_in, _fvt(base_in, ids, lengths), atol=1e-5)
    if untied_base:
        np.testing.assert_allclose(pred_out, _fvt(base_out, ids, lengths), atol=1e-5)
    elif switches.get("separate_out_head"):
        np.testing.assert_allclose(pred_out, pred_in, atol=1e-6)
    else:
        assert pred_out is None
    if switches.get("use_unigram_bias"):
        np.testing.assert_allclose(bias, 0.0)
    # The correction is trainable: a perturbed head changes the prediction.
    params2 = jax.tree.map(lambda x: x, params)
    k = params2["out_in"]["kernel"]
    params2["out_in"]["kernel"] = k + 0.1 * jax.random.normal(jax.random.PRNGKey(9), k.shape)
    moved, _, _ = model.apply({"params": params2}, ids, lengths, base_in, base_out, logp)
    assert float(jnp.abs(moved - pred_in).max()) > 1e-3


def test_padding_pieces_do_not_matter():
    cfg = HypernetConfig(num_layers=1, num_heads=2, hidden_dim=16, max_pieces=P)
    base_in = jax.random.normal(jax.random.PRNGKey(0), (V, D))
    model = build_hypernet(cfg, D, 2)
    params = init_hypernet(model, jax.random.PRNGKey(1), base_in)
    params["out_in"]["kernel"] = jax.random.normal(
        jax.random.PRNGKey(3), params["out_in"]["kernel"].shape
    )
    ids, lengths, logp = _inputs()
    junk = jnp.where(jnp.arange(P)[None] < lengths[:, None], ids, 7)
    a, _, _ = model.apply({"params": params}, ids, lengths, base_in, None, logp)
    b, _, _ = model.apply({"params": params}, junk, lengths, base_in, None, logp)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_io_roundtrip_and_fingerprint_guard(tmp_path):
    cfg = HypernetConfig(num_layers=1, num_heads=2, hidden_dim=16, max_pieces=P)
    base_in = jax.random.normal(jax.random.PRNGKey(0), (V, D))
    model = build_hypernet(cfg, D, 2)
    params = init_hypernet(model, jax.random.PRNGKey(1), base_in)
    out = io.save_hypernet(
        tmp_path / "h", params, cfg, model.dims, {"base_fingerprint": "abc"}, dtype="float32"
    )
    model2, params2, meta = io.load_hypernet(out)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params2)):
        np.testing.assert_array_equal(a, b)
    assert model2.dims == model.dims
    io.check_base(meta, "abc", out)
    with pytest.raises(ZettError, match="trained for base"):
        io.check_base(meta, "other", out)
    with pytest.raises(ZettError, match="already exists"):
        io.save_hypernet(out, params, cfg, model.dims, {"base_fingerprint": "abc"})
    (out / io.WEIGHTS).write_bytes(b"\x00\x01truncated")
    with pytest.raises(ZettError, match="unreadable"):
        io.load_hypernet(out)
    with pytest.raises(ZettError, match="not a hypernet"):
        io.load_hypernet(tmp_path / "nothing")


@pytest.mark.parametrize("perturb", [0.0, 0.3])
def test_save_untrained_loads_as_built(tmp_path, perturb):
    """`save_untrained` writes what `untrained_hypernet` builds (plus, with `perturb`, a
    non-zero input head), with the base's fingerprint, readable by `load_hypernet`."""
    cfg = HypernetConfig(num_layers=1, num_heads=2, hidden_dim=16, max_pieces=P)
    base_in = jax.random.normal(jax.random.PRNGKey(0), (V, D))
    out = io.save_untrained(tmp_path / "h", cfg, base_in, None, 2, "b", perturb=perturb)
    model, params, meta = io.load_hypernet(out)
    built, fresh = untrained_hypernet(cfg, base_in, None, 2)
    assert model.dims == built.dims and meta["base_model"] == "b"
    io.check_base(meta, io.embedding_fingerprint(base_in), out)
    io.check_params(model, params, base_in, None, out)
    ids, lengths, logp = _inputs()
    pred, _, _ = model.apply({"params": params}, ids, lengths, base_in, None, logp)
    fvt = _fvt(base_in, ids, lengths)
    if perturb:
        assert np.abs(np.asarray(pred) - fvt).max() > 1e-3
    else:
        for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(params)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(pred, fvt, atol=1e-5)


@pytest.mark.parametrize("untied_base", [False, True])
def test_copy_single_keeps_one_piece_rows_exact(untied_base):
    """With trained (non-zero) heads, one-piece rows still equal their base row exactly;
    multi-piece rows move."""
    cfg = HypernetConfig(num_layers=1, num_heads=2, hidden_dim=16, max_pieces=P,
                         copy_single=True, separate_out_head=True)  # fmt: skip
    base_in = jax.random.normal(jax.random.PRNGKey(0), (V, D))
    base_out = jax.random.normal(jax.random.PRNGKey(1), (V, D)) if untied_base else None
    model = build_hypernet(cfg, D, 2)
    params = init_hypernet(model, jax.random.PRNGKey(2), base_in, base_out)
    params = jax.tree.map(lambda x: x + 0.1, params)  # heads no longer zero
    ids, lengths, logp = _inputs(3, n=20)
    pred_in, pred_out, _ = model.apply({"params": params}, ids, lengths, base_in, base_out, logp)
    one = np.asarray(lengths) == 1
    assert one.any() and (~one).any()
    first = np.asarray(ids)[:, 0]
    np.testing.assert_array_equal(np.asarray(pred_in)[one], np.asarray(base_in)[first[one]])
    out_table = base_in if base_out is None else base_out
    np.testing.assert_array_equal(np.asarray(pred_out)[one], np.asarray(out_table)[first[one]])
    fvt = _fvt(base_in, ids, lengths)
    assert np.abs(np.asarray(pred_in)[~one] - fvt[~one]).max() > 1e-3


def test_correct_fragments_corrects_only_fragment_rows():
    """With `correct_fragments`, one-piece rows whose piece is a character fragment
    (`complete` False) get the net's correction; whole-text one-piece rows stay exact; a
    call without the mask is refused rather than silently copying fragments."""
    cfg = HypernetConfig(num_layers=1, num_heads=2, hidden_dim=16, max_pieces=P,
                         copy_single=True, correct_fragments=True)  # fmt: skip
    base_in = jax.random.normal(jax.random.PRNGKey(0), (V, D))
    model = build_hypernet(cfg, D, 2)
    params = init_hypernet(model, jax.random.PRNGKey(2), base_in)
    params = jax.tree.map(lambda x: x + 0.1, params)
    ids, lengths, logp = _inputs(3, n=40)
    first = np.asarray(ids)[:, 0]
    complete = np.ones(V, bool)
    complete[first[np.asarray(lengths) == 1][::2]] = False  # every other one-piece row's piece
    pred, _, _ = model.apply(
        {"params": params}, ids, lengths, base_in, None, logp, complete=jnp.asarray(complete)
    )
    one = np.asarray(lengths) == 1
    fragment = one & ~complete[first]
    assert fragment.any() and (one & ~fragment).any()
    pred, base = np.asarray(pred), np.asarray(base_in)
    np.testing.assert_array_equal(pred[one & ~fragment], base[first[one & ~fragment]])
    assert np.abs(pred[fragment] - base[first[fragment]]).min() > 1e-3
    with pytest.raises(ValueError, match="correct_fragments"):
        model.apply({"params": params}, ids, lengths, base_in, None, logp)
