"""Sharding: the mesh/rules arithmetic in-process, and the sharded step on 8 fake CPU devices
(in a subprocess, since the device count is fixed when JAX starts) against one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from zett import sharding
from zett.config import MeshConfig
from zett.errors import ZettError

ROOT = Path(__file__).parents[1]
WORKER = Path(__file__).with_name("multihost_worker.py")
TOL = 1e-5  # float32, whole training step (different reduction orders across meshes)


def run_worker(*args: str, devices: int = 8, timeout: int = 1800) -> None:
    """Run tests/multihost_worker.py with `devices` fake CPU devices; fail with its stderr."""
    env = dict(os.environ)
    env.update(
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.run(
        [sys.executable, str(WORKER), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]


# -- in-process: arithmetic ---------------------------------------------------------------------
def test_mesh_shape_fills_data_and_rejects_mismatch():
    assert sharding.mesh_shape(MeshConfig(data=-1, model=2), 8) == (4, 1, 2)
    assert sharding.mesh_shape(MeshConfig(data=2, fsdp=2, model=2), 8) == (2, 2, 2)
    with pytest.raises(ZettError, match=r"mesh\.data × mesh\.fsdp × mesh\.model .* 8 devices"):
        sharding.mesh_shape(MeshConfig(data=2, model=2), 8)
    with pytest.raises(ZettError, match=r"mesh\.fsdp × mesh\.model = 3 does not divide"):
        sharding.mesh_shape(MeshConfig(data=-1, model=3), 8)
    with pytest.raises(ZettError, match="mesh.model"):
        sharding.mesh_shape(MeshConfig(model=0), 8)


def test_make_mesh_on_this_process():
    mesh = sharding.make_mesh(MeshConfig())
    assert mesh.axis_names == sharding.AXES
    assert int(np.prod(list(mesh.shape.values()))) == len(mesh.devices.flat)
    with pytest.raises(ZettError, match="mesh.data"):
        sharding.make_mesh(MeshConfig(data=len(mesh.devices.flat) + 1))


SIZES = {"data": 2, "fsdp": 2, "model": 4}


@pytest.mark.parametrize(
    ("shape", "names", "want"),
    [
        ((64, 128), ("embed", "mlp"), P("fsdp", "model")),
        ((128, 64), ("mlp", "embed"), P("model", "fsdp")),
        ((30, 64), ("vocab", "embed"), P(None, "fsdp")),  # 30 % 4: vocab replicated
        ((8, 16), ("batch", None), P(("data", "fsdp"))),
        ((6, 16), ("batch", None), P("data")),  # 6 % 4: drop fsdp, keep data
        ((5, 16), ("tokens", None), P()),
        ((64, 4), ("tokens", None), P(("data", "fsdp", "model"))),
        ((12, 4), ("tokens", None), P(("data", "fsdp"))),  # 12 % 16: drop model
        ((64, 64), ("heads", "kv_heads"), P("model")),  # a mesh axis is used once per array
        ((64,), ("norm",), P()),
        ((64, 4, 16), ("hyper_embed", "hyper_heads"), P()),  # names don't match the rank
        ((64, 64), ("unknown", "embed"), P(None, "fsdp")),
    ],
)
def test_logical_to_spec(shape, names, want):
    assert sharding.logical_to_spec(shape, names, SIZES) == want


def test_logical_to_spec_skips_size_one_axes():
    sizes = {"data": 8, "fsdp": 1, "model": 1}
    assert sharding.logical_to_spec((64, 128), ("embed", "mlp"), sizes) == P()
    assert sharding.logical_to_spec((16, 4), ("batch", None), sizes) == P("data")


# -- 8 fake devices: the pure step on several meshes ---------------------------------------------
@pytest.fixture(scope="module")
def meshes_report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("sharding") / "meshes.json"
    run_worker("meshes", str(out))
    return json.loads(out.read_text())


MESHES = ("8x1x1", "4x1x2", "2x1x4", "2x2x2")  # data x fsdp x model


@pytest.mark.parametrize("name", MESHES)
def test_sharded_step_matches_one_device(meshes_report, name):
    ref, got = meshes_report["reference"], meshes_report["meshes"][name]
    assert meshes_report["devices"] == 8
    assert int(np.prod(list(got["mesh_shape"].values()))) == 8
    np.testing.assert_allclose(got["losses"], ref, atol=TOL, rtol=0)
    assert got["max_param_diff"] < TOL
    # The comparison means something: the steps moved the parameters well beyond TOL.
    assert got["max_param_change"] > 100 * TOL


def test_rules_shard_what_they_say(meshes_report):
    m = meshes_report["meshes"]
    assert m["8x1x1"]["q_proj"] == "()" and m["8x1x1"]["input_ids"] == "('data',)"
    assert m["4x1x2"]["q_proj"] == "(None, 'model')" and m["4x1x2"]["n_shards_q_proj"] == 2
    assert m["2x1x4"]["down_proj"] == "('model',)" and m["2x1x4"]["n_shards_q_proj"] == 4
    assert m["2x1x4"]["base_in"] == "('model',)"
    fsdp = m["2x2x2"]
    assert fsdp["q_proj"] == "('fsdp', 'model')" and fsdp["base_in"] == "('model', 'fsdp')"
    assert fsdp["input_ids"] == "(('data', 'fsdp'),)"
    # Vocabulary rows split over every device: the hypernet runs on a share of the tokens.
    assert fsdp["piece_ids"] == "(('data', 'fsdp', 'model'),)"
    assert m["4x1x2"]["piece_ids"] == "(('data', 'model'),)"
    # Hypernet output projection [hidden, D] is fsdp-sharded; Adam's moments follow it and
    # the state comes out of the step with the sharding it went in with.
    assert fsdp["hyper_out_in"] == fsdp["adam_mu_out_in"] == fsdp["state_out_in"] == "(None, 'fsdp')"  # fmt: skip


def test_checkpoint_restores_onto_another_mesh(meshes_report):
    ck = meshes_report["checkpoint"]
    assert ck["saved_spec"] == "(None, 'fsdp')"  # written on (data 2, fsdp 2, model 2)
    assert ck["restored_mesh"] == {"data": 8, "fsdp": 1, "model": 1}
    assert ck["restored_spec"] == "()" and ck["meta_step"] == 2
    assert abs(ck["loss_step3"] - meshes_report["reference"][2]) < TOL


# -- 8 fake devices: the real Trainer ------------------------------------------------------------
def _losses(run: Path) -> dict[int, float]:
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in recs if "loss" in r}


TRAINER_ARGS = ["--data.prefetch", "0", "--data.batch_size", "8", "--train.steps", "4",
                "--train.log_every", "1", "--train.save_every", "2"]  # fmt: skip


def test_trainer_on_mesh_and_resume_on_another(tiny_llama_dir, tiny_corpus_dir, tmp_path):
    from zett.config import load_config
    from zett.train.loop import Trainer

    runs = tmp_path / "runs"
    out = tmp_path / "trainer.json"
    run_worker("trainer", str(out), str(tiny_llama_dir), str(tiny_corpus_dir), str(runs))
    report = json.loads(out.read_text())
    assert report["m4x2"]["mesh"] == {"data": 4, "fsdp": 1, "model": 2}
    assert report["resharded"] == {"start_step": 2, "mesh": {"data": 8, "fsdp": 1, "model": 1}}
    # The same run on this process's single device.
    cfg = load_config(
        ROOT / "configs" / "tiny.yaml",
        ["--model.base", str(tiny_llama_dir), "--data.corpus", str(tiny_corpus_dir),
         "--train.output_dir", str(tmp_path / "one"), *TRAINER_ARGS],
    )  # fmt: skip
    Trainer(cfg, progress=False).run()
    ref, sharded, resumed = (
        _losses(p) for p in (tmp_path / "one", runs / "m4x2", runs / "resharded")
    )
    assert sorted(ref) == sorted(sharded) == [1, 2, 3, 4] and sorted(resumed) == [3, 4]
    # Several whole Trainer steps (Adam amplifies reduction-order noise, and the aux loss is
    # in standardized units): 1e-5 *relative* to the loss.
    for s in ref:
        assert abs(sharded[s] - ref[s]) < TOL * abs(ref[s]), (s, sharded[s], ref[s])
    for s in resumed:
        assert abs(resumed[s] - ref[s]) < TOL * abs(ref[s]), (s, resumed[s], ref[s])
