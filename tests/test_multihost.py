"""Two processes × 4 fake CPU devices joined by `jax.distributed` on loopback (gloo CPU
collectives) train on one mesh spanning both, with the same losses as a single device."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[1]
WORKER = Path(__file__).with_name("multihost_worker.py")
TOL = 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_one_mesh(tmp_path):
    out, port = tmp_path / "mh.json", _free_port()
    env = dict(os.environ)
    env.update(
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=str(ROOT),
    )
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "multihost", str(out), str(port), str(pid)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for pid in (0, 1)
    ]
    try:
        logs = [p.communicate(timeout=1500)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-4000:]
    reports = [json.loads(Path(f"{out}.{pid}").read_text()) for pid in (0, 1)]
    for pid, r in enumerate(reports):
        assert r["process_index"] == pid and r["process_count"] == 2
        assert r["global_devices"] == 8 and r["local_devices"] == 4
        assert r["mesh"] == {"data": 4, "fsdp": 1, "model": 2}
        assert r["local_rows_match"]
        np.testing.assert_allclose(r["losses"], r["single_device"], atol=TOL, rtol=0)
    # Each host loads its own half of the batch rows; together they cover it once.
    assert [r["rows"] for r in reports] == [[0, 4], [4, 8]]
    assert reports[0]["losses"] == reports[1]["losses"]
