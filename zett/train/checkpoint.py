"""Resumable training checkpoints (orbax) for the hypernet's train state.

Layout: `<run>/checkpoints/<step>/{state,meta}`. Orbax writes each step into a temporary
directory and renames it when complete, so a job killed mid-write leaves no step that
`latest_step()` would pick up. `meta` (JSON) carries the config and a fingerprint of the
base model's embeddings (`zett.hypernet.io.embedding_fingerprint`), so a resume against
another base model is refused.

Restoring takes an abstract target (`jax.ShapeDtypeStruct`s, optionally with shardings),
so a checkpoint written on one mesh restores onto another.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from zett.atomic import disk_full
from zett.errors import ZettError


class Checkpointer:
    """Thin wrapper over `ocp.CheckpointManager` with the project's conventions."""

    def __init__(self, directory: Path, max_to_keep: int = 2):
        _drop_closed_loop_errors()  # before any read: see `_abandon`
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
            ),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, meta: dict) -> None:
        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
                ),
                force=True,
            )
            self.manager.wait_until_finished()
        except Exception as e:
            if not disk_full(e):
                raise
            self._abandon()
            raise ZettError(
                f"{self.directory}: disk full while saving step {step}; free space and resume "
                "with --resume (the previous checkpoint is intact)"
            ) from e

    def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict]:
        """Restore `(state, meta)` at `step` (default: latest) shaped like `abstract_state`."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise ZettError(f"{self.directory}: no complete checkpoint to resume from")
        try:
            restored = self.manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
                ),
            )
        except Exception as e:  # noqa: BLE001 -- tensorstore reports damaged files as bare Exception
            first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            earlier = [s for s in self.manager.all_steps() if s < step]
            hint = f"; delete it to resume from step {max(earlier)}" if earlier else "; delete it"
            self._abandon()
            raise ZettError(
                f"{self.directory / str(step)}: checkpoint is damaged or does not match this "
                f"run ({first}){hint}"
            ) from e
        return restored["state"], restored["meta"]

    def read_meta(self, step: int | None = None) -> dict:
        """Only the JSON metadata of a checkpoint (config, fingerprint, step)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise ZettError(f"{self.directory}: no complete checkpoint")
        try:
            restored = self.manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )
        except Exception as e:  # noqa: BLE001 -- as in `restore`
            first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise ZettError(f"{self.directory / str(step)}: unreadable checkpoint ({first})") from e
        return restored["meta"]

    def close(self) -> None:
        self.manager.close()

    def _abandon(self) -> None:
        """After a failed read/write: stop orbax's background work and silence its echoes.

        When one array read fails, orbax closes its event loop while tensorstore still has
        reads of the other arrays in flight. As each finishes, tensorstore's thread calls
        `loop.call_soon_threadsafe` on the closed loop and prints the resulting
        "RuntimeError: Event loop is closed" through `sys.excepthook` -- a traceback after
        our one-line error, in 4 of 6 CLI runs measured on this CPU. The error being
        reported already says what is wrong, so those echoes (and only those) are dropped,
        for the rest of the process. The filter is installed when a Checkpointer is made,
        not here: under load the first echoes arrive before the failed call returns (CI saw
        a traceback printed ahead of the error line with the filter installed here).
        """
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore", r"coroutine '.*' was never awaited", RuntimeWarning)
        with contextlib.suppress(Exception):  # best effort: an error is being reported
            self.manager.close()


def _is_closed_loop_error(exc: BaseException | None) -> bool:
    return isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"


def _drop_closed_loop_errors() -> None:
    """Wrap `sys.excepthook` and `sys.unraisablehook` (once) so that a "RuntimeError: Event
    loop is closed" is not printed; every other error still reaches the previous hook."""
    if getattr(sys.excepthook, "_zett_drops_closed_loop", False):
        return
    previous_except, previous_unraisable = sys.excepthook, sys.unraisablehook

    def excepthook(kind, value, tb):
        if not _is_closed_loop_error(value):
            previous_except(kind, value, tb)

    def unraisablehook(info):
        if not _is_closed_loop_error(info.exc_value):
            previous_unraisable(info)

    excepthook._zett_drops_closed_loop = True  # type: ignore[attr-defined]
    sys.excepthook, sys.unraisablehook = excepthook, unraisablehook


def abstract_like(tree: Any) -> Any:
    """ShapeDtypeStructs (with the leaves' shardings) for restoring into `tree`'s layout."""

    def one(x):
        sharding = getattr(x, "sharding", None)
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    return jax.tree.map(one, tree)
