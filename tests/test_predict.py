"""predict_vocab (blocked, length-sorted, trimmed) equals one unblocked hypernet call."""

from __future__ import annotations

import jax
import numpy as np

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
