"""Bits per byte of the frozen base LM with hypernet-predicted embeddings (JAX, in-loop eval).

Same protocol as `zett.eval.bpb` (chunks of ≤ `chunk_tokens` tokens, each a fresh context
opened by one unscored starter token). The starter's *embedding* is the base model's own
row for its context-start token (BOS, else EOS) — exactly what a transfer gives a target
tokenizer whose special tokens are mapped by role — so every target tokenizer and the
original are scored identically. Texts are encoded with no special tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from zett import assets
from zett.config import Config
from zett.eval.bpb import chunk_token_ids
from zett.eval.texts import heldout_texts
from zett.hypernet.model import Hypernet
from zett.hypernet.predict import predict_vocab
from zett.tokenizers.decompose import decompose
from zett.tokenizers.special import special_roles
from zett.tokenizers.surface import load_tokenizer, surface_forms
from zett.train import losses


@dataclass
class _Chunks:
    ids: np.ndarray  # [C, L] int32, starter index V at position 0, padded with 0
    mask: np.ndarray  # [C, L] int32
    n_bytes: int
    n_tokens: int


@dataclass
class EvalTarget:
    """A fixed target tokenizer, decomposed once, with its tokenized held-out texts."""

    name: str
    piece_ids: np.ndarray | None  # [V, P]; None for the original tokenizer (own embeddings)
    piece_lengths: np.ndarray | None
    vocab_size: int
    chunks: dict[str, _Chunks] = field(default_factory=dict)


def tokenize_for_eval(encode, texts: list[str], vocab_size: int, chunk_tokens: int) -> _Chunks:
    """Encode texts (a callable text → ids), chunk them, pad to [C, chunk_tokens + 1]."""
    rows, n_tokens = [], 0
    for text in texts:
        ids = encode(text)
        n_tokens += len(ids)
        rows += [c for c, _ in chunk_token_ids(ids, chunk_tokens, vocab_size)]
    width = chunk_tokens + 1
    ids_arr = np.zeros((len(rows), width), np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        ids_arr[i, : len(r)] = r
        mask[i, : len(r)] = 1
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return _Chunks(ids_arr, mask, n_bytes, n_tokens)


class HeldoutEvaluator:
    """Scores hypernet parameters on fixed target tokenizers × held-out languages."""

    def __init__(
        self,
        base_module,
        base_params,
        base_in: jax.Array,
        base_out: jax.Array | None,
        start_row: int,
        hypernet: Hypernet,
        targets: list[EvalTarget],
        batch_size: int = 4,
        complete: jax.Array | None = None,
    ):
        self.base_in, self.base_out, self.complete = base_in, base_out, complete
        self.start_embedding = base_in[start_row]
        self.hypernet, self.targets, self.batch_size = hypernet, targets, batch_size

        @jax.jit
        def chunk_nll(in_emb, out_emb, ids, mask):
            x = jnp.take(in_emb, ids, axis=0)
            logits = base_module.apply(
                {"params": base_params},
                inputs_embeds=x,
                attention_mask=mask,
                output_embeddings=out_emb,
            )
            total, _ = losses.causal_lm_loss(logits, jnp.minimum(ids, out_emb.shape[0] - 1), mask)
            return total

        self._chunk_nll = chunk_nll

    def _embeddings(self, params, target: EvalTarget) -> tuple[jax.Array, jax.Array]:
        if target.piece_ids is None or target.piece_lengths is None:  # both None: own rows
            in_emb = self.base_in
            out_emb = self.base_in if self.base_out is None else self.base_out
        else:
            pred = predict_vocab(
                self.hypernet,
                params,
                target.piece_ids,
                target.piece_lengths,
                self.base_in,
                self.base_out,
                progress=False,
                complete=self.complete,
            )
            in_emb = jnp.asarray(pred.input)
            out_emb = in_emb if pred.output is None else jnp.asarray(pred.output)
        in_emb = jnp.concatenate([in_emb[: target.vocab_size], self.start_embedding[None]], 0)
        return in_emb, out_emb[: target.vocab_size]

    def evaluate(self, params) -> dict[str, float]:
        """{"<target>/<lang>": bpb, "<target>/mean": mean bpb} for every target."""
        out: dict[str, float] = {}
        for target in self.targets:
            out.update(self.score(target, *self._embeddings(params, target)))
        return out

    def score(self, target: EvalTarget, in_emb: jax.Array, out_emb: jax.Array) -> dict:
        """Bits per byte of `target`'s texts with the given rows: in_emb [V + 1, D] (the
        starter last), out_emb [V, D]; keys as in `evaluate`."""
        out: dict[str, float] = {}
        per_lang = []
        for lang, ch in target.chunks.items():
            total = 0.0
            b = self.batch_size
            for s in range(0, len(ch.ids), b):
                ids, mask = ch.ids[s : s + b], ch.mask[s : s + b]
                pad = b - len(ids)
                if pad:
                    ids = np.pad(ids, ((0, pad), (0, 0)))
                    mask = np.pad(mask, ((0, pad), (0, 0)))
                total += float(self._chunk_nll(in_emb, out_emb, ids, mask))
            bpb = total / max(ch.n_bytes, 1) / math.log(2)
            out[f"{target.name}/{lang}"] = bpb
            per_lang.append(bpb)
        if per_lang:
            out[f"{target.name}/mean"] = float(np.mean(per_lang))
        return out


def make_target(
    name: str,
    tokenizer,
    base_tokenizer,
    max_pieces: int,
    texts: dict[str, list[str]],
    chunk_tokens: int,
    own: bool = False,
) -> EvalTarget:
    """Decompose `tokenizer` through the base once and chunk `texts` with it."""
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    if own:
        ids = lengths = None
    else:
        dec = decompose(surface_forms(tokenizer), base_tokenizer, max_pieces)
        ids, lengths = dec.ids, dec.lengths

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    target = EvalTarget(name, ids, lengths, vocab)
    for lang, lang_texts in texts.items():
        target.chunks[lang] = tokenize_for_eval(encode, lang_texts, vocab, chunk_tokens)
    return target


def build_evaluator(cfg: Config, bundle, hypernet: Hypernet) -> HeldoutEvaluator:
    """The in-loop evaluator of a run: `cfg.train.eval_tokenizers` + the original, scored on
    `cfg`'s held-out texts with the frozen base of `bundle` (`zett.train.loop.load_base`)
    and `hypernet`'s predictions. The Trainer builds it so; experiments call it directly."""
    texts = heldout_texts(
        split="valid", langs=cfg.eval.langs, max_bytes=cfg.train.eval_bytes, corpus=cfg.data.corpus
    )
    chunk = cfg.eval.chunk_tokens
    targets = [
        make_target(
            "original",
            bundle.tokenizer,
            bundle.tokenizer,
            cfg.hypernet.max_pieces,
            texts,
            chunk,
            own=True,
        )
    ]
    for name in cfg.train.eval_tokenizers:
        tok = load_tokenizer(assets.find_tokenizer(name))
        label = assets.target_name(name)  # a path becomes its directory's name
        targets.append(
            make_target(label, tok, bundle.tokenizer, cfg.hypernet.max_pieces, texts, chunk)
        )
    roles = special_roles(bundle.tokenizer)
    start = roles.get("bos", roles.get("eos"))
    if start is None:
        start = int(getattr(bundle.loaded.hf_config, "bos_token_id", None) or 0)
    return HeldoutEvaluator(
        bundle.loaded.module,
        bundle.frozen.params,
        bundle.frozen.base_in,
        bundle.frozen.base_out,
        start,
        hypernet,
        targets,
        cfg.eval.batch_size,
        bundle.frozen.complete,
    )
