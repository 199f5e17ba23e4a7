"""`zett train`: the training loop around the jitted step.

    stage 0 (compose_steps):  rebuild base tokens' embeddings from *other* base tokens
                              (`zett.tokenizers.compose`), no LM: cheap steps that teach
                              composition before the LM is ever run;
    stage 1 (identity_steps): reproduce the base embeddings of base tokens from their own
                              decomposition (the paper's identity warm-up);
    stage 2:                  per batch a sampled tokenizer → hypernet → frozen LM → loss
                              (+ `compose_weight` × the compose loss of a compose batch).

Per step it writes one JSON line to `<run>/metrics.jsonl` (loss, aux loss, grad norm, lr,
step time; compile time is reported once, apart), shows one tqdm bar, evaluates held-out
bits-per-byte every `eval_every` steps, and saves an orbax checkpoint every `save_every`
steps. `--resume` restores the latest complete checkpoint and continues with the same
batches (each batch is a pure function of (seed, step)), so an interrupted run reproduces
the uninterrupted one's losses. A non-finite loss stops the run with the step number and
keeps the last good checkpoint. At the end the hypernet is exported to `<run>/hypernet`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from zett import assets, sharding
from zett.config import Config, from_dict, to_dict
from zett.data.corpus import load_corpus
from zett.data.pipeline import BatchIterator
from zett.errors import ZettError
from zett.hypernet import io as hypernet_io
from zett.hypernet.io import embedding_fingerprint
from zett.hypernet.model import rescaler_stats, untrained_hypernet
from zett.models.load import get_embeddings, load_model
from zett.tokenizers.compose import compositions, sample_pieces
from zett.tokenizers.decompose import decompose
from zett.tokenizers.special import special_roles
from zett.tokenizers.surface import load_tokenizer, surface_forms
from zett.train import step as step_lib
from zett.train.checkpoint import Checkpointer, abstract_like
from zett.train.evaluate import HeldoutEvaluator, build_evaluator


@dataclass
class BaseBundle:
    """The frozen base model and its tokenizer, loaded once."""

    loaded: Any  # zett.models.load.LoadedModel
    tokenizer: Any  # tokenizers.Tokenizer
    frozen: step_lib.Frozen
    fingerprint: str
    path: Path


def load_base(cfg: Config) -> BaseBundle:
    path = assets.resolve_model_dir(cfg.model.base)
    loaded = load_model(path, dtype=cfg.model.dtype)
    tokenizer = load_tokenizer(path / "tokenizer.json")
    base_in, base_out, _ = get_embeddings(loaded, loaded.params)
    mask_emb = None
    roles = special_roles(tokenizer)  # reads the tokenizer_config.json load_tokenizer attached
    if "mask" in roles and roles["mask"] < base_in.shape[0]:
        mask_emb = base_in[roles["mask"]]
    base_in = jnp.asarray(base_in, jnp.float32)
    base_out = None if base_out is None else jnp.asarray(base_out, jnp.float32)
    frozen = step_lib.Frozen(
        params=loaded.params,
        base_in=base_in,
        base_out=base_out,
        mask_embedding=mask_emb,
        stats=rescaler_stats(base_in, base_out),
        complete=jnp.asarray(surface_forms(tokenizer).complete_text(base_in.shape[0])),
    )
    return BaseBundle(loaded, tokenizer, frozen, embedding_fingerprint(base_in), path)


def resolve_objective(cfg: Config, loaded: Any) -> str:
    obj = cfg.train.objective
    if obj == "auto":
        obj = "clm" if loaded.is_decoder else ("mlm" if loaded.has_lm_head else "sentence")
    if obj not in step_lib.OBJECTIVES:
        raise ZettError(
            f"config key train.objective: {obj!r} is not one of auto, clm, mlm, sentence"
        )
    if obj == "mlm" and not loaded.has_lm_head:
        raise ZettError("train.objective mlm needs a base with an MLM head; use `sentence`")
    if obj == "clm" and not loaded.is_decoder:
        raise ZettError("train.objective clm needs a decoder base; use `mlm` or `sentence`")
    return obj


def base_heads(loaded: Any) -> int:
    return int(getattr(loaded.hf_config, "num_attention_heads", 0) or 8)


class IdentityBatches:
    """Batches of base-vocabulary tokens decomposed by the base tokenizer itself."""

    def __init__(self, bundle: BaseBundle, n_tokens: int, max_pieces: int, seed: int):
        forms = surface_forms(bundle.tokenizer)
        rows = bundle.frozen.base_in.shape[0]
        usable = np.array([i for i in range(min(len(forms.bytes_), rows)) if forms.bytes_[i]])
        dec = decompose(forms, bundle.tokenizer, max_pieces)
        self.ids, self.lengths = dec.ids, dec.lengths
        self.usable = usable[self.lengths[usable] > 0]
        self.n, self.seed = min(n_tokens, len(self.usable)), seed

    def batch(self, step: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng((self.seed, 1, step))
        pick = rng.choice(self.usable, size=self.n, replace=False)
        return {
            "piece_ids": self.ids[pick].astype(np.int32),
            "piece_lengths": self.lengths[pick].astype(np.int32),
            "vocab_mask": np.ones(self.n, bool),
            "unigram_logprobs": np.zeros(self.n, np.float32),
            "base_ids": pick.astype(np.int32),
        }


class CompositionBatches:
    """Batches of base tokens decomposed into other base tokens (the compose stage/term)."""

    def __init__(self, bundle: BaseBundle, cfg: Config):
        tc = cfg.train
        self.comp = compositions(bundle.tokenizer)
        rows = bundle.frozen.base_in.shape[0]
        keep = np.flatnonzero(self.comp.token_ids < rows)
        self.train_rows, self.valid_rows = (
            np.intersect1d(part, keep) for part in self.comp.split(tc.compose_valid)
        )
        if len(self.train_rows) == 0:
            raise ZettError(
                f"train.compose_steps/compose_weight: base {cfg.model.base!r} has no token "
                "that its tokenizer can write as two or more other tokens; set both to 0"
            )
        self.n = min(tc.compose_rows, len(self.train_rows))
        self.max_pieces = cfg.hypernet.max_pieces
        self.expand_p, self.seed = tc.compose_expand_p, tc.seed
        # Rows that are base tokens written as themselves (one piece), so that learning to
        # compose does not move what single-piece tokens — most of any text — get.
        special = {int(i) for i in bundle.tokenizer.get_added_tokens_decoder()}
        self.singles = np.array([i for i in range(rows) if i not in special], dtype=np.int64)
        self.n_single = min(int(round(tc.compose_identity * self.n)), len(self.singles))

    def batch(self, step: int, prefix: str = "") -> dict[str, np.ndarray]:
        rng = np.random.default_rng((self.seed, 2, step))
        pick = rng.choice(self.train_rows, size=self.n - self.n_single, replace=False)
        ids, lengths = sample_pieces(self.comp, pick, rng, self.expand_p, self.max_pieces)
        single = rng.choice(self.singles, size=self.n_single, replace=False)
        ones = np.zeros((self.n_single, self.max_pieces), np.int32)
        ones[:, 0] = single
        out = {
            "piece_ids": np.concatenate([ids, ones]),
            "piece_lengths": np.concatenate([lengths, np.ones(self.n_single, np.int32)]),
            "base_ids": np.concatenate([self.comp.token_ids[pick], single]).astype(np.int32),
        }
        if prefix:
            return {prefix + k: v for k, v in out.items()}
        out["vocab_mask"] = np.ones(self.n, bool)
        out["unigram_logprobs"] = np.zeros(self.n, np.float32)
        return out

    def valid(self) -> dict[str, np.ndarray]:
        """Held-out targets with their unexpanded parents (deterministic)."""
        rows = self.valid_rows
        ids, lengths = sample_pieces(
            self.comp, rows, np.random.default_rng(0), 0.0, self.max_pieces
        )
        return {
            "piece_ids": ids,
            "piece_lengths": lengths,
            "base_ids": self.comp.token_ids[rows].astype(np.int32),
            "vocab_mask": np.ones(len(rows), bool),
        }


def batch_arrays(batch: Any, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The jit-able arrays of a pipeline batch (a dataclass or a dict)."""
    get = batch.get if isinstance(batch, dict) else lambda k: getattr(batch, k, None)
    out = {}
    for k in keys:
        v = get(k)
        if v is not None:
            out[k] = np.asarray(v)
    return out


def _runtime_meta() -> dict:
    dev = jax.devices()[0]
    return {
        "hardware": f"{jax.device_count()}x {dev.device_kind} ({dev.platform}), "
        f"{platform.processor() or platform.machine()}",
        "jax": jax.__version__,
    }


class Trainer:
    """Holds everything of one run; `run()` trains to `cfg.train.steps`."""

    def __init__(
        self,
        cfg: Config,
        resume: bool = False,
        progress: bool = True,
        resume_step: int | None = None,
    ):
        self.cfg, self.progress = cfg, progress
        self.out = Path(cfg.train.output_dir)
        sharding.maybe_initialize_distributed(cfg.mesh)  # before any device is touched
        self.mesh = sharding.make_mesh(cfg.mesh)
        self.bundle = load_base(cfg)
        self.objective = resolve_objective(cfg, self.bundle.loaded)
        self.hypernet, params = untrained_hypernet(
            cfg.hypernet,
            self.bundle.frozen.base_in,
            self.bundle.frozen.base_out,
            base_heads(self.bundle.loaded),
            seed=cfg.train.seed,
            bf16=cfg.train.bf16,
        )
        self.optimizer = step_lib.make_optimizer(cfg.train)
        self.state = step_lib.init_state(params, self.optimizer)
        # Place base and state on the mesh by the logical-axis rules (`zett.sharding`); a
        # resume restores onto these shardings, whatever mesh the checkpoint was written on.
        frozen = self.bundle.frozen
        self.frozen_shardings = sharding.frozen_shardings(
            self.bundle.loaded.module, frozen, self.mesh
        )
        self.state_shardings = sharding.state_shardings(
            self.optimizer,
            self.state,
            sharding.hypernet_shardings(self.hypernet, frozen.base_in, frozen.base_out, self.mesh),
            self.mesh,
        )
        self.bundle.frozen = sharding.place(frozen, self.frozen_shardings)
        self.state = sharding.place(self.state, self.state_shardings)
        self.ckpt = Checkpointer(self.out / "checkpoints")
        self.start_step = 0
        self.lm_tokens, self.wall_s = 0, 0.0  # totals over every session of this run
        if resume and (self.ckpt.latest_step() is not None or not cfg.train.init_from):
            self._restore(resume_step)
        elif cfg.train.init_from and self.ckpt.latest_step() is None:
            self._warm_start(Path(cfg.train.init_from))
        elif self.ckpt.latest_step() is not None:
            raise ZettError(
                f"{self.out} already has checkpoints; pass --resume to continue or choose "
                "another --train.output_dir"
            )
        dc = cfg.data
        split = (dc.short_rows, dc.short_pieces) if dc.short_rows > 0 else None
        loss_fn = step_lib.make_loss_fn(
            self.bundle.loaded.module,
            self.hypernet,
            self.objective,
            cfg.train.lw,
            compose_weight=cfg.train.compose_weight,
            split=split,
        )
        shards = (self.mesh, self.state_shardings, self.frozen_shardings)
        self.train_step = sharding.ShardedStep(
            step_lib.make_train_step(loss_fn, self.optimizer), *shards
        )
        self.identity_step = sharding.ShardedStep(
            step_lib.make_train_step(step_lib.identity_loss_fn(self.hypernet), self.optimizer),
            *shards,
        )
        self.compose_step = sharding.ShardedStep(
            step_lib.make_train_step(step_lib.compose_loss_fn(self.hypernet), self.optimizer),
            *shards,
        )
        self._compose_eval = jax.jit(
            lambda p, b, f: step_lib.compose_terms(
                self.hypernet, p, f, b["piece_ids"], b["piece_lengths"], b["base_ids"],
                b["vocab_mask"],
            )
        )  # fmt: skip
        self._compose: CompositionBatches | None = None
        self._identity: IdentityBatches | None = None
        self._data: BatchIterator | None = None
        self._evaluator: HeldoutEvaluator | None = None

    # -- state ---------------------------------------------------------------------------
    def _meta(self, step: int) -> dict:
        return {
            "step": step,
            "lm_tokens": self.lm_tokens,
            "train_wall_s": round(self.wall_s, 1),
            "config": to_dict(self.cfg),
            "base_fingerprint": self.bundle.fingerprint,
            "base_model": str(self.cfg.model.base),
        }

    def _restore(self, step: int | None = None) -> None:
        latest = self.ckpt.latest_step()
        if latest is None:
            raise ZettError(f"{self.out / 'checkpoints'}: nothing to resume; drop --resume")
        state, meta = self.ckpt.restore(abstract_like(self.state), step)
        if meta.get("base_fingerprint") != self.bundle.fingerprint:
            raise ZettError(
                f"{self.out}: checkpoint was trained for base {meta.get('base_model')!r}, "
                f"not {self.cfg.model.base!r}; use another --train.output_dir"
            )
        self.state, self.start_step = state, int(meta["step"])
        self.lm_tokens = int(meta.get("lm_tokens", 0))
        self.wall_s = float(meta.get("train_wall_s", 0.0))

    def _warm_start(self, source: Path) -> None:
        """Continue from an exported hypernet: weights (cast to fp32), step, totals."""
        _, params, meta = hypernet_io.load_hypernet(source)
        hypernet_io.check_base(meta, self.bundle.fingerprint, source)
        if meta.get("dims") != dataclasses.asdict(self.hypernet.dims):
            raise ZettError(
                f"train.init_from {source}: hypernet dims {meta.get('dims')} differ from this "
                f"config's {dataclasses.asdict(self.hypernet.dims)}"
            )
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
        # The schedule continues at the exported step (`cfg.train.steps` as configured);
        # the AdamW moments start afresh: what a warm start loses against --resume.
        state = step_lib.init_state(
            params, self.optimizer, int(meta["step"]), self.cfg.train.grad_accum
        )
        self.state = sharding.place(state, self.state_shardings)
        self.start_step = int(meta["step"])
        self.lm_tokens = int(meta.get("lm_tokens", 0))
        self.wall_s = float(meta.get("train_wall_s", 0.0))

    def save(self, step: int) -> None:
        self.ckpt.save(step, self.state, self._meta(step))

    # -- data ------------------------------------------------------------------------------
    def data(self):
        if self._data is None:
            # LM-stage batch k is a pure function of (seed, k): resuming at any step
            # continues with exactly the batches the uninterrupted run would have seen.
            tc = self.cfg.train
            first = max(self.start_step - tc.compose_steps - tc.identity_steps, 0)
            self._data = BatchIterator(
                load_corpus(self.cfg.data.corpus)["train"],
                self.bundle.tokenizer,
                self.cfg.data,
                self.cfg.hypernet.max_pieces,
                start_step=first,
            )
        return self._data

    def compose_batches(self) -> CompositionBatches | None:
        tc = self.cfg.train
        if self._compose is None and (tc.compose_steps > 0 or tc.compose_weight > 0):
            self._compose = CompositionBatches(self.bundle, self.cfg)
        return self._compose

    def stage(self, step: int) -> str:
        tc = self.cfg.train
        if step < tc.compose_steps:
            return "compose"
        return "identity" if step < tc.compose_steps + tc.identity_steps else "lm"

    def evaluator(self):
        if self._evaluator is None and self.cfg.train.eval_every > 0:
            self._evaluator = build_evaluator(self.cfg, self.bundle, self.hypernet)
        return self._evaluator

    # -- loop ------------------------------------------------------------------------------
    def run(self, until: int | None = None) -> dict:
        """Train from the current step to `cfg.train.steps` (or stop early after `until`,
        as if killed there; the schedule still follows `cfg.train.steps`)."""
        tc = self.cfg.train
        end = tc.steps if until is None else min(until, tc.steps)
        self.out.mkdir(parents=True, exist_ok=True)
        # Multi-host: every process runs the same loop; only process 0 writes logs/exports.
        lead = jax.process_index() == 0
        log = (self.out / "metrics.jsonl" if lead else Path(os.devnull)).open("a")
        schedule = step_lib.learning_rate_schedule(tc)
        bar = tqdm(
            total=tc.steps,
            initial=self.start_step,
            desc="train",
            unit="step",
            disable=not self.progress,
        )
        last: dict = {}
        compiled: set[int] = set()
        t_run, wall_base = time.perf_counter(), self.wall_s  # wall time includes evals
        try:
            if self.start_step == 0 and tc.eval_every > 0 and tc.eval_at_start:
                self._log(log, {"step": 0, **self._evaluate()})
            for step in range(self.start_step, end):
                stage = self.stage(step)
                if stage == "compose":
                    compose = self.compose_batches()
                    assert compose is not None  # a compose stage means compose_steps > 0
                    arrays, fn = compose.batch(step), self.compose_step
                elif stage == "identity":
                    if self._identity is None:
                        self._identity = IdentityBatches(
                            self.bundle,
                            self.cfg.data.n_token_subsample,
                            self.cfg.hypernet.max_pieces,
                            tc.seed,
                        )
                    arrays, fn = self._identity.batch(step), self.identity_step
                else:
                    batch = next(self.data())
                    arrays = batch_arrays(
                        batch, (*step_lib.BATCH_KEYS, "ref_input_ids", "ref_attention_mask")
                    )
                    if tc.compose_weight > 0:
                        compose = self.compose_batches()
                        assert compose is not None  # built when compose_weight > 0
                        arrays.update(compose.batch(step, prefix="compose_"))
                    fn = self.train_step
                rng = jax.random.fold_in(jax.random.PRNGKey(tc.seed), step)
                t0 = time.perf_counter()
                self.state, metrics = fn(self.state, arrays, self.bundle.frozen, rng)
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                dt = time.perf_counter() - t0
                self.wall_s = wall_base + (time.perf_counter() - t_run)
                if not math.isfinite(metrics["loss"]):
                    raise ZettError(
                        f"loss became {metrics['loss']} at step {step + 1}; stopped. The last "
                        f"good checkpoint is in {self.out / 'checkpoints'} (resume with a lower "
                        "--train.lr)"
                    )
                lm = stage == "lm"
                batch_tokens = int(np.asarray(arrays["attention_mask"]).sum()) if lm else 0
                self.lm_tokens += batch_tokens
                rec = {
                    "step": step + 1,
                    "stage": stage,
                    "lm_tokens": self.lm_tokens,
                    "wall_s": round(self.wall_s, 1),
                    "lr": float(schedule(step)),
                    "batch_tokens": batch_tokens,
                    **metrics,
                }
                # The first call of each jitted function includes its compilation.
                first_call = id(fn) not in compiled
                compiled.add(id(fn))
                rec["compile_s" if first_call else "step_s"] = dt
                last = rec
                if (step + 1) % max(tc.log_every, 1) == 0 or step == self.start_step:
                    self._log(log, rec)
                bar.set_postfix(loss=f"{metrics['loss']:.4f}", stage=rec["stage"])
                bar.update()
                if tc.eval_every > 0 and (step + 1) % tc.eval_every == 0:
                    self._log(log, {"step": step + 1, **self._evaluate()})
                if tc.save_every > 0 and (step + 1) % tc.save_every == 0:
                    self.save(step + 1)
                if tc.max_minutes > 0 and time.perf_counter() - t_run > 60 * tc.max_minutes:
                    if self.ckpt.latest_step() != step + 1:
                        self.save(step + 1)
                    if lead:
                        self.export()
                    return last
            if end < tc.steps:
                return last
            if self.ckpt.latest_step() != tc.steps and tc.steps > self.start_step:
                self.save(tc.steps)
            if lead:
                self.export()
        finally:
            bar.close()
            log.close()
            if self._data is not None and hasattr(self._data, "close"):
                self._data.close()
        return last

    def _evaluate(self) -> dict:
        ev = self.evaluator()
        comp = self.compose_batches()
        if ev is None and comp is None:
            return {}
        t0 = time.perf_counter()
        res = {}
        if ev is not None:
            res = {f"eval/{k}": v for k, v in ev.evaluate(self.state.params).items()}
        if comp is not None and len(comp.valid_rows):
            total, n = self._compose_eval(self.state.params, comp.valid(), self.bundle.frozen)
            res["eval/compose_mse"] = float(total) / max(float(n), 1.0)
        res["eval_s"] = time.perf_counter() - t0
        self.last_eval = {"step": int(self.state.step), **res}
        return res

    @staticmethod
    def _log(log, rec: dict) -> None:
        log.write(json.dumps(rec) + "\n")
        log.flush()

    def export(self, directory: Path | None = None, dtype: str = "bfloat16") -> Path:
        """Write the hypernet for transfer (safetensors + JSON), replacing an older export."""
        meta = {
            **self._meta(int(self.state.step)),
            **_runtime_meta(),
            "steps": int(self.state.step),
        }
        meta.pop("config")
        meta["train"] = to_dict(self.cfg)["train"]
        meta["data"] = to_dict(self.cfg)["data"]
        meta["git_commit"] = _git_commit()
        meta["corpus"] = "`zett prepare corpus` (zett/data/sources.py), train split"
        meta["last_eval"] = getattr(self, "last_eval", None)
        return hypernet_io.save_hypernet(
            directory or self.out / "hypernet",
            jax.device_get(self.state.params),
            self.cfg.hypernet,
            self.hypernet.dims,
            meta,
            dtype=dtype,
            overwrite=True,
        )


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
            cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def export_checkpoint(
    run_dir: Path, output: Path | None = None, step: int | None = None, dtype: str = "bfloat16"
) -> Path:
    """`zett export`: the hypernet of a run's checkpoint (default: latest) → transfer format.

    Lets a user take an intermediate checkpoint of a long (or still running) run.
    """
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    if not ckpt_dir.is_dir():
        raise ZettError(f"{run_dir}: no checkpoints/ directory; give a `zett train` output dir")
    meta = Checkpointer(ckpt_dir).read_meta(step)
    cfg = from_dict(meta["config"])
    cfg.train.output_dir = str(run_dir)
    trainer = Trainer(cfg, resume=True, progress=False, resume_step=step)
    return trainer.export(output or run_dir / f"hypernet-step{trainer.start_step}", dtype=dtype)


def train(cfg: Config, resume: bool = False, progress: bool = True) -> dict:
    return Trainer(cfg, resume=resume, progress=progress).run()
