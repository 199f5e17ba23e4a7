"""Typed configs: dataclasses filled from YAML files in configs/ and dotted CLI overrides.

    cfg = load_config("configs/smollm2_cpu.yaml", ["--train.steps", "100"])

Every setting is a dataclass field declared with `knob(default, help)`: its type, default and
help text in one place. Two kinds of dataclass use them:

- the sections of `Config` (`zett train`): YAML files in configs/ (which may start with
  `base: other.yaml` to inherit from a file in the same directory) and dotted overrides
  `--section.key VALUE`, listed by `describe_keys()` in `zett train --help`;
- one dataclass per other command (`TransferArgs`, `BaselineArgs`, `NShotArgs`, `EvalArgs`,
  `BenchArgs`): `add_flags` turns its fields into the command's flags (`target_tokenizer` →
  `--target-tokenizer`, help and default shown) plus `--config FILE.yaml` (a flat mapping
  of the same keys), and `command_args` gives the command its dataclass: defaults ← the file
  ← the flags given on the command line.

An unknown key, a value of the wrong type, a missing required setting or a missing file
raises `ZettError` naming the key or file (the CLI turns that into one line and exit code 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from zett.errors import ZettError


def knob(default: Any = dataclasses.MISSING, help: str = "", **flag: Any) -> Any:
    """A setting: its default (`factory=` for a mutable one) and help text, plus argparse
    extras for a command's flag (`choices`, `metavar`, `nargs` of a list)."""
    factory = flag.pop("factory", None)
    metadata = {"help": help, **flag}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ModelConfig:
    base: str = knob(
        "smollm2", "`smollm2`, `minilm` (prepared in the cache) or a HF model directory"
    )
    dtype: str = knob("float32", "compute dtype of the frozen base LM: float32 | bfloat16")


@dataclass
class HypernetConfig:
    num_layers: int = knob(3, "transformer encoder layers over a token's pieces")
    num_heads: int = knob(0, "attention heads (0: the base model's number)")
    hidden_dim: int = knob(0, "hypernet width (0: the base model's)")
    mlp_ratio: float = knob(2.0, "MLP width = mlp_ratio * hidden_dim")
    max_pieces: int = knob(7, "pieces of the old tokenizer per new token (truncated beyond)")
    separate_out_head: bool = knob(False, "predict an output embedding apart from the input one")
    use_unigram_bias: bool = knob(False, "add the target's unigram log-prob to the output bias")
    prior_input: bool = knob(False, "feed the target's unigram log-prob to the hypernet")
    vocab_attention: bool = knob(False, "attention across the tokens of a vocabulary")
    copy_single: bool = knob(False, "one-piece tokens keep their base row exactly (no correction)")
    correct_fragments: bool = knob(
        False,
        "with copy_single, one-piece tokens whose piece is not whole UTF-8 characters (a "
        "lone byte of a multi-byte character) are corrected by the net, not copied",
    )


@dataclass
class DataConfig:
    corpus: str = knob("default", "`default` (built by `zett prepare corpus`) or a dataset dir")
    langs: dict[str, float] = knob(
        help="language mixture weights; empty: proportional", factory=dict
    )
    batch_size: int = knob(8, "sequences per step")
    seq_len: int = knob(128, "tokens per sequence (in the sampled tokenizer)")
    vocab_size_min: int = knob(8192, "smallest sampled vocabulary size")
    vocab_size_max: int = knob(32768, "largest sampled vocabulary size (inclusive)")
    vocab_size_log: bool = knob(
        False,
        "draw the sampled vocabulary size log-uniformly in [min, max] (as many 16k-32k "
        "vocabularies as 128k-256k ones); false: uniformly",
    )
    texts_per_sample: int = knob(256, "texts whose substrings build one sampled tokenizer")
    sampler: str = knob("zett", "zett | log_gumbel: how noise picks pieces (zett/data/sampler.py)")
    pretokenizers: list[str] = knob(
        help="pre-tokenizers of sampled tokenizers, one drawn per sample: gpt2 | punct_attach | "
        "metaspace (zett/data/sampler.py)",
        factory=lambda: ["gpt2"],
    )
    noise_mean: float = knob(1e-5, "zett: median noise level σ on piece probs; 0 turns noise off")
    noise_std: float = knob(
        4.0, "zett: log-normal spread of σ; log_gumbel: Gumbel scale on log-probs"
    )
    n_token_subsample: int = knob(8192, "tokens of the sampled vocab the hypernet embeds per step")
    negative_correction: bool = knob(True, "sampled-softmax log(1/q) on the random negative rows")
    min_negatives: int = knob(
        0,
        "rows kept for random negatives: a batch is cut to n_token_subsample - min_negatives "
        "distinct tokens (0: every run before configs/smollm2_cpu_bigvocab3.yaml, where a "
        "large sampled vocabulary's batch could fill every row and leave no negative)",
    )
    negative_strata: bool = knob(
        True,
        "with short_rows: reweight the negatives short_first keeps per length stratum "
        "(false: the runs before 2026-12-07, whose offsets ignored dropped negatives)",
    )
    short_rows: int = knob(
        0, "of the subsampled rows, how many run at `short_pieces` positions (0: off)"
    )
    short_pieces: int = knob(3, "piece positions of the short rows (the rest run at max_pieces)")
    prefetch: int = knob(2, "batches sampled ahead in a background thread")
    seed: int = knob(0, "seed of the batch stream (batch k is a function of seed and k)")


@dataclass
class TrainConfig:
    steps: int = knob(1000, "optimizer steps in all, every stage included")
    lr: float = knob(3e-4, "AdamW peak learning rate")
    end_lr: float = knob(6e-5, "cosine decay target")
    warmup_steps: int = knob(100, "linear lr warm-up of the LM stage")
    schedule_steps: int = knob(
        0, "horizon of the warm-up + cosine schedule (0: `steps`); larger lets a run stop early"
    )
    cooldown_steps: int = knob(
        0,
        "the last N of `steps` decay linearly to 0 from the rate the schedule has at their start "
        "(a warmup-stable-decay cool-down; 0: off)",
    )
    b1: float = knob(0.9, "AdamW beta1")
    b2: float = knob(0.95, "AdamW beta2")
    weight_decay: float = knob(0.01, "AdamW decoupled weight decay")
    grad_clip: float = knob(0.1, "global-norm clip")
    grad_accum: int = knob(1, "micro-batches per optimizer step")
    lw: float = knob(0.5, "weight of the auxiliary MSE on shared tokens (0: off)")
    identity_steps: int = knob(0, "warm-up reproducing the original embeddings (0: no_identity)")
    compose_steps: int = knob(0, "first stage: rebuild base tokens from other base tokens (no LM)")
    compose_lr: float = knob(3e-4, "peak lr of the compose stage (own warm-up + cosine schedule)")
    compose_rows: int = knob(256, "base tokens per compose batch (stage and auxiliary term)")
    compose_weight: float = knob(0.0, "weight of the compose loss added to LM steps (0: off)")
    compose_expand_p: float = knob(0.3, "chance to split a BPE parent further into its parents")
    compose_identity: float = knob(0.3, "share of compose rows that are base tokens as themselves")
    compose_valid: float = knob(0.02, "fraction of compose targets held out (eval/compose_mse)")
    objective: str = knob("auto", "auto | clm | mlm | sentence")
    bf16: bool = knob(False, "hypernet compute in bfloat16 (params and optimizer stay fp32)")
    eval_every: int = knob(100, "held-out eval every N steps (0: never)")
    eval_at_start: bool = knob(True, "also evaluate at step 0 (the FVT init when heads are zero)")
    eval_tokenizers: list[str] = knob(
        help="tokenizers of the held-out evals (names or paths)", factory=lambda: ["llama2"]
    )
    eval_bytes: int = knob(20000, "validation bytes per language per eval")
    save_every: int = knob(100, "orbax checkpoint every N steps (the last 2 are kept)")
    log_every: int = knob(10, "metrics.jsonl line every N steps")
    output_dir: str = knob("runs/default", "run directory: metrics.jsonl, checkpoints/, hypernet/")
    init_from: str = knob(
        "",
        "warm start from an exported hypernet dir (e.g. hypernets/smollm2): its weights, step "
        "and LM-token count, fresh optimizer moments; used when output_dir has no checkpoint "
        "to resume (a fresh machine continuing a long run)",
    )
    max_minutes: float = knob(0.0, "stop (checkpoint + export) after this much wall time (0: off)")
    seed: int = knob(0, "hypernet init and per-step rng")


@dataclass
class MeshConfig:
    data: int = knob(-1, "devices along the batch axis; -1: all that the others leave")
    model: int = knob(1, "tensor parallelism of the frozen base LM")
    fsdp: int = knob(1, "parameter sharding of base and hypernet")
    distributed: bool = knob(False, "call jax.distributed.initialize() (multi-host)")


@dataclass
class EvalConfig:
    langs: list[str] = knob(help="empty: every language of the test split", factory=list)
    chunk_tokens: int = knob(511, "tokens per chunk (+ BOS where the tokenizer has one)")
    batch_size: int = knob(8, "chunks per forward pass")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    hypernet: HypernetConfig = field(default_factory=HypernetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _check_type(value: Any, tp: Any, key: str) -> Any:
    """Return `value` converted to `tp` where that is lossless, else raise naming `key`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return _check_type(value, arg, key)
            except ZettError:
                continue
        raise ZettError(f"config key {key}: {value!r} is not a {tp}")
    if origin is list:
        if not isinstance(value, list):
            raise ZettError(f"config key {key}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_check_type(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ZettError(f"config key {key}: expected a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {_check_type(k, kt, key): _check_type(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads `1e30` (no dot) as a string
    if tp in (int, float, str, bool) and not (
        isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    ):
        raise ZettError(f"config key {key}: expected {tp.__name__}, got {value!r}")
    return value


# Keys (and whole sections) that configs stored by earlier versions (checkpoint metadata,
# hypernet.json) carry but nothing reads any more: `from_dict` drops them; a YAML file or
# flag naming one still fails. `transfer` held only pad_multiple, which `zett train` never
# read (exports pad to zett.transfer.export.PAD_MULTIPLE).
RETIRED_KEYS = frozenset({"hypernet.init_mean_of_pieces", "transfer", "eval.max_bytes"})


def apply_dict(obj: Any, data: dict[str, Any], prefix: str, stored: bool = False) -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if stored and dotted in RETIRED_KEYS:
            continue
        if key not in names:
            raise ZettError(
                f"unknown config key {dotted!r}; known here: {', '.join(sorted(names))}"
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ZettError(f"config key {dotted}: expected a section (mapping)")
            apply_dict(current, value, dotted + ".", stored)
        else:
            setattr(obj, key, _check_type(value, hints[key], dotted))


def _read_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of the YAML file `path` (ZettError naming it otherwise)."""
    if not path.is_file():
        raise ZettError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ZettError(f"config file {path}: not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(data, dict):
        raise ZettError(f"config file {path}: top level must be a mapping")
    return data


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path.resolve() in seen:
        raise ZettError(f"config file {path}: `base:` loops back to itself")
    data = _read_mapping(path)
    base = data.pop("base", None)
    if base is None:
        return data
    merged = _read_yaml(path.parent / str(base), (*seen, path.resolve()))
    _deep_update(merged, data)
    return merged


def _deep_update(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v)
        else:
            dst[k] = v


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """`["--train.steps", "100", "--data.langs={en: 1}"]` → nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ZettError(f"override {arg!r}: expected --section.key VALUE")
        if "=" in arg:
            key, raw = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise ZettError(f"override {arg}: missing a value")
            key, raw = arg[2:], args[i + 1]
            i += 2
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults ← YAML file (with `base:` inheritance) ← dotted overrides."""
    cfg = Config()
    if path is not None:
        apply_dict(cfg, _read_yaml(Path(path)), "")
    if overrides:
        apply_dict(cfg, parse_overrides(overrides), "")
    return cfg


def describe_keys() -> str:
    """Every config key with its default and help, one line each (for `zett train -h`)."""
    lines = []
    for section in dataclasses.fields(Config):
        cls = type(getattr(Config(), section.name))
        for f in dataclasses.fields(cls):
            default = getattr(cls(), f.name)
            lines.append(
                f"  --{section.name}.{f.name} (default {default!r}) {f.metadata.get('help', '')}"
            )
    return "\n".join(lines)


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> Config:
    """The config stored by `to_dict` (possibly by an earlier version: see RETIRED_KEYS)."""
    cfg = Config()
    apply_dict(cfg, data, "", stored=True)
    return cfg


# ------------------------------------------------------------------ command settings
# The flags of `zett transfer`, `baseline`, `nshot`, `eval` and `bench` (see the module
# docstring). A field without a default is a required setting (a flag or a key of --config).


# `zett baseline --method` choices; zett.transfer.baselines.METHODS is the registry (JAX, so
# not imported here) and tests/test_cli_help.py checks that the two agree.
BASELINE_METHODS = ("fvt", "focus", "hypernet", "lexical", "mean", "omp", "random")
_TARGET_HELP = "tokenizer.json, a dir holding one, or a shared name (llama2, llama3, qwen3, ...)"


@dataclass
class TransferArgs:
    """`zett transfer`."""

    hypernet: str = knob(help="hypernet dir (hypernet.json + weights)")
    target_tokenizer: str = knob(help=_TARGET_HELP)
    output: str = knob(help="HF model directory to write")
    base: str = knob("smollm2", "`smollm2`, `minilm` or a HF model dir")
    overwrite: bool = knob(False, "replace an existing --output")
    finetuned: str | None = knob(
        None, "apply to this fine-tuned variant of --base (same architecture and tokenizer)"
    )
    transferred_trained: str | None = knob(
        None,
        "a transferred --base further trained on the target tokenizer (n-shot); its "
        "non-embedding update, scaled by --lam, is added to --finetuned",
    )
    lam: float = knob(1.0, "task-vector scale λ")
    block: int = knob(4096, "tokens per hypernet call")
    no_new_row_prior: bool = knob(
        False, "ignore the hypernet's new_row_prior.json (the new rows' fitted logit shift)"
    )


@dataclass
class BaselineArgs:
    """`zett baseline`."""

    method: str = knob(help="embedding initialization", choices=BASELINE_METHODS)
    target_tokenizer: str = knob(help=_TARGET_HELP)
    output: str = knob(help="HF model directory to write")
    base: str = knob("smollm2", "`smollm2`, `minilm` or a HF model dir")
    overwrite: bool = knob(False, "replace an existing --output")
    donor: str | None = knob(None, "omp: a HF model dir that already uses the target tokenizer")
    hypernet: str | None = knob(None, "method hypernet: the hypernet dir")
    seed: int = knob(0, "random: the sampling seed")
    max_pieces: int | None = knob(
        None, "fvt/lexical: average only the first N pieces of each token (default: all)"
    )
    omp_k: int = knob(64, "omp: atoms per token")


@dataclass
class NShotArgs:
    """`zett nshot`."""

    model: str = knob(help="HF causal-LM dir (e.g. a `zett transfer` export)")
    output: str = knob(help="HF model directory to write")
    steps: int = knob(help="optimizer steps")
    all_weights: bool = knob(False, "train every weight (default: embeddings only)")
    # The two numbers are zett.train.nshot.EMBEDDING_LR and ALL_WEIGHTS_LR (a test checks them).
    lr: float | None = knob(None, "peak lr (default 0.001 embeddings only, 0.0001 all)")
    warmup: int | None = knob(None, "warm-up steps (default 10% of steps)")
    batch_size: int = knob(4, "sequences per step")
    seq_len: int = knob(128, "tokens per sequence")
    eval_every: int = knob(10, "steps between evals (0: ends only)")
    # zett.train.nshot.DEFAULT_LANGS (a test checks it)
    langs: list[str] = knob(
        help="corpus languages to train and evaluate on", factory=lambda: ["en", "python"]
    )
    eval_bytes: int = knob(2000, "valid-split bytes per language")
    seed: int = knob(0, "seed of the window order and torch")
    corpus: str = knob("default", "a saved DatasetDict (default: prepared)")
    log: str | None = knob(None, "JSONL log (default: <output>.nshot.jsonl)")
    overwrite: bool = knob(False, "replace an existing --output")
    objective: str = knob(
        "clm",
        "clm: next-token cross-entropy on the new tokenizer (default); distill: match "
        "--teacher's chunk likelihoods (approximate likelihood matching)",
        choices=("clm", "distill"),
    )
    teacher: str | None = knob(
        None,
        "teacher HF dir for --objective distill (default: the base named in the model's "
        "zett_transfer.json)",
    )
    tau: float = knob(1.0, "distill temperature: chunk log-probs are divided by it (default 1.0)")
    max_cpu_seconds: float | None = knob(
        None,
        "stop training after this much process CPU time in training steps (evals excluded; "
        "--steps is then an upper bound; default: no budget)",
    )


@dataclass
class EvalArgs:
    """`zett eval`."""

    model: str = knob(help="HF model directory, or smollm2")
    langs: list[str] | None = knob(None, "languages (default: all in the test split)", nargs="*")
    max_bytes: int = knob(50_000, "test bytes per language")
    texts: str | None = knob(None, "JSON file {lang: [text, ...]} instead of the corpus")
    chunk_tokens: int = knob(
        511, "text tokens per scored chunk (a fresh context, after one starter token)"
    )
    batch_size: int = knob(8, "chunks per forward pass")
    output: str | None = knob(None, "write the report as JSON here")


@dataclass
class BenchArgs:
    """`zett bench`."""

    output: str = knob("results/bench.json", "the JSON report to write")
    only: list[str] | None = knob(
        None,
        "subset, e.g. train tokenizers data; the other entries of --output are kept (default: all)",
        nargs="*",
    )
    quick: bool = knob(False, "fewer repetitions")


_GIVEN = "_zett_flags_given"  # Namespace attribute: the fields set on the command line


class _Flag(argparse.Action):
    """Stores a flag's value (a switch: `const`) and notes that the command line set it, so
    that it wins over `--config` while an untouched flag leaves the file's value."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        given = getattr(namespace, _GIVEN, None)
        if given is None:
            given = set()
            setattr(namespace, _GIVEN, given)
        given.add(self.dest)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of the command dataclass `cls`, plus `--config FILE.yaml`."""
    names = [f.name for f in dataclasses.fields(cls)]
    example = next((n for n in names if "_" in n), names[0])
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="YAML mapping of this command's settings, keyed by the flag names in snake_case "
        f"({_flag(example)} → {example}:); the flags given here override it",
    )
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        tp = hints[f.name]
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
        kwargs: dict[str, Any] = {"dest": f.name, "action": _Flag}
        kwargs["help"] = meta.pop("help").replace("%", "%%")
        if _required(f):
            kwargs["help"] += " (required: here or in --config)"
        elif f.default_factory is not dataclasses.MISSING:
            kwargs["default"] = f.default_factory()
        else:
            kwargs["default"] = f.default
        if tp is bool:
            if kwargs.get("default") is not False:
                raise TypeError(f"{cls.__name__}.{f.name}: a switch must default to False")
            kwargs.update(nargs=0, const=True)
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            kwargs.update(type=item, nargs=meta.pop("nargs", "+"))
        else:
            kwargs["type"] = tp
        parser.add_argument(_flag(f.name), **kwargs, **meta)


T = typing.TypeVar("T")


def command_args(cls: type[T], args: argparse.Namespace) -> T:
    """The command dataclass `cls` from parsed flags (`add_flags`): defaults ← the YAML file
    of `--config` (no `base:` inheritance here: `base` is a transfer setting) ← the flags
    given on the command line. An unknown key, a wrong type or a missing required setting
    raises ZettError naming it."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        for key, value in _read_mapping(path).items():
            if key not in fields:
                raise ZettError(
                    f"config file {path}: unknown key {key!r}; known: {', '.join(fields)}"
                )
            values[key] = _check_type(value, hints[key], f"{key} (in {path})")
            choices = fields[key].metadata.get("choices")
            if choices is not None and values[key] not in choices:
                raise ZettError(
                    f"config file {path}: {key} {value!r} is not one of {', '.join(choices)}"
                )
    given: set[str] = getattr(args, _GIVEN, set())
    values.update({name: getattr(args, name) for name in fields if name in given})
    missing = [name for name, f in fields.items() if _required(f) and name not in values]
    if missing:
        raise ZettError(f"missing {', '.join(map(_flag, missing))} (a flag, or a key of --config)")
    return cls(**values)
