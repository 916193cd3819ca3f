"""Atomic output: write under a temporary name beside the target, rename when complete.

Every file or folder the package produces goes through here, so a crash, a
Ctrl-C or a user error part-way through never leaves a half-written file under
the final name (the rename is atomic on one file system), and an existing
output is replaced only at the very end.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError


def temp_beside(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """A fresh ``.NAME.tmp-XXXXXXXX[.suffix]`` path beside ``path``, created empty (file or folder).

    The original suffix is kept so format-sniffing writers (PyAV, Pillow) still
    recognise the container.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: folder {path.parent} does not exist")
    while True:
        tmp = path.parent / f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}"
        try:
            if folder:
                tmp.mkdir()
            else:
                tmp.touch(exist_ok=False)
            return tmp
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        except OSError as exc:  # read-only or special file system, no permission, disk full
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc


@contextmanager
def atomic_path(path: str | os.PathLike, *, keep_mode: bool = False) -> Iterator[Path]:
    """Yield a temporary file path; on clean exit it replaces ``path``, on error it is removed.

    The file gets the permissions a plain ``open()`` would give (umask); with
    ``keep_mode`` a replaced file's permission bits are kept instead.
    """
    path = Path(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        if keep_mode and path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def publish_folder(tmp: Path, folder: Path) -> None:
    """Move a finished staging folder to ``folder``, replacing an existing one only at the last moment."""
    old = None
    if folder.exists():
        old = folder.parent / f".{folder.name}.old-{secrets.token_hex(4)}"
        os.rename(folder, old)
    os.rename(tmp, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_output_folder(folder: str | os.PathLike, overwrite: bool = False, *, marker: str, what: str,
                        noun: str, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check, before any work, that ``folder`` may become an output folder; returns it as a :class:`Path`.

    An existing folder may only be replaced with ``overwrite``, and only when it
    is empty or holds ``marker`` (a file this package writes into every such
    folder), so a typo can never delete unrelated files.  ``what`` names such a
    folder (``"a clip folder"``), ``noun`` its content (``"clip"``).

    Raises:
        UserError: the parent folder is missing, ``folder`` is or holds one of
            ``inputs`` (replacing it would lose them), ``folder`` is a file, it exists
            and ``overwrite`` is false, or it exists, is not empty and lacks ``marker``.
    """
    folder = Path(folder)
    if not folder.parent.is_dir():
        raise UserError(f"output folder {folder.parent} does not exist; create it first")
    resolved = folder.resolve()
    for inp in inputs:
        if resolved == Path(inp).resolve() or resolved in Path(inp).resolve().parents:
            raise UserError(f"output folder {folder} is or contains the input {inp}; choose another output path")
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir():
            raise UserError(f"output {folder} is a file; give a folder name for the {noun}")
        if not overwrite:
            raise UserError(f"output {folder} already exists; pass --overwrite to replace it")
        if any(folder.iterdir()) and not (folder / marker).is_file():
            raise UserError(f"refusing to replace {folder}: it is not {what} (no {marker}); "
                            "choose a new folder name")
    return folder


@contextmanager
def staged_folder(folder: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder beside ``folder``; on clean exit it becomes ``folder``.

    An existing ``folder`` without ``overwrite`` is a :class:`UserError` (checked
    before any work and again at the end); on error the staging folder is removed.
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise UserError(f"output {folder} already exists; pass --overwrite to replace it")
    tmp = temp_beside(folder, folder=True)
    try:
        yield tmp
        if folder.exists() and not overwrite:
            raise UserError(f"output {folder} appeared while writing; pass --overwrite to replace it")
        publish_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
