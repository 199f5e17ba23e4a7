"""One jitted training step: hypernet → predicted embeddings → frozen base LM → loss.

Only the hypernetwork has gradients and optimizer state. The frozen base is passed in as
`Frozen` (its parameters and its embedding matrices) and never updated. The step is a pure
function of (state, batch, frozen, rng) so `zett.sharding` can jit it with NamedShardings
for any mesh without this module knowing about devices.

Batch arrays (see `zett.data.pipeline.Batch`):
  input_ids [B, T] (indices into the sampled vocabulary subsample), attention_mask [B, T],
  piece_ids [N, P], piece_lengths [N], vocab_mask [N], unigram_logprobs [N],
  shared_idx [S], shared_base_ids [S], shared_mask [S];
  for the `sentence` objective also ref_input_ids / ref_attention_mask [B, T'] (original
  tokenizer), and for the `identity` stage base_ids [N] (the token each row reproduces).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from zett.config import TrainConfig
from zett.train import losses

OBJECTIVES = ("clm", "mlm", "sentence")
BATCH_KEYS = (
    "input_ids",
    "attention_mask",
    "piece_ids",
    "piece_lengths",
    "vocab_mask",
    "unigram_logprobs",
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


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any  # hypernet parameters (trainable)
    opt_state: Any


def learning_rate_schedule(cfg: TrainConfig) -> optax.Schedule:
    """Linear warm-up to `lr`, cosine decay to `end_lr` at `steps`."""
    warmup = max(min(cfg.warmup_steps, cfg.steps - 1), 0)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else cfg.lr,
        peak_value=cfg.lr,
        warmup_steps=warmup,
        decay_steps=max(cfg.steps, warmup + 1),
        end_value=cfg.end_lr,
    )


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


def init_state(params: Any, optimizer: optax.GradientTransformation) -> TrainState:
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params)
    )


def predict(hypernet: nn.Module, params: Any, batch: dict, frozen: Frozen):
    """Hypernet forward on a batch's vocabulary → (in [N, D], out [N, D] | None, bias | None)."""
    return hypernet.apply(
        {"params": params},
        batch["piece_ids"],
        batch["piece_lengths"],
        frozen.base_in,
        frozen.base_out,
        batch["unigram_logprobs"],
        batch["vocab_mask"],
    )


def make_loss_fn(
    base: nn.Module,
    hypernet: nn.Module,
    objective: str,
    lw: float,
    mlm_probability: float = 0.15,
) -> Callable:
    """Build `loss_fn(params, batch, frozen, rng) -> (loss, metrics)` for an objective."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")

    def loss_fn(params, batch, frozen: Frozen, rng):
        pred_in, pred_out, bias = predict(hypernet, params, batch, frozen)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        inputs_embeds = jnp.take(pred_in, ids, axis=0)  # [B, T, D]
        out_emb = pred_in if pred_out is None else pred_out
        out_bias = losses.vocab_bias(bias, batch["vocab_mask"])
        metrics = {}
        if objective == "clm":
            logits = base.apply(
                {"params": frozen.params},
                inputs_embeds=inputs_embeds,
                attention_mask=mask,
                output_embeddings=out_emb,
                output_bias=out_bias,
            )
            main_sum, main_n = losses.causal_lm_loss(logits, ids, mask)
        elif objective == "mlm":
            pick = jax.random.bernoulli(rng, mlm_probability, ids.shape) & (mask > 0)
            masked = jnp.where(pick[..., None], frozen.mask_embedding, inputs_embeds)
            logits = base.apply(
                {"params": frozen.params},
                inputs_embeds=masked,
                attention_mask=mask,
                output_embeddings=out_emb,
                output_bias=out_bias,
            )
            main_sum, main_n = losses.masked_lm_loss(logits, ids, pick)
        else:  # sentence: agree with the original tokenizer's pooled embedding
            hidden = base.apply(
                {"params": frozen.params},
                inputs_embeds=inputs_embeds,
                attention_mask=mask,
                return_hidden=True,
            )
            ref_hidden = base.apply(
                {"params": frozen.params},
                input_ids=batch["ref_input_ids"],
                attention_mask=batch["ref_attention_mask"],
                return_hidden=True,
            )
            rows = mask.max(axis=1)
            main_sum, main_n = losses.sentence_agreement_loss(
                losses.mean_pool(hidden, mask),
                losses.mean_pool(ref_hidden, batch["ref_attention_mask"]),
                rows,
            )
        main = losses.safe_div(main_sum, main_n)
        aux_sum, aux_n = losses.aux_embedding_loss(
            pred_in,
            batch["shared_idx"],
            jnp.take(frozen.base_in, batch["shared_base_ids"], axis=0),
            batch["shared_mask"],
            scale=frozen.base_in.std(0) + 1e-6,
        )
        aux = losses.safe_div(aux_sum, aux_n)
        loss = main + lw * aux if lw > 0 else main
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
