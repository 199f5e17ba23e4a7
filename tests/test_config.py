"""Configs: every file in configs/ loads; bad input is one clear line with exit code 2."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import typing
from pathlib import Path

import pytest

from zett import cli
from zett.config import (
    BaselineArgs,
    BenchArgs,
    Config,
    EvalArgs,
    NShotArgs,
    TransferArgs,
    command_args,
    load_config,
    parse_overrides,
)
from zett.errors import ZettError

ROOT = Path(__file__).parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 8


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads_and_documents_itself(path: Path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    header = path.read_text().splitlines()[:4]
    assert header[0].startswith("# "), "first line must say what the config runs"
    text = "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))
    assert "Run:" in text and "Expected:" in text
    assert cfg.train.steps > 0 and cfg.data.batch_size > 0


def test_base_inheritance_and_overrides():
    root = Path(__file__).parents[1] / "configs"
    cfg = load_config(root / "ablation_lw0.yaml", ["--train.steps", "7", "--data.langs={en: 2}"])
    assert cfg.train.lw == 0.0
    assert cfg.train.steps == 7
    assert cfg.data.langs == {"en": 2.0}
    assert cfg.hypernet.num_layers == load_config(root / "smollm2_cpu.yaml").hypernet.num_layers


def test_parse_overrides_types():
    assert parse_overrides(["--a.b", "3", "--a.c=x", "--d", "[1, 2]"]) == {
        "a": {"b": 3, "c": "x"},
        "d": [1, 2],
    }


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (["--train.stepz", "3"], "train.stepz"),
        (["--train.steps", "many"], "train.steps"),
        (["--nope.x", "1"], "nope"),
        (["--train.lw", "true"], "train.lw"),
        (["--train", "3"], "train"),
    ],
)
def test_bad_overrides_name_the_key(overrides, needle):
    with pytest.raises(ZettError, match=needle.replace(".", r"\.")):
        load_config(None, overrides)


def test_unknown_key_in_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("# x\ntrain:\n  stepz: 3\n")
    with pytest.raises(ZettError, match="train.stepz"):
        load_config(bad)


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ZettError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ZettError, match="broken.yaml"):
        load_config(broken)


def test_cli_train_bad_config_exit_2(tmp_path: Path, capsys):
    assert cli.main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.yaml" in err[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  nosuchkey: 1\n")
    assert cli.main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.nosuchkey" in err[0]


def test_cli_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("prepare", "train"):
        assert name in out


def test_every_config_key_is_documented_in_train_help():
    from zett.config import describe_keys

    lines = describe_keys().splitlines()
    assert any("--train.compose_steps (default 0)" in x for x in lines)
    undocumented = [x for x in lines if not re.search(r"\(default .*\) \S", x)]
    assert not undocumented, undocumented


def test_stored_configs_of_earlier_versions_still_load(tmp_path: Path):
    """Checkpoints and hypernet.json written before a key was retired load without it; a
    YAML file that still sets a retired key is refused (it would silently do nothing)."""
    from zett.config import RETIRED_KEYS, apply_dict, from_dict, to_dict

    stored = to_dict(Config())
    for dotted in RETIRED_KEYS:
        if "." in dotted:
            section, key = dotted.split(".")
            stored[section][key] = 1
        else:  # a retired section, as earlier versions stored it
            stored[dotted] = {"pad_multiple": 64, "batch_size": 4}
    assert from_dict(stored) == Config()
    metas = sorted((ROOT / "hypernets").glob("*/hypernet.json"))
    assert metas
    for meta in metas:  # every committed hypernet's config section, as load_hypernet reads it
        cfg = Config()
        apply_dict(cfg.hypernet, json.loads(meta.read_text())["hypernet"], "hypernet.", stored=True)
    bad = tmp_path / "c.yaml"
    bad.write_text("eval:\n  max_bytes: 100\n")
    with pytest.raises(ZettError, match="eval.max_bytes"):
        load_config(bad)
    bad.write_text("transfer:\n  pad_multiple: 128\n")
    with pytest.raises(ZettError, match="'transfer'"):
        load_config(bad)


# ------------------------------------------------------------- command configs (--config)

COMMANDS = {
    "transfer": TransferArgs,
    "baseline": BaselineArgs,
    "nshot": NShotArgs,
    "eval": EvalArgs,
    "bench": BenchArgs,
}


def _parse(argv: list[str]) -> argparse.Namespace:
    return cli.build_parser().parse_args(argv)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_generated_flags_default_to_the_dataclass(command: str):
    cls = COMMANDS[command]
    (sub,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    actions = {a.dest: a for a in sub.choices[command]._actions}
    for f in dataclasses.fields(cls):
        action = actions[f.name]
        assert action.option_strings == ["--" + f.name.replace("_", "-")]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            assert action.default is None  # required: a flag or a key of --config
        else:
            assert action.default == getattr(cls(**_required_values(cls)), f.name), f.name


def _required_values(cls: type) -> dict:
    """Stand-ins for the required settings of `cls` (all of them str or int)."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: {str: "x", int: 1}[hints[f.name]]
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


def test_defaults_without_config_are_the_dataclass_defaults():
    cfg = command_args(EvalArgs, _parse(["eval", "--model", "m"]))
    assert cfg == EvalArgs(model="m")
    assert command_args(BenchArgs, _parse(["bench"])) == BenchArgs()


def test_eval_config_file_is_honored_and_flags_override_it(tmp_path: Path):
    path = tmp_path / "eval.yaml"
    path.write_text("model: some/dir\nlangs: [en, de]\nbatch_size: 2\nchunk_tokens: 64\n")
    cfg = command_args(EvalArgs, _parse(["eval", "--config", str(path)]))
    assert cfg == EvalArgs(model="some/dir", langs=["en", "de"], batch_size=2, chunk_tokens=64)
    argv = ["eval", "--config", str(path), "--batch-size", "8", "--langs", "fr", "--model", "o"]
    cfg = command_args(EvalArgs, _parse(argv))
    # a flag given on the command line wins even when it equals the default (batch_size 8)
    assert (cfg.model, cfg.langs, cfg.batch_size, cfg.chunk_tokens) == ("o", ["fr"], 8, 64)


def test_transfer_config_file_fills_required_flags(tmp_path: Path):
    path = tmp_path / "t.yaml"
    path.write_text("hypernet: hn\ntarget_tokenizer: llama2\noutput: out\nbase: minilm\nlam: 1\n")
    cfg = command_args(TransferArgs, _parse(["transfer", "--config", str(path), "--overwrite"]))
    assert cfg == TransferArgs(
        hypernet="hn", target_tokenizer="llama2", output="out", base="minilm", overwrite=True
    )
    assert isinstance(cfg.lam, float)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("model: m\nbatch_sise: 2\n", "'batch_sise'"),
        ("model: m\nbatch_size: many\n", "batch_size"),
        ("model: m\nlangs: en\n", "langs"),
        ("- model\n", "mapping"),
    ],
)
def test_bad_command_config_is_one_line_exit_2(tmp_path: Path, capsys, text: str, needle: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert cli.main(["eval", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "bad.yaml" in err[0], err


def test_missing_required_setting_is_one_line_exit_2(capsys):
    assert cli.main(["transfer", "--hypernet", "h"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--target-tokenizer, --output" in err[0], err
    assert cli.main(["eval", "--config", "/nonexistent/e.yaml"]) == 2
    assert "e.yaml" in capsys.readouterr().err


def test_config_value_outside_the_choices_is_one_line_exit_2(tmp_path: Path, capsys):
    path = tmp_path / "b.yaml"
    path.write_text("method: fvtt\ntarget_tokenizer: t\noutput: o\n")
    assert cli.main(["baseline", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'fvtt'" in err[0] and "b.yaml" in err[0], err
