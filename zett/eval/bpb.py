"""Bits per UTF-8 byte: the tokenizer-independent score every figure in zett is reported in.

A model with tokenizer A and the same model transferred to tokenizer B split a text into
different numbers of tokens, so per-token losses are not comparable; the total negative
log-likelihood of the *text* is. We divide it by the text's UTF-8 byte count and by ln 2:

    bpb = sum_over_text_tokens(-log p(token | context)) / n_bytes / ln 2

The protocol, identical for every model and tokenizer:

- Each text is tokenized on its own with no special tokens (`add_special_tokens=False`).
- Its ids are cut into chunks of at most `chunk_tokens` (511) text tokens; every chunk is a
  fresh context (no state carried over), so a 512-position model sees at most 512 inputs.
- **Context starter.** Each chunk is preceded by one *starter* token that is not scored, so
  every text token, including the chunk's first, is predicted. The starter is chosen by
  `context_start_id`, the same rule for every model: the tokenizer's BOS, else the model
  config's BOS, else the tokenizer's EOS, else the config's EOS -- the first of these that is
  a special token of the tokenizer (an id from a stale config that means an ordinary word in
  a new vocabulary is never used). SmolLM2 gets `<|im_start|>` (id 1) this way.
- **No starter** (none of the four exists): chunks overlap by one token -- chunk k's first
  input is the last text token of chunk k-1 and is not scored again -- so only the first
  token of each text is unpredicted. Its loss is missing from the NLL (bpb is then slightly
  optimistic); `BpbResult.n_unpredicted` counts such tokens so a reader can see it happened.
- Tokens per byte counts all text tokens (no special tokens), predicted or not.

Reported figures use float32: `evaluate_model` loads weights in float32 and the loss is
always computed from float32 logits.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zett.assets import resolve_model_dir
from zett.atomic import atomic_write_text
from zett.data.budget import truncate_to_bytes
from zett.errors import ZettError
from zett.eval.texts import heldout_texts, load_texts_file

DEFAULT_CHUNK_TOKENS = 511
AUTO = "auto"  # `start_id` sentinel: choose the starter with `context_start_id`


@dataclass(frozen=True)
class BpbResult:
    """Scores of one model on one set of texts (usually one language or code).

    `n_tokens` counts every text token (for tokens per byte); `n_predicted` those whose
    loss is in `nll_nats` (`n_tokens - n_unpredicted`).
    """

    bpb: float
    nll_nats: float
    n_bytes: int
    n_tokens: int
    tokens_per_byte: float
    n_predicted: int = 0
    n_unpredicted: int = 0
    n_chunks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvalReport:
    """Per-language results of one model plus their unweighted (macro) means.

    The mean is over languages, not over bytes, so a language with more held-out text
    does not dominate it.
    """

    model_dir: str
    per_lang: dict[str, BpbResult]
    start_id: int | None
    start_token: str | None
    chunk_tokens: int
    mean_bpb: float = field(init=False)
    mean_tokens_per_byte: float = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.per_lang)
        self.mean_bpb = sum(r.bpb for r in self.per_lang.values()) / n
        self.mean_tokens_per_byte = sum(r.tokens_per_byte for r in self.per_lang.values()) / n

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_dir": self.model_dir,
            "protocol": {
                "chunk_tokens": self.chunk_tokens,
                "context_start_id": self.start_id,
                "context_start_token": self.start_token,
                "dtype": "float32",
            },
            "per_lang": {lang: r.to_dict() for lang, r in self.per_lang.items()},
            "mean": {"bpb": self.mean_bpb, "tokens_per_byte": self.mean_tokens_per_byte},
        }


def chunk_token_ids(
    ids: list[int], chunk_tokens: int, start_id: int | None
) -> list[tuple[list[int], int]]:
    """Cut one text's token ids into model inputs; each is a fresh context.

    Returns `(input_ids, n_predicted)` pairs. The model predicts `input_ids[1:]` from
    `input_ids[:-1]`, so `n_predicted == len(input_ids) - 1` and `len(input_ids) <=
    chunk_tokens + 1` always. With `start_id`, every chunk is `[start_id] + ids[s:s+chunk]`
    and every id is predicted exactly once. Without it, chunk k starts with the last id of
    chunk k-1 as its unscored context, so every id but `ids[0]` is predicted exactly once.
    Pure Python (no torch) so the JAX trainer's eval shares it.
    """
    if chunk_tokens < 1:
        raise ZettError(f"chunk_tokens must be >= 1, got {chunk_tokens}; set eval chunk_tokens")
    chunks: list[tuple[list[int], int]] = []
    if start_id is not None:
        for s in range(0, len(ids), chunk_tokens):
            piece = ids[s : s + chunk_tokens]
            chunks.append(([start_id, *piece], len(piece)))
        return chunks
    for s in range(1, len(ids), chunk_tokens):
        piece = ids[s - 1 : s + chunk_tokens]
        chunks.append((list(piece), len(piece) - 1))
    return chunks


def _first_id(value: Any) -> int | None:
    """Config token ids may be an int, a list of ints (Llama-3 EOS) or None."""
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value else None
    return None if value is None else int(value)


def context_start_id(tokenizer: Any, config: Any = None) -> int | None:
    """The unscored token that opens every chunk (module docstring: "Context starter").

    Candidates in order: tokenizer BOS, config BOS, tokenizer EOS, config EOS. A candidate is
    accepted only if the tokenizer marks that id as a special token, so a config copied from
    the original model cannot smuggle in an id that is an ordinary token of a new vocabulary.
    """
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    special |= {
        i
        for i, tok in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items()
        if tok.special
    }
    candidates = [
        getattr(tokenizer, "bos_token_id", None),
        getattr(config, "bos_token_id", None),
        getattr(tokenizer, "eos_token_id", None),
        getattr(config, "eos_token_id", None),
    ]
    for cand in candidates:
        cid = _first_id(cand)
        if cid is not None and cid in special:
            return cid
    return None


def encode_texts(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Token ids of each text without special tokens (no BOS/EOS/CLS/SEP added)."""
    if not texts:
        return []
    enc = tokenizer(list(texts), add_special_tokens=False, verbose=False)
    return [list(ids) for ids in enc["input_ids"]]


def _chunk_nll(model: Any, chunks: list[list[int]], device: Any) -> list[float]:
    """Summed NLL (nats) of `chunk[1:]` given its prefix, for a batch of chunks.

    Right-padded to the longest chunk with an attention mask; positions of real tokens are
    untouched by the padding because the mask is causal. Logits are `[batch, seq, vocab]`,
    upcast to float32 before the softmax; the cross-entropy runs per row to keep only one
    `[seq, vocab]` log-softmax alive at a time.
    """
    import torch
    import torch.nn.functional as F

    width = max(len(c) for c in chunks)
    ids = torch.zeros((len(chunks), width), dtype=torch.long)
    mask = torch.zeros((len(chunks), width), dtype=torch.long)
    for row, chunk in enumerate(chunks):
        ids[row, : len(chunk)] = torch.tensor(chunk, dtype=torch.long)
        mask[row, : len(chunk)] = 1
    ids, mask = ids.to(device), mask.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits
    out = []
    for row, chunk in enumerate(chunks):
        n = len(chunk)
        row_logits = logits[row, : n - 1].float()
        nll = F.cross_entropy(row_logits, ids[row, 1:n], reduction="sum")
        out.append(float(nll))
    return out


def bits_per_byte(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    batch_size: int = 8,
    start_id: int | None | str = AUTO,
    progress: bool = False,
    desc: str = "bpb",
) -> BpbResult:
    """Bits per byte of a causal LM (any HF `*ForCausalLM`) on `texts` with its tokenizer.

    `start_id="auto"` picks the starter with `context_start_id(tokenizer, model.config)`;
    pass an id or None to override (then say so next to the numbers). Chunks are sorted by
    length before batching so padding is small; the result does not depend on the order
    or `batch_size` beyond float32 rounding. The model's own dtype is the caller's choice;
    reported figures load it in float32 (`evaluate_model`).
    """
    import torch
    from tqdm import tqdm

    if not texts:
        raise ZettError("no texts to evaluate; give at least one non-empty text")
    if batch_size < 1:
        raise ZettError(f"batch_size must be >= 1, got {batch_size}")
    if start_id == AUTO:
        start_id = context_start_id(tokenizer, getattr(model, "config", None))
    assert start_id is None or isinstance(start_id, int)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    if n_bytes == 0:
        raise ZettError("all texts are empty; give texts with at least one byte")
    token_ids = encode_texts(tokenizer, texts)
    n_tokens = sum(len(ids) for ids in token_ids)
    chunks = [c for ids in token_ids for c, _ in chunk_token_ids(ids, chunk_tokens, start_id)]
    n_predicted = sum(len(c) - 1 for c in chunks)
    chunks.sort(key=len, reverse=True)

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    nll = 0.0
    try:
        with torch.no_grad(), tqdm(total=len(chunks), desc=desc, disable=not progress) as bar:
            for b in range(0, len(chunks), batch_size):
                batch = chunks[b : b + batch_size]
                nll += sum(_chunk_nll(model, batch, device))
                bar.update(len(batch))
    finally:
        model.train(was_training)
    return BpbResult(
        bpb=nll / n_bytes / math.log(2),
        nll_nats=nll,
        n_bytes=n_bytes,
        n_tokens=n_tokens,
        tokens_per_byte=n_tokens / n_bytes,
        n_predicted=n_predicted,
        n_unpredicted=n_tokens - n_predicted,
        n_chunks=len(chunks),
    )


def tokens_per_byte(tokenizer: Any, texts: list[str]) -> float:
    """Text tokens (no special tokens) per UTF-8 byte; divide two of them for length reduction."""
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    if n_bytes == 0:
        raise ZettError("all texts are empty; give texts with at least one byte")
    return sum(len(ids) for ids in encode_texts(tokenizer, texts)) / n_bytes


def load_causal_lm(model_dir: str | Path, device: str | None = None) -> tuple[Any, Any]:
    """Model (float32, eval mode) and tokenizer of a HF directory, offline only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_dir(model_dir)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(  # its `.to` wrapper hides the signature
        str(path), dtype=torch.float32, local_files_only=True
    )
    model.to(device).eval()
    return model, tokenizer


def evaluate_model(
    model_dir: str | Path,
    texts_by_lang: dict[str, list[str]],
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    batch_size: int = 8,
    device: str | None = None,
    progress: bool = True,
) -> EvalReport:
    """Bpb and tokens/byte per language of the model in `model_dir` (or `smollm2`)."""
    if not texts_by_lang:
        raise ZettError("no languages to evaluate; give at least one language with texts")
    for lang, texts in texts_by_lang.items():
        if not any(texts):
            raise ZettError(f"language {lang!r} has no non-empty texts; drop it or add texts")
    model, tokenizer = load_causal_lm(model_dir, device)
    start = context_start_id(tokenizer, model.config)
    per_lang = {
        lang: bits_per_byte(
            model,
            tokenizer,
            texts,
            chunk_tokens=chunk_tokens,
            batch_size=batch_size,
            start_id=start,
            progress=progress,
            desc=f"bpb {lang}",
        )
        for lang, texts in texts_by_lang.items()
    }
    start_token = None if start is None else tokenizer.convert_ids_to_tokens(start)
    return EvalReport(str(model_dir), per_lang, start, start_token, chunk_tokens)


def run_eval(
    model_dir: str | Path,
    langs: list[str] | None = None,
    max_bytes: int = 50_000,
    output_json: str | Path | None = None,
    texts_path: str | Path | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    batch_size: int = 8,
    device: str | None = None,
) -> dict[str, Any]:
    """`zett eval`: held-out texts (corpus test split, or `texts_path`) → report dict/JSON.

    Prints one line per language and the mean; writes `output_json` atomically if given.
    """
    import json

    if texts_path is not None:
        texts = load_texts_file(texts_path)
        if langs:
            missing = sorted(set(langs) - set(texts))
            if missing:
                raise ZettError(
                    f"{texts_path}: no texts for {', '.join(missing)}; have {sorted(texts)}"
                )
            texts = {lang: texts[lang] for lang in langs}
        texts = {lang: truncate_to_bytes(t, max_bytes) for lang, t in texts.items()}
    else:
        texts = heldout_texts(split="test", langs=langs, max_bytes=max_bytes)
    report = evaluate_model(
        model_dir, texts, chunk_tokens=chunk_tokens, batch_size=batch_size, device=device
    )
    for lang, r in report.per_lang.items():
        print(f"{lang:>8}  bpb {r.bpb:.4f}  tokens/byte {r.tokens_per_byte:.4f}  ({r.n_bytes} B)")
    print(f"{'mean':>8}  bpb {report.mean_bpb:.4f}  tokens/byte {report.mean_tokens_per_byte:.4f}")
    result = report.to_dict()
    if output_json is not None:
        atomic_write_text(Path(output_json), json.dumps(result, indent=2) + "\n")
    return result
