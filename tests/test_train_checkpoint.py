"""zett.train.checkpoint: what its error path prints (the damaged-checkpoint cases are in
tests/reliability/)."""

import sys
import types

from zett.train import checkpoint


def test_closed_loop_echoes_dropped_other_errors_kept(monkeypatch):
    """After a failed restore, tensorstore's late "Event loop is closed" errors are not
    printed; any other error still reaches the hooks that were there before."""
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: seen.append(str(value)))
    monkeypatch.setattr(sys, "unraisablehook", lambda info: seen.append(str(info.exc_value)))
    checkpoint._drop_closed_loop_errors()
    checkpoint._drop_closed_loop_errors()  # idempotent: wrapping twice changes nothing
    closed, other = RuntimeError("Event loop is closed"), RuntimeError("disk on fire")
    for exc in (closed, other):
        sys.excepthook(type(exc), exc, None)
        sys.unraisablehook(types.SimpleNamespace(exc_value=exc))
    assert seen == ["disk on fire", "disk on fire"]
