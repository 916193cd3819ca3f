"""Visitors' sessions: their temporary folders, uploads and jobs, removed when the page closes.

Every page gets a random session id; its uploads and results live in one folder under the server's
temporary root.  The page says when it closes (a beacon on ``pagehide``); a page that vanishes without
saying so (a crash, a lost network) is forgotten once it has not been heard from for ``ttl`` seconds.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .jobs import JobQueue
from .limits import InputInfo

_SESSION_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Upload:
    """A visitor's file: ``kind`` is ``"media"`` (video or image, with its ``info``) or ``"checkpoint"``."""

    session: str
    path: Path
    name: str
    kind: str
    info: InputInfo | None = None


def safe_name(name: str) -> str:
    """A visitor's file name reduced to a harmless base name (letters, digits, ``.-_``), never empty."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(name)).name).lstrip(".")
    return base[-100:] or "upload"


class Sessions:
    """The temporary root, the uploads by id and the sessions' last sign of life."""

    def __init__(self, jobs: JobQueue, ttl: float = 900.0) -> None:
        self.jobs = jobs
        self.ttl = ttl
        self.root = Path(tempfile.mkdtemp(prefix="stablestyle-app-"))
        self._seen: dict[str, float] = {}
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def touch(self, session: str) -> Path:
        """Mark ``session`` alive; returns its folder (created). A :class:`UserError` for a malformed id."""
        if not _SESSION_ID.fullmatch(session or ""):
            raise UserError("the page has no valid session; reload it")
        with self._lock:
            self._seen[session] = time.monotonic()
        folder = self.root / session
        folder.mkdir(exist_ok=True)
        return folder

    def new_file(self, session: str, name: str) -> Path:
        """A fresh path for an upload called ``name`` in ``session``'s folder (its own sub-folder)."""
        folder = self.touch(session) / uuid.uuid4().hex
        folder.mkdir()
        return folder / safe_name(name)

    def add_upload(self, upload: Upload) -> str:
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._uploads[upload_id] = upload
        return upload_id

    def upload(self, upload_id: str, session: str, kind: str) -> Upload:
        """The upload ``upload_id`` of ``session``; a :class:`UserError` when unknown or of another kind."""
        found = self._uploads.get(upload_id)
        if found is None or found.session != session or found.kind != kind or not found.path.exists():
            raise UserError("that upload is gone (each upload serves one job); upload the file again")
        return found

    def take_upload(self, upload_id: str, session: str) -> Upload:
        """The media upload, now owned by a job (which deletes it when it ends)."""
        found = self.upload(upload_id, session, "media")
        with self._lock:
            self._uploads.pop(upload_id, None)
        return found

    def close(self, session: str) -> None:
        """Cancel the session's jobs and remove everything it left."""
        self.jobs.forget_session(session)
        with self._lock:
            self._seen.pop(session, None)
            for key in [k for k, u in self._uploads.items() if u.session == session]:
                del self._uploads[key]
        if _SESSION_ID.fullmatch(session or ""):
            shutil.rmtree(self.root / session, ignore_errors=True)

    def sweep(self) -> list[str]:
        """Close the sessions not heard from for ``ttl`` seconds; returns their ids."""
        now = time.monotonic()
        with self._lock:
            stale = [s for s, seen in self._seen.items() if now - seen > self.ttl]
        for session in stale:
            self.close(session)
        return stale

    def shutdown(self) -> None:
        """Stop the jobs and remove the temporary root."""
        self.jobs.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)
