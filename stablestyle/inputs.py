"""Checks on input paths that every reader shares.

A reader given a named pipe, a device or a socket would block forever (a FIFO
with no writer) or read without end (``/dev/zero``), and a blocked ``open()``
does not even see Ctrl-C.  Inputs must therefore be regular files or folders;
:func:`check_input_file` says so in one line before anything is opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import UserError

_KINDS = {stat.S_IFIFO: "a named pipe", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket"}


def special_kind(path: str | os.PathLike) -> str | None:
    """``"a named pipe"`` (etc.) when ``path`` exists and is neither a regular file nor a folder, else ``None``."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def check_input_file(path: str | os.PathLike, what: str = "input") -> Path:
    """``path`` as a :class:`Path`; :class:`UserError` when it is a pipe, device or socket.

    Missing files and folders are left to the caller, whose message knows what was expected.
    """
    kind = special_kind(path)
    if kind is not None:
        raise UserError(f"{what} {path} is {kind}, not a file; give a regular file (save the stream to a file "
                        "first)")
    return Path(path)
