"""`zett.distill`: the ALM loss equals a hand-computed binarised KL, log1mexp is stable, chunk
log-probs are per-chunk sums of token log-probs, a teacher distilled into itself has loss 0,
and a tiny student with another tokenizer lowers the loss on a fixed batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from zett import distill


def test_alm_loss_hand_example():
    import torch

    teacher = torch.tensor([math.log(0.5), math.log(0.2)], dtype=torch.float64)
    student = torch.tensor([math.log(0.25), math.log(0.2)], dtype=torch.float64)
    # chunk 0: KL(Bern(.5) || Bern(.25)) = .5 ln(.5/.25) + .5 ln(.5/.75); chunk 1: equal → 0
    expected = (0.5 * math.log(2.0) + 0.5 * math.log(0.5 / 0.75) + 0.0) / 2
    assert float(distill.alm_loss(teacher, student)) == pytest.approx(expected, rel=1e-12)
    # temperature 2: p = sqrt of the probabilities
    a, b = math.sqrt(0.5), math.sqrt(0.25)
    kl = a * math.log(a / b) + (1 - a) * math.log((1 - a) / (1 - b))
    assert float(distill.alm_loss(teacher[:1], student[:1], tau=2.0)) == pytest.approx(kl)


def test_log1mexp_is_stable_and_gradients_finite():
    import torch

    x = torch.tensor([-1e-6, -1e-3, -0.5, -0.6, -0.7, -1.0, -20.0, -200.0], dtype=torch.float64)
    # near 0: log(-expm1 x); far below: log(1 - e^x) ≈ -e^x - e^(2x)/2 (series)
    ref = [math.log(-math.expm1(v)) for v in x.tolist()[:4]]
    ref += [math.log1p(-math.exp(-0.7)), math.log1p(-math.exp(-1.0))]
    ref += [-math.exp(-20.0) - math.exp(-40.0) / 2, -math.exp(-200.0)]
    got = distill.log1mexp(x).tolist()
    assert got[:4] == pytest.approx(ref[:4], rel=1e-12)
    assert got[4:] == pytest.approx(ref[4:], rel=1e-12)
    s = torch.tensor([0.0, -1e-9, -3.0, -400.0], requires_grad=True)
    t = torch.tensor([-1e-9, 0.0, -400.0, -3.0])
    loss = distill.alm_loss(t, s)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    assert float(distill.alm_loss(t, t)) == pytest.approx(0.0, abs=1e-7)


def test_chunk_logprobs_are_segment_sums():
    import torch

    lp = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -5.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    segs = [np.array([0, 0, 1]), np.array([2, 2])]
    assert distill.chunk_logprobs(lp, mask, segs, 3).tolist() == [-3.0, -3.0, -9.0]


def test_text_windows_tile_each_text(tiny_llama_dir):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny_llama_dir / "tokenizer.json"))
    texts = ["The quick brown fox jumps over the lazy dog. " * 6, "short", "def f(x): return x"]
    wins = distill.text_windows(tok, texts, 8)
    assert "".join(wins) == "".join(texts)
    assert all(len(tok.encode(w, add_special_tokens=False).ids) <= 16 for w in wins)


@pytest.fixture(scope="module")
def pair(tiny_llama_dir, tmp_path_factory):
    """Teacher: the tiny llama (512-token BPE). Student: another random tiny llama whose
    tokenizer is a 400-token BPE."""
    from zett.eval.bpb import load_causal_lm
    from zett.testing import make_tiny_llama

    student_dir = make_tiny_llama(tmp_path_factory.mktemp("student"), vocab_size=400, seed=1)
    return load_causal_lm(tiny_llama_dir), load_causal_lm(student_dir)


TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b",
    "Zürich und café: Größere Übungen.",
]


def test_self_distillation_has_zero_loss(pair):
    (teacher, tok), _ = pair
    backend = tok.backend_tokenizer
    batch = distill.make_batch(TEXTS, backend, backend, 1, 1)
    n_tokens = sum(len(r) for r in batch.student_ids)
    assert n_tokens - 8 <= batch.n_chunks <= n_tokens  # a chunk per token or per character
    loss = distill.distill_loss(teacher, teacher, batch, 1, 1)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)


def test_distill_loss_decreases_on_a_fixed_batch(pair):
    import torch

    (teacher, t_tok), (student, s_tok) = pair
    batch = distill.make_batch(TEXTS, t_tok.backend_tokenizer, s_tok.backend_tokenizer, 1, 1)
    assert 0 < batch.n_chunks < sum(len(r) for r in batch.teacher_ids) + 1
    emb = student.get_input_embeddings().weight
    for p in student.parameters():
        p.requires_grad_(p is emb)
    opt = torch.optim.Adam([emb], lr=3e-2)
    losses = []
    for _ in range(8):
        loss = distill.distill_loss(student, teacher, batch, 1, 1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in teacher.parameters())


def test_no_starter_drops_the_first_chunk(pair):
    (teacher, tok), _ = pair
    backend = tok.backend_tokenizer
    batch = distill.make_batch(TEXTS, backend, backend, None, 1)
    starts = np.cumsum([0] + [len(r) for r in batch.student_ids])[:-1]
    assert not batch.usable[starts].any() and batch.usable.sum() == batch.n_chunks - len(TEXTS)
    lp, mask = distill.token_logprobs(teacher, batch.teacher_ids, None)
    assert (lp[:, 0] == 0).all() and mask.sum() == sum(len(r) for r in batch.teacher_ids)
