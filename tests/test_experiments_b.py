"""The n-shot (clm, and clm vs distill), MiniLM-transfer and apply-to-fine-tuned scripts run end
to end (`--smoke`), plus the two pieces of their own logic: sentence splitting and the body
graft."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize(
    ("script", "outputs"),
    [
        ("nshot.py", ["nshot_smoke.csv", "nshot_smoke.md", "nshot_smoke.png"]),
        (
            "nshot_distill.py",
            [
                "nshot_distill_smoke.csv",
                "nshot_distill_smoke.md",
                "nshot_distill_smoke.png",
                "nshot_distill_smoke_tokens.png",
            ],
        ),
        ("minilm_transfer.py", ["minilm_transfer_smoke.csv", "minilm_transfer_smoke.png"]),
        ("apply_finetuned.py", ["apply_finetuned_smoke.csv", "apply_finetuned_smoke.md"]),
    ],
)
def test_experiment_smoke(script, outputs, tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / script), "--smoke", "--results", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in outputs:
        assert (out / name).stat().st_size > 0, name
    with open(out / outputs[0]) as f:
        rows = list(csv.DictReader(f))
    assert rows
    if "bpb" in rows[0]:
        from tests.test_experiments import check_bpb_table

        means = check_bpb_table(out / outputs[0])
        assert means > 0 or script == "apply_finetuned.py"  # it has no mean rows
    if script == "minilm_transfer.py":
        by = {r["method"]: r for r in rows}
        for r in rows:
            assert -1 <= float(r["mean_cosine"]) <= 1 and 0 <= float(r["top1"]) <= 1, r
        # the tiny BERT keeps more of its sentence embeddings with FVT than with random rows
        assert float(by["fvt"]["mean_cosine"]) > float(by["random"]["mean_cosine"])
        assert float(by["fvt"]["top1"]) > float(by["random"]["top1"])


def test_nshot_csv_has_every_eval_step(tmp_path):
    """The n-shot CSV holds one mean row per (method, eval step) with growing token counts."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "nshot.py"), "--smoke", "--results",
         str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "nshot_smoke.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["lang"] == "mean"]
    for method in ("hypernet", "fvt"):
        mine = [r for r in rows if r["method"] == method]
        assert [int(r["step"]) for r in mine] == [0, 2, 4]
        assert [int(r["tokens"]) for r in mine] == [0, 128, 256]  # 2 × 32 tokens per step
        bpb = [float(r["bpb"]) for r in mine]
        assert bpb[-1] < bpb[0], (method, bpb)  # continued training lowers held-out bpb


def test_nshot_takes_zero_shot_local_targets(tmp_path, monkeypatch):
    """nshot.py --target local-de-16k trains zero_shot.py's tokenizer of that name (under
    the workdir); another name passes through unchanged."""
    sys.path.insert(0, str(ROOT / "experiments"))
    import nshot
    import zero_shot

    trained = []

    def fake(name, workdir):
        trained.append((name, workdir))
        return workdir / "tokenizers" / name

    monkeypatch.setattr(zero_shot, "local_tokenizer", fake)
    assert nshot.resolve_target("local-de-16k", tmp_path) == str(
        tmp_path / "tokenizers" / "local-de-16k"
    )
    assert trained == [("local-de-16k", tmp_path)]
    assert nshot.resolve_target("llama3", tmp_path) == "llama3" and len(trained) == 1


def test_split_sentences():
    sys.path.insert(0, str(ROOT))
    from experiments.minilm_transfer import split_sentences

    text = ("The first sentence is long enough to count here. Short one. "
            "A third sentence follows\nacross a line break, still fine.\n\n"
            "The first sentence is long enough to count here.")  # fmt: skip
    got = split_sentences([text], 10)
    assert got == [
        "The first sentence is long enough to count here.",
        "A third sentence follows across a line break, still fine.",
    ]
    assert split_sentences([text], 1) == got[:1]


def test_graft_body_takes_body_from_finetuned_and_embeddings_from_transferred(tmp_path):
    sys.path.insert(0, str(ROOT))
    from safetensors.numpy import load_file

    from experiments.apply_finetuned import graft_body
    from zett.testing import make_tiny_llama

    a = make_tiny_llama(tmp_path / "a", seed=0)
    b = make_tiny_llama(tmp_path / "b", seed=1)
    out = graft_body(a, b, tmp_path / "out")
    sa, sb, so = (load_file(str(d / "model.safetensors")) for d in (a, b, out))
    assert set(so) == set(sa)
    emb = "model.embed_tokens.weight"
    assert (so[emb] == sa[emb]).all() and not (so[emb] == sb[emb]).all()
    body = [n for n in so if n != emb]
    assert body and all((so[n] == sb[n]).all() for n in body)
    assert (out / "tokenizer.json").read_bytes() == (a / "tokenizer.json").read_bytes()


def test_cells_are_keyed_by_content_of_every_input(tmp_path):
    """Another --hypernet (other weights) is another cell; the same weights elsewhere, and
    the same inputs, name the same cell; any changed option names another one."""
    import argparse

    sys.path.insert(0, str(ROOT / "experiments"))
    import nshot

    from zett.testing import make_tokenizer

    make_tokenizer(tmp_path / "tok", vocab_size=300)
    for name, data in (("a", b"weights-1"), ("b", b"weights-2"), ("c", b"weights-1")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "hypernet.safetensors").write_bytes(data)

    common = dict(base="smollm2", target=str(tmp_path / "tok"), steps=120, lr=3e-4, batch_size=4,
              seq_len=128, eval_every=20, langs=["en"], eval_bytes=2000, seed=0)  # fmt: skip

    def cell(hypernet, **kw):
        args = argparse.Namespace(**{**common, "hypernet": str(tmp_path / hypernet), **kw})
        return nshot.cell_file(tmp_path, "t", "hypernet", nshot.cell_inputs("hypernet", args))

    assert cell("a") == cell("c") and cell("a") != cell("b")
    for change in ({"steps": 121}, {"lr": 1e-4}, {"seed": 1}, {"eval_bytes": 1000}):
        assert cell("a", **change) != cell("a"), change
    fvt_a = nshot.cell_inputs(
        "fvt", argparse.Namespace(**{**common, "hypernet": str(tmp_path / "a")})
    )
    fvt_b = nshot.cell_inputs(
        "fvt", argparse.Namespace(**{**common, "hypernet": str(tmp_path / "b")})
    )
    assert fvt_a == fvt_b  # a baseline's cell does not depend on the hypernet


def test_zero_shot_cells_are_keyed_by_base_target_texts_and_weights(tmp_path):
    """zero_shot.py: a baseline cell changes with the target tokenizer's content and the
    scored texts (not only with its name); a hypernet cell also with the weights."""
    import argparse

    sys.path.insert(0, str(ROOT / "experiments"))
    import zero_shot

    from zett.testing import make_tiny_llama, make_tokenizer

    base = make_tiny_llama(tmp_path / "base")
    make_tokenizer(tmp_path / "t1", vocab_size=300)
    make_tokenizer(tmp_path / "t2", vocab_size=320)
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "hypernet.safetensors").write_bytes(b"w1")
    texts = {"en": ["some text"]}

    def cell(target, method="fvt", texts=texts, weights=None):
        if weights is not None:
            (tmp_path / "h" / "hypernet.safetensors").write_bytes(weights)
        args = argparse.Namespace(base=str(base), results=str(tmp_path), label="hn",
                                  hypernet=str(tmp_path / "h"), workdir=str(tmp_path / "w"))  # fmt: skip
        return zero_shot.cell_path(str(tmp_path / target), method, texts, args)

    assert cell("t1") == cell("t1") and cell("t1") != cell("t2")
    assert cell("t1", texts={"en": ["other text"]}) != cell("t1")
    assert cell("t1", "hypernet") != cell("t1", "hypernet", weights=b"w2")
    assert cell("t1", weights=b"w3") == cell("t1", weights=b"w1")  # baselines ignore weights
    assert cell("missing-tokenizer") is None
    without = cell("t1", "hypernet")
    (tmp_path / "h" / "new_row_prior.json").write_text("{}")
    with_prior = cell("t1", "hypernet")
    assert with_prior != without  # the prior is an input of the hypernet's cells ...
    args = argparse.Namespace(base=str(base), results=str(tmp_path), label="hn",
                              hypernet=str(tmp_path / "h"), workdir=str(tmp_path / "w"),
                              new_row_prior=False)  # fmt: skip
    assert zero_shot.cell_path(str(tmp_path / "t1"), "hypernet", texts, args) == without
    assert cell("t1") == cell("t1", weights=b"w4")  # ... and not of a baseline's


def test_tokenizer_families_hypernet_cells_follow_the_new_row_prior(tmp_path):
    """tokenizer_families.py keys a hypernet's cells by its weights, its config and its
    new-row prior (a refitted prior recomputes them); `--without-prior` keys them as a
    hypernet without one."""
    sys.path.insert(0, str(ROOT / "experiments"))
    import tokenizer_families

    h = tmp_path / "h"
    h.mkdir()
    (h / "hypernet.safetensors").write_bytes(b"w1")
    (h / "hypernet.json").write_text(json.dumps({"step": 1, "provenance": {"note": "a"}}))
    bare = tokenizer_families.hypernet_digest(h)
    (h / "hypernet.json").write_text(json.dumps({"step": 1, "provenance": {"note": "b"}}))
    assert tokenizer_families.hypernet_digest(h) == bare  # provenance changes no number
    (h / "new_row_prior.json").write_text('{"a": 1}')
    fitted = tokenizer_families.hypernet_digest(h)
    assert fitted != bare and set(fitted) == {"weights", "config", "new_row_prior"}
    (h / "new_row_prior.json").write_text('{"a": 2}')
    assert tokenizer_families.hypernet_digest(h) not in (bare, fitted)  # refitted
    assert tokenizer_families.hypernet_digest(h, with_prior=False) == bare


def test_a_cache_miss_names_the_inputs_that_changed(tmp_path):
    """cells.write_cell keeps a cell's inputs beside it; explain_miss compares new inputs
    with those of the cached cells of the same label and method (not of other methods)."""
    sys.path.insert(0, str(ROOT / "experiments"))
    import cells

    old = {"method": "fvt", "base": "b1", "texts": "t1", "target": "x"}
    cached = cells.cell_file(tmp_path, "local-de-16k", "fvt", old)
    cells.write_cell(cached, [{"bpb": 1.0}], old)
    assert json.loads(cached.read_text()) == [{"bpb": 1.0}]
    assert json.loads(cells.inputs_file(cached).read_text()) == old
    other_method = {**old, "method": "fvt-long"}
    cells.write_cell(
        cells.cell_file(tmp_path, "local-de-16k", "fvt-long", other_method), [], other_method
    )

    new = {**old, "base": "b2", "texts": "t2"}
    miss = cells.cell_file(tmp_path, "local-de-16k", "fvt", new)
    assert miss != cached and cells.explain_miss(miss, new) == "base, texts"
    assert cells.explain_miss(cells.cell_file(tmp_path, "llama2", "fvt", new), new) is None
    assert not [p for p in tmp_path.iterdir() if "tmp" in p.name]  # temp files renamed


def test_read_cell_returns_cached_rows_or_says_why_not(tmp_path, capsys):
    """cells.read_cell: a cached cell's rows (its inputs backfilled when it was cached
    before inputs were kept); None when forced; None and the differing inputs on a miss."""
    sys.path.insert(0, str(ROOT / "experiments"))
    import cells

    old = {"method": "hypernet", "hypernet": "h1", "target": "x"}
    cached = cells.cell_file(tmp_path, "llama2", "hypernet", old)
    cached.write_text(json.dumps([{"bpb": 1.5}]))  # a cell from before inputs were kept
    assert cells.read_cell(cached, old, "zero_shot") == [{"bpb": 1.5}]
    assert json.loads(cells.inputs_file(cached).read_text()) == old
    assert cells.read_cell(cached, old, "zero_shot", force=True) is None

    new = {**old, "hypernet": "h2"}
    miss = cells.cell_file(tmp_path, "llama2", "hypernet", new)
    capsys.readouterr()
    assert cells.read_cell(miss, new, "zero_shot") is None
    out = capsys.readouterr().out
    assert "[zero_shot]" in out and miss.name in out and "hypernet" in out.split("differ")[-1]


def test_file_digest_follows_content_of_large_and_small_files(tmp_path):
    """cells.file_digest caches large files by (inode, size, mtime): a rewrite with a new
    mtime is hashed again; small files are always hashed."""
    import os

    sys.path.insert(0, str(ROOT / "experiments"))
    import cells

    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * cells.CACHED_FILE_BYTES)
    os.utime(big, ns=(1, 1))
    first = cells.file_digest(big)
    assert cells.file_digest(big) == first
    big.write_bytes(b"\1" * cells.CACHED_FILE_BYTES)
    os.utime(big, ns=(2, 2))
    assert cells.file_digest(big) != first
    small = tmp_path / "small.bin"
    small.write_bytes(b"a")
    one = cells.file_digest(small)
    small.write_bytes(b"b")
    assert cells.file_digest(small) != one
    assert cells.file_digest(tmp_path / "nope") == "missing"


def test_config_digest_ignores_where_and_with_which_version_it_was_saved(tmp_path):
    """A base's config.json names its source path and the transformers version that wrote
    it; neither changes a result, so two clones of the same model share cached cells,
    while a real setting (rope_theta) still changes the digest."""
    sys.path.insert(0, str(ROOT / "experiments"))
    import cells

    def write(name: str, **extra) -> Path:
        path = tmp_path / name
        cfg = {"hidden_size": 8, "rope_theta": 1e4, **extra}
        path.write_text(json.dumps(cfg))
        return path

    a = write("a.json", transformers_version="5.0.0", _name_or_path="/home/a/.venv/x")
    b = write("b.json", _name_or_path="/work/b/.venv/x", transformers_version="5.25.0")
    assert cells.config_digest(a) == cells.config_digest(b)
    assert cells.config_digest(a) != cells.config_digest(write("c.json", rope_theta=1e5))
    assert cells.config_digest(tmp_path / "nope") == "missing"


def test_row_drift_groups_tokens_by_gpt2_pretokens():
    """experiments/row_drift.py: a token is 'spanning' iff GPT-2 cuts its text in several
    pre-tokens; its drift means are count-weighted within each group."""
    import numpy as np
    from tokenizers import Tokenizer, models

    sys.path.insert(0, str(ROOT / "experiments"))
    import row_drift

    vocab = {"(self": 0, "self": 1, "):\n": 2, "Ġthe": 3}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="self"))
    tok.decoder = None
    spans = row_drift.spans_pretokens(tok, np.arange(4))
    assert spans.tolist() == [True, False, True, False]
    r, w = np.array([0.2, 0.0, 0.1, 0.02]), np.array([1.0, 3.0, 3.0, 1.0])
    assert row_drift.weighted_mean(r, w, spans) == pytest.approx((0.2 + 0.3) / 4)
    assert row_drift.weighted_mean(r, w, ~spans) == pytest.approx(0.02 / 4)
    assert row_drift.weighted_mean(r, w, np.zeros(4, bool)) == 0.0


def test_default_hypernet_stages_end_at_the_shipped_step():
    """experiments/train_default_hypernet.py reproduces hypernets/smollm2: its stages load,
    stop at increasing steps within their configs' `train.steps`, the first carries nothing,
    and the last stops at the step the shipped default's JSON records."""
    from experiments.train_default_hypernet import STAGES
    from zett.config import load_config

    assert not STAGES[0][2]
    untils = [until for _, until, _ in STAGES]
    assert untils == sorted(set(untils))
    for config, until, _ in STAGES:
        assert until <= load_config(ROOT / config, []).train.steps, config
    shipped = json.loads((ROOT / "hypernets" / "smollm2" / "hypernet.json").read_text())
    assert untils[-1] == shipped["step"]


def test_pretoken_boundaries_count_tokens_that_span_a_cut():
    sys.path.insert(0, str(ROOT))
    from experiments.pretoken_boundaries import boundaries, crossing

    text = " os\nimport x(self)"
    # gpt2 cuts before "\n", "import", " x", "(", "self" and ")"; metaspace only before " x"
    assert boundaries(text, "gpt2") == [3, 4, 10, 12, 13, 17]
    assert boundaries(text, "metaspace") == [10]
    spans = [(0, 10), (10, 12), (12, 17), (17, 18)]  # " os\nimport", " x", "(self", ")"
    assert crossing(spans, boundaries(text, "gpt2")) == 2
    assert crossing(spans, boundaries(text, "punct_attach")) == 1  # "(self" is one pre-token
    assert crossing(spans, boundaries(text, "metaspace")) == 0
    assert crossing([(0, 3), (3, 4)], [3]) == 0  # a cut at a token's edge is not inside it


def test_token_bits_split_by_agreement_with_the_base_tokenization():
    sys.path.insert(0, str(ROOT))
    from experiments.token_bits import split_bits

    text = " os\nimport x"  # gpt2 cuts at 3, 4 and 10
    base = [[((0, 3), 1.0), ((3, 4), 1.0), ((4, 10), 2.0), ((10, 12), 4.0)]]
    # the target: " os\nimport" (crosses the cuts), " x" (the base's own span)
    bits = [[((0, 10), 6.0), ((10, 12), 3.0)]]
    row = split_bits([text], bits, base)
    assert row["tokens"] == 2 and row["bytes"] == 12
    assert row["cross_token_share"] == 0.5 and row["same_token_share"] == 0.5
    assert row["cross_bpb"] == 6.0 / 12 and row["same_bpb"] == 3.0 / 12
    assert row["same_original_bpb"] == 4.0 / 12 and row["other_bpb"] == 0.0
    pieces = [[((0, 3), 1.0), ((3, 4), 1.0), ((4, 6), 1.0), ((6, 10), 1.0), ((10, 12), 1.0)]]
    row = split_bits([text], pieces, base)  # "im" + "port": inside a pre-token, cut elsewhere
    assert row["other_token_share"] == 0.4 and row["same_token_share"] == 0.6
    assert row["bpb"] == 5.0 / 12 and row["same_original_bpb"] == 6.0 / 12
    assert row["same_restricted_bpb"] == row["same_bpb"]  # no restricted bits: the bits
    # (span, bits, bits with the softmax over shared rows): only `same` tokens' count
    restricted = [[((0, 10), 6.0, 1.0), ((10, 12), 3.0, 2.5)]]
    row = split_bits([text], restricted, base)
    assert row["same_restricted_bpb"] == 2.5 / 12 and row["same_bpb"] == 3.0 / 12


def test_token_nll_restricted_softmax_drops_the_masked_rows():
    import torch

    sys.path.insert(0, str(ROOT))
    from experiments.token_bits import token_nll

    class Uniform(torch.nn.Module):  # every position: equal logits over 4 rows
        def forward(self, input_ids):
            return type("Out", (), {"logits": torch.zeros(*input_ids.shape, 4)})()

    keep = torch.tensor([True, True, False, False])
    nll = token_nll(Uniform(), [0, 1, 3], None, 8, keep)
    assert sorted(nll) == [1, 2]
    assert abs(nll[1][0] - math.log(4)) < 1e-6 and abs(nll[1][1] - math.log(2)) < 1e-6
    assert nll[2][1] == nll[2][0]  # a token outside `keep` keeps its full NLL


def test_new_row_offset_shifts_only_the_new_rows():
    import torch

    sys.path.insert(0, str(ROOT))
    from experiments.new_row_offset import offset_bits, to_markdown

    class Uniform(torch.nn.Module):  # every position: equal logits over 4 rows
        config = None

        def forward(self, input_ids):
            return type("Out", (), {"logits": torch.zeros(*input_ids.shape, 4)})()

    class Tok:  # no special tokens: chunks start with the text's first id, unscored
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [0, 1, 3]}

    new = torch.tensor([False, False, True, True])
    bits = offset_bits(Uniform(), Tok(), ["abc"], new, [0.0, -100.0])
    assert abs(bits[0] - 2 * 2.0) < 1e-6  # ids 1 and 3 predicted, 2 bits each
    # new rows pushed to ~0: id 1 costs 1 bit (one of two rows), id 3 (new) 100 nats more
    assert abs(bits[1] - (1.0 + 1.0 + 100 / math.log(2))) < 1e-3
    bits = offset_bits(Uniform(), Tok(), ["abc"], new, [math.log(3)])
    p_old, p_new = 1 / 8, 3 / 8  # softmax over (1, 1, 3, 3)
    assert abs(bits[0] - (-math.log2(p_old) - math.log2(p_new))) < 1e-6
    from experiments.new_row_offset import mean_direction

    class Constant(torch.nn.Module):  # every final hidden state is (3, 4)
        def forward(self, input_ids, output_hidden_states=True):
            h = torch.tensor([3.0, 4.0]).expand(*input_ids.shape, 2)
            return type("Out", (), {"hidden_states": (h * 0, h)})()

    v = mean_direction(Constant(), Tok(), ["abc", "de"])
    assert torch.allclose(v, torch.tensor([3.0, 4.0]) / 25)  # h . v = 1 along h's mean
    row = {"target": "t", "method": "hypernet", "lang": "en", "new_share": 0.5, "bpb": [2.0, 1.5]}
    assert "| t | hypernet | en | 50% | 2.000 | **1.500** | -1.00 |" in to_markdown(
        [row], [0.0, -1.0], "cmd"
    )


def test_new_row_offset_fit_points_and_target_labels(tmp_path):
    sys.path.insert(0, str(ROOT))
    from experiments.new_row_offset import (
        fit_points,
        fit_rows,
        leave_one_out,
        sampled_target,
        trained_target,
    )
    from zett.errors import ZettError

    def row(target, n_new, bpb, lang="mean"):
        return {"target": target, "method": "hypernet", "lang": lang, "n_new": n_new,
                "offsets": [-1.0, 0.0, 1.0], "bpb": bpb}  # fmt: skip

    rows = [
        row("bpe-16k", 8000, [1.2, 1.0, 1.2]),  # vertex at 0
        row("bpe-16k", 8000, [9.0, 1.0, 9.0], lang="en"),  # only mean rows count
        row("bpe-128k", 90000, [1.0, 1.1, 1.3]),  # grid end: -1
        row("bpe-256k", 90000, [1.0, 1.1, 1.3]),  # the same tokenizer again: one point
    ]
    points = fit_points(fit_rows(rows))
    assert [n for n, _ in points] == [8000, 90000]
    assert [c for _, c in points] == pytest.approx([0.0, -1.0])
    assert [r["target"] for r in fit_rows(rows, ["bpe-1"])] == ["bpe-16k", "bpe-128k"]
    lines = leave_one_out(fit_rows(rows))  # one point left: a constant fit from the other
    assert lines[2].startswith("| bpe-16k | 8.0k | +0.00 | -1.00 | 1.000 |")
    assert lines[3].startswith("| bpe-128k | 90.0k | -1.00 | +0.00 | 1.100 | 1.100")
    from experiments.new_row_offset import plot_best_offsets

    plot = plot_best_offsets(rows, (0.5, -0.1), tmp_path / "offsets.png")
    assert plot.is_file() and plot.stat().st_size > 0
    for bad in ["bpe-16", "bpe-xk", "wordpiece-16k"]:
        with pytest.raises(ZettError, match="bpe-<N>k"):
            trained_target(bad, tmp_path)
    with pytest.raises(ZettError, match="sampled-<N>k"):
        sampled_target("sampled-16", tmp_path)


def test_negative_strata_counts_what_short_first_dropped():
    from types import SimpleNamespace

    import numpy as np

    sys.path.insert(0, str(ROOT))
    from experiments.negative_strata import strata_counts, to_markdown, under

    # rows: 2 present (offset 0), 4 negatives: ids 12, 13 long (5 pieces), 14, 15 short
    plain = SimpleNamespace(
        vocab_size=100,
        vocab_ids=np.array([10, 11, 12, 13, 14, 15]),
        vocab_mask=np.ones(6, bool),
        logit_offset=np.array([0, 0, 3.0, 3.0, 3.0, 3.0]),
        piece_lengths=np.array([1, 5, 5, 5, 2, 1]),
    )
    split = SimpleNamespace(  # id 13 dropped; the long present token 11 cut to 3 pieces
        vocab_ids=np.array([10, 11, 14, 15, 12, -1]),
        vocab_mask=np.array([True] * 5 + [False]),
        logit_offset=np.array([0, 0, 3.0, 3.0, 3.0, 0]),
    )
    r = strata_counts(plain, split, 3)
    assert r == {"vocab_size": 100, "present": 2, "sampled_short": 2, "sampled_long": 2,
                 "kept_short": 2, "kept_long": 1}  # fmt: skip
    assert under(2, 1) == math.log(2) and under(2, 2) == 0.0 and under(3, 0) == 0.0
    r.update(step=7, short_nats=0.0, long_nats=math.log(2))
    md = to_markdown("c.yaml", [r], "cmd")
    assert "| 7 | 100 | 2 | 2 / 2 | 2 / 1 | 0.00 | 0.69 |" in md
    assert "1 of 1 steps drop negatives" in md


def test_piece_mix_takes_b_rows_for_long_tokens_and_repads(tmp_path):
    """experiments/piece_mix.py: the chosen rows come from b, the rest from a, the padding is
    the mixed rows' mean, other tensors are a's; the smoke run (every row from b) scores b."""
    from safetensors.numpy import load_file, save_file

    sys.path.insert(0, str(ROOT / "experiments"))
    import piece_mix

    n, pad, d = 5, 64 - 5, 3
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        emb = rng.standard_normal((n + pad, d)).astype(np.float32)
        norm = rng.standard_normal(d).astype(np.float32)
        save_file({"embed": emb, "norm": norm}, str(tmp_path / name / "model.safetensors"))
        (tmp_path / name / "config.json").write_text("{}")
    take_b = np.array([True, False, True, False, False])
    out = piece_mix.mix_exports(tmp_path / "a", tmp_path / "b", take_b, tmp_path / "mix")
    a, b, m = (load_file(str(tmp_path / x / "model.safetensors")) for x in ("a", "b", "mix"))
    np.testing.assert_array_equal(m["embed"][:n][take_b], b["embed"][:n][take_b])
    np.testing.assert_array_equal(m["embed"][:n][~take_b], a["embed"][:n][~take_b])
    np.testing.assert_allclose(m["embed"][n:], np.tile(m["embed"][:n].mean(0), (pad, 1)))
    np.testing.assert_array_equal(m["norm"], a["norm"])
    assert (out / "config.json").is_file() and not (tmp_path / "mix.tmp").exists()
    with pytest.raises(ValueError, match="no tensor"):
        piece_mix.mix_exports(tmp_path / "a", tmp_path / "b", np.ones(200, bool), tmp_path / "x")

    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "piece_mix.py"), "--smoke", "--results",
         str(tmp_path / "smoke")], capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "smoke.csv") as f:
        by = {r["model"]: float(r["mean"]) for r in csv.DictReader(f)}
    assert by["a"] != by["b"] and by["1-"] == pytest.approx(by["b"], abs=1e-4)
    assert piece_mix.parse_range("4-") == (4, float("inf"))
    assert piece_mix.parse_range("1-3") == (1, 3)
    with pytest.raises(ValueError, match="--ranges x"):
        piece_mix.parse_range("x")
    bad = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "piece_mix.py"), "--ranges", "x"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2 and "--ranges x" in bad.stderr
