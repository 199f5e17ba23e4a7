"""`zett nshot`: continued causal-LM training of a transferred model (the paper's n-shot).

    zett nshot --model out/llama2-hypernet --output out/llama2-hypernet-nshot --steps 200
    zett nshot ... --all-weights --lr 1e-4          # every weight, not only the embeddings

A zero-shot transfer (`zett transfer`, `zett baseline`) gives a model that already works with
the new tokenizer; a little further training on text tokenized with that tokenizer closes
most of the remaining gap. The interesting question is how fast: a good initialization
(the hypernet) should reach a given bits per byte with fewer training tokens than a weak one
(FVT, FOCUS). So this module trains the exported Hugging Face PyTorch checkpoint directly
(no JAX round trip) and logs held-out bits per byte against the number of training tokens.

Data: the corpus train split of `langs`, whole documents in stored order, tokenized with the
model's *own* tokenizer (the target tokenizer of the transfer), each followed by EOS, and
packed into `[batch_size, seq_len]` blocks (no padding, documents run across blocks); the
blocks are shuffled with `seed`, and the stream repeats if the requested text runs out.

Training: AdamW (β2 0.95, weight decay 0.01 on the trained tensors), linear warm-up then
cosine decay to 10 % of `lr`, grad-norm clip 1.0, float32. With `train_embeddings_only`
(the default) every tensor except the input and output embeddings is frozen
(`requires_grad=False`, not given to the optimizer), so those tensors stay bit-identical.

Evaluation: bits per byte (`zett.eval.bpb.bits_per_byte` and its protocol) on the valid
split of each language, `eval_bytes` bytes per language, at step 0, every `eval_every`
steps and after the last step. Each evaluation appends one JSON line
`{"step", "tokens", "bpb": {lang: ...}, "mean_bpb", "train_loss"}` to the log, which is
rewritten atomically (`<output>.nshot.jsonl` beside the output, and copied into it).

Objective `distill` (`--objective distill`): instead of next-token cross-entropy, the student
matches a frozen teacher — by default the transferred model's base, named by the `base`
field of its `zett_transfer.json` — by approximate likelihood matching
(`zett.distill`, whose docstring states the exact loss). The alignment needs text, so the
distill data are text windows rather than id blocks: the same train split and languages,
documents in stored order, each cut into consecutive windows of `seq_len` *student* tokens
(`zett.distill.text_windows`; a window runs from its first token's start character to the
next window's), shuffled with `seed`; each step takes `batch_size` windows and re-tokenizes
them with both tokenizers. Logged `tokens` then count the student tokens actually trained on.

CPU budget (`max_cpu_seconds`): training stops once the process CPU time spent in training
steps (evaluations excluded) reaches the budget, `steps` is then only an upper bound and the
cosine decay runs over the budget (progress = CPU seconds used / budget). Every log row
carries `cpu_seconds` (training CPU time so far) so objectives can be compared at equal
compute.

`zett nshot` is wired in `zett.cli`: `command` runs it with the typed settings
`zett.config.NShotArgs` (flags, defaults, `--config FILE.yaml`); `add_arguments` adds the flags.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from zett.assets import resolve_model_dir
from zett.atomic import atomic_dir, atomic_write_text
from zett.config import NShotArgs, add_flags
from zett.data.corpus import texts_for
from zett.distill import distill_loss, make_batch, text_windows
from zett.errors import ZettError
from zett.eval.bpb import bits_per_byte, context_start_id, encode_texts, load_causal_lm

DEFAULT_LANGS = ("en", "python")
EMBEDDING_LR = 1e-3  # default lr when only the embeddings train (they move far from init)
ALL_WEIGHTS_LR = 1e-4  # default lr for full training (the body is already pretrained)
MIN_LR_FRACTION = 0.1  # cosine decay ends at this fraction of lr
OBJECTIVES = ("clm", "distill")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


@dataclass
class NShotResult:
    """What a run produced: the model dir, the eval log rows and every step's train loss."""

    output_dir: Path
    log: list[dict[str, Any]]
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def lr_at(step: int, steps: int, warmup: int, lr: float) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warm-up over `warmup` steps
    to `lr`, then cosine decay to `MIN_LR_FRACTION * lr` at the last step."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    span = max(steps - warmup - 1, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr * (MIN_LR_FRACTION + (1.0 - MIN_LR_FRACTION) * cosine)


def lr_at_fraction(step: int, fraction: float, warmup: int, lr: float) -> float:
    """`lr_at` with the cosine progress given directly as `fraction` of the run (0..1),
    used when a CPU-time budget rather than a step count ends the run."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(max(fraction, 0.0), 1.0)))
    return lr * (MIN_LR_FRACTION + (1.0 - MIN_LR_FRACTION) * cosine)


def pack_blocks(token_ids: list[list[int]], seq_len: int, eos_id: int | None) -> list[list[int]]:
    """Concatenate documents (each followed by `eos_id` when given) and cut the stream into
    blocks of exactly `seq_len` ids; the tail shorter than a block is dropped. Pure Python."""
    if seq_len < 2:
        raise ZettError(f"seq_len must be >= 2, got {seq_len}")
    stream: list[int] = []
    for ids in token_ids:
        stream.extend(ids)
        if eos_id is not None:
            stream.append(eos_id)
    return [stream[s : s + seq_len] for s in range(0, len(stream) - seq_len + 1, seq_len)]


def _eos_id(tokenizer: Any, config: Any) -> int | None:
    for cand in (getattr(tokenizer, "eos_token_id", None), getattr(config, "eos_token_id", None)):
        if isinstance(cand, (list, tuple)):
            cand = cand[0] if cand else None
        if cand is not None:
            return int(cand)
    return None


def training_blocks(
    tokenizer: Any,
    eos_id: int | None,
    langs: list[str],
    n_blocks: int,
    seq_len: int,
    seed: int,
    corpus: Any = "default",
) -> list[list[int]]:
    """`n_blocks` shuffled `[seq_len]` id blocks from the train split of `langs`.

    Each language contributes an equal share of bytes; the byte budget assumes at least one
    token per 8 bytes and doubles until there are enough blocks (or the split runs out, in
    which case the blocks repeat).
    """
    need = n_blocks * seq_len
    budget = max(need * 8 // max(len(langs), 1), 4096)
    blocks: list[list[int]] = []
    while True:
        texts = [t for lang in langs for t in texts_for("train", lang, budget, corpus=corpus)]
        blocks = pack_blocks(encode_texts(tokenizer, texts), seq_len, eos_id)
        total = sum(len(t.encode("utf-8")) for t in texts)
        if len(blocks) >= n_blocks or total < budget * len(langs) * 0.9:
            break  # enough, or the split has no more text of these languages
        budget *= 2
    if not blocks:
        raise ZettError(
            f"corpus train split has too little text in {', '.join(langs)} for one block of "
            f"{seq_len} tokens; lower --seq-len or choose other --langs"
        )
    random.Random(seed).shuffle(blocks)
    return [blocks[i % len(blocks)] for i in range(n_blocks)]


def training_windows(
    tokenizer: Any, langs: list[str], n_windows: int, seq_len: int, seed: int,
    corpus: Any = "default",
) -> list[str]:  # fmt: skip
    """`n_windows` shuffled text windows of about `seq_len` tokens of `tokenizer` (a HF fast
    tokenizer) from the train split of `langs` (module docstring, "Objective distill")."""
    backend = tokenizer.backend_tokenizer
    budget = max(n_windows * seq_len * 8 // max(len(langs), 1), 4096)
    while True:
        texts = [t for lang in langs for t in texts_for("train", lang, budget, corpus=corpus)]
        windows = text_windows(backend, texts, seq_len)
        total = sum(len(t.encode("utf-8")) for t in texts)
        if len(windows) >= n_windows or total < budget * len(langs) * 0.9:
            break
        budget *= 2
    if not windows:
        raise ZettError(f"corpus train split has no text in {', '.join(langs)} to distill on")
    random.Random(seed).shuffle(windows)
    return [windows[i % len(windows)] for i in range(n_windows)]


def default_teacher(source: Path) -> Path:
    """The base model named by `source`'s `zett_transfer.json` (`zett transfer`/`baseline`)."""
    prov = source / "zett_transfer.json"
    base = json.loads(prov.read_text()).get("base") if prov.is_file() else None
    if not base:
        raise ZettError(
            f"{source} has no zett_transfer.json naming its base model; pass --teacher DIR"
        )
    return Path(base)


def trainable_parameters(model: Any, embeddings_only: bool) -> list[Any]:
    """Set `requires_grad` and return the distinct tensors to train (tied ones once)."""
    if not embeddings_only:
        params = list(model.parameters())
        for p in params:
            p.requires_grad_(True)
        return params
    for p in model.parameters():
        p.requires_grad_(False)
    chosen: list[Any] = []
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        if module is None:
            continue
        weight = module.weight
        if all(weight is not c for c in chosen):
            weight.requires_grad_(True)
            chosen.append(weight)
    return chosen


def evaluate(model: Any, tokenizer: Any, texts: dict[str, list[str]]) -> dict[str, float]:
    """Bits per byte per language (and `mean`, unweighted over languages)."""
    out = {lang: bits_per_byte(model, tokenizer, t).bpb for lang, t in texts.items()}
    out["mean"] = sum(out.values()) / len(out)
    return out


def _write_log(path: Path, log: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in log))


def _save_model(model: Any, source: Path, output: Path, overwrite: bool, extra: dict) -> None:
    """Copy the source dir's tokenizer and side files, then the trained weights + config."""
    with atomic_dir(output, overwrite=overwrite) as tmp:
        for f in source.iterdir():
            if f.is_file() and f.name not in WEIGHT_FILES and f.name != "config.json":
                shutil.copyfile(f, tmp / f.name)
        model.save_pretrained(str(tmp))
        for name, text in extra.items():
            (tmp / name).write_text(text)


def nshot(
    model_dir: str | Path,
    output_dir: str | Path,
    steps: int,
    *,
    train_embeddings_only: bool = True,
    lr: float | None = None,
    warmup: int | None = None,
    batch_size: int = 4,
    seq_len: int = 128,
    eval_every: int = 10,
    langs: list[str] | tuple[str, ...] = DEFAULT_LANGS,
    eval_bytes: int = 2000,
    seed: int = 0,
    corpus: Any = "default",
    overwrite: bool = False,
    log_path: str | Path | None = None,
    progress: bool = True,
    objective: str = "clm",
    teacher: str | Path | None = None,
    tau: float = 1.0,
    max_cpu_seconds: float | None = None,
) -> NShotResult:
    """Train `model_dir` (a HF causal-LM dir) for `steps` steps and write `output_dir`.

    `lr` defaults to `EMBEDDING_LR` (embeddings only) or `ALL_WEIGHTS_LR`; `warmup` to 10 %
    of `steps`. `eval_every <= 0` evaluates only before and after training. Returns the log
    (module docstring) and the per-step training losses (mean token cross-entropy in nats for
    `objective="clm"`, the ALM loss for `"distill"` against `teacher`, default: the base in
    `zett_transfer.json`). `max_cpu_seconds` ends training on a CPU-time budget.
    """
    import torch

    if steps < 1:
        raise ZettError(f"--steps must be >= 1, got {steps}")
    if batch_size < 1:
        raise ZettError(f"--batch-size must be >= 1, got {batch_size}")
    if objective not in OBJECTIVES:
        raise ZettError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    langs = list(langs)
    if not langs:
        raise ZettError("--langs is empty; give at least one corpus language (e.g. en python)")
    output = Path(output_dir)
    if output.exists() and not overwrite:
        raise ZettError(f"{output} already exists; pass --overwrite to replace it")
    source = resolve_model_dir(model_dir)
    if objective == "distill":  # fail before any loading when there is no teacher
        teacher_dir = resolve_model_dir(teacher) if teacher else default_teacher(source)
    lr = lr if lr is not None else (EMBEDDING_LR if train_embeddings_only else ALL_WEIGHTS_LR)
    warmup = warmup if warmup is not None else max(1, steps // 10)
    log_file = Path(log_path) if log_path else output.with_name(output.name + ".nshot.jsonl")
    start = time.perf_counter()

    torch.manual_seed(seed)
    model, tokenizer = load_causal_lm(source)
    device = next(model.parameters()).device
    eval_texts = {lang: texts_for("valid", lang, eval_bytes, corpus=corpus) for lang in langs}
    if objective == "clm":
        blocks = training_blocks(
            tokenizer, _eos_id(tokenizer, model.config), langs, steps * batch_size, seq_len,
            seed, corpus,
        )  # fmt: skip
    else:
        teacher_model, teacher_tok = load_causal_lm(teacher_dir)
        teacher_model.to(device).eval()
        for p in teacher_model.parameters():
            p.requires_grad_(False)
        t_start = context_start_id(teacher_tok, teacher_model.config)
        s_start = context_start_id(tokenizer, model.config)
        windows = training_windows(tokenizer, langs, steps * batch_size, seq_len, seed, corpus)
    params = trainable_parameters(model, train_embeddings_only)
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    log: list[dict[str, Any]] = []
    losses: list[float] = []
    seen = [0]  # training tokens so far
    cpu_used = [0.0]  # process CPU seconds spent in training steps

    def record(step: int) -> None:
        bpb = evaluate(model, tokenizer, eval_texts)
        since = losses[-(step - (log[-1]["step"] if log else 0)) :] if step else []
        row = {
            "step": step,
            "tokens": seen[0],
            "bpb": {k: v for k, v in bpb.items() if k != "mean"},
            "mean_bpb": bpb["mean"],
            "train_loss": sum(since) / len(since) if since else None,
            "seconds": round(time.perf_counter() - start, 1),
            "cpu_seconds": round(cpu_used[0], 1),
        }
        log.append(row)
        _write_log(log_file, log)

    record(0)
    model.train()
    bar = tqdm(range(steps), desc="nshot", disable=not progress)
    done = 0
    for step in bar:
        t_cpu = time.process_time()
        if max_cpu_seconds:
            step_lr = lr_at_fraction(step, cpu_used[0] / max_cpu_seconds, warmup, lr)
        else:
            step_lr = lr_at(step, steps, warmup, lr)
        for group in opt.param_groups:
            group["lr"] = step_lr
        if objective == "clm":
            rows = blocks[step * batch_size : (step + 1) * batch_size]
            batch = torch.tensor(rows, device=device)
            loss = model(input_ids=batch, labels=batch).loss
            seen[0] += batch_size * seq_len
        else:
            texts = windows[step * batch_size : (step + 1) * batch_size]
            dbatch = make_batch(texts, teacher_tok.backend_tokenizer, tokenizer.backend_tokenizer,
                                t_start, s_start)  # fmt: skip
            loss = distill_loss(model, teacher_model, dbatch, s_start, t_start, tau)
            seen[0] += dbatch.student_tokens
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        cpu_used[0] += time.process_time() - t_cpu
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        done = step + 1
        out_of_budget = bool(max_cpu_seconds) and cpu_used[0] >= (max_cpu_seconds or 0.0)
        if done == steps or out_of_budget or (eval_every > 0 and done % eval_every == 0):
            record(done)
            model.train()
        if out_of_budget:
            break
    bar.close()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    info = {
        "source": str(source),
        "objective": objective,
        "teacher": str(teacher_dir) if objective == "distill" else None,
        "tau": tau if objective == "distill" else None,
        "max_cpu_seconds": max_cpu_seconds,
        "steps": done,
        "train_embeddings_only": train_embeddings_only,
        "lr": lr,
        "warmup": warmup,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "langs": langs,
        "seed": seed,
        "tokens": seen[0],
        "cpu_seconds": round(cpu_used[0], 1),
        "final_mean_bpb": log[-1]["mean_bpb"],
    }
    extra = {
        "zett_nshot.json": json.dumps(info, indent=2) + "\n",
        "nshot_log.jsonl": "".join(json.dumps(row) + "\n" for row in log),
    }
    _save_model(model, source, output, overwrite, extra)
    return NShotResult(output, log, losses, time.perf_counter() - start)


# ------------------------------------------------------------------------------ CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `zett nshot` (generated from `zett.config.NShotArgs`)."""
    add_flags(p, NShotArgs)


def command(cfg: NShotArgs) -> None:
    result = nshot(
        cfg.model, cfg.output, cfg.steps, train_embeddings_only=not cfg.all_weights,
        lr=cfg.lr, warmup=cfg.warmup, batch_size=cfg.batch_size, seq_len=cfg.seq_len,
        eval_every=cfg.eval_every, langs=cfg.langs, eval_bytes=cfg.eval_bytes,
        seed=cfg.seed, corpus=cfg.corpus, overwrite=cfg.overwrite, log_path=cfg.log,
        objective=cfg.objective, teacher=cfg.teacher, tau=cfg.tau,
        max_cpu_seconds=cfg.max_cpu_seconds,
    )  # fmt: skip
    first, last = result.log[0], result.log[-1]
    print(f"mean bpb {first['mean_bpb']:.4f} → {last['mean_bpb']:.4f} after {last['tokens']} "
          f"tokens ({result.seconds:.0f} s); model written to {result.output_dir}")  # fmt: skip
