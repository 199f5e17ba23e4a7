"""predict_vocab (blocked, length-sorted, trimmed) equals one unblocked hypernet call."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from zett.config import HypernetConfig
from zett.hypernet.model import build_hypernet, init_hypernet
from zett.hypernet.predict import predict_vocab


def test_blocked_prediction_matches_direct_call():
    v, d, p = 37, 16, 5
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, p + 1, v).astype(np.int32)
    ids = rng.integers(0, 60, (v, p)).astype(np.int32)
    ids = np.where(np.arange(p)[None] < lengths[:, None], ids, 0)
    base_in = jax.random.normal(jax.random.PRNGKey(0), (60, d))
    cfg = HypernetConfig(
        num_layers=1, num_heads=2, hidden_dim=16, max_pieces=p, separate_out_head=True
    )
    model = build_hypernet(cfg, d, 2)
    params = init_hypernet(model, jax.random.PRNGKey(1), base_in)
    params["out_in"]["kernel"] = jax.random.normal(
        jax.random.PRNGKey(2), params["out_in"]["kernel"].shape
    )
    logp = rng.normal(size=v).astype(np.float32)
    want_in, want_out, _ = model.apply({"params": params}, ids, lengths, base_in, None, logp)
    got = predict_vocab(model, params, ids, lengths, base_in, None, logp, block=8, progress=False)
    np.testing.assert_allclose(got.input, want_in, atol=1e-5)
    np.testing.assert_allclose(got.output, want_out, atol=1e-5)


@pytest.mark.parametrize(
    "untied, separate_out, unigram_bias, fragments",
    [
        (False, False, False, False),
        (True, False, False, False),
        (False, True, False, False),
        (True, False, True, False),
        (False, False, False, True),
        (True, True, False, True),
    ],
)
def test_copy_single_rows_skip_the_network_with_the_same_result(
    untied, separate_out, unigram_bias, fragments
):
    # With copy_single, one-piece and empty rows are filled from the base tables instead of
    # being run; the result must equal one full hypernet call over every row (with a unigram
    # bias every row runs, since the bias of a one-piece row is predicted).
    v, d, p, base_v = 41, 16, 4, 50
    rng = np.random.default_rng(3)
    lengths = rng.integers(0, p + 1, v).astype(np.int32)
    lengths[:3] = [0, 1, 1]
    ids = rng.integers(0, base_v, (v, p)).astype(np.int32)
    ids = np.where(np.arange(p)[None] < lengths[:, None], ids, 0)
    base_in = jax.random.normal(jax.random.PRNGKey(0), (base_v, d))
    base_out = jax.random.normal(jax.random.PRNGKey(5), (base_v, d)) if untied else None
    cfg = HypernetConfig(
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        max_pieces=p,
        copy_single=True,
        separate_out_head=separate_out,
        use_unigram_bias=unigram_bias,
        correct_fragments=fragments,
    )
    # `correct_fragments`: every third base token is a character fragment (runs the net).
    complete = None if not fragments else np.arange(base_v) % 3 != 0
    model = build_hypernet(cfg, d, 2)
    params = init_hypernet(model, jax.random.PRNGKey(1), base_in, base_out)
    for head in ("out_in", "out_out", "out_bias"):
        if head in params:
            params[head]["kernel"] = jax.random.normal(
                jax.random.PRNGKey(2), params[head]["kernel"].shape
            )
    logp = rng.normal(size=v).astype(np.float32)
    want_in, want_out, want_bias = model.apply(
        {"params": params}, ids, lengths, base_in, base_out, logp, complete=complete
    )
    got = predict_vocab(model, params, ids, lengths, base_in, base_out, logp, 8, False, complete)
    np.testing.assert_allclose(got.input, want_in, atol=1e-5)
    if complete is None or complete[ids[1, 0]]:
        np.testing.assert_array_equal(got.input[1], np.asarray(base_in)[ids[1, 0]])
    np.testing.assert_array_equal(got.input[0], 0.0)
    assert (got.output is None) == (want_out is None)
    if want_out is not None:
        np.testing.assert_allclose(got.output, want_out, atol=1e-5)
    assert (got.bias is None) == (want_bias is None)
    if want_bias is not None:
        np.testing.assert_allclose(got.bias, want_bias, atol=1e-5)
