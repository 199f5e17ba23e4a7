"""PyTorch inference of a trained zett hypernetwork (no JAX needed).

    from zett.hypernet.torch_port import TorchHypernet
    hn = TorchHypernet.from_dir("hypernets/smollm2")
    e_in, e_out, bias = hn(piece_ids, piece_lengths, base_in)   # torch tensors
    # a hypernet trained with `correct_fragments` also needs the base's complete-text mask:
    # complete = torch.from_numpy(surface_forms(base_tokenizer).complete_text(len(base_in)))
    e_in, e_out, bias = hn(piece_ids, piece_lengths, base_in, complete=complete)

Reads the same directory `zett.hypernet.io.save_hypernet` writes (safetensors + JSON) and
re-implements `zett.hypernet.model.Hypernet.__call__` op for op (pre-LN encoder, Flax's
attention layout `[hidden, heads, head_dim]`, tanh-GELU, LayerNorm eps 1e-6), so the
predictions match the Flax module (tests/test_torch_hypernet.py: ≤ 1e-4). Decomposition
itself is NumPy (`zett.tokenizers.decompose`), so a whole transfer can run without JAX.
It lives beside the Flax module it mirrors; `zett/hypernet/__init__.py` imports nothing,
so importing this module loads torch only, never JAX or Flax.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

LN_EPS = 1e-6  # flax.linen.LayerNorm default


class TorchHypernet:
    """Holds the flat weights (float32) and the hypernet's settings."""

    def __init__(self, weights: dict[str, torch.Tensor], meta: dict):
        self.w, self.meta = weights, meta
        self.cfg, self.dims = meta["hypernet"], meta["dims"]

    @classmethod
    def from_dir(cls, directory: str | Path) -> TorchHypernet:
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = json.loads((directory / "hypernet.json").read_text())
        weights = {
            k: v.float() for k, v in load_file(str(directory / "hypernet.safetensors")).items()
        }
        return cls(weights, meta)

    # -- building blocks (names follow the Flax parameter tree) ----------------------------
    def _dense(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ self.w[f"{name}.kernel"] + self.w[f"{name}.bias"]

    def _ln(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(
            x, x.shape[-1:], self.w[f"{name}.scale"], self.w[f"{name}.bias"], eps=LN_EPS
        )

    def _attention(self, x: torch.Tensor, mask: torch.Tensor, name: str) -> torch.Tensor:
        """x [..., L, H], mask [..., L] (keys that exist) → [..., L, H]."""
        q, k, v = (
            torch.einsum("...lh,hnd->...lnd", x, self.w[f"{name}.{p}.kernel"])
            + self.w[f"{name}.{p}.bias"]
            for p in ("query", "key", "value")
        )
        scores = torch.einsum("...qnd,...knd->...nqk", q / math.sqrt(q.shape[-1]), k)
        big_neg = torch.finfo(scores.dtype).min
        scores = scores.masked_fill(~mask[..., None, None, :], big_neg)
        out = torch.einsum("...nqk,...knd->...qnd", scores.softmax(-1), v)
        return (
            torch.einsum("...qnd,ndh->...qh", out, self.w[f"{name}.out.kernel"])
            + self.w[f"{name}.out.bias"]
        )

    def _keep(self, piece_ids, piece_lengths, complete) -> torch.Tensor | float:
        """1 where the correction applies, 0 on copied rows (`copied_rows` of the JAX
        module, which this file may not import)."""
        if not self.cfg.get("copy_single"):
            return 1.0
        copied = piece_lengths <= 1
        if self.cfg.get("correct_fragments"):
            if complete is None:
                raise ValueError("correct_fragments needs the base's complete_text mask")
            copied = copied & ((piece_lengths == 0) | complete.bool()[piece_ids[:, 0].long()])
        return (~copied).float()[:, None]

    @torch.no_grad()
    def __call__(
        self,
        piece_ids: torch.Tensor,
        piece_lengths: torch.Tensor,
        base_in: torch.Tensor,
        base_out: torch.Tensor | None = None,
        unigram_logprobs: torch.Tensor | None = None,
        complete: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Same contract as the Flax module: [N, P] ids, [N] lengths, [V, D] matrices,
        `complete` [V] bool (whole-UTF-8 base tokens, for `correct_fragments`)."""
        n, p = piece_ids.shape
        mask = torch.arange(p)[None, :] < piece_lengths[:, None]
        maskf = mask.float()[..., None]
        denom = maskf.sum(1).clamp(min=1.0)
        tables = [base_in] if base_out is None else [base_in, base_out]
        pieces, stds, fvt = [], [], []
        for table in tables:
            table = table.float()
            mu, sigma = table.mean(0), table.std(0, unbiased=False) + 1e-6
            emb = table[piece_ids.long()]
            fvt.append((emb * maskf).sum(1) / denom)
            pieces.append((emb - mu) / sigma)
            stds.append(sigma)
        x = self._dense(torch.cat(pieces, -1), "in_proj") + self.w["pos_emb"][:p][None]
        if self.cfg.get("prior_input"):
            if unigram_logprobs is None:
                raise ValueError("prior_input needs unigram_logprobs")
            x[:, 0] = x[:, 0] + self._dense(unigram_logprobs.float()[:, None], "prior_proj")
        attn_mask = mask.clone()
        attn_mask[:, 0] = True
        for i in range(self.dims["layers"]):
            name = f"layer_{i}"
            x = x + self._attention(self._ln(x, f"{name}.ln_attn"), attn_mask, f"{name}.attn")
            h = F.gelu(
                self._dense(self._ln(x, f"{name}.ln_mlp"), f"{name}.mlp_in"), approximate="tanh"
            )
            x = x + self._dense(h, f"{name}.mlp_out")
        h = self._ln(x[:, 0], "ln_final")
        if self.cfg.get("vocab_attention"):
            z = self._attention(
                self._ln(h, "vocab_attn.ln")[None],
                torch.ones(1, n, dtype=torch.bool),
                "vocab_attn.attn",
            )
            h = h + z[0]
        keep = self._keep(piece_ids, piece_lengths, complete)
        pred_in = fvt[0] + stds[0] * self._dense(h, "out_in") * keep
        pred_out = None
        if self.cfg.get("separate_out_head") or base_out is not None:
            k = 1 if base_out is not None else 0
            pred_out = fvt[k] + stds[k] * self._dense(h, "out_out") * keep
        bias = None
        if self.cfg.get("use_unigram_bias"):
            if unigram_logprobs is None:
                raise ValueError("use_unigram_bias needs unigram_logprobs")
            bias = (
                self._dense(h, "out_bias")[:, 0]
                + self.w["unigram_scale"] * unigram_logprobs.float()
            )
        return pred_in, pred_out, bias
