"""The shared ends of the model families (`zett.models.layers`): input lookup and LM head.

`embed_inputs` and `lm_logits` are what every family calls with `inputs_embeds=` /
`output_embeddings=`, so their contract is pinned here once; the families' own tests and
tests/test_golden.py pin the numbers end to end.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict

from zett.models import masked_mean, sentence_embedding
from zett.models.layers import Embedder, default_positions, embed_inputs, lm_logits

VOCAB, D = 11, 4


class Tiny(nn.Module):
    """Lookup → LM head, nothing in between: just the two shared ends."""

    tie: bool
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, input_ids=None, *, inputs_embeds=None, output_embeddings=None,
                 output_bias=None):  # fmt: skip
        table = Embedder(VOCAB, D, dtype=self.dtype, name="embed")
        x = embed_inputs(table, input_ids, inputs_embeds)
        return lm_logits(
            x,
            table if self.tie else None,
            vocab_size=VOCAB,
            output_embeddings=output_embeddings,
            output_bias=output_bias,
            untied_name="head",
        )


def _paths(params) -> set[str]:
    return {"/".join(k) for k in flatten_dict(nn.meta.unbox(params))}


IDS = jnp.array([[1, 2, 3], [4, 5, 0]])


@pytest.mark.parametrize(("tie", "paths"), [(True, {"embed/embedding"}),
                                            (False, {"embed/embedding", "head/embedding"})])  # fmt: skip
def test_tied_head_reads_the_input_table_untied_has_its_own(tie, paths):
    model = Tiny(tie)
    params = model.init(jax.random.PRNGKey(0), IDS)["params"]
    assert _paths(params) == paths
    p = nn.meta.unbox(params)
    table = p["embed"]["embedding"]
    head = table if tie else p["head"]["embedding"]
    assert head.shape == (VOCAB, D)
    logits = model.apply({"params": params}, IDS)
    np.testing.assert_allclose(logits, jnp.take(table, IDS, axis=0) @ head.T, rtol=1e-6)


def test_output_embeddings_replace_the_head_and_bias_is_added():
    model = Tiny(tie=False)
    out, bias = jnp.ones((7, D)), jnp.arange(7.0)
    params = model.init(jax.random.PRNGKey(0), IDS, output_embeddings=out)["params"]
    assert _paths(params) == {"embed/embedding"}  # the own head is never created
    x = jnp.take(nn.meta.unbox(params)["embed"]["embedding"], IDS, axis=0)
    logits = model.apply({"params": params}, IDS, output_embeddings=out, output_bias=bias)
    assert logits.shape == (2, 3, 7)
    np.testing.assert_allclose(logits, x @ out.T + bias, rtol=1e-6)


def test_inputs_embeds_replace_the_lookup_and_logits_stay_float32():
    model = Tiny(tie=True, dtype=jnp.bfloat16)
    params = model.init(jax.random.PRNGKey(0), IDS)["params"]
    embeds = jnp.full((2, 3, D), 0.5, jnp.float32)
    with_ids = model.apply({"params": params}, IDS, inputs_embeds=embeds)
    without = model.apply({"params": params}, inputs_embeds=embeds)
    assert with_ids.dtype == jnp.float32
    np.testing.assert_array_equal(with_ids, without)  # inputs_embeds win over input_ids
    with pytest.raises(ValueError, match="input_ids or inputs_embeds"):
        model.apply({"params": params})


def test_default_positions_count_from_zero_in_every_row():
    np.testing.assert_array_equal(default_positions(2, 3), [[0, 1, 2], [0, 1, 2]])


def test_masked_mean_is_plain_sentence_embedding_is_its_unit_vector():
    hidden = jnp.array([[[2.0, 0.0], [4.0, 0.0], [100.0, 100.0]]])
    mask = jnp.array([[1, 1, 0]])
    np.testing.assert_allclose(masked_mean(hidden, mask), [[3.0, 0.0]])
    np.testing.assert_allclose(sentence_embedding(hidden, mask), [[1.0, 0.0]])
    np.testing.assert_allclose(masked_mean(hidden, None), [[106 / 3, 100 / 3]], rtol=1e-6)


def test_sentence_embedding_of_an_empty_row_has_a_finite_gradient():
    """A row whose mask is all 0 pools to 0; its gradient must be 0, not NaN (it would
    poison the whole batch's update)."""
    hidden = jnp.array([[[3.0, 4.0], [1.0, 1.0]], [[2.0, 0.0], [5.0, 5.0]]])
    mask = jnp.array([[1, 0], [0, 0]])
    grad = jax.grad(lambda h: sentence_embedding(h, mask).sum())(hidden)
    assert np.isfinite(np.asarray(grad)).all()
    np.testing.assert_allclose(grad[1], 0.0)
    np.testing.assert_allclose(sentence_embedding(hidden, mask)[0], [0.6, 0.8], rtol=1e-6)
