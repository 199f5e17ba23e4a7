"""Every flag of every `zett` subcommand has help text, and the help shows its default."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from zett import cli


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()  # every subcommand with its flags
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _arguments(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions if not isinstance(a, argparse._HelpAction)]


def _name(a: argparse.Action) -> str:
    return "/".join(a.option_strings) or a.dest


def test_every_subcommand_is_walked():
    expected = {"prepare", "train", "export", "transfer", "baseline", "nshot", "eval", "bench"}
    assert set(_subparsers()) >= expected


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_flag_has_help(command: str):
    p = _subparsers()[command]
    missing = [_name(a) for a in _arguments(p) if not (a.help or "").strip()]
    assert not missing, f"zett {command}: flags without help: {missing}"


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_default_is_shown(command: str):
    p = _subparsers()[command]
    formatter = p._get_formatter()
    hidden = [
        _name(a)
        for a in _arguments(p)
        if a.default is not None
        and a.default is not False
        and "default" not in (formatter._get_help_string(a) or "").lower()
    ]
    assert not hidden, f"zett {command}: flags whose help hides the default: {hidden}"
    p.format_help()  # the help strings format (no stray %)


def test_flag_choices_and_defaults_agree_with_the_heavy_modules():
    """The command dataclasses live in the light zett.config; what they restate of the heavy
    modules (baseline registry, nshot constants) must stay equal to it."""
    from zett.config import BASELINE_METHODS, NShotArgs
    from zett.train import nshot
    from zett.transfer.baselines import METHODS

    assert sorted(BASELINE_METHODS) == sorted(METHODS)
    (objective,) = [f for f in dataclasses.fields(NShotArgs) if f.name == "objective"]
    assert tuple(objective.metadata["choices"]) == nshot.OBJECTIVES
    cfg = NShotArgs(model="m", output="o", steps=1)
    assert tuple(cfg.langs) == nshot.DEFAULT_LANGS
    assert (
        f"default {nshot.EMBEDDING_LR} embeddings only, {nshot.ALL_WEIGHTS_LR} all"
        in ([f for f in dataclasses.fields(NShotArgs) if f.name == "lr"][0].metadata["help"])
    )


def test_help_imports_no_heavy_module():
    import subprocess
    import sys

    code = "import sys; from zett import cli; cli.build_parser(); print(sorted(sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy = [m for m in ("jax", "flax", "torch", "transformers") if f"'{m}'" in res.stdout]
    assert not heavy, heavy
