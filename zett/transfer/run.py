"""`zett transfer` and `zett baseline`: load, compute new embeddings, export.

    zett transfer --hypernet CKPT --base smollm2 --target-tokenizer llama2 --output out/
    zett transfer ... --finetuned FT_DIR [--transferred-trained DIR --lam 1.0]
    zett baseline --method fvt --base smollm2 --target-tokenizer llama2 --output out/

Both commands share one pipeline (`run_method`): refuse an existing output before any heavy
work, resolve the base and the target tokenizer (`zett.transfer.load`), build
`TransferInputs`, run the method from `METHODS`, and write the HF directory atomically with
`export_transferred`.

`zett.cli` wires `add_transfer_arguments`/`transfer_command` and
`add_baseline_arguments`/`baseline_command` into the `transfer` and `baseline` subcommands.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from zett.errors import ZettError
from zett.transfer.baselines import METHODS, build_inputs
from zett.transfer.export import export_transferred
from zett.transfer.finetuned import transfer_finetuned
from zett.transfer.load import check_output, load_pair


def run_method(
    method: str,
    base: str | Path,
    target_tokenizer: str | Path,
    output: str | Path,
    overwrite: bool = False,
    options: dict[str, Any] | None = None,
) -> Path:
    """The whole pipeline for one method; returns the output directory."""
    if method not in METHODS:
        raise ZettError(f"--method {method!r}: unknown; choose one of {', '.join(METHODS)}")
    output = check_output(output, overwrite)
    start = time.perf_counter()
    base_dir, loaded, base_tok, target_path, target_tok = load_pair(base, target_tokenizer)
    inputs = build_inputs(loaded, base_tok, target_tok, options)
    new = METHODS[method](inputs)
    seconds = time.perf_counter() - start
    opts = {k: str(v) for k, v in (options or {}).items() if k != "texts"}
    return export_transferred(
        base_dir,
        loaded,
        target_path,
        new,
        output,
        overwrite,
        method=method,
        provenance={
            "options": opts,
            "n_shared": int(len(inputs.shared[0])),
            "seconds": round(seconds, 2),
        },  # fmt: skip
    )


def baseline(
    method: str,
    base: str | Path,
    target_tokenizer: str | Path,
    output: str | Path,
    overwrite: bool = False,
    donor: str | Path | None = None,
    seed: int = 0,
    max_pieces: int | None = None,
    texts: list[str] | None = None,
    **options: Any,
) -> Path:
    """`zett baseline --method NAME`: random | mean | fvt | lexical | focus | omp (| hypernet)."""
    opts: dict[str, Any] = {"seed": seed, **options}
    if donor is not None:
        opts["donor"] = str(donor)
    if max_pieces is not None:
        opts["max_pieces"] = max_pieces
    if texts is not None:
        opts["texts"] = texts
    return run_method(method, base, target_tokenizer, output, overwrite, opts)


def transfer(
    hypernet_dir: str | Path,
    base: str | Path,
    target_tokenizer: str | Path,
    output: str | Path,
    overwrite: bool = False,
    finetuned: str | Path | None = None,
    lam: float = 1.0,
    transferred_trained: str | Path | None = None,
    block: int = 4096,
) -> Path:
    """`zett transfer`: hypernet embeddings for the base; with `finetuned`, applied to a
    fine-tuned variant of the base (see `zett.transfer.finetuned`)."""
    if finetuned is None:
        if transferred_trained is not None:
            raise ZettError("--transferred-trained needs --finetuned (the model to apply it to)")
        opts = {"hypernet": str(hypernet_dir), "block": block}
        return run_method("hypernet", base, target_tokenizer, output, overwrite, opts)
    return transfer_finetuned(
        hypernet_dir, base, finetuned, target_tokenizer, output, overwrite,
        lam=lam, transferred_trained=transferred_trained, block=block,
    )  # fmt: skip


# ------------------------------------------------------------------------------ CLI


def _common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", default="smollm2", help="`smollm2`, `minilm` or a HF model dir")
    p.add_argument(
        "--target-tokenizer",
        required=True,
        help="tokenizer.json, a dir holding one, or a shared name (llama2, llama3, qwen3, ...)",
    )
    p.add_argument("--output", required=True, help="HF model directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")


def add_transfer_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of `zett transfer` (call from cli.py on the subparser)."""
    p.add_argument("--hypernet", required=True, help="hypernet dir (hypernet.json + weights)")
    _common_arguments(p)
    p.add_argument(
        "--finetuned",
        help="apply to this fine-tuned variant of --base (same architecture and tokenizer)",
    )
    p.add_argument(
        "--transferred-trained",
        help="a transferred --base further trained on the target tokenizer (n-shot); its "
        "non-embedding update, scaled by --lam, is added to --finetuned",
    )
    p.add_argument("--lam", type=float, default=1.0, help="task-vector scale λ (default 1.0)")
    p.add_argument("--block", type=int, default=4096, help="tokens per hypernet call")


def add_baseline_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of `zett baseline` (call from cli.py on the subparser)."""
    p.add_argument(
        "--method", required=True, choices=sorted(METHODS), help="embedding initialization"
    )
    _common_arguments(p)
    p.add_argument("--donor", help="omp: a HF model dir that already uses the target tokenizer")
    p.add_argument("--hypernet", help="method hypernet: the hypernet dir")
    p.add_argument("--seed", type=int, default=0, help="random: the sampling seed")
    p.add_argument(
        "--max-pieces",
        type=int,
        default=None,
        help="fvt/lexical: average only the first N pieces of each token (default: all)",
    )
    p.add_argument("--omp-k", type=int, default=64, help="omp: atoms per token")


def transfer_command(args: argparse.Namespace) -> None:
    out = transfer(
        args.hypernet, args.base, args.target_tokenizer, args.output, args.overwrite,
        finetuned=args.finetuned, lam=args.lam, transferred_trained=args.transferred_trained,
        block=args.block,
    )  # fmt: skip
    print(f"transferred model written to {out}")


def baseline_command(args: argparse.Namespace) -> None:
    extra: dict[str, Any] = {"omp_k": args.omp_k}
    if args.hypernet:
        extra["hypernet"] = args.hypernet
    out = baseline(
        args.method, args.base, args.target_tokenizer, args.output, args.overwrite,
        donor=args.donor, seed=args.seed, max_pieces=args.max_pieces, **extra,
    )  # fmt: skip
    print(f"{args.method} baseline written to {out}")
