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
