"""Fault injection: SIGKILL at random points and inside writes, failing builders, a full disk.

A killed `zett train` resumes with `--resume` to the same per-step losses as an uninterrupted
run (the last record of each step; steps after the last checkpoint are re-run). A killed
export leaves either no output directory or a complete one. A full disk (RLIMIT_FSIZE in the
child) gives one `error:` line and no partial output.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from tests.reliability import helpers as h

STEPS, SAVE_EVERY = 8, 2


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> h.TinyAssets:
    return h.shared_assets(tmp_path_factory)


@pytest.fixture(scope="module")
def reference(assets, tmp_path_factory) -> dict[int, float]:
    """Per-step losses of an uninterrupted `zett train` subprocess."""
    run = tmp_path_factory.mktemp("ref") / "run"
    res = h.run_cli(h.train_args(assets, run, STEPS, SAVE_EVERY), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    losses = h.last_losses(run)
    assert sorted(losses) == list(range(1, STEPS + 1))
    return losses


def compare_losses(run: Path, reference: dict[int, float], kind: str) -> str:
    got = h.last_losses(run)
    same = got == reference and h.hypernet_loads(run / "hypernet")
    return h.record("fault", kind, "ok" if same else "differs")


def resume(assets: h.TinyAssets, run: Path) -> h.CliResult:
    return h.run_cli(h.train_args(assets, run, STEPS, SAVE_EVERY, "--resume"), timeout=300)


def test_kill_in_checkpoint_write_then_random_kill_then_resume(assets, reference, tmp_path):
    """Kill 1: inside the 2nd checkpoint write (timer armed when `save` starts). Kill 2: an
    outside SIGKILL at a random time during the resumed run. A final resume finishes."""
    run = tmp_path / "run"
    rng = random.Random(1)
    args = h.train_args(assets, run, STEPS, SAVE_EVERY)
    delay = rng.uniform(0.0, 0.05)
    res = h.run_cli(args, timeout=300, kill=f"zett.train.checkpoint:Checkpointer.save 2 {delay}")
    assert res.returncode == -9, (res.returncode, res.stderr[-2000:])
    h.record("fault", "SIGKILL in checkpoint write", "ok")
    outcome = h.kill_train_at_random([*args, "--resume"], run, rng, window=1.0)
    h.record("fault", "SIGKILL at random time", "ok")
    res = resume(assets, run)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    verdict = compare_losses(run, reference, "resumed run")
    assert verdict == "ok", (outcome, h.last_losses(run), reference)


def test_kill_during_final_export_then_resume(assets, reference, tmp_path):
    """SIGKILL while the final hypernet export writes: no half-written `hypernet/`, and a
    resume (nothing left to train) re-exports it."""
    run = tmp_path / "run"
    kill = "zett.hypernet.io:save_hypernet 1 0.001"
    res = h.run_cli(h.train_args(assets, run, STEPS, SAVE_EVERY), timeout=300, kill=kill)
    assert res.returncode == -9, res.stderr[-2000:]
    h.record("fault", "SIGKILL in hypernet export", "ok")
    if (run / "hypernet").exists():
        assert h.hypernet_loads(run / "hypernet"), "half-written hypernet/"
    res = resume(assets, run)
    assert res.returncode == 0, res.stderr[-2000:]
    assert compare_losses(run, reference, "resumed run") == "ok"


def test_kill_baseline_during_export(assets, tmp_path):
    """`zett baseline --method fvt` killed while writing: the output is absent or complete."""
    args = ["baseline", "--method", "fvt", "--base", str(assets.llama)]
    args += ["--target-tokenizer", str(assets.tokenizer)]
    rng = random.Random(3)
    for i in range(3):
        out = tmp_path / f"out{i}"
        kill = f"safetensors.numpy:save_file 1 {rng.uniform(0, 0.01) if i else 0}"
        res = h.run_cli([*args, "--output", str(out)], timeout=300, kill=kill)
        assert res.returncode == -9, res.stderr[-2000:]
        complete = not out.exists() or h.hf_dir_loads(out)
        h.record("fault", "SIGKILL in baseline export", "ok" if complete else "corrupted")
        assert complete, f"half-written {out}"
    res = h.run_cli([*args, "--output", str(tmp_path / "out0")], timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]  # a retry after the kill succeeds
    assert h.hf_dir_loads(tmp_path / "out0")


def test_full_disk_baseline_export(assets, tmp_path):
    """Writes past RLIMIT_FSIZE fail (EFBIG, as on a full disk): one error line, no output."""
    out = tmp_path / "out"
    args = ["baseline", "--method", "fvt", "--base", str(assets.llama)]
    args += ["--target-tokenizer", str(assets.tokenizer), "--output", str(out)]
    res = h.run_cli(args, timeout=300, preexec=h.ignore_fsize_limit(20_000))
    ok = h.cli_outcome(res, str(out), "fault", "disk full") == "ok"
    assert ok, (res.returncode, res.stderr[-2000:])
    assert not out.exists() and not h.partial_outputs(tmp_path, "out")


def test_full_disk_train(assets, tmp_path):
    """A run that cannot write its checkpoints stops with one error line naming the run."""
    run = tmp_path / "run"
    res = h.run_cli(
        h.train_args(assets, run, 4, 2), timeout=300, preexec=h.ignore_fsize_limit(4_000)
    )
    # orbax's background writer threads log their own failures (with tracebacks) on stderr
    # before ours; what we own is the exit code and the one `error:` line.
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    ok = res.returncode == 2 and len(errors) == 1 and str(run) in errors[0]
    h.record("fault", "disk full", "ok" if ok else "traceback")
    assert ok, (res.returncode, res.stderr[-2000:])
    assert not (run / "hypernet").exists()


def test_prepare_builder_failure_leaves_cache_unprepared(tmp_path, monkeypatch):
    """`zett prepare`: a builder that dies half-way leaves no prepared (or half) directory,
    and the next call builds again from scratch."""
    from zett import assets as zassets

    monkeypatch.setenv("ZETT_CACHE", str(tmp_path))
    calls = []

    def broken(out: Path) -> None:
        calls.append(out)
        (out / "model.safetensors").write_bytes(b"half")
        raise OSError("simulated crash mid-build")

    def good(out: Path) -> None:
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(zassets, "_build_smollm2", broken)
    with pytest.raises(OSError):
        zassets.prepare("smollm2")
    final = tmp_path / "smollm2"
    fine = not final.exists() and not zassets.is_prepared(final)
    fine = fine and not h.partial_outputs(tmp_path, "smollm2")
    h.record("fault", "builder crash in prepare", "ok" if fine else "corrupted")
    assert fine
    monkeypatch.setattr(zassets, "_build_smollm2", good)
    assert zassets.is_prepared(zassets.prepare("smollm2"))


def test_prepare_corpus_builder_failure(tmp_path, monkeypatch):
    """`zett prepare corpus`: an existing good corpus survives a rebuild that crashes."""
    from zett.data import build as corpus_build

    final = tmp_path / "corpus"
    monkeypatch.setattr(corpus_build, "fetch", lambda source, downloads: (tmp_path, {}))

    def build(fetched, out):
        (out / "dataset").mkdir()
        return {"bytes": {}}

    monkeypatch.setattr(corpus_build, "build_corpus", build)
    monkeypatch.setattr(corpus_build, "_print_sizes", lambda sizes: None)
    corpus_build.prepare_corpus(out=final, sources=())
    assert corpus_build.is_prepared(final)

    def crash(fetched, out):
        (out / "dataset").mkdir()
        raise KeyboardInterrupt  # a user's Ctrl-C mid-build

    monkeypatch.setattr(corpus_build, "build_corpus", crash)
    with pytest.raises(KeyboardInterrupt):
        corpus_build.prepare_corpus(out=final, sources=(), force=True)
    fine = corpus_build.is_prepared(final) and not h.partial_outputs(tmp_path, "corpus")
    h.record("fault", "builder crash in prepare", "ok" if fine else "corrupted")
    assert fine
    shutil.rmtree(final)
