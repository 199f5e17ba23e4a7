"""Atomic file and directory writes: a killed job never leaves a half-written output."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zett.errors import ZettError


@contextmanager
def atomic_dir(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temp directory beside `final`; rename it to `final` only on success.

    A crash or kill leaves at most a `.<name>.tmp-*` sibling, never a half-written
    `final`. With `overwrite`, an existing `final` is replaced only once the new one
    is complete.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise ZettError(f"{final} already exists; pass --overwrite to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if disk_full(e):
            raise ZettError(f"{final}: disk full while writing ({e}); free space and retry") from e
        raise
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


# ENOSPC (no space), EFBIG (file size limit), EDQUOT (quota): the disk, not a bug.
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def disk_full(e: BaseException) -> bool:
    """Whether `e` is a write refused for lack of space (also the Rust writers' I/O errors,
    which arrive as their own exception types with `os error N` in the message)."""
    if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
        return True
    text = str(e)
    return any(f"os error {n})" in text or f"os_error_code='{n}'" in text for n in DISK_FULL_ERRNOS)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if disk_full(e):
            raise ZettError(f"{path}: disk full while writing ({e}); free space and retry") from e
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
