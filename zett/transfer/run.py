"""`zett transfer` and `zett baseline`: load, compute new embeddings, export.

    zett transfer --hypernet CKPT --base smollm2 --target-tokenizer llama2 --output out/
    zett transfer ... --finetuned FT_DIR [--transferred-trained DIR --lam 1.0]
    zett baseline --method fvt --base smollm2 --target-tokenizer llama2 --output out/

Both commands share one pipeline (`run_method`): refuse an existing output before any heavy
work, resolve the base and the target tokenizer (`zett.transfer.load`), build
`TransferInputs`, run the method from `METHODS`, and write the HF directory atomically with
`export_transferred`.

`zett.cli` runs `transfer_command` and `baseline_command` with the typed settings of the
`transfer` and `baseline` subcommands (`zett.config.TransferArgs`, `BaselineArgs`: their
flags, defaults and `--config FILE.yaml`); `add_*_arguments` add those flags to any parser.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from zett.config import BaselineArgs, TransferArgs, add_flags
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
    # the inputs' copy: a method may note what it decided there (the hypernet's prior shift)
    opts = {k: str(v) for k, v in inputs.options.items() if k != "texts"}
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
    new_row_prior: bool = True,
) -> Path:
    """`zett transfer`: hypernet embeddings for the base; with `finetuned`, applied to a
    fine-tuned variant of the base (see `zett.transfer.finetuned`). `new_row_prior`: apply
    the hypernet's new_row_prior.json when it has one (`zett.transfer.prior`)."""
    if finetuned is None:
        if transferred_trained is not None:
            raise ZettError("--transferred-trained needs --finetuned (the model to apply it to)")
        opts = {"hypernet": str(hypernet_dir), "block": block, "new_row_prior": new_row_prior}
        return run_method("hypernet", base, target_tokenizer, output, overwrite, opts)
    return transfer_finetuned(
        hypernet_dir, base, finetuned, target_tokenizer, output, overwrite,
        lam=lam, transferred_trained=transferred_trained, block=block,
        new_row_prior=new_row_prior,
    )  # fmt: skip


# ------------------------------------------------------------------------------ CLI


def add_transfer_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `zett transfer` (generated from `zett.config.TransferArgs`)."""
    add_flags(p, TransferArgs)


def add_baseline_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `zett baseline` (generated from `zett.config.BaselineArgs`)."""
    add_flags(p, BaselineArgs)


def transfer_command(cfg: TransferArgs) -> None:
    out = transfer(
        cfg.hypernet, cfg.base, cfg.target_tokenizer, cfg.output, cfg.overwrite,
        finetuned=cfg.finetuned, lam=cfg.lam, transferred_trained=cfg.transferred_trained,
        block=cfg.block, new_row_prior=not cfg.no_new_row_prior,
    )  # fmt: skip
    print(f"transferred model written to {out}")


def baseline_command(cfg: BaselineArgs) -> None:
    extra: dict[str, Any] = {"omp_k": cfg.omp_k}
    if cfg.hypernet:
        extra["hypernet"] = cfg.hypernet
    out = baseline(
        cfg.method, cfg.base, cfg.target_tokenizer, cfg.output, cfg.overwrite,
        donor=cfg.donor, seed=cfg.seed, max_pieces=cfg.max_pieces, **extra,
    )  # fmt: skip
    print(f"{cfg.method} baseline written to {out}")
