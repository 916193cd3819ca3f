"""A Python client of the app's HTTP API (standard library ``urllib``), for scripts, tests and the benchmark.

``Client(url).stylize(path, style="scream")`` does what the page does: upload, queue, wait, and returns the
finished job's status; :meth:`Client.download` fetches its files.  Refusals raise :class:`AppError` with the
server's one-line message.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path


class AppError(Exception):
    """The server refused a request; the message is its one line."""


class Client:
    """One visitor of the app at ``url`` (``http://127.0.0.1:7860``), with its own session."""

    def __init__(self, url: str, timeout: float = 600.0) -> None:
        self.url = url.rstrip("/")
        self.session = uuid.uuid4().hex
        self.timeout = timeout

    def _call(self, method: str, path: str, data: bytes | None = None, **query) -> dict:
        query["session"] = self.session
        request = urllib.request.Request(f"{self.url}{path}?{urllib.parse.urlencode(query)}", data=data,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error")
            except ValueError:
                message = None
            raise AppError(message or f"HTTP {exc.code}") from None

    def config(self) -> dict:
        return self._call("GET", "/api/config")

    def upload(self, path: str | os.PathLike, kind: str = "media", name: str | None = None) -> dict:
        """Send a file; ``{"upload": id, ...}`` (what the server found in it)."""
        path = Path(path)
        return self._call("POST", "/api/upload", path.read_bytes(), kind=kind, name=name or path.name)

    def submit(self, source: str | os.PathLike | None, *, style: str = "scream", stability: str = "stable",
               checkpoint: str | os.PathLike | None = None) -> dict:
        """Queue a job for ``source`` (a file, or ``None`` for the demo clip); its first status."""
        body = {"session": self.session, "style": style, "stability": stability,
                "input": "demo" if source is None else self.upload(source)["upload"]}
        if checkpoint is not None:
            body["checkpoint"] = self.upload(checkpoint, kind="checkpoint")["upload"]
        return self._call("POST", "/api/jobs", json.dumps(body).encode())["job"]

    def status(self, job_id: str) -> dict:
        return self._call("GET", f"/api/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict:
        return self._call("POST", f"/api/jobs/{job_id}/cancel")

    def wait(self, job_id: str, poll: float = 0.2) -> dict:
        """The job's status once it has ended (done, failed or cancelled)."""
        while (status := self.status(job_id))["state"] in ("queued", "running"):
            time.sleep(poll)
        return status

    def stylize(self, source: str | os.PathLike | None, **choice) -> dict:
        """:meth:`submit` then :meth:`wait`; an :class:`AppError` when the job failed."""
        status = self.wait(self.submit(source, **choice)["id"])
        if status["state"] != "done":
            raise AppError(status.get("error") or status["state"])
        return status

    def download(self, status: dict, role: str, out: str | os.PathLike) -> Path:
        """Save the finished job's file ``role`` (``stylized``, ``side_by_side``, ``report``) as ``out``."""
        query = urllib.parse.urlencode({"session": self.session, "download": 1})
        url = f"{self.url}/api/jobs/{status['id']}/{status['files'][role]}?{query}"
        with urllib.request.urlopen(url, timeout=self.timeout) as response:
            Path(out).write_bytes(response.read())
        return Path(out)

    def close(self) -> None:
        """What closing the page does: the server cancels this session's jobs and removes its files."""
        self._call("POST", f"/api/sessions/{self.session}/close", b"")
