"""Copying the audio stream of an input video into a video being written: packet by packet (remux,
no re-encode), shifted so that the input's first video frame lands at t = 0, and interleaved with
the video frames as they are encoded.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import UserError
from .decode import open_input

log = logging.getLogger(__name__)


def open_audio(av, container, audio_from: Path, path: Path) -> AudioCopy | None:
    """The audio of ``audio_from`` ready to copy into ``container`` (the output ``path`` being written).

    ``None`` (video only) when ``audio_from`` has no audio stream or its codec cannot go into the output
    container without re-encoding; an unreadable ``audio_from`` is a :class:`UserError`.
    """
    try:
        source = open_input(av, audio_from)
    except (av.FFmpegError, OSError) as exc:
        raise UserError(f"{audio_from}: cannot read its audio ({exc})") from None
    if not source.streams.audio:
        log.debug("%s has no audio stream; writing video only", audio_from)
        source.close()
        return None
    stream = source.streams.audio[0]
    codec = stream.codec_context.name
    if codec not in container.supported_codecs:
        log.warning("audio of %s (%s) cannot be copied into %s without re-encoding; writing video only "
                    "(use .mkv to keep it)", audio_from, codec, path.suffix)
        source.close()
        return None
    try:
        return AudioCopy(av, source, container)
    except BaseException:
        source.close()
        raise


class AudioCopy:
    """The first audio stream of the open input ``source``, copied into the output ``container``.

    Call :meth:`add_stream` when the video stream has been added, :meth:`mux_until` after each
    video frame, and :meth:`close` at the end (also after an error; closing twice is harmless).
    """

    def __init__(self, av, source, container):
        self._av = av
        self._source = source
        self._container = container
        self._out = None
        self._pending = None
        stream = source.streams.audio[0]
        # Keep audio in step with the video: the first video frame of the input lands at t = 0.
        video = source.streams.video[0] if source.streams.video else None
        start = float(video.start_time * video.time_base) if video is not None and video.start_time else 0.0
        self._offset = round(start / stream.time_base)
        self._packets = iter(source.demux(stream))

    def add_stream(self) -> None:
        """Add the output audio stream, a copy of the input's; call it after adding the video stream."""
        self._out = self._container.add_stream_from_template(self._source.streams.audio[0])

    def mux_until(self, seconds: float) -> None:
        """Copy (remux, no re-encode) the audio packets that start before ``seconds``."""
        while self._packets is not None:
            if self._pending is None:
                try:
                    packet = next(self._packets)
                except StopIteration:
                    self._packets = None
                    return
                except (self._av.FFmpegError, OSError) as exc:
                    log.warning("stopped copying audio: %s", exc)
                    self._packets = None
                    return
                if packet.pts is None or packet.size == 0:
                    continue
                packet.pts -= self._offset
                if packet.dts is not None:
                    packet.dts -= self._offset
                if packet.pts < 0:
                    continue
                self._pending = packet
            packet = self._pending
            if float(packet.pts * packet.time_base) >= seconds:
                return
            packet.stream = self._out
            self._container.mux(packet)
            self._pending = None

    def close(self) -> None:
        """Close the input; nothing more is copied."""
        if self._source is not None:
            self._source.close()
            self._source = None
        self._packets = None
