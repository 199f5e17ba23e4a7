"""The layering contracts of setup.cfg ([importlinter], `make lint`) hold, and fail on a wrong
arrow: each case adds one import to a copy of the package in a temp dir and checks that
`lint-imports` rejects that copy, naming the contract, while the untouched copy passes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.is_file(), reason="import-linter not installed (pip install -e '.[dev]')"
)


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    """zett/ and setup.cfg copied to `tmp_path` (no caches)."""
    shutil.copytree(ROOT / "zett", tmp_path / "zett", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", tmp_path / "setup.cfg")
    return tmp_path


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the package under `root` (which comes first on the import path, so
    the copy is analysed, not the installed checkout)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "setup.cfg"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def add_import(root: Path, module: str, statement: str) -> None:
    path = root / (module.replace(".", "/") + ".py")
    if not path.is_file():
        path = root / module.replace(".", "/") / "__init__.py"
    path.write_text(path.read_text() + f"\n{statement}  # deliberately wrong\n")


def test_the_checkout_keeps_every_contract(copy: Path) -> None:
    res = lint_imports(copy)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout
    found = subprocess.run(
        [sys.executable, "-c", "import zett; print(zett.__path__[0])"],
        cwd=copy,
        env={**os.environ, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert found == str(copy / "zett")  # so the copy is what lint-imports analyses


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        ("zett.tokenizers.align", "import zett.train", "zett.tokenizers imports no JAX"),
        ("zett.tokenizers.special", "import jax", "zett.tokenizers imports no JAX"),
        (
            "zett.hypernet.model",
            "from zett.transfer import baselines",
            "zett.models and zett.hypernet",
        ),
        (
            "zett.transfer.focus",
            "from zett.train import checkpoint",
            "zett.transfer does not import",
        ),
        ("zett.eval.plots", "import zett.cli", "nothing imports zett.cli"),
        ("zett.data.sources", "import tests.conftest", "nothing in zett imports tests"),
        ("zett.cache", "import zett.assets", "no import circles"),
    ],
)
def test_a_wrong_import_breaks_its_contract(copy: Path, module, statement, contract) -> None:
    add_import(copy, module, statement)
    res = lint_imports(copy)
    assert res.returncode != 0, res.stdout
    broken = res.stdout.split("Broken contracts")[-1]
    assert contract in broken, res.stdout
    assert module.rsplit(".", 1)[0] in broken or module in broken, res.stdout
