"""The reliability tests' own routines: guarded calls that classify what happened, input
mutators, broken tokenizer.json variants, the classification of a refusing `zett` run, and
output checks.

The tiny assets, the `zett` subprocess drivers (with the in-child kill switch) and the one
outcome counter `OUTCOMES` live in `zett.testing`, which experiments/soak.py and
experiments/reliability_table.py use too; they are re-exported here so the tests read
`h.run_cli`, `h.record`, `h.TinyAssets`, ... as before. Every guarded call and every
injected fault is recorded in `zett.testing.OUTCOMES` as `(category, kind, outcome)`.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zett.errors import ZettError
from zett.models.load import load_model
from zett.testing import (  # noqa: F401 -- re-exported for the tests (`h.<name>`)
    CONFIGS,
    CliResult,
    TinyAssets,
    build_tiny_assets,
    hypernet_loads,
    kill_train_at_random,
    last_losses,
    record,
    run_cli,
    train_args,
)
from zett.tokenizers.surface import load_tokenizer

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


def hf_dir_loads(directory: Path) -> bool:
    """An exported HF directory is complete: our loader and its tokenizer both read it."""
    try:
        load_model(directory)
        load_tokenizer(directory / "tokenizer.json")
        json.loads((directory / "tokenizer_config.json").read_text())
    except (ZettError, OSError, ValueError):
        return False
    return True


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


def shared_assets(tmp_path_factory) -> TinyAssets:
    """One `TinyAssets` per pytest session, whichever reliability module asks first."""
    root = tmp_path_factory.getbasetemp() / "reliability_assets"
    if not (root / "hypernet" / "hypernet.json").is_file():
        return build_tiny_assets(root)
    return TinyAssets(root, root / "llama", root / "corpus", root / "hypernet")
