"""Cross-tokenizer distillation by approximate likelihood matching (ALM) for `zett nshot`.

Teacher: the original base model with its own tokenizer (frozen, no grad). Student: the
transferred model with the new tokenizer. Both read the same text window; the window is cut
into chunks at the bytes where both tokenizations have a token boundary
(`zett.tokenizers.align`), and the student's log-likelihood of each chunk (sum of its
token log-probs) is trained to match the teacher's (Minixhofer et al. 2025, "Cross-Tokenizer
Distillation via Approximate Likelihood Matching").

Loss (`alm_loss`), the exact choice made here: with `a = log p_t(chunk) / tau` (teacher) and
`b = log p_s(chunk) / tau` (student), both clamped to `<= -1e-6`, the binarised KL

    KL(Bernoulli(e^a) || Bernoulli(e^b)) = e^a (a - b) + (1 - e^a) (log1mexp(a) - log1mexp(b))

with `log1mexp(x) = log(1 - e^x)` computed as `log(-expm1(x))` for `x > -ln 2` and
`log1p(-exp(x))` otherwise (Mächler's stable split), averaged over the chunks of the batch.
It is 0 iff the chunk probabilities agree, and its gradient pushes `b` toward `a` from
either side. `tau = 1` by default (no temperature).

Context: every window is preceded by the model's context starter (`context_start_id`, as in
the bits-per-byte protocol) so every token, the first included, has a log-prob. A side with
no starter cannot score its first token; chunks containing a side's token 0 are then left
out of the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from zett.tokenizers.align import align_encodings

LOG_HALF = -math.log(2.0)
MAX_LOGP = -1e-6  # chunk log-probs are clamped to this (p < 1) before log1mexp


def log1mexp(x: Any) -> Any:
    """`log(1 - exp(x))` for `x < 0`, stable at both ends (torch)."""
    import torch

    return torch.where(
        x > LOG_HALF,
        torch.log(-torch.expm1(x)),
        torch.log1p(-torch.exp(torch.minimum(x, x.new_tensor(LOG_HALF)))),
    )


def alm_loss(teacher_lp: Any, student_lp: Any, tau: float = 1.0) -> Any:
    """Mean binarised KL between teacher and student chunk probabilities (module docstring).
    `teacher_lp`, `student_lp`: `[n_chunks]` chunk log-probs (nats); the teacher's is detached."""
    import torch

    a = torch.clamp(teacher_lp.detach() / tau, max=MAX_LOGP)
    b = torch.clamp(student_lp / tau, max=MAX_LOGP)
    p = torch.exp(a)
    kl = p * (a - b) + (1.0 - p) * (log1mexp(a) - log1mexp(b))
    return kl.mean()


def token_logprobs(model: Any, ids: list[list[int]], start_id: int | None) -> tuple[Any, Any]:
    """Log-prob of each token of each row given the row's prefix (and the starter).

    Rows are right-padded; returns `[batch, max_len]` log-probs (0 at padding, and at token 0
    when `start_id` is None) and the `[batch, max_len]` bool mask of real tokens."""
    import torch

    device = next(model.parameters()).device
    lead = 0 if start_id is None else 1
    width = max(len(r) for r in ids) + lead
    inp = torch.zeros((len(ids), width), dtype=torch.long)
    att = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        if start_id is not None:  # lead == 1
            inp[i, 0] = start_id
        inp[i, lead : lead + len(row)] = torch.tensor(row, dtype=torch.long)
        att[i, : lead + len(row)] = 1
    inp, att = inp.to(device), att.to(device)
    logits = model(input_ids=inp, attention_mask=att).logits.float()
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    target = inp[:, 1:]
    lp = torch.gather(logp, 2, target.unsqueeze(-1)).squeeze(-1) * att[:, 1:]
    if lead:
        return lp, att[:, 1:].bool()
    zero = torch.zeros((len(ids), 1), dtype=lp.dtype, device=device)
    return torch.cat([zero, lp], dim=1), att.bool()


@dataclass
class DistillBatch:
    """A batch of text windows tokenized by both sides, with chunk segment ids per token.

    `seg_*[i]`: for row i, the global chunk index of each of its tokens (len = its tokens).
    `usable[c]`: chunk c enters the loss (False for a chunk holding a starter-less side's
    token 0)."""

    teacher_ids: list[list[int]]
    student_ids: list[list[int]]
    seg_teacher: list[np.ndarray]
    seg_student: list[np.ndarray]
    n_chunks: int
    usable: np.ndarray

    @property
    def student_tokens(self) -> int:
        return sum(len(r) for r in self.student_ids)


def make_batch(
    texts: list[str],
    teacher_tok: Any,
    student_tok: Any,
    teacher_start: int | None = 0,
    student_start: int | None = 0,
) -> DistillBatch:
    """Tokenize `texts` with both `tokenizers.Tokenizer`s (no special tokens) and align them.
    `*_start` only matter through being None (no starter: token 0's chunk is unusable)."""
    encs_t = teacher_tok.encode_batch(texts, add_special_tokens=False)
    encs_s = student_tok.encode_batch(texts, add_special_tokens=False)
    t_ids, s_ids, seg_t, seg_s, usable = [], [], [], [], []
    offset = 0
    for text, et, es in zip(texts, encs_t, encs_s):
        al = align_encodings(text, et, es)
        if al.n_chunks == 0:
            continue
        t_ids.append(list(et.ids))
        s_ids.append(list(es.ids))
        seg_t.append(offset + np.repeat(np.arange(al.n_chunks), al.a[:, 1] - al.a[:, 0]))
        seg_s.append(offset + np.repeat(np.arange(al.n_chunks), al.b[:, 1] - al.b[:, 0]))
        ok = np.ones(al.n_chunks, dtype=bool)
        if teacher_start is None or student_start is None:
            ok[0] = False
        usable.append(ok)
        offset += al.n_chunks
    return DistillBatch(
        t_ids, s_ids, seg_t, seg_s, offset,
        np.concatenate(usable) if usable else np.zeros(0, dtype=bool),
    )  # fmt: skip


def chunk_logprobs(token_lp: Any, mask: Any, segs: list[np.ndarray], n_chunks: int) -> Any:
    """`[n_chunks]` sums of `token_lp[row, :len]` per chunk (segment sum via index_add)."""
    import torch

    seg = torch.from_numpy(np.concatenate(segs)).to(token_lp.device)
    flat = token_lp[mask]  # row-major: row 0's tokens, then row 1's, ...
    return torch.zeros(n_chunks, dtype=flat.dtype, device=flat.device).index_add(0, seg, flat)


def distill_loss(
    student: Any,
    teacher: Any,
    batch: DistillBatch,
    student_start: int | None,
    teacher_start: int | None,
    tau: float = 1.0,
) -> Any:
    """ALM loss of `student` against `teacher` (forward under no_grad) on `batch`."""
    import torch

    with torch.no_grad():
        t_lp, t_mask = token_logprobs(teacher, batch.teacher_ids, teacher_start)
        t_chunks = chunk_logprobs(t_lp, t_mask, batch.seg_teacher, batch.n_chunks)
    s_lp, s_mask = token_logprobs(student, batch.student_ids, student_start)
    s_chunks = chunk_logprobs(s_lp, s_mask, batch.seg_student, batch.n_chunks)
    keep = torch.from_numpy(batch.usable).to(s_chunks.device)
    return alm_loss(t_chunks.to(s_chunks.device)[keep], s_chunks[keep], tau)


def text_windows(tokenizer: Any, texts: list[str], tokens_per_window: int) -> list[str]:
    """Cut each text into consecutive windows of `tokens_per_window` tokens of `tokenizer`
    (a `tokenizers.Tokenizer`): a window runs from its first token's start character to the
    next window's first token's start character (the last one to the end of the text), so
    the windows tile each text; a tail shorter than half a window joins the window before it
    (so a window has up to 1.5 × `tokens_per_window` tokens)."""
    windows: list[str] = []
    for text, enc in zip(texts, tokenizer.encode_batch(texts, add_special_tokens=False)):
        starts = [s for s, _ in enc.offsets]
        n = len(starts)
        for i in range(0, n, tokens_per_window):
            if n - i < max(tokens_per_window // 2, 1) and i > 0:
                break
            lo = 0 if i == 0 else starts[i]
            j = i + tokens_per_window
            hi = starts[j] if j < n and n - j >= max(tokens_per_window // 2, 1) else len(text)
            if hi > lo:
                windows.append(text[lo:hi])
            if hi == len(text):
                break
    return windows
