"""zett/train/step.py: the optimizer, its learning-rate schedule and warm-started states."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from zett.config import TrainConfig
from zett.train import step as step_lib


def test_warm_start_state_continues_the_schedule_with_empty_moments() -> None:
    """init_state(step=k): the update applied is lr(k)·(Adam's first update), not lr(0)·…"""
    cfg = TrainConfig(steps=100, lr=1e-2, end_lr=1e-3, warmup_steps=10, grad_clip=0.0,
                      weight_decay=0.0)  # fmt: skip
    opt = step_lib.make_optimizer(cfg)
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([1.0, -2.0, 0.5])}
    schedule = step_lib.learning_rate_schedule(cfg)
    for k in (0, 60):
        state = step_lib.init_state(params, opt, step=k)
        assert int(state.step) == k and step_lib.schedule_count(state.opt_state) == k
        updates, _ = opt.update(grads, state.opt_state, params)
        # Adam's first step is ±1 per coordinate (bias-corrected, empty moments)
        np.testing.assert_allclose(
            np.asarray(updates["w"]), -float(schedule(k)) * np.sign(grads["w"]), rtol=1e-4
        )


def test_cooldown_keeps_the_rates_before_it_and_anneals_to_zero_at_steps() -> None:
    """cooldown_steps: rates before the cool-down are those of the long schedule; then linear to 0."""
    long = TrainConfig(steps=4700, lr=1e-4, end_lr=2e-5, warmup_steps=10, compose_steps=1500)
    cool = TrainConfig(steps=2900, schedule_steps=4700, cooldown_steps=200, lr=1e-4,
                       end_lr=2e-5, warmup_steps=10, compose_steps=1500)  # fmt: skip
    a, b = step_lib.learning_rate_schedule(long), step_lib.learning_rate_schedule(cool)
    for k in (0, 700, 1600, 2700):
        np.testing.assert_allclose(float(b(k)), float(a(k)), rtol=1e-6)
    assert float(a(2700)) > 5e-5
    np.testing.assert_allclose(float(b(2800)), float(a(2700)) / 2, rtol=1e-5)
    assert float(b(2900)) == 0.0 and float(b(2950)) == 0.0
    # without a cool-down, schedule_steps only moves the cosine's horizon
    plain = TrainConfig(steps=2900, schedule_steps=4700, lr=1e-4, end_lr=2e-5, warmup_steps=10,
                        compose_steps=1500)  # fmt: skip
    np.testing.assert_allclose(float(step_lib.learning_rate_schedule(plain)(2800)),
                               float(a(2800)), rtol=1e-6)  # fmt: skip
