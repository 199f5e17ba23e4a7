"""The PyTorch hypernet (zett/hypernet/torch_port.py) predicts what the Flax one does (≤ 1e-4)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from zett.config import HypernetConfig
from zett.hypernet import io
from zett.hypernet.model import build_hypernet, init_hypernet
from zett.hypernet.torch_port import TorchHypernet

D, V, P, N = 16, 60, 5, 23


@pytest.mark.parametrize(
    "switches",
    [{}, {"separate_out_head": True, "use_unigram_bias": True, "prior_input": True},
     {"vocab_attention": True}, {"copy_single": True, "separate_out_head": True},
     {"copy_single": True, "correct_fragments": True}],
    ids=["default", "heads+priors", "vocab_attention", "copy_single", "correct_fragments"],
)  # fmt: skip
@pytest.mark.parametrize("untied", [False, True])
def test_torch_matches_flax(switches, untied, tmp_path):
    cfg = HypernetConfig(num_layers=2, num_heads=2, hidden_dim=16, max_pieces=P, **switches)
    base_in = jax.random.normal(jax.random.PRNGKey(0), (V, D)) * 0.05
    base_out = jax.random.normal(jax.random.PRNGKey(1), (V, D)) if untied else None
    model = build_hypernet(cfg, D, 2)
    params = init_hypernet(model, jax.random.PRNGKey(2), base_in, base_out)
    # Non-zero heads, so the test sees more than the FVT part.
    params = jax.tree.map(
        lambda x: x + 0.05 * jax.random.normal(jax.random.PRNGKey(x.size), x.shape), params
    )
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, P + 1, N).astype(np.int32)
    ids = np.where(np.arange(P)[None] < lengths[:, None], rng.integers(0, V, (N, P)), 0)
    ids = ids.astype(np.int32)
    logp = rng.normal(size=N).astype(np.float32)
    complete = np.arange(V) % 3 != 0  # every third base token a character fragment
    want = model.apply({"params": params}, ids, lengths, base_in, base_out, logp, complete=complete)
    out = io.save_hypernet(
        tmp_path / "h", params, cfg, model.dims, {"base_fingerprint": "x"}, dtype="float32"
    )
    hn = TorchHypernet.from_dir(out)
    as_t = lambda a: None if a is None else torch.from_numpy(np.array(a))  # noqa: E731
    got = hn(as_t(ids), as_t(lengths), as_t(base_in), as_t(base_out), as_t(logp), as_t(complete))
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            np.testing.assert_allclose(g.numpy(), np.asarray(w), atol=1e-4, rtol=1e-4)
