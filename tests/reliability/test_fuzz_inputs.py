"""Fuzzing every file zett reads: a broken input is refused with a `ZettError` (one line that
names the file), never a traceback or a hang.

In-process (hypothesis, per-example time limit): tokenizer.json, config YAML (+ overrides),
hypernet safetensors/JSON, a HF model dir (config.json + model.safetensors), orbax
checkpoints under `--resume`, and a corpus dir. As subprocesses (fewer, ~5 s each): one
broken file of each kind through the real `zett` command, which must exit 2 with exactly one
`error:` line naming the file and no traceback.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability import helpers as h

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BYTE_MODES = ["truncate", "flip", "utf8"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> h.TinyAssets:
    return h.shared_assets(tmp_path_factory)


def _bytes_mutation(data: bytes, mode: str, seed: int, frac: float) -> bytes:
    rng = random.Random(seed)
    if mode == "truncate":
        return h.truncate(data, frac)
    if mode == "flip":
        return h.flip_bytes(data, rng, 1 + seed % 8)
    return h.insert_invalid_utf8(data, rng)


def _assert_fine(res: h.Guarded, what: str) -> None:
    assert res.outcome == "ok", f"{what}: {res.outcome}: {res.detail}"


# ----------------------------------------------------------------------------- tokenizer.json


def _load_tokenizer_fully(path: Path) -> None:
    """What every command does with a tokenizer: load it and derive its surface forms."""
    from zett.tokenizers.surface import load_tokenizer, surface_forms

    tok = load_tokenizer(path)
    surface_forms(tok, tok.zett_config)


@FUZZ
@given(
    mode=st.sampled_from([*BYTE_MODES, "json", "json", "json"]),
    seed=st.integers(0, 2**31),
    frac=st.floats(0, 1),
)
def test_fuzz_tokenizer_json(assets, mode, seed, frac):
    raw = assets.tokenizer.read_bytes()
    with tempfile.TemporaryDirectory() as d:
        file = Path(d) / "tokenizer.json"
        if mode == "json":
            data = h.mutate_json(json.loads(raw), random.Random(seed))
            file.write_text(json.dumps(data))
        else:
            file.write_bytes(_bytes_mutation(raw, mode, seed, frac))
        res = h.guarded(lambda: _load_tokenizer_fully(file), "fuzz", "tokenizer.json")
    _assert_fine(res, f"tokenizer.json {mode} seed={seed}")


def test_named_broken_tokenizers(assets, tmp_path):
    """Hand-picked cases: unknown model type, empty vocab, duplicates, wrong types, ..."""
    variants = h.tokenizer_variants(json.loads(assets.tokenizer.read_text()))
    refused = 0
    for name, content in variants.items():
        file = tmp_path / name / "tokenizer.json"
        file.parent.mkdir()
        file.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        res = h.guarded(lambda f=file: _load_tokenizer_fully(f), "fuzz", "tokenizer.json")
        _assert_fine(res, name)
        if res.refused:
            assert str(file) in res.detail, res.detail  # the message names the file
            refused += 1
    assert (
        refused >= len(variants) - 2
    )  # all but the two benign duplicates of them are really broken


# ----------------------------------------------------------------------------- config YAML


def _load_config_file(path: Path, overrides: list[str] | None = None) -> None:
    from zett.config import load_config

    load_config(path, overrides or [])


@FUZZ
@given(
    mode=st.sampled_from([*BYTE_MODES, "yaml", "yaml", "text"]),
    seed=st.integers(0, 2**31),
    frac=st.floats(0, 1),
    text=st.text(max_size=200),
)
def test_fuzz_config_yaml(mode, seed, frac, text):
    raw = (h.CONFIGS / "tiny.yaml").read_bytes()
    with tempfile.TemporaryDirectory() as d:
        file = Path(d) / "cfg.yaml"
        if mode == "yaml":
            data = h.mutate_json(yaml.safe_load(raw), random.Random(seed))
            file.write_text(yaml.safe_dump(data))
        elif mode == "text":
            file.write_text(text, encoding="utf-8")
        else:
            file.write_bytes(_bytes_mutation(raw, mode, seed, frac))
        res = h.guarded(lambda: _load_config_file(file), "fuzz", "config.yaml")
    _assert_fine(res, f"config {mode} seed={seed}")


@FUZZ
@given(
    key=st.sampled_from(
        [
            "train.steps",
            "train.lr",
            "data.langs",
            "hypernet.num_layers",
            "train",
            "nope.x",
            "train.eval_tokenizers",
            "model",
            "mesh.data",
            "-x",
            "train..steps",
        ]
    ),  # fmt: skip
    value=st.one_of(st.text(max_size=30), st.sampled_from(["[1, 2", "{a: 1}", "1e999", "null"])),
)
def test_fuzz_config_overrides(key, value):
    res = h.guarded(
        lambda: _load_config_file(h.CONFIGS / "tiny.yaml", [f"--{key}", value]),
        "fuzz",
        "config.yaml",
    )
    _assert_fine(res, f"--{key} {value!r}")


# ----------------------------------------------------------------------------- hypernet


@pytest.fixture(scope="module")
def base_embeddings(assets):
    from zett.models.load import get_embeddings, load_model

    loaded = load_model(assets.llama)
    base_in, base_out, _ = get_embeddings(loaded, loaded.params)
    return base_in, base_out


def _load_hypernet_for(directory: Path, base_in, base_out) -> None:
    """What `zett transfer` does before running it: read, check the base, check shapes."""
    from zett.hypernet.io import check_params, load_hypernet

    module, params, _ = load_hypernet(directory)
    check_params(module, params, base_in, base_out, directory)


def _rewrite_tensors(file: Path, rng: random.Random, mode: str) -> None:
    """Structural damage to a safetensors file: a wrong shape/dtype, a missing/extra key."""
    from safetensors.numpy import load_file, save_file

    flat = load_file(str(file))
    key = rng.choice(sorted(flat))
    arr = flat[key]
    if mode == "shape":
        flat[key] = np.zeros((*arr.shape[:-1], arr.shape[-1] + 1), arr.dtype)
    elif mode == "rank":
        flat[key] = arr.reshape(-1)[:1].copy() if arr.ndim > 1 else arr.reshape(1, -1).copy()
    elif mode == "dtype":
        flat[key] = arr.astype(rng.choice([np.int8, np.int64, np.bool_, np.float16]))
    elif mode == "missing":
        del flat[key]
    elif mode == "extra":
        flat[key + ".extra"] = arr.copy()
    save_file(flat, str(file))


TENSOR_MODES = ["shape", "rank", "dtype", "missing", "extra"]


@FUZZ
@given(
    target=st.sampled_from(["weights", "weights", "meta"]),
    mode=st.sampled_from([*BYTE_MODES, *TENSOR_MODES, "json", "delete"]),
    seed=st.integers(0, 2**31),
    frac=st.floats(0, 1),
)
def test_fuzz_hypernet(assets, base_embeddings, target, mode, seed, frac):
    from zett.hypernet.io import META, WEIGHTS

    with tempfile.TemporaryDirectory() as d:
        directory = Path(d) / "hypernet"
        shutil.copytree(assets.hypernet, directory)
        file = directory / (WEIGHTS if target == "weights" else META)
        rng = random.Random(seed)
        if mode == "delete":
            file.unlink()
        elif mode in TENSOR_MODES:
            _rewrite_tensors(directory / WEIGHTS, rng, mode)
        elif mode == "json":
            meta = json.loads((directory / META).read_text())
            (directory / META).write_text(json.dumps(h.mutate_json(meta, rng)))
        else:
            file.write_bytes(_bytes_mutation(file.read_bytes(), mode, seed, frac))
        res = h.guarded(lambda: _load_hypernet_for(directory, *base_embeddings), "fuzz", "hypernet")
    _assert_fine(res, f"hypernet {target} {mode} seed={seed}")
    if mode in ("shape", "rank", "missing", "delete"):
        assert res.refused, f"{mode}: a broken hypernet was accepted"


# ----------------------------------------------------------------------------- model dir


def _load_model_dir(directory: Path) -> None:
    from zett.models.load import load_model

    load_model(directory)


@FUZZ
@given(
    target=st.sampled_from(["weights", "weights", "config"]),
    mode=st.sampled_from([*BYTE_MODES, *TENSOR_MODES, "json", "delete"]),
    seed=st.integers(0, 2**31),
    frac=st.floats(0, 1),
)
def test_fuzz_model_dir(assets, target, mode, seed, frac):
    with tempfile.TemporaryDirectory() as d:
        directory = Path(d) / "model"
        shutil.copytree(assets.llama, directory)
        file = directory / ("model.safetensors" if target == "weights" else "config.json")
        rng = random.Random(seed)
        if mode == "delete":
            file.unlink()
        elif mode in TENSOR_MODES:
            _rewrite_tensors(directory / "model.safetensors", rng, mode)
        elif mode == "json":
            cfg = json.loads((directory / "config.json").read_text())
            (directory / "config.json").write_text(json.dumps(h.mutate_json(cfg, rng)))
        else:
            file.write_bytes(_bytes_mutation(file.read_bytes(), mode, seed, frac))
        res = h.guarded(lambda: _load_model_dir(directory), "fuzz", "model dir")
    _assert_fine(res, f"model {target} {mode} seed={seed}")
    if mode in ("shape", "rank", "missing", "delete"):
        assert res.refused, f"{mode}: a broken model dir was accepted"


# ----------------------------------------------------------------------------- corpus


def _read_corpus(directory: Path) -> None:
    """What training and eval read: the splits and their text column."""
    from zett.data.corpus import load_corpus

    ds = load_corpus(directory)
    for split in ds:
        _ = ds[split][:4]["text"]


CORPUS_FILES = [
    "dataset_dict.json",
    "train/data-00000-of-00001.arrow",
    "train/state.json",
    "train/dataset_info.json",
]


@FUZZ
@given(
    target=st.sampled_from(CORPUS_FILES),
    mode=st.sampled_from([*BYTE_MODES, "json", "delete"]),
    seed=st.integers(0, 2**31),
    frac=st.floats(0, 1),
)
def test_fuzz_corpus(assets, target, mode, seed, frac):
    with tempfile.TemporaryDirectory() as d:
        directory = Path(d) / "corpus"
        shutil.copytree(assets.corpus, directory)
        file = directory / target
        if mode == "delete":
            file.unlink()
        elif mode == "json" and file.suffix == ".json":
            data = json.loads(file.read_text())
            file.write_text(json.dumps(h.mutate_json(data, random.Random(seed))))
        else:
            file.write_bytes(_bytes_mutation(file.read_bytes(), mode, seed, frac))
        res = h.guarded(lambda: _read_corpus(directory), "fuzz", "corpus")
    _assert_fine(res, f"corpus {target} {mode} seed={seed}")


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def trained_run(assets, tmp_path_factory):
    """A 4-step run with checkpoints at steps 2 and 4, and the intact restored states."""
    from zett.config import load_config
    from zett.train.loop import Trainer

    run = tmp_path_factory.mktemp("ckpt") / "run"
    args = h.train_args(assets, run, steps=4, save_every=2)[3:]
    cfg = load_config(h.CONFIGS / "tiny.yaml", args)
    Trainer(cfg, progress=False).run()
    trainer = Trainer(cfg, resume=True, progress=False)
    intact = {}
    for step in (2, 4):
        trainer._restore(step)
        intact[step] = trainer.state
    return run, trainer, intact


def _checkpoint_cases() -> list[tuple[str, str]]:
    """(file relative to the step dir, delete|truncate|empty) for every file orbax writes."""
    names = [
        "_CHECKPOINT_METADATA", "commit_success.txt", "meta/metadata", "state/_METADATA",
        "state/_sharding", "state/manifest.ocdbt", "state/array_metadatas/process_0",
        "state/ocdbt.process_0/manifest.ocdbt", "state/d/*", "state/ocdbt.process_0/d/*",
        "meta", "state",
    ]  # fmt: skip
    return [(n, m) for n in names for m in ("delete", "truncate")]


@pytest.mark.parametrize("name,mode", _checkpoint_cases())
def test_damaged_checkpoint_resume(trained_run, tmp_path, name, mode):
    """A damaged latest step: `--resume` uses the intact earlier one or says which step is
    broken; it never restores damaged numbers and never shows a traceback."""
    import jax

    from zett.train.checkpoint import Checkpointer

    run, trainer, intact = trained_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    step_dir = copy / "checkpoints" / "4"
    targets = sorted(step_dir.glob(name)) if "*" in name else [step_dir / name]
    targets = [t for t in targets if t.exists()]
    if not targets:
        pytest.skip(f"orbax wrote no {name} here")
    for t in targets:
        if t.is_dir():
            shutil.rmtree(t) if mode == "delete" else [
                f.unlink() for f in t.rglob("*") if f.is_file()
            ]
        elif mode == "delete":
            t.unlink()
        else:
            t.write_bytes(t.read_bytes()[: t.stat().st_size // 2])

    def resume() -> None:
        trainer.out, trainer.ckpt = copy, Checkpointer(copy / "checkpoints")
        trainer._restore()

    res = h.guarded(resume, "fuzz", "checkpoint")
    _assert_fine(res, f"{name} {mode}")
    if res.refused:
        assert "checkpoints" in res.detail, res.detail
        return
    same = jax.tree.map(
        lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))),
        trainer.state,
        intact[trainer.start_step],
    )
    if not all(jax.tree.leaves(same)):
        h.record("fuzz", "checkpoint", "corrupted")
        pytest.fail(f"{name} {mode}: restored damaged numbers at step {trainer.start_step}")


# ----------------------------------------------------------------------------- CLI


def _write_bad(kind: str, assets: h.TinyAssets, tmp: Path) -> tuple[list[str], str]:
    """(zett arguments reading one broken file, the name its error line must contain)."""
    out = str(tmp / "out")
    if kind == "tokenizer.json":
        bad = tmp / "tok" / "tokenizer.json"
        bad.parent.mkdir()
        bad.write_bytes(assets.tokenizer.read_bytes()[:1000])
        args = ["baseline", "--method", "fvt", "--base", str(assets.llama)]
        return [*args, "--target-tokenizer", str(bad), "--output", out], str(bad)
    if kind == "config.yaml":
        bad = tmp / "bad.yaml"
        bad.write_text("train:\n  steps: [1, 2\n")
        return ["train", "--config", str(bad)], str(bad)
    if kind == "hypernet":
        bad = tmp / "hn"
        shutil.copytree(assets.hypernet, bad)
        _rewrite_tensors(bad / "hypernet.safetensors", random.Random(0), "shape")
        args = ["transfer", "--hypernet", str(bad), "--base", str(assets.llama)]
        return [*args, "--target-tokenizer", str(assets.tokenizer), "--output", out], str(bad)
    if kind == "model dir":
        bad = tmp / "model"
        shutil.copytree(assets.llama, bad)
        (bad / "model.safetensors").write_bytes(b"\x00" * 7)
        args = ["baseline", "--method", "fvt", "--base", str(bad)]
        return [*args, "--target-tokenizer", str(assets.tokenizer), "--output", out], str(bad)
    if kind == "corpus":
        bad = tmp / "corpus"
        shutil.copytree(assets.corpus, bad)
        arrow = bad / "train" / "data-00000-of-00001.arrow"
        arrow.write_bytes(arrow.read_bytes()[:100])
        return h.train_args(assets, tmp / "run", 2, 0, "--data.corpus", str(bad)), str(bad)
    raise AssertionError(kind)


# A `zett` subprocess that has not exited by then counts as hung. Measured with five processes
# sharing one core: the damaged-checkpoint resume printed its error at 125 s and exited at 141 s,
# so the former 240 s misread an overloaded machine as a hang (1 of 5 runs).
CLI_HANG_S = 600


@pytest.mark.parametrize(
    "kind", ["tokenizer.json", "config.yaml", "hypernet", "model dir", "corpus"]
)
def test_cli_refuses_broken_file(assets, tmp_path, kind):
    args, name = _write_bad(kind, assets, tmp_path)
    res = h.run_cli(args, timeout=CLI_HANG_S)
    outcome = h.cli_outcome(res, name, "cli", kind)
    assert outcome == "ok", (res.returncode, res.stderr[-2000:])
    assert not (tmp_path / "out").exists()


def test_cli_resume_damaged_checkpoint(trained_run, tmp_path):
    """`zett train --resume` on a run whose latest step lost its state: exit 2, one line."""
    run, _, _ = trained_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "checkpoints" / "4" / "state" / "ocdbt.process_0")
    cfg = json.loads((copy / "checkpoints" / "4" / "meta" / "metadata").read_text())["config"]
    args = ["train", "--config", str(h.CONFIGS / "tiny.yaml"), "--resume"]
    args += ["--model.base", cfg["model"]["base"], "--data.corpus", cfg["data"]["corpus"]]
    args += ["--train.output_dir", str(copy), "--train.steps", "6", "--data.prefetch", "0"]
    res = h.run_cli(args, timeout=CLI_HANG_S)
    if res.returncode == 0:  # it fell back to step 2 and finished: the losses must be there
        assert max(h.last_losses(copy)) == 6
        h.record("cli", "checkpoint", "ok")
        return
    assert h.cli_outcome(res, "checkpoints", "cli", "checkpoint") == "ok", res.stderr[-2000:]
