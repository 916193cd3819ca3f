"""The one exception type for user mistakes.

Library code raises :class:`UserError` (a ``ValueError``) for bad input that a
user can fix: a missing file, an unreadable video, a wrong checkpoint.  The
CLI catches it and prints a single ``error: ...`` line with exit status 2; any
other exception is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input that the user can fix; the message says what to do."""


def first_line(text: str, limit: int = 120) -> str:
    """The first non-empty line of ``text``, stripped and cut to ``limit`` characters ("..." marks a cut).

    For quoting a library's error inside a :class:`UserError`, which the CLI prints on one line.
    """
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[:limit - 3] + "..."
