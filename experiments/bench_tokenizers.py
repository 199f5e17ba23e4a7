"""Benchmark: surface forms and decomposition of Qwen3's 151k vocabulary through SmolLM2.

Run: `.venv/bin/python experiments/bench_tokenizers.py [--quick]` → JSON on stdout.
Expected on the 2-core CI CPU: surface_forms(Qwen3) < 1.5 s, decompose < 10 s (goal),
a second decompose (cached pieces) < 0.5 s. Needs qwen3 (../shared or `zett prepare tokenizers`) and `zett prepare
smollm2`; `quick` skips the cached re-run and shared_tokens.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def run(quick: bool = False) -> dict:
    from zett.assets import base_model_dir, find_tokenizer
    from zett.tokenizers.decompose import decompose, shared_tokens
    from zett.tokenizers.surface import load_tokenizer, surface_forms

    t0 = time.perf_counter()
    qwen = load_tokenizer(find_tokenizer("qwen3"))
    smol = load_tokenizer(base_model_dir("smollm2"))
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()
    qf = surface_forms(qwen)
    t_surface = time.perf_counter() - t0
    sf = surface_forms(smol)

    t0 = time.perf_counter()
    d = decompose(qf, smol, max_pieces=7)
    t_decompose = time.perf_counter() - t0
    out = {
        "target": "qwen3",
        "base": "smollm2",
        "target_vocab": len(qf),
        "load_s": round(t_load, 3),
        "surface_forms_s": round(t_surface, 3),
        "decompose_s": round(t_decompose, 3),
        "n_truncated": d.n_truncated,
        "mean_pieces": round(float(d.lengths.mean()), 3),
        "single_piece_frac": round(float(np.mean(d.lengths == 1)), 4),
    }
    if not quick:
        t0 = time.perf_counter()
        decompose(qf, smol, max_pieces=7)
        out["decompose_cached_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        t_ids, _ = shared_tokens(qf, sf)
        out["shared_tokens_s"] = round(time.perf_counter() - t0, 3)
        out["n_shared"] = len(t_ids)
    return out


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
