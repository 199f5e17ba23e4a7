"""Hermetic tiny assets and `zett` drivers, shared by tests/ and experiments' smoke runs.

Everything is built locally in seconds (nothing from the network, no ../shared needed):
texts in several scripts (`tiny_texts`, `WORDS`), a byte-level BPE tokenizer trained on them,
random-weight Llama / BERT Hugging Face directories, a tiny corpus (a saved DatasetDict),
random hypernets for a base (`make_hypernet`; `build_tiny_assets` bundles a Llama, a corpus
and an untrained hypernet), experiments' smoke scaffolding (`tiny_workspace`,
`tiny_train_overrides`), and `zett` subprocesses (`run_cli`, `kill_train_at_random`,
`train_args` for configs/tiny.yaml) whose outcomes the reliability suite counts in
`OUTCOMES` (`record`), so experiments/reliability_table.py reports what the tests saw:

    outcome  ok          loaded fine, or refused with a `ZettError` (both are correct)
             traceback   any other exception (a bug) / a Python traceback on stderr
             hang        ran past its time limit
             corrupted   an output directory exists but does not load
             differs     a resumed run's losses differ from the uninterrupted run's

Run as `python -m zett.testing kill MODULE:ATTR NTH DELAY -- ARGS...` it is the child driver
of `run_cli(kill=...)`: it wraps `MODULE.ATTR` so that its NTH call arms a timer that sends
SIGKILL to the process DELAY seconds later, then runs `zett ARGS` in-process. That kills a
job at chosen points (inside a checkpoint write, inside an export) that an outside timer
cannot aim at, because a tiny training step takes milliseconds. (That driver is the one
import of `zett.cli` inside the package; the import contracts in setup.cfg allow exactly it.)

`ROOT`/`CONFIGS` point into the source checkout (configs/tiny.yaml): this module is for a
checkout's tests and experiments, not for an installed package.
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
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
from tokenizers import models as tok_models  # not zett.models

from zett.cli import main as cli_main
from zett.config import HypernetConfig, load_config
from zett.errors import ZettError
from zett.eval.texts import local_texts
from zett.hypernet import io as hypernet_io
from zett.hypernet.io import load_hypernet
from zett.models.load import get_embeddings, load_model
from zett.tokenizers.convert import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

EXTRA = {
    "de": [
        "Der schnelle braune Fuchs springt über den faulen Hund. Größere Übungen sind schwierig.",
        "Die Stadt liegt am Fluss, und im Sommer fahren viele Menschen mit dem Fahrrad zur Arbeit.",
    ],
    "ru": [
        "Быстрая коричневая лиса прыгает через ленивую собаку. Это предложение на русском языке.",
        "Город стоит на реке, и летом многие люди ездят на работу на велосипеде.",
    ],
}


# Words in several scripts + code tokens, for tokenizer tests that build their own corpora.
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "Zürich",
    "café",
    "straße",
    "Größe",
    "привет",
    "мир",
    "как",
    "дела",
    "中文",
    "分词",
    "日本語",
    "مرحبا",
    "def",
    "return",
    "self",
    "import",
    "numpy",
    "as",
    "np",
    "if",
    "else",
    "for",
    "while",
    "(",
    ")",
    ":",
    ",",
    ".",
    "!",
    "?",
]


def tiny_texts() -> dict[str, list[str]]:
    texts = local_texts(max_bytes=60_000)
    texts.update({k: v * 20 for k, v in EXTRA.items()})
    return texts


def make_tokenizer(path: Path, vocab_size: int = 512):
    """A byte-level BPE tokenizer with bos/eos, trained on the tiny texts."""
    tok = Tokenizer(tok_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([t for ts in tiny_texts().values() for t in ts], trainer)
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    return tok


def make_tiny_llama(path: Path, vocab_size: int = 512, seed: int = 0) -> Path:
    """A 2-layer random Llama (tied embeddings) + its tokenizer as a HF directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = make_tokenizer(path, vocab_size)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(str(path))
    PreTrainedTokenizerFast(
        tokenizer_file=str(path / "tokenizer.json"),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    ).save_pretrained(str(path))
    return path


def make_tiny_pair(root: Path) -> tuple[Path, Path]:
    """A tiny base model dir and an unseen 400-token target tokenizer dir under `root`."""
    base = make_tiny_llama(root / "base")
    target = root / "target"
    make_tokenizer(target, vocab_size=400)
    return base, target


def make_tiny_corpus(path: Path) -> Path:
    """A saved DatasetDict (train/valid/test; columns text, lang, source)."""
    import datasets

    rows: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    for lang, texts in tiny_texts().items():
        for i, text in enumerate(texts):
            split = "valid" if i % 10 == 1 else "test" if i % 10 == 2 else "train"
            rows[split].append({"text": text, "lang": lang, "source": "zett/testing.py"})
    dd = datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in rows.items()})
    dd.save_to_disk(str(path))
    return path


def make_tiny_bert(path: Path, mlm: bool = False, seed: int = 0) -> Path:
    """A 2-layer random BERT (BertModel, or BertForMaskedLM with `mlm`) + WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertModel, PreTrainedTokenizerFast

    texts = [t for ts in tiny_texts().values() for t in ts]
    tok = train_tokenizer("wordpiece", texts, 400)
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=256,
        pad_token_id=tok.token_to_id("[PAD]") or 0,
    )
    (BertForMaskedLM if mlm else BertModel)(cfg).save_pretrained(str(path))
    PreTrainedTokenizerFast(
        tokenizer_file=str(path / "tokenizer.json"),
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]",
    ).save_pretrained(str(path))  # fmt: skip
    return path


def make_hypernet(
    base_dir: Path, out: Path, fingerprint: str | None = None, perturb: float = 0.3
) -> Path:
    """A randomly initialised tiny hypernet for `base_dir` whose input head is perturbed by
    `perturb` (zero-init heads would predict exactly FVT), saved in the transfer format
    (tests and experiments' smoke runs); an existing `out` is replaced."""
    loaded = load_model(base_dir)
    base_in = get_embeddings(loaded, loaded.params)[0]
    cfg = HypernetConfig(num_layers=1, num_heads=2, hidden_dim=16, max_pieces=4)
    return hypernet_io.save_untrained(
        out, cfg, base_in, None, 4, str(base_dir), fingerprint=fingerprint, perturb=perturb,
        overwrite=True,
    )  # fmt: skip


@dataclass
class TinyWorkspace:
    """What an experiment's `--smoke` run works on (`tiny_workspace`)."""

    root: Path  # a temp dir, removed when the `with` block ends
    base: Path  # tiny random Llama HF dir (root/base)
    target: Path  # an unseen 400-token tokenizer dir (root/target)
    corpus: Path  # tiny saved DatasetDict (root/corpus)


@contextlib.contextmanager
def tiny_workspace() -> Iterator[TinyWorkspace]:
    """A temp dir with a tiny base, an unseen target tokenizer and a tiny corpus: the
    scaffolding every experiment's `--smoke` run starts from."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base, target = make_tiny_pair(root)
        yield TinyWorkspace(root, base, target, make_tiny_corpus(root / "corpus"))


def tiny_train_overrides(
    ws: TinyWorkspace, out: Path, steps: int = 4, eval_every: int = 2, eval_bytes: int = 1000
) -> list[str]:
    """Dotted overrides for configs/tiny.yaml: train on `ws` into `out`, evaluating every
    `eval_every` steps on the base's own tokenizer (English, `eval_bytes` bytes)."""
    return [
        "--model.base", str(ws.base), "--data.corpus", str(ws.corpus),
        "--train.output_dir", str(out), "--train.steps", str(steps),
        "--train.eval_every", str(eval_every), "--train.eval_bytes", str(eval_bytes),
        "--train.eval_tokenizers", f"[{ws.base / 'tokenizer.json'}]",
        "--eval.langs", "[en]", "--data.prefetch", "0",
    ]  # fmt: skip


# ----------------------------------------------------------------------------- outcomes


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
    """Tiny Llama + corpus (above) and an untrained hypernet exported for them."""
    root = Path(root)
    llama = make_tiny_llama(root / "llama")
    corpus = make_tiny_corpus(root / "corpus")
    cfg = load_config(CONFIGS / "tiny.yaml")
    loaded = load_model(llama)
    base_in, base_out, _ = get_embeddings(loaded, loaded.params)
    hypernet = hypernet_io.save_untrained(
        root / "hypernet", cfg.hypernet, base_in, base_out, 4, str(llama)
    )
    return TinyAssets(root, llama, corpus, hypernet)


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
        cmd = [sys.executable, "-m", "zett.testing", "kill", *kill.split(), "--"]
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
    try:
        load_hypernet(directory)
    except ZettError:
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


# ----------------------------------------------------------------------------- kill driver


def _arm(module_attr: str, nth: int, delay: float) -> None:
    """Wrap MODULE:ATTR (a function, or a class method as MODULE:Class.method) so that its
    `nth` call starts a timer that SIGKILLs this process `delay` seconds later.

    The wrapper replaces the attribute on its module (or class): callers must reach it
    through that module or class at call time, as the train loop does
    (`hypernet_io.save_hypernet`, `Checkpointer.save`), not a name bound by `from M import f`."""
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
        print(
            "usage: python -m zett.testing kill MODULE:ATTR NTH DELAY -- zett args", file=sys.stderr
        )
        return 64
    _arm(argv[1], int(argv[2]), float(argv[3]))
    return cli_main(argv[5:])


if __name__ == "__main__":
    sys.exit(_driver(sys.argv[1:]))
