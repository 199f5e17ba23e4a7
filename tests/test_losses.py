"""Loss functions against direct NumPy formulas (property-tested)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from zett.models import sentence_embedding
from zett.train import losses


def _np_logsoftmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(2, 6), st.integers(2, 9), st.integers(0, 10_000))
def test_causal_lm_loss_matches_numpy(b, t, v, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(b, t, v)).astype(np.float32)
    ids = rng.integers(0, v, size=(b, t))
    mask = (rng.random((b, t)) < 0.8).astype(np.int32)
    total, count = losses.causal_lm_loss(jnp.asarray(logits), jnp.asarray(ids), jnp.asarray(mask))
    lp = _np_logsoftmax(logits)
    want, n = 0.0, 0
    for i in range(b):
        for j in range(t - 1):
            if mask[i, j] and mask[i, j + 1]:
                want -= lp[i, j, ids[i, j + 1]]
                n += 1
    assert int(count) == n
    np.testing.assert_allclose(float(total), want, rtol=1e-5, atol=1e-5)


def test_aux_loss_masks_slots():
    pred = jnp.arange(12.0).reshape(4, 3)
    target = jnp.zeros((2, 3))
    total, n = losses.aux_embedding_loss(pred, jnp.array([1, 3]), target, jnp.array([1, 0]))
    assert float(n) == 1
    np.testing.assert_allclose(float(total), np.mean(np.arange(3.0, 6.0) ** 2))


def test_vocab_bias_removes_padding_rows():
    logits = jnp.zeros((1, 2, 4)) + losses.vocab_bias(None, jnp.array([1, 1, 0, 0], bool))
    probs = np.exp(_np_logsoftmax(np.asarray(logits)))
    np.testing.assert_allclose(probs[0, 0], [0.5, 0.5, 0, 0], atol=1e-6)


def test_sentence_agreement_zero_for_identical():
    h = jnp.asarray(np.random.default_rng(0).normal(size=(3, 5, 4)), jnp.float32)
    m = jnp.ones((3, 5))
    p = sentence_embedding(h, m)
    total, n = losses.sentence_agreement_loss(p, p, jnp.ones(3))
    assert abs(float(total)) < 1e-5 and float(n) == 3
    total2, _ = losses.sentence_agreement_loss(p, -p, jnp.ones(3))
    np.testing.assert_allclose(float(total2), 6.0, rtol=1e-5)
