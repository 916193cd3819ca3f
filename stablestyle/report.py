"""Provenance of a report: what produced a set of numbers, where and when.

Every report the package writes (``stablestyle evaluate``'s ``results.json``
and ``results.md``, ``analyze-style --json``) carries :func:`provenance`, so a
number can always be traced back to the command, the code version and the
hardware that produced it (STYLE habit 5: configuration saved beside results).
"""

from __future__ import annotations

import datetime
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from . import __version__

__all__ = ["provenance", "cpu_name", "device_name", "provenance_markdown", "emit_json"]


def cpu_name() -> str:
    """The CPU model string (``/proc/cpuinfo``'s ``model name`` on Linux, else :func:`platform.processor`)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        try:
            for line in cpuinfo.read_text(errors="replace").splitlines():
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: torch.device | str | None = None) -> str:
    """Human-readable name of ``device``: the GPU's name for CUDA, the CPU model otherwise.

    ``None`` describes the CPU (and the first GPU, when CUDA is available).
    """
    if device is None:
        names = [cpu_name()]
        if torch.cuda.is_available():
            names.append(torch.cuda.get_device_name(0))
        return " + ".join(names)
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def provenance(argv: Sequence[str] | None = None, device: torch.device | str | None = None) -> dict:
    """Where a report came from, as plain JSON-ready data.

    Args:
        argv: the command line (default ``sys.argv``).
        device: the device the work ran on (default: describe CPU and GPU).

    Returns:
        ``{"command": str, "argv": [...], "stablestyle_version", "torch_version",
        "python_version", "platform", "device", "cpu_threads", "date"}`` with
        ``date`` an ISO-8601 UTC timestamp.
    """
    argv = list(sys.argv if argv is None else argv)
    return {
        "command": shlex.join(str(a) for a in argv),
        "argv": [str(a) for a in argv],
        "stablestyle_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "device": device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def provenance_markdown(info: dict) -> str:
    """A Markdown bullet list of a :func:`provenance` dict (for report headers)."""
    lines = [
        f"- command: `{info.get('command', '')}`",
        f"- stablestyle {info.get('stablestyle_version')}, torch {info.get('torch_version')}, "
        f"python {info.get('python_version')}",
        f"- device: {info.get('device')} ({info.get('cpu_threads')} CPU threads), {info.get('platform')}",
        f"- date: {info.get('date')}",
    ]
    return "\n".join(lines)


def emit_json(report: dict, out: str | Path | None = None) -> None:
    """Print ``report`` as indented JSON and, with ``out``, also write it there atomically (a bench's
    ``--out``: never a half-written file under the final name)."""
    import json

    from .atomic import write_text_atomic

    text = json.dumps(report, indent=2)
    print(text)
    if out:
        write_text_atomic(out, text + "\n")
