"""The job queue: a worker thread per allowed job, progress the page polls, cancelling, and clean-up.

A job's uploaded input is deleted as soon as the job ends (done, failed or cancelled); its result folder
stays for the downloads until the visitor's session closes (:mod:`.sessions`).  A cancelled job stops at its
next frame and leaves no result behind.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
import itertools
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from .limits import InputInfo, Limits
from .pipeline import Cancelled, plot_points, result_files, run_job

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One visitor's request and where it stands; ``folder`` holds its input and, when done, ``result/``."""

    session: str
    source: Path
    name: str
    info: InputInfo
    style: str | Path
    stability: str
    folder: Path
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = "queued"  # queued, running, done, failed, cancelled
    stage: str = ""
    done: int = 0
    total: int = 0
    fps: float | None = None
    error: str | None = None
    report: dict | None = None
    seconds: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    seq: int = 0  # order of submission

    @property
    def result(self) -> Path:
        return self.folder / "result"

    def status(self, position: int) -> dict:
        """What the page shows: state, queue position, progress, and the report and file names when done."""
        out = {"id": self.id, "state": self.state, "position": position, "stage": self.stage, "done": self.done,
               "total": self.total, "fps": self.fps, "error": self.error, "input": self.name,
               "seconds": self.seconds}
        if self.state == "done" and self.report is not None:
            out["files"] = result_files(self.report)
            out["instability"] = self.report.get("instability")
            out["ratio"] = self.report.get("stable_over_perframe")
            out["per_frame"] = plot_points(self.report)
            out["primary"] = self.report.get("primary")
            out["models"] = {k: v["name"] for k, v in self.report.get("models", {}).items()}
        return out


class JobQueue:
    """First come, first served, ``limits.workers`` jobs at a time; ``device`` is where the networks run."""

    def __init__(self, limits: Limits, device="cpu") -> None:
        self.limits = limits
        self.device = device
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._workers = [threading.Thread(target=self._work, name=f"stablestyle-job-{i}", daemon=True)
                         for i in range(limits.workers)]
        for worker in self._workers:
            worker.start()

    def submit(self, job: Job) -> Job:
        with self._lock:
            job.seq = next(self._seq)
            self._jobs[job.id] = job
        self._queue.put(job)
        return job

    def get(self, job_id: str, session: str) -> Job:
        """The job ``job_id`` of ``session``; a :class:`UserError` for an unknown one (or another visitor's)."""
        job = self._jobs.get(job_id)
        if job is None or job.session != session:
            raise UserError("no such job (it ended with the page that started it); start it again")
        return job

    def position(self, job: Job) -> int:
        """How many queued jobs are ahead of ``job`` (0 when it runs or has ended)."""
        if job.state != "queued":
            return 0
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.state == "queued" and j.seq < job.seq)

    def cancel(self, job: Job) -> None:
        job.cancel.set()
        if job.state == "queued":
            job.state = "cancelled"

    def forget_session(self, session: str) -> list[Job]:
        """Cancel and forget every job of ``session``; returns them (their folders go with the session's)."""
        with self._lock:
            mine = [j for j in self._jobs.values() if j.session == session]
            for job in mine:
                del self._jobs[job.id]
        for job in mine:
            self.cancel(job)
        return mine

    def shutdown(self) -> None:
        """Cancel everything and stop the workers (after the frame they are on)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self.cancel(job)
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout=60)

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            if job.cancel.is_set():
                job.state = "cancelled"
            else:
                self._run(job)
            job.source.unlink(missing_ok=True)  # the upload goes as soon as its job ends
            if job.state != "done":
                shutil.rmtree(job.result, ignore_errors=True)
            if job.id not in self._jobs:  # its visitor left while it ran: nothing of it may stay
                shutil.rmtree(job.folder, ignore_errors=True)

    def _run(self, job: Job) -> None:
        job.state = "running"
        start = time.perf_counter()

        def on_progress(stage: str, done: int, total: int, fps: float | None) -> None:
            if job.cancel.is_set():
                raise Cancelled
            job.stage, job.done, job.total, job.fps = stage, done, total, fps

        try:
            job.report = run_job(job.source, job.name, job.info.kind, job.style, job.stability, job.result,
                                 limits=self.limits, fps=job.info.fps, on_progress=on_progress, device=self.device)
            job.state = "done"
        except Cancelled:
            job.state = "cancelled"
        except UserError as exc:
            job.state, job.error = "failed", str(exc)
        except MemoryError:
            job.state, job.error = "failed", "out of memory; try a shorter clip or a smaller size"
        except Exception:  # a bug: logged with its traceback for the operator, one line for the visitor
            if job.cancel.is_set():  # the visitor left while the videos were written: not a failure
                job.state = "cancelled"
                return
            log.exception("job %s failed", job.id)
            job.state, job.error = "failed", "the job failed on the server (a bug; the server log has the details)"
        job.seconds = time.perf_counter() - start
        job.stage = job.state
