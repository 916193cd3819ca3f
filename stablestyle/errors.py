"""The one exception type for user mistakes.

Library code raises :class:`UserError` (a ``ValueError``) for bad input that a
user can fix: a missing file, an unreadable video, a wrong checkpoint.  The
CLI catches it and prints a single ``error: ...`` line with exit status 2; any
other exception is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input that the user can fix; the message says what to do."""
