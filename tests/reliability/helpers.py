"""Routines shared by the reliability tests, `experiments/soak.py` and
`experiments/reliability_table.py`: tiny assets, input mutators, guarded calls that classify
what happened, `zett` subprocesses (with an in-child kill switch), and one outcome counter.

Every guarded call and every injected fault is recorded in `OUTCOMES` as
`(category, kind, outcome)`, so the table script reports what the tests actually saw:

    outcome  ok          loaded fine, or refused with a `ZettError` (both are correct)
             traceback   any other exception (a bug) / a Python traceback on stderr
             hang        ran past its time limit
             corrupted   an output directory exists but does not load
             differs     a resumed run's losses differ from the uninterrupted run's

Run as `python -m tests.reliability.helpers kill MODULE:ATTR NTH DELAY -- zett ARGS...` it
is the child driver: it wraps `MODULE.ATTR` so that its NTH call arms a timer that sends
SIGKILL to the process DELAY seconds later, then runs `zett ARGS` in-process. That kills a
job at chosen points (inside a checkpoint write, inside an export) that an outside timer
cannot aim at, because a tiny training step takes milliseconds.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

OUTCOMES: collections.Counter = collections.Counter()
BAD_OUTCOMES = ("traceback", "hang", "corrupted", "differs")


def record(category: str, kind: str, outcome: str) -> str:
    """Count one case (`category` fuzz|cli|fault|guard, `kind` the file type or fault)."""
    OUTCOMES[(category, kind, outcome)] += 1
    return outcome


# ----------------------------------------------------------------------------- assets


@dataclass
class TinyAssets:
    """Paths of hermetic tiny inputs (built once per session, copied before mutation)."""

    root: Path
    llama: Path  # HF dir: config.json, model.safetensors, tokenizer.json
    corpus: Path  # saved DatasetDict
    hypernet: Path  # hypernet.json + hypernet.safetensors for `llama`

    @property
    def tokenizer(self) -> Path:
        return self.llama / "tokenizer.json"


def build_tiny_assets(root: Path) -> TinyAssets:
    """Tiny Llama + corpus (tests/tiny.py) and an untrained hypernet exported for them."""
    import jax

    from tests.tiny import make_tiny_corpus, make_tiny_llama
    from zett.config import load_config
    from zett.hypernet import io as hypernet_io
    from zett.hypernet.io import embedding_fingerprint
    from zett.hypernet.model import build_hypernet, init_hypernet
    from zett.models.load import get_embeddings, load_model

    root = Path(root)
    llama = make_tiny_llama(root / "llama")
    corpus = make_tiny_corpus(root / "corpus")
    cfg = load_config(CONFIGS / "tiny.yaml")
    loaded = load_model(llama)
    base_in, base_out, _ = get_embeddings(loaded, loaded.params)
    module = build_hypernet(cfg.hypernet, int(base_in.shape[1]), 4)
    params = init_hypernet(module, jax.random.PRNGKey(0), base_in, base_out)
    meta = {"base_fingerprint": embedding_fingerprint(base_in), "base_model": str(llama)}
    hypernet = hypernet_io.save_hypernet(
        root / "hypernet", params, cfg.hypernet, module.dims, meta, dtype="float32"
    )
    return TinyAssets(root, llama, corpus, hypernet)


# ----------------------------------------------------------------------------- guarded calls


class _Hang(BaseException):
    """Raised by SIGALRM inside `guarded`; a BaseException so `except Exception` misses it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `_Hang` in the main thread after `seconds` (the per-example timeout)."""

    def on_alarm(signum, frame):
        raise _Hang()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Guarded:
    outcome: str  # ok | traceback | hang
    refused: bool  # a ZettError was raised
    detail: str  # the error line or the unexpected exception


def guarded(fn: Callable[[], Any], category: str, kind: str, timeout: float = 20.0) -> Guarded:
    """Run `fn`; a result or a `ZettError` is fine, anything else is a traceback (a bug)."""
    from zett.errors import ZettError

    try:
        with time_limit(timeout):
            fn()
    except ZettError as e:
        return Guarded(record(category, kind, "ok"), True, str(e))
    except _Hang:
        return Guarded(record(category, kind, "hang"), False, f"no answer in {timeout}s")
    except Exception as e:  # noqa: BLE001 -- the point is to catch every bug
        where = [
            f"{Path(f.filename).name}:{f.lineno}" for f in traceback.extract_tb(e.__traceback__)
        ]
        detail = f"{type(e).__name__}: {e} (at {' < '.join(reversed(where[-4:]))})"
        return Guarded(record(category, kind, "traceback"), False, detail)
    return Guarded(record(category, kind, "ok"), False, "")


# ----------------------------------------------------------------------------- mutators


def truncate(data: bytes, frac: float) -> bytes:
    """The first `frac` of `data` (a write cut short)."""
    return data[: int(len(data) * frac)]


def flip_bytes(data: bytes, rng: random.Random, n: int) -> bytes:
    """`n` random bytes replaced by random values (bit rot, a bad copy)."""
    buf = bytearray(data)
    for _ in range(n):
        if buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf)


def insert_invalid_utf8(data: bytes, rng: random.Random) -> bytes:
    """Bytes that no UTF-8 decoder accepts, inserted at a random position."""
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88"]) + data[at:]


WRONG_VALUES: list[Any] = [None, 0, -1, 1.5, "x", "", [], {}, [1, "a"], {"a": 1}, True, 2**70]


def json_paths(obj: Any, prefix: tuple = (), limit: int = 4000) -> list[tuple]:
    """Paths (tuples of keys/indices) to every node of a JSON tree, breadth-limited."""
    out: list[tuple] = []
    stack = [(prefix, obj)]
    while stack and len(out) < limit:
        path, node = stack.pop()
        out.append(path)
        if isinstance(node, dict):
            stack.extend((path + (k,), v) for k, v in list(node.items())[:50])
        elif isinstance(node, list):
            stack.extend((path + (i,), v) for i, v in enumerate(node[:50]))
    return out


def set_path(obj: Any, path: tuple, value: Any, delete: bool = False) -> None:
    """Replace (or delete) the node at `path` in place; the root path is ignored."""
    if not path:
        return
    node = obj
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value


def mutate_json(data: Any, rng: random.Random) -> Any:
    """One structural mutation: a random node gets a wrong type, or is deleted."""
    import copy

    data = copy.deepcopy(data)
    paths = [p for p in json_paths(data) if p]
    if not paths:
        return rng.choice(WRONG_VALUES)
    path = rng.choice(paths)
    set_path(data, path, rng.choice(WRONG_VALUES), delete=rng.random() < 0.3)
    return data


def tokenizer_variants(tok: dict) -> dict[str, Any]:
    """Named, hand-picked broken tokenizer.json contents (dicts or raw bytes)."""
    import copy

    def edit(fn: Callable[[dict], None]) -> dict:
        t = copy.deepcopy(tok)
        fn(t)
        return t

    vocab = tok["model"]["vocab"]
    first = next(iter(vocab))
    return {
        "unknown_model_type": edit(lambda t: t["model"].update(type="Quantum")),
        "empty_vocab": edit(lambda t: t["model"].update(vocab={}, merges=[])),
        "vocab_wrong_type": edit(lambda t: t["model"].update(vocab=17)),
        "no_model": edit(lambda t: t.pop("model")),
        "model_is_list": edit(lambda t: t.update(model=[1, 2])),
        "top_level_list": [tok],
        "merges_unknown_token": edit(lambda t: t["model"].update(merges=[["zz\u2603", "qq"]])),
        "ids_out_of_range": edit(lambda t: t["model"]["vocab"].update({first: 10**9})),
        "duplicate_ids": edit(
            lambda t: t["model"].update(vocab={k: 0 for k in list(vocab)[:50]}, merges=[])
        ),
        "duplicate_added_tokens": edit(
            lambda t: t.update(added_tokens=(t.get("added_tokens") or [])[:1] * 3)
        ),
        # JSON with a repeated key (Python keeps the last one, Rust may not)
        "duplicate_keys_text": (
            b'{"model": {"type": "BPE", "vocab": {"a": 0, "a": 1}, "merges": []}, '
            b'"model": {"type": "BPE", "vocab": {"b": 0}, "merges": []}}'
        ),
        "unigram_duplicate_tokens": {
            "version": "1.0",
            "model": {"type": "Unigram", "unk_id": 0, "vocab": [["a", -1.0], ["a", -2.0]]},
        },
        "unigram_bad_scores": {
            "version": "1.0",
            "model": {"type": "Unigram", "unk_id": 5, "vocab": [["a", "high"], ["b"]]},
        },
        "wordpiece_no_unk": {
            "version": "1.0",
            "model": {"type": "WordPiece", "vocab": {"a": 0, "##b": 1}, "unk_token": "[UNK]"},
        },
        "empty_file": b"",
        "null": b"null",
    }


# ----------------------------------------------------------------------------- subprocesses


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        JAX_PLATFORMS="cpu",
    )
    env.update(extra or {})
    return env


@dataclass
class CliResult:
    returncode: int | None  # None: killed by us after the timeout (a hang)
    stdout: str
    stderr: str
    seconds: float


def run_cli(
    args: list[str],
    timeout: float = 300.0,
    kill: str | None = None,
    preexec: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> CliResult:
    """Run `zett ARGS` (through the kill driver when `kill` = "MODULE:ATTR NTH DELAY")."""
    if kill is None:
        cmd = [sys.executable, "-m", "zett.cli", *args]
    else:
        cmd = [sys.executable, "-m", "tests.reliability.helpers", "kill", *kill.split(), "--"]
        cmd += args
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()  # only the child we started
        out, err = proc.communicate()
        code = None
    return CliResult(code, out, err, time.perf_counter() - t0)


def cli_outcome(res: CliResult, names: str, category: str, kind: str) -> str:
    """Classify a `zett` run that must refuse its input: exit 2 and one `error:` line
    naming `names` (a file or directory name), no traceback, within the time limit."""
    if res.returncode is None:
        return record(category, kind, "hang")
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    good = (
        res.returncode == 2
        and "Traceback" not in res.stderr
        and len(errors) == 1
        and names in errors[0]
    )
    return record(category, kind, "ok" if good else "traceback")


def train_args(assets: TinyAssets, out: Path, steps: int, save_every: int, *extra: str) -> list:
    """`zett train` on configs/tiny.yaml with the tiny assets, one metrics line per step."""
    return [
        "train", "--config", str(CONFIGS / "tiny.yaml"),
        "--model.base", str(assets.llama), "--data.corpus", str(assets.corpus),
        "--train.output_dir", str(out), "--train.steps", str(steps),
        "--train.save_every", str(save_every), "--train.log_every", "1",
        "--data.prefetch", "0", *extra,
    ]  # fmt: skip


def last_losses(run: Path) -> dict[int, float]:
    """step → loss of the *last* record of each step (a resume re-runs steps after the
    last checkpoint; their first records came from the killed process)."""
    out: dict[int, float] = {}
    file = run / "metrics.jsonl"
    if not file.is_file():
        return out
    for line in file.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the kill
            continue
        if "loss" in rec:
            out[int(rec["step"])] = float(rec["loss"])
    return out


def hypernet_loads(directory: Path) -> bool:
    from zett.errors import ZettError
    from zett.hypernet.io import load_hypernet

    try:
        load_hypernet(directory)
    except ZettError:
        return False
    return True


def hf_dir_loads(directory: Path) -> bool:
    """An exported HF directory is complete: our loader and its tokenizer both read it."""
    from zett.errors import ZettError
    from zett.models.load import load_model
    from zett.tokenizers.surface import load_tokenizer

    try:
        load_model(directory)
        load_tokenizer(directory / "tokenizer.json")
        json.loads((directory / "tokenizer_config.json").read_text())
    except (ZettError, OSError, ValueError):
        return False
    return True


def wait_for_line(file: Path, proc: subprocess.Popen, timeout: float) -> bool:
    """Poll until `file` has a first line (the first step is compiled and done)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if file.is_file() and file.stat().st_size > 0:
            return True
        time.sleep(0.02)
    return False


def kill_train_at_random(args: list[str], run: Path, rng: random.Random, window: float) -> str:
    """Start `zett train`, wait for its first step, SIGKILL it after uniform(0, window) s.

    Returns "killed", or "finished" when the run ended before the kill landed.
    """
    cmd = [sys.executable, "-m", "zett.cli", *args]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_line(run / "metrics.jsonl", proc, 300)
        time.sleep(rng.uniform(0, window))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return "killed"
        return "finished"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def ignore_fsize_limit(max_bytes: int) -> Callable[[], None]:
    """preexec_fn: cap the child's file size (a full disk) and make writes past it fail
    with EFBIG instead of killing the process with SIGXFSZ."""

    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def partial_outputs(directory: Path, name: str) -> list[Path]:
    """Temp siblings an atomic write may leave (`.<name>.tmp-*`); harmless but counted."""
    return sorted(directory.glob(f".{name}.tmp-*"))


# ----------------------------------------------------------------------------- kill driver


def _arm(module_attr: str, nth: int, delay: float) -> None:
    """Wrap MODULE:ATTR (a function, or a class method as MODULE:Class.method) so that its
    `nth` call starts a timer that SIGKILLs this process `delay` seconds later."""
    mod_name, attr = module_attr.split(":")
    owner: Any = importlib.import_module(mod_name)
    *parents, name = attr.split(".")
    for p in parents:
        owner = getattr(owner, p)
    original = getattr(owner, name)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            if delay <= 0:
                os.kill(os.getpid(), signal.SIGKILL)
            threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def _driver(argv: list[str]) -> int:
    if len(argv) < 5 or argv[0] != "kill" or argv[4] != "--":
        print("usage: helpers kill MODULE:ATTR NTH DELAY -- zett args", file=sys.stderr)
        return 64
    _arm(argv[1], int(argv[2]), float(argv[3]))
    from zett.cli import main

    return main(argv[5:])


if __name__ == "__main__":
    sys.exit(_driver(sys.argv[1:]))


def shared_assets(tmp_path_factory) -> TinyAssets:
    """One `TinyAssets` per pytest session, whichever reliability module asks first."""
    root = tmp_path_factory.getbasetemp() / "reliability_assets"
    if not (root / "hypernet" / "hypernet.json").is_file():
        return build_tiny_assets(root)
    return TinyAssets(root, root / "llama", root / "corpus", root / "hypernet")
