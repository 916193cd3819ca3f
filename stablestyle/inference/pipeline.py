"""File-to-file stylization in three threads: decode, network, encode.

Owns :func:`run_pipelined` (``stylize`` with one input) and :class:`PipelineStats`, what it measured.
Frames flow ``source -> decoder thread -> queue -> backend.run (calling thread) -> queue ->
encoder thread -> sink``; the queues are bounded, so memory stays flat, and the accelerator does
not wait for the CPU while either side keeps up.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..runtime import progress
from .backend import Backend


@dataclass
class PipelineStats:
    """What :func:`run_pipelined` measured: frames written, wall seconds, and where inference waited.

    ``decode_wait_s``: time the inference loop waited for decoded frames
    (decoding is the bottleneck when large); ``encode_wait_s``: time it waited
    for room in the encode queue (encoding is the bottleneck);
    ``first_frame_s``: time until the network handed out its first frame
    (decoding it, and ``torch.compile``'s compiling), ``None`` without frames;
    ``decode_s`` / ``encode_s``: time the decoder thread spent getting frames
    from the source / the encoder thread in ``sink.write`` (a stage's time per
    frame: the rate it allows on its own, GIL waits and CPU contention included).
    """

    frames: int
    seconds: float
    decode_wait_s: float
    encode_wait_s: float
    first_frame_s: float | None = None
    decode_s: float = 0.0
    encode_s: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def fps_after_first(self) -> float | None:
        """Frames/s from the first frame on: the steady rate once compiling / warm-up is over."""
        if self.first_frame_s is None or self.frames < 2 or self.seconds <= self.first_frame_s:
            return None
        return (self.frames - 1) / (self.seconds - self.first_frame_s)

    def held_up_by(self, share: float = 0.25) -> str | None:
        """``"encode"`` / ``"decode"`` when inference waited on that stage for at least ``share`` of the run.

        Only a stage on cores of its own shows as waiting (a GPU run waiting for the encoder); where the
        network and the encoder share a few CPU cores each slows the other and neither waits much, so this
        says nothing there.
        """
        waits = {"encode": self.encode_wait_s, "decode": self.decode_wait_s}
        stage = max(waits, key=waits.get)
        return stage if self.seconds > 0 and waits[stage] >= share * self.seconds else None


_END = object()
_POLL_S = 0.05


class _Stopped(Exception):
    """Another stage failed or the run was interrupted."""


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            q.put(item, timeout=_POLL_S)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            continue



def _timed(totals: dict, key: str, get: Callable):
    """``get()``, adding the seconds it took to ``totals[key]``."""
    t0 = time.perf_counter()
    item = get()
    totals[key] += time.perf_counter() - t0
    return item


class _Stages:
    """The shared state of one run: the two queues, the stop flag, the first error, and the clocks."""

    def __init__(self, queue_size: int) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.decoded: queue.Queue = queue.Queue(maxsize=queue_size)
        self.encoded: queue.Queue = queue.Queue(maxsize=queue_size)
        self.waits = {"decode": 0.0, "encode": 0.0}  # the network waiting for a stage
        self.busy = {"decode": 0.0, "encode": 0.0}  # a stage's own time
        self.written = 0
        self.first_frame_s: float | None = None

    def _fail(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.stop.set()

    def decode(self, source: Iterable[np.ndarray]) -> None:
        """The decoder thread: ``source`` into the ``decoded`` queue, then the end marker."""
        try:
            frames = iter(source)
            while (frame := _timed(self.busy, "decode", lambda: next(frames, _END))) is not _END:
                _put(self.decoded, frame, self.stop)
            _put(self.decoded, _END, self.stop)
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 -- handed to the calling thread
            self._fail(exc)

    def encode(self, sink) -> None:
        """The encoder thread: the ``encoded`` queue into ``sink.write`` until the end marker."""
        try:
            while (frame := _get(self.encoded, self.stop)) is not _END:
                _timed(self.busy, "encode", lambda: sink.write(frame))
                self.written += 1
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 -- handed to the calling thread
            self._fail(exc)

    def inputs(self) -> Iterator[np.ndarray]:
        """The decoded frames, for the network (in the calling thread)."""
        while (frame := _timed(self.waits, "decode", lambda: _get(self.decoded, self.stop))) is not _END:
            yield frame

    def hand_on(self, outputs: Iterable[np.ndarray], start: float) -> None:
        """The network's frames into the ``encoded`` queue, then the end marker."""
        for out in outputs:
            t0 = time.perf_counter()
            if self.first_frame_s is None:
                self.first_frame_s = t0 - start
            _put(self.encoded, out, self.stop)
            self.waits["encode"] += time.perf_counter() - t0
        _put(self.encoded, _END, self.stop)

    def stats(self, seconds: float) -> PipelineStats:
        return PipelineStats(frames=self.written, seconds=seconds, decode_wait_s=self.waits["decode"],
                             encode_wait_s=self.waits["encode"], first_frame_s=self.first_frame_s,
                             decode_s=self.busy["decode"], encode_s=self.busy["encode"])


def run_pipelined(source: Iterable[np.ndarray], sink, backend: Backend, *, queue_size: int = 8,
                  total: int | None = None, quiet: bool = True,
                  switch_interval: float | None = None, restart=None) -> PipelineStats:
    """Stylize ``source`` into ``sink`` with decode, inference and encode in separate threads.

    Args:
        source: iterable of ``uint8`` ``(H, W, 3)`` frames (e.g. :func:`stablestyle.video.open_source`),
            iterated in a decoder thread.
        sink: object with ``write(frame)`` (e.g. an open :func:`stablestyle.video.open_sink`), called
            from an encoder thread in frame order; the caller opens and closes it.
        backend: runs in the calling thread (``backend.run``, one clip, frame-sequential).
        queue_size: frames buffered between stages (bounded, so memory stays flat).
        total, quiet: progress bar length / silence (:func:`stablestyle.runtime.progress`).
        switch_interval: the interpreter's thread switch interval (seconds, :func:`sys.setswitchinterval`)
            during the run, restored afterwards; ``None`` keeps it (5 ms by default).  A shorter one
            hands the GIL sooner to a thread coming back from C code (the encoder, the decoder) while
            the inference thread runs Python.
        restart: ``restart(frame) -> bool``, true where a new shot starts (the
            recurrent state resets there; :class:`stablestyle.scenecut.SceneCutDetector`).

    The first error in any stage stops all three and is re-raised here (so a
    sink used as a context manager discards its partial output); Ctrl-C in
    the calling thread stops the workers too.
    """
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
        raise ValueError(f"queue_size must be a positive integer, got {queue_size!r}")
    if switch_interval is not None and not switch_interval > 0:
        raise ValueError(f"switch_interval must be a positive number of seconds, got {switch_interval!r}")
    stages = _Stages(queue_size)
    decoder = threading.Thread(target=stages.decode, args=(source,), name="stablestyle-decode", daemon=True)
    encoder = threading.Thread(target=stages.encode, args=(sink,), name="stablestyle-encode", daemon=True)
    previous_interval = sys.getswitchinterval()
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    start = time.perf_counter()
    decoder.start()
    encoder.start()
    try:
        # restart only when set: a backend without scene-cut support still runs
        outputs = backend.run(stages.inputs()) if restart is None else backend.run(stages.inputs(), restart)
        stages.hand_on(progress(outputs, total=total, desc="stylize", unit="frame", quiet=quiet), start)
        encoder.join()
    except _Stopped:
        pass
    except BaseException:
        stages.stop.set()
        raise
    finally:
        stages.stop.set()  # the encoder has drained (or failed): release a decoder blocked on a full queue
        decoder.join()
        encoder.join()
        sys.setswitchinterval(previous_interval)
    if stages.errors:
        raise stages.errors[0]
    return stages.stats(time.perf_counter() - start)
