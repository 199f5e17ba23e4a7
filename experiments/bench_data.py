"""Cost of the sampled-tokenizer data pipeline next to one SmolLM2 fwd+bwd step.

    .venv/bin/python experiments/bench_data.py [--quick]

Needs the prepared corpus (`zett prepare corpus`) and SmolLM2 (`zett prepare smollm2`).
Both numbers are measured in the same run on the same CPU; the goal is
`data_s_per_batch / lm_fwd_bwd_s < 0.25` at the default DataConfig (8 × 128 tokens,
vocab 8k–32k sampled from 256 texts, 8192-row subsample, max_pieces 7).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def run(quick: bool = False) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from zett.assets import base_model_dir
    from zett.config import Config
    from zett.data.corpus import load_corpus
    from zett.data.pipeline import BatchIterator
    from zett.tokenizers.surface import load_tokenizer

    cfg = Config()
    data_cfg = cfg.data
    data_cfg.prefetch = 0
    model_dir = base_model_dir("smollm2")
    base_tok = load_tokenizer(model_dir / "tokenizer.json")
    it = BatchIterator(load_corpus()["train"], base_tok, data_cfg, cfg.hypernet.max_pieces)
    it.batch(0)  # warm caches (base surface forms, decomposition cache)
    n = 3 if quick else 10
    t0 = time.perf_counter()
    batches = [it.batch(s) for s in range(1, n + 1)]
    data_s = (time.perf_counter() - t0) / n
    sizes = [b.vocab_size for b in batches]
    # How full the hypernet's [rows, max_pieces] input is: the most that bucketing rows by
    # piece count could save (rows at max_pieces are mostly truncated longer tokens).
    lengths = np.concatenate([b.piece_lengths[b.vocab_mask] for b in batches])

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ids = torch.randint(0, 49152, (data_cfg.batch_size, data_cfg.seq_len))
    reps = 1 if quick else 3
    model(input_ids=ids, labels=ids).loss.backward()  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        model.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
    lm_s = (time.perf_counter() - t0) / reps
    return {
        "batch": [data_cfg.batch_size, data_cfg.seq_len],
        "data_s_per_batch": round(data_s, 3),
        "data_batches_per_s": round(1 / data_s, 3),
        "mean_sampled_vocab": float(sum(sizes) / len(sizes)),
        "mean_pieces_per_row": round(float(lengths.mean()), 2),
        "rows_at_max_pieces": round(float((lengths == cfg.hypernet.max_pieces).mean()), 3),
        "lm_fwd_bwd_s": round(lm_s, 3),
        "ratio_data_to_lm": round(data_s / lm_s, 3),
        "torch_threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
