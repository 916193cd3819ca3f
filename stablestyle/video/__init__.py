"""Video and image I/O: the only place where ``uint8`` frames become float tensors.

Frames outside this package are ``uint8`` RGB numpy arrays of shape ``(H, W, 3)``;
inside :mod:`stablestyle` they are ``float32`` tensors in ``[0, 1]``.
:func:`to_tensor` and :func:`to_uint8` are the only two conversions between them.

Reading: :func:`open_source` streams frames from a video file (anything PyAV
opens), a folder of numbered frames (``frame_0001.png``; natural sort, as in
MPI Sintel) or a single image.  Writing: :func:`open_sink` writes H.264 video
(``.mp4`` / ``.mov`` / ``.mkv``), a single image (``.png`` / ``.jpg``) or a
folder of numbered PNG frames (a path without suffix), always under a temporary
name in the output folder that is renamed only when writing finished cleanly.
Commands call :func:`check_output_path` before doing any work, so a user
mistake in the output path costs nothing.

The package re-exports the names below; by concept (each module imports only
modules listed above it):

* :mod:`~stablestyle.video.formats`: suffixes, encoder presets, size limits and
  the checks of sizes, frame rates and frames;
* :mod:`~stablestyle.video.convert`: pure conversions (``uint8`` <-> float,
  resizing, RGB -> yuv420p);
* :mod:`~stablestyle.video.images`: reading and writing still images, the
  style-image loader;
* :mod:`~stablestyle.video.decode`: PyAV (imported on first use) and decoding;
* :mod:`~stablestyle.video.audio`: copying an input's audio into the output;
* :mod:`~stablestyle.video.source`: :func:`open_source`, :class:`FrameSource`,
  the order of a frame folder;
* :mod:`~stablestyle.video.sink`: :func:`check_output_path`, :func:`open_sink`,
  :class:`FrameSink`.
"""

from .convert import resized_size, rgb_to_yuv420p, shrink_frame, to_tensor, to_uint8
from .formats import (
    DEFAULT_FPS,
    DEFAULT_PRESET,
    ENCODER_THREADS,
    FRAME_PATTERN,
    IMAGE_SUFFIXES,
    MAX_SIDE,
    MIN_SIDE,
    OUTPUT_IMAGE_SUFFIXES,
    VIDEO_FILE_SUFFIXES,
    VIDEO_SUFFIXES,
    X264_PRESETS,
    check_max_size,
    check_side,
    frame_rate,
)
from .images import load_style_image, read_image, write_image
from .sink import FrameSink, check_output_path, open_sink, output_kind, same_path
from .source import FrameSource, frame_files, is_numbered_sequence, natural_key, open_source

__all__ = [
    "DEFAULT_FPS", "DEFAULT_PRESET", "ENCODER_THREADS", "FRAME_PATTERN", "IMAGE_SUFFIXES", "MAX_SIDE", "MIN_SIDE",
    "OUTPUT_IMAGE_SUFFIXES", "VIDEO_FILE_SUFFIXES", "VIDEO_SUFFIXES", "X264_PRESETS",
    "FrameSink", "FrameSource", "check_max_size", "check_output_path", "check_side", "frame_files", "frame_rate",
    "is_numbered_sequence", "load_style_image", "natural_key", "open_sink", "open_source", "output_kind",
    "read_image", "resized_size", "rgb_to_yuv420p", "same_path", "shrink_frame", "to_tensor", "to_uint8",
    "write_image",
]
