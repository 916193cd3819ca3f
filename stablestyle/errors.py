"""The one exception type for user mistakes.

Library code raises :class:`UserError` (a ``ValueError``) for bad input that a
user can fix: a missing file, an unreadable video, a wrong checkpoint.  The
CLI catches it and prints a single ``error: ...`` line with exit status 2; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(ValueError):
    """Bad input that the user can fix; the message says what to do."""


def first_line(text: str, limit: int = 120) -> str:
    """The first non-empty line of ``text``, stripped and cut to ``limit`` characters ("..." marks a cut).

    For quoting a library's error inside a :class:`UserError`, which the CLI prints on one line.
    """
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[:limit - 3] + "..."


def run_script(main: Callable[[], int]) -> None:
    """Exit with ``main()``'s status; a :class:`UserError` prints one ``error:`` line and exits with 2.

    For the scripts under ``bench/`` and ``scripts/``, which have no CLI of their own to do it.
    """
    try:
        status = main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 2
    sys.exit(status)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C's ``KeyboardInterrupt``.

    Being a ``KeyboardInterrupt``, it unwinds through the same ``except BaseException`` clean-ups that
    remove temporary outputs; the CLI exits with ``128 + signum`` as a shell does for a killed process.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
