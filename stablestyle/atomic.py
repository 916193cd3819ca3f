"""Atomic output: write under a temporary name beside the target, rename when complete.

Every file or folder the package produces goes through here, so a crash, a
Ctrl-C or a user error part-way through never leaves a half-written file under
the final name (the rename is atomic on one file system), and an existing
output is replaced only at the very end.

Temporary names carry the writer's process id (``.NAME.tmp-<pid>-<hex>.suffix``).
An interrupted writer removes its own (``except BaseException``; the CLI turns
SIGTERM and SIGHUP into the same exception as Ctrl-C); what a killed process
(SIGKILL, power cut) left behind is removed by the next :func:`temp_beside` for
the same output once that process is gone.  Data are flushed to disk
(``fsync``) before the rename and the folder after it, so a renamed output
survives a power cut.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError


#: ``.NAME.tmp-<pid>-<hex>[.suffix]``, and the older ``.NAME.tmp-<hex>[.suffix]`` without a process id.
_TEMP_RE = re.compile(r"\.(?P<stem>.*)\.tmp-(?:(?P<pid>\d+)-)?[0-9a-f]{8}(?P<suffix>(\.[^.]*)?)")
#: A temporary name without a process id (written by an older version) counts as stale after this long.
LEGACY_STALE_SECONDS = 3600.0


def final_name(path: str | os.PathLike) -> Path:
    """The output that a temporary name from :func:`temp_beside` stands for (other paths unchanged).

    Error messages name this, not the hidden temporary file the user never asked for.
    """
    path = Path(path)
    match = _TEMP_RE.fullmatch(path.name)
    return path.parent / f"{match['stem']}{match['suffix']}" if match else path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files / folders of ``path`` whose writing process is gone; returns them.

    A name with a process id is stale when that process no longer exists; an older name without one
    when it was last modified more than :data:`LEGACY_STALE_SECONDS` ago.  Never raises.
    """
    path = Path(path)
    removed = []
    try:
        siblings = list(path.parent.glob(f".{glob_escape(path.stem)}.tmp-*"))
    except OSError:
        return removed
    for tmp in siblings:
        match = _TEMP_RE.fullmatch(tmp.name)
        if match is None or match["stem"] != path.stem or match["suffix"] != path.suffix:
            continue
        try:
            stale = (not _pid_alive(int(match["pid"])) if match["pid"] is not None
                     else time.time() - tmp.lstat().st_mtime > LEGACY_STALE_SECONDS)
            if stale:
                if tmp.is_dir() and not tmp.is_symlink():
                    shutil.rmtree(tmp)
                else:
                    tmp.unlink()
                removed.append(tmp)
        except OSError:  # another process removed it first, or no permission: leave it
            continue
    return removed


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters bracketed, for a literal match in ``Path.glob``."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def temp_beside(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """A fresh ``.NAME.tmp-<pid>-XXXXXXXX[.suffix]`` path beside ``path``, created empty (file or folder).

    The original suffix is kept so format-sniffing writers (PyAV, Pillow) still
    recognise the container.  Stale temporary names of ``path`` left by killed
    processes are removed first (:func:`remove_stale_temps`).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: folder {path.parent} does not exist")
    remove_stale_temps(path)
    while True:
        tmp = path.parent / f".{path.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}"
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


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's data, or a folder's entries, to disk (file systems that cannot do it are skipped)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):  # e.g. a folder we may write but not read
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def durable_replace(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """``os.replace(tmp, path)`` with ``tmp``'s data on disk before and the folder entry after.

    A folder ``tmp`` has its files and itself flushed.  Errors name ``path``, not the temporary name.
    """
    tmp, path = Path(tmp), Path(path)
    try:
        if tmp.is_dir():
            for child in tmp.iterdir():
                if child.is_file():
                    fsync_path(child)
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    except OSError as exc:
        raise _naming(exc, tmp, path) from None


def _naming(exc: OSError, tmp: Path, path: Path) -> OSError:
    """``exc`` with ``tmp`` in its file name replaced by ``path``."""
    if exc.filename is not None and Path(exc.filename) == tmp:
        return type(exc)(exc.errno, exc.strerror, str(path))
    return exc


@contextmanager
def atomic_path(path: str | os.PathLike, *, keep_mode: bool = False) -> Iterator[Path]:
    """Yield a temporary file path; on clean exit it replaces ``path``, on error it is removed.

    The file gets the permissions a plain ``open()`` would give (umask); with
    ``keep_mode`` a replaced file's permission bits are kept instead.  The data
    are flushed to disk before the rename (:func:`durable_replace`); an
    ``OSError`` naming the temporary file is re-raised naming ``path``.
    """
    path = Path(path)
    tmp = temp_beside(path)
    try:
        try:
            yield tmp
        except OSError as exc:
            raise _naming(exc, tmp, path) from None
        if keep_mode and path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        durable_replace(tmp, path)
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
    durable_replace(tmp, folder)
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
