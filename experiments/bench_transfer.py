"""Transfer cost: SmolLM2-135M → Qwen3's 151k-token vocabulary with a SmolLM2-sized hypernet.

Run:      .venv/bin/python experiments/bench_transfer.py [--quick]
Needs:    `zett prepare smollm2` and qwen3 (../shared/tokenizers or `zett prepare tokenizers`).
Expected: goal < 40 s for the whole transfer on a 2-core CPU, measured 39.4 s on 2026-12-04
          (decompose 4.0, hypernet 32.3, export 3.1; base load 5.5 s more, not counted). The
          hypernet runs only rows of >= 2 pieces (~112k of 151k), its last layer only at
          position 0. `--quick` predicts only 8,192 random tokens and extrapolates
          linearly, compile included (no export).

The hypernet is randomly initialised with the compose CPU config's `hypernet:` section
(configs/smollm2_cpu_compose.yaml: 2 layers, width 576, 9 heads, max_pieces 7): speed does not depend
on training. Peak memory is the process's
`ru_maxrss` (includes the loaded model and the tokenizers).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

QUICK_TOKENS = 8192


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run(quick: bool = False) -> dict:
    import jax

    from zett.config import load_config
    from zett.hypernet.io import save_untrained
    from zett.models.load import get_embeddings
    from zett.transfer.baselines import METHODS, build_inputs
    from zett.transfer.export import export_transferred
    from zett.transfer.load import load_pair

    t0 = time.perf_counter()
    base_dir, loaded, base_tok, target_path, target_tok = load_pair("smollm2", "qwen3")
    base_in = get_embeddings(loaded, loaded.params)[0]
    t_load = time.perf_counter() - t0

    cfg = load_config(
        Path(__file__).resolve().parents[1] / "configs" / "smollm2_cpu_compose.yaml"
    ).hypernet
    work = Path(tempfile.mkdtemp(prefix="bench_transfer_"))
    heads = loaded.hf_config.num_attention_heads
    hn_dir = save_untrained(
        work / "hypernet", cfg, base_in, None, heads, "smollm2", dtype="bfloat16"
    )

    t0 = time.perf_counter()
    inputs = build_inputs(loaded, base_tok, target_tok, {"hypernet": str(hn_dir)})
    decomp = inputs.decomposition(cfg.max_pieces)
    t_decompose = time.perf_counter() - t0
    n_target = inputs.n_target

    t0 = time.perf_counter()
    if quick:  # a random sample of tokens, so the piece-count mix is Qwen3's
        import jax.numpy as jnp
        import numpy as np

        from zett.hypernet.predict import predict_vocab

        sel = np.random.default_rng(0).permutation(n_target)[:QUICK_TOKENS]
        module, hparams = _loaded_hypernet(hn_dir)
        logp = np.zeros(len(sel), np.float32)
        predict_vocab(
            module, hparams, decomp.ids[sel], decomp.lengths[sel], jnp.asarray(base_in), None,
            logp, 4096, False, inputs.base_forms.complete_text(base_in.shape[0]),
        )  # fmt: skip
        t_hypernet = (time.perf_counter() - t0) * n_target / len(sel)
    else:
        new = METHODS["hypernet"](inputs)
        t_hypernet = time.perf_counter() - t0
    t_export = 0.0
    if not quick:
        t0 = time.perf_counter()
        export_transferred(base_dir, loaded, target_path, new, work / "out", method="hypernet")
        t_export = time.perf_counter() - t0
    total = t_decompose + t_hypernet + t_export
    return {
        "target_vocab": n_target,
        "base_width": int(base_in.shape[1]),
        "hypernet_layers": cfg.num_layers,
        "max_pieces": cfg.max_pieces,
        "n_truncated": int(decomp.n_truncated),
        "load_s": round(t_load, 2),
        "decompose_s": round(t_decompose, 2),
        "hypernet_s": round(t_hypernet, 2),
        "hypernet_extrapolated": quick,
        "export_s": round(t_export, 2),
        "transfer_s_excluding_load": round(total, 2),
        "goal_s": 40,
        "peak_rss_mb": round(_rss_mb(), 1),
        "devices": str(jax.devices()),
    }


def _loaded_hypernet(hn_dir: Path):
    from zett.hypernet.io import load_hypernet

    module, params, _ = load_hypernet(hn_dir)
    return module, params


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
