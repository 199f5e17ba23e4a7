"""The new-row prior (zett.transfer.prior): fit, shift, where it goes, its file, transfer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.test_transfer_baselines import make_target
from zett.errors import ZettError
from zett.testing import make_hypernet
from zett.transfer import prior
from zett.transfer.prior import NewRowPrior


def _prior(a=1.0, b=-0.5, n_min=10, n_max=1000, d=4) -> NewRowPrior:
    return NewRowPrior(a, b, n_min, n_max, np.arange(1, d + 1, dtype=np.float32))


def test_fit_recovers_a_line_in_log_count():
    points = [(n, 2.0 - 0.7 * math.log(n)) for n in (16_000, 40_000, 90_000, 200_000)]
    a, b = prior.fit(points)
    assert a == pytest.approx(2.0) and b == pytest.approx(-0.7)


def test_fit_of_one_count_is_a_constant():
    assert prior.fit([(500, -1.0), (500, -0.5)]) == (-0.75, 0.0)
    with pytest.raises(ZettError, match="no"):
        prior.fit([])


def test_best_offset_refines_the_grid_minimum():
    offsets = [-2.0, -1.0, 0.0, 1.0]
    bpb = [(c + 0.6) ** 2 for c in offsets]  # minimum at -0.6, between grid points
    assert prior.best_offset(offsets, bpb) == pytest.approx(-0.6)
    assert prior.best_offset(offsets, [4, 3, 2, 1]) == 1.0  # at the grid's end: the end


def test_shift_is_clipped_to_the_fitted_range_and_zero_without_new_rows():
    p = _prior()
    assert p.shift(0) == 0.0
    assert p.shift(100) == pytest.approx(1.0 - 0.5 * math.log(100))
    assert p.shift(1) == p.shift(10) and p.shift(10**6) == p.shift(1000)


def test_apply_moves_only_new_rows_into_the_right_matrix():
    p = _prior(a=2.0, b=0.0)
    new = np.array([True, False, True])
    inp, out, bias = np.zeros((3, 4), np.float32), np.ones((3, 4), np.float32), np.zeros(3)
    tied_in, tied_out, _ = p.apply(new, inp, None)  # tied: the one matrix
    assert tied_out is None
    np.testing.assert_allclose(tied_in[0], 2.0 * p.direction)
    np.testing.assert_array_equal(tied_in[1], 0.0)
    untied_in, untied_out, _ = p.apply(new, inp, out)  # untied: the output only
    np.testing.assert_array_equal(untied_in, inp)
    np.testing.assert_allclose(untied_out[2], 1.0 + 2.0 * p.direction)
    np.testing.assert_array_equal(untied_out[1], 1.0)
    b_in, b_out, b_bias = p.apply(new, inp, out, bias)  # a bias takes it exactly
    np.testing.assert_array_equal(b_out, out)
    np.testing.assert_array_equal(b_bias, [2.0, 0.0, 2.0])
    assert not inp.any() and (out == 1).all() and not bias.any()  # inputs untouched


def test_save_load_round_trip_and_missing_file(tmp_path):
    assert prior.load(tmp_path) is None
    p = _prior()
    prior.save(tmp_path, p, {"command": "test"})
    back = prior.load(tmp_path, d_model=4)
    assert (back.a, back.b, back.n_min, back.n_max) == (p.a, p.b, p.n_min, p.n_max)
    np.testing.assert_allclose(back.direction, p.direction)
    assert json.loads((tmp_path / prior.FILE).read_text())["fit"] == {"command": "test"}


@pytest.mark.parametrize(
    "body, match",
    [
        ("{not json", "not a new-row prior"),
        ('{"a": 1, "b": 0, "n_min": 1, "n_max": 2}', "key 'direction'"),
        ('{"a": 1, "b": 0, "n_min": 1, "n_max": 2, "direction": [1, 2]}', "width 4"),
        ('{"a": 1, "b": 0, "n_min": 5, "n_max": 2, "direction": [1, 2, 3, 4]}', "order"),
    ],
)
def test_a_bad_prior_file_is_a_clear_error(tmp_path, body, match):
    (tmp_path / prior.FILE).write_text(body)
    with pytest.raises(ZettError, match=match) as e:
        prior.load(tmp_path, d_model=4)
    assert str(tmp_path / prior.FILE) in str(e.value)


def _hypernet_rows(base_dir: Path, target: Path, hn: Path, use_prior: bool):
    from zett.models.load import load_model
    from zett.tokenizers.surface import load_tokenizer
    from zett.transfer.baselines import METHODS, build_inputs

    inputs = build_inputs(
        load_model(base_dir),
        load_tokenizer(base_dir / "tokenizer.json"),
        load_tokenizer(target),
        {"hypernet": str(hn), "progress": False, "new_row_prior": use_prior},
    )
    return METHODS["hypernet"](inputs), inputs


def test_transfer_shifts_new_rows_by_the_prior(tiny_llama_dir, tmp_path):
    target = make_target(tmp_path / "target", "bpe", byte_level=False, vocab=420)
    hn = make_hypernet(tiny_llama_dir, tmp_path / "hn")
    plain, inputs = _hypernet_rows(tiny_llama_dir, target, hn, use_prior=True)  # no file yet
    d = plain.input.shape[1]
    direction = np.linspace(-1, 1, d).astype(np.float32)
    prior.save(hn, NewRowPrior(-1.5, 0.0, 1, 10**6, direction), {})
    shifted, _ = _hypernet_rows(tiny_llama_dir, target, hn, use_prior=True)
    ignored, _ = _hypernet_rows(tiny_llama_dir, target, hn, use_prior=False)
    np.testing.assert_array_equal(ignored.input, plain.input)
    moved = plain.input if plain.output is None else plain.output
    after = shifted.input if plain.output is None else shifted.output
    changed = np.abs(after - moved).max(axis=1) > 0
    shared = inputs.shared[0]
    assert not changed[shared].any()  # copied rows keep their logits
    fixed = set(shared.tolist()) | set(inputs.special) | set(np.flatnonzero(
        inputs.decomposition().neutral[: inputs.n_target]).tolist())  # fmt: skip
    rows = [i for i in range(inputs.n_target) if i not in fixed]
    assert rows and changed[rows].all()
    want = np.broadcast_to(-1.5 * direction, (len(rows), d))
    np.testing.assert_allclose(after[rows] - moved[rows], want, atol=1e-5)


def test_exported_provenance_records_the_shift(tiny_llama_dir, tmp_path):
    from zett.transfer import run

    target = make_target(tmp_path / "target", "bpe", byte_level=False, vocab=420)
    hn = make_hypernet(tiny_llama_dir, tmp_path / "hn")
    prior.save(hn, NewRowPrior(-0.75, 0.0, 1, 10**6, np.zeros(32, np.float32)), {})
    out = run.transfer(hn, tiny_llama_dir, target, tmp_path / "out")
    options = json.loads((out / "zett_transfer.json").read_text())["options"]
    assert options["new_row_shift"] == "-0.75" and options["new_row_prior"] == "True"
