"""One jitted training step: hypernet → predicted embeddings → frozen base LM → loss.

Only the hypernetwork has gradients and optimizer state. The frozen base is passed in as
`Frozen` (its parameters and its embedding matrices) and never updated. The step is a pure
function of (state, batch, frozen, rng) so `zett.sharding` can jit it with NamedShardings
for any mesh without this module knowing about devices.

Batch arrays (see `zett.data.pipeline.Batch`):
  input_ids [B, T] (indices into the sampled vocabulary subsample), attention_mask [B, T],
  piece_ids [N, P], piece_lengths [N], vocab_mask [N], unigram_logprobs [N],
  shared_idx [S], shared_base_ids [S], shared_mask [S], optionally logit_offset [N]
  (sampled-softmax correction of the random negative rows, added to the LM logits);
  for the `sentence` objective also ref_input_ids / ref_attention_mask [B, T'] (original
  tokenizer), and for the `identity` stage base_ids [N] (the token each row reproduces).
  The `compose` stage's batches have piece_ids/piece_lengths/vocab_mask/base_ids of base
  tokens decomposed into *other* base tokens (`zett.tokenizers.compose`); an LM batch may
  carry the same as compose_piece_ids [C, P], compose_piece_lengths [C], compose_base_ids [C]
  for the auxiliary compose term.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from zett.config import TrainConfig
from zett.models.bert import sentence_embedding
from zett.train import losses

OBJECTIVES = ("clm", "mlm", "sentence")
BATCH_KEYS = (
    "input_ids",
    "attention_mask",
    "piece_ids",
    "piece_lengths",
    "vocab_mask",
    "unigram_logprobs",
    "logit_offset",
    "shared_idx",
    "shared_base_ids",
    "shared_mask",
)


@flax.struct.dataclass
class Frozen:
    """The frozen base model as the step sees it."""

    params: Any  # base LM parameter tree
    base_in: jax.Array  # [V, D] input embeddings
    base_out: jax.Array | None  # [V, D] output embeddings, None when tied
    mask_embedding: jax.Array | None = None  # [D] base [MASK] row (mlm objective)
    stats: Any = None  # `rescaler_stats(base_in, base_out)`, computed once (None: per call)
    complete: jax.Array | None = None  # [V] bool, whole-UTF-8 base tokens (correct_fragments)


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any  # hypernet parameters (trainable)
    opt_state: Any


def _warmup_cosine(peak: float, end: float, warmup: int, steps: int) -> optax.Schedule:
    warmup = max(min(warmup, steps - 1), 0)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else peak,
        peak_value=peak,
        warmup_steps=warmup,
        decay_steps=max(steps, warmup + 1),
        end_value=end,
    )


def learning_rate_schedule(cfg: TrainConfig) -> optax.Schedule:
    """Linear warm-up to `lr`, cosine decay to `end_lr` at `schedule_steps` (default `steps`).

    With a compose stage, its `compose_steps` come first with their own one-cycle schedule
    (peak `compose_lr`, 5% warm-up, decay to a tenth); the rest then starts afresh.
    With `cooldown_steps` = N, the last N steps of `steps` instead fall linearly from the rate
    the schedule has at step `steps` − N to 0: a run on a long horizon (a warm-started
    continuation) can end annealed without changing the rates before its cool-down.
    """
    horizon = cfg.schedule_steps or cfg.steps
    c = min(cfg.compose_steps, horizon)
    schedule = _warmup_cosine(cfg.lr, cfg.end_lr, cfg.warmup_steps, max(horizon - c, 1))
    if c > 0:
        compose = _warmup_cosine(cfg.compose_lr, cfg.compose_lr / 10, max(c // 20, 1), c)
        schedule = optax.join_schedules([compose, schedule], [c])
    if cfg.cooldown_steps <= 0:
        return schedule
    start = max(cfg.steps - cfg.cooldown_steps, 0)
    cooldown = optax.linear_schedule(float(schedule(start)), 0.0, cfg.steps - start)
    return optax.join_schedules([schedule, cooldown], [start])


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """AdamW with global-norm clipping; gradient accumulation via optax.MultiSteps."""
    opt = optax.chain(
        optax.clip_by_global_norm(cfg.grad_clip) if cfg.grad_clip > 0 else optax.identity(),
        optax.adamw(
            learning_rate_schedule(cfg), b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay
        ),
    )
    if cfg.grad_accum > 1:
        opt = optax.MultiSteps(opt, every_k_schedule=cfg.grad_accum)
    return opt


def init_state(
    params: Any, optimizer: optax.GradientTransformation, step: int = 0, grad_accum: int = 1
) -> TrainState:
    """Fresh optimizer state; with `step > 0` (a warm start from an exported hypernet) the
    learning-rate schedule resumes at `step` while the Adam moments start at zero.

    optax keeps the schedule's position in its own counter (`ScaleByScheduleState.count`,
    one per optimizer update), not in `TrainState.step`, so it has to be moved explicitly;
    Adam's own counter stays 0 so its bias correction matches its empty moments.
    """
    opt_state = optimizer.init(params)
    if step > 0:

        def at_step(node: Any) -> Any:
            if isinstance(node, optax.ScaleByScheduleState):
                return node._replace(count=jnp.asarray(step // grad_accum, node.count.dtype))
            return node

        opt_state = jax.tree.map(
            at_step, opt_state, is_leaf=lambda n: isinstance(n, optax.ScaleByScheduleState)
        )
    return TrainState(step=jnp.asarray(step, jnp.int32), params=params, opt_state=opt_state)


def schedule_count(opt_state: Any) -> int:
    """The learning-rate schedule's position inside an optimizer state (first one found)."""
    found = [
        int(n.count)
        for n in jax.tree.leaves(
            opt_state, is_leaf=lambda n: isinstance(n, optax.ScaleByScheduleState)
        )
        if isinstance(n, optax.ScaleByScheduleState)
    ]
    if not found:
        raise ValueError("optimizer state has no learning-rate schedule")
    return found[0]


def _table_std(frozen: Frozen, output: bool) -> tuple[jax.Array, jax.Array]:
    """(table, per-dimension std) of the base input table or, with `output`, of the output
    table (the input one when tied); std from `frozen.stats` when precomputed."""
    if output and frozen.base_out is not None:
        k, table = 1, frozen.base_out
    else:
        k, table = 0, frozen.base_in
    std = table.std(0) + 1e-6 if frozen.stats is None else frozen.stats[k][1]
    return table, std


def _base_apply(base: nn.Module, params: Any, **kwargs: Any) -> jax.Array:
    """`base.apply` of the frozen base model. Without `mutable` flax returns the output
    alone; its annotation (`out | (out, variables)`) covers both cases."""
    return cast(jax.Array, base.apply({"params": params}, **kwargs))


def _apply(hypernet, params, ids, lengths, frozen: Frozen, logp=None, mask=None):
    if logp is None:
        logp = jnp.zeros(ids.shape[:1], jnp.float32)
    return hypernet.apply(
        {"params": params},
        ids,
        lengths,
        frozen.base_in,
        frozen.base_out,
        logp,
        mask,
        frozen.stats,
        frozen.complete,
    )


def predict(
    hypernet: nn.Module,
    params: Any,
    batch: dict,
    frozen: Frozen,
    split: tuple[int, int] | None = None,
):
    """Hypernet forward on a batch's vocabulary → (in [N, D], out [N, D] | None, bias | None).

    `split = (rows, pieces)`: the first `rows` rows hold tokens of ≤ `pieces` pieces (the
    pipeline orders them so, `data.short_rows`) and run at that width; the rest at full
    width. Same result, fewer piece positions (most sampled tokens have 1-3 pieces).
    """
    ids, lengths = batch["piece_ids"], batch["piece_lengths"]
    logp, mask = batch["unigram_logprobs"], batch["vocab_mask"]
    if split is None or not 0 < split[0] < ids.shape[0] or split[1] >= ids.shape[1]:
        return _apply(hypernet, params, ids, lengths, frozen, logp, mask)
    n, p = split
    short = _apply(hypernet, params, ids[:n, :p], lengths[:n], frozen, logp[:n], mask[:n])
    long = _apply(hypernet, params, ids[n:], lengths[n:], frozen, logp[n:], mask[n:])
    return tuple(
        None if a is None else jnp.concatenate([a, b], axis=0) for a, b in zip(short, long)
    )


def compose_terms(
    hypernet: nn.Module,
    params: Any,
    frozen: Frozen,
    piece_ids: jax.Array,
    piece_lengths: jax.Array,
    base_ids: jax.Array,
    row_mask: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Compose loss: rebuild base tokens' own embeddings from other base tokens' pieces.

    MSE in standardized units (per-dimension std of the base table), summed over the input
    and — where the hypernet predicts one — the output embedding. Returns (Σ, #rows).
    """
    pred_in, pred_out, _ = _apply(hypernet, params, piece_ids, piece_lengths, frozen)
    rows = jnp.arange(base_ids.shape[0])
    total, n = jnp.zeros(()), jnp.zeros(())
    for pred, output in ((pred_in, False), (pred_out, True)):
        if pred is None:
            continue
        table, std = _table_std(frozen, output)
        part, n = losses.aux_embedding_loss(
            pred, rows, jnp.take(table, base_ids, axis=0), row_mask, scale=std
        )
        total = total + part
    return total, n


def compose_loss_fn(hypernet: nn.Module) -> Callable:
    """The compose stage: only the compose loss (batch from `CompositionBatches`)."""

    def loss_fn(params, batch, frozen: Frozen, rng):
        del rng
        total, n = compose_terms(
            hypernet,
            params,
            frozen,
            batch["piece_ids"],
            batch["piece_lengths"],
            batch["base_ids"],
            batch["vocab_mask"],
        )
        loss = losses.safe_div(total, n)
        return loss, {"loss": loss, "main_loss": loss, "compose_loss": loss, "n_predicted": n}

    return loss_fn


def make_loss_fn(
    base: nn.Module,
    hypernet: nn.Module,
    objective: str,
    lw: float,
    mlm_probability: float = 0.15,
    compose_weight: float = 0.0,
    split: tuple[int, int] | None = None,
) -> Callable:
    """Build `loss_fn(params, batch, frozen, rng) -> (loss, metrics)` for an objective.

    `compose_weight` > 0 adds the compose loss of the batch's compose_* rows; `split`: see
    `predict`."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")

    def loss_fn(params, batch, frozen: Frozen, rng):
        pred_in, pred_out, bias = predict(hypernet, params, batch, frozen, split)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        inputs_embeds = jnp.take(pred_in, ids, axis=0)  # [B, T, D]
        out_emb = pred_in if pred_out is None else pred_out
        out_bias = losses.vocab_bias(bias, batch["vocab_mask"])
        if "logit_offset" in batch:
            out_bias = out_bias + batch["logit_offset"]
        metrics = {}
        if objective == "clm":
            logits = _base_apply(
                base,
                frozen.params,
                inputs_embeds=inputs_embeds,
                attention_mask=mask,
                output_embeddings=out_emb,
                output_bias=out_bias,
            )
            main_sum, main_n = losses.causal_lm_loss(logits, ids, mask)
        elif objective == "mlm":
            pick = jax.random.bernoulli(rng, mlm_probability, ids.shape) & (mask > 0)
            if frozen.mask_embedding is None:
                raise ValueError("the mlm objective needs frozen.mask_embedding (a [MASK] row)")
            masked = jnp.where(pick[..., None], frozen.mask_embedding, inputs_embeds)
            logits = _base_apply(
                base,
                frozen.params,
                inputs_embeds=masked,
                attention_mask=mask,
                output_embeddings=out_emb,
                output_bias=out_bias,
            )
            main_sum, main_n = losses.masked_lm_loss(logits, ids, pick)
        else:  # sentence: agree with the original tokenizer's pooled embedding
            hidden = _base_apply(
                base,
                frozen.params,
                inputs_embeds=inputs_embeds,
                attention_mask=mask,
                return_hidden=True,
            )
            ref_hidden = _base_apply(
                base,
                frozen.params,
                input_ids=batch["ref_input_ids"],
                attention_mask=batch["ref_attention_mask"],
                return_hidden=True,
            )
            rows = mask.max(axis=1)
            main_sum, main_n = losses.sentence_agreement_loss(
                sentence_embedding(hidden, mask),
                sentence_embedding(ref_hidden, batch["ref_attention_mask"]),
                rows,
            )
        main = losses.safe_div(main_sum, main_n)
        aux_sum, aux_n = losses.aux_embedding_loss(
            pred_in,
            batch["shared_idx"],
            jnp.take(frozen.base_in, batch["shared_base_ids"], axis=0),
            batch["shared_mask"],
            scale=_table_std(frozen, output=False)[1],
        )
        aux = losses.safe_div(aux_sum, aux_n)
        loss = main + lw * aux if lw > 0 else main
        if compose_weight > 0 and "compose_piece_ids" in batch:
            c_sum, c_n = compose_terms(
                hypernet,
                params,
                frozen,
                batch["compose_piece_ids"],
                batch["compose_piece_lengths"],
                batch["compose_base_ids"],
                jnp.ones(batch["compose_base_ids"].shape, bool),
            )
            compose = losses.safe_div(c_sum, c_n)
            loss = loss + compose_weight * compose
            metrics["compose_loss"] = compose
        metrics.update(loss=loss, main_loss=main, aux_loss=aux, n_predicted=main_n)
        return loss, metrics

    return loss_fn


def identity_loss_fn(hypernet: nn.Module) -> Callable:
    """Identity warm-up: reproduce the base embeddings of base tokens from their own
    decomposition (batch has piece_ids/lengths of base tokens and `base_ids` [N])."""

    def loss_fn(params, batch, frozen: Frozen, rng):
        del rng
        pred_in, pred_out, _ = predict(hypernet, params, batch, frozen)
        w = batch["vocab_mask"].astype(jnp.float32)
        target_in = jnp.take(frozen.base_in, batch["base_ids"], axis=0)
        err = jnp.mean(jnp.square(pred_in - target_in), axis=-1)
        if pred_out is not None:
            table = frozen.base_in if frozen.base_out is None else frozen.base_out
            target_out = jnp.take(table, batch["base_ids"], axis=0)
            err = err + jnp.mean(jnp.square(pred_out - target_out), axis=-1)
        loss = losses.safe_div((err * w).sum(), w.sum())
        return loss, {"loss": loss, "main_loss": loss, "aux_loss": loss, "n_predicted": w.sum()}

    return loss_fn


def make_train_step(loss_fn: Callable, optimizer: optax.GradientTransformation) -> Callable:
    """`step(state, batch, frozen, rng) -> (state, metrics)`; jit it (or shard-jit it)."""

    def step(state: TrainState, batch: dict, frozen: Frozen, rng: jax.Array):
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, batch, frozen, rng
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics["grad_norm"] = optax.global_norm(grads)
        new_state = TrainState(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, metrics

    return step
