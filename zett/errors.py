"""The one exception type users see.

Anything a user can cause (a missing file, a bad key, a malformed tokenizer) raises
`ZettError` with a one-line message that names the file or key and says what to do.
`zett.cli` prints it as `error: ...` and exits with code 2; every other exception is
a bug and keeps its traceback.
"""

from __future__ import annotations

USER_ERROR_EXIT_CODE = 2


class ZettError(Exception):
    """A problem with the user's input or environment, not a bug in zett."""
