"""Advice printed after (or before) a run: what set the pace, what compiling cost, when bf16 pays.

Owns :func:`bottleneck_note` (decoding or encoding held the network up: what to change),
:func:`compile_note` (the first frame's wait for ``torch.compile`` and the rate after it) and
:func:`native_bf16_note` (this CPU computes bf16 natively, so ``--half`` is worth trying).
Each returns one line of text, or ``None`` when there is nothing to say.
"""

from __future__ import annotations


def bottleneck_note(stats, preset: str | None) -> str | None:
    """What to do when decoding or writing, not the network, set the pace (``None`` when neither did).

    ``preset``: the H.264 preset of a video output; ``None`` for a frame folder or an image (PNG / JPEG).
    """
    from .video import X264_PRESETS

    stage = stats.held_up_by()
    if stage is None:
        return None
    wait = stats.encode_wait_s if stage == "encode" else stats.decode_wait_s
    if stage == "decode":
        return (f"reading the input held the network up for {wait:.1f} of {stats.seconds:.1f} s: decoding (and "
                "--max-size's resize) on the CPU set the pace, not the network")
    if preset is None:
        return f"writing the output images held the network up for {wait:.1f} of {stats.seconds:.1f} s"
    faster = X264_PRESETS[: X264_PRESETS.index(preset)]
    if "veryfast" in faster:
        advice = "; --preset veryfast encodes about twice as fast as medium at a similar size"
    elif "superfast" in faster:
        advice = ("; --preset superfast is faster still (1080p file to file on a 16-core GPU machine: 74 frames/s "
                  "against 58 at veryfast), ultrafast fastest, with files about 3x veryfast's")
    elif faster:
        advice = "; --preset ultrafast is faster still, with files about 3x veryfast's"
    else:
        advice = ""
    return (f"the H.264 encoder held the network up for {wait:.1f} of {stats.seconds:.1f} s "
            f"(--preset {preset}){advice}")


def compile_note(stats) -> str | None:
    """The first frame's wait and the rate after it, for a compiled run (``None`` without two frames):
    the summary's rate counts the compile wait, which a long video spreads thin and a short one does not."""
    if stats.fps_after_first is None:
        return None
    return (f"the first frame came after {stats.first_frame_s:.1f} s (compiling); "
            f"{stats.fps_after_first:.1f} frames/s after it")


def native_bf16_note(backend: str, device) -> str | None:
    """A hint to pass ``--half`` where this CPU computes bf16 natively (``None`` elsewhere)."""
    from .inference import bf16_is_native

    if not bf16_is_native(backend, device):
        return None
    return ("this CPU computes bf16 natively (AVX-512 BF16 / AMX): --half runs the network in bf16, several times "
            "faster here, with outputs close to fp32 (docs/PERFORMANCE.md; --no-half keeps fp32 without this note)")
