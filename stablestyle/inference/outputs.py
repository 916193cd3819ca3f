"""Where stylized outputs go: one output per input, and the checks on an output folder.

What ``stablestyle stylize`` does with its inputs before any work, here so a Python user
gets the same: a folder input is one clip (:func:`warn_if_not_a_sequence` says when its
files look like unrelated photos), several inputs go to ``folder/<name>.mp4``
(:func:`many_outputs`, :func:`check_output_folder`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import UserError

__all__ = ["warn_if_not_a_sequence", "many_outputs", "check_output_folder"]

log = logging.getLogger(__name__)


def warn_if_not_a_sequence(path: str, output: str = "OUT_FOLDER") -> None:
    """Log a warning when ``path`` is a folder whose images are not named like the frames of one clip.

    A folder input is one clip (recurrent state flows from file to file, the outputs are renamed
    ``frame_00001.png`` ...); photos that merely share a folder want to be stylized one by one.
    """
    from ..video import frame_files, is_numbered_sequence

    folder = Path(path)
    if not folder.is_dir():
        return
    files = frame_files(folder)
    if is_numbered_sequence(p.name for p in files):
        return
    suffixes = {p.suffix for p in files}
    pattern = folder / ("*" + suffixes.pop() if len(suffixes) == 1 else "*")
    examples = ", ".join(p.name for p in files[:3]) + (", ..." if len(files) > 3 else "")
    log.warning("%s: the file names (%s) are not numbered frames, but a folder is stylized as the consecutive "
                "frames of one clip; to stylize them as independent images run `stablestyle stylize %s -o %s`",
                folder, examples, pattern, output if not Path(output).suffix else "OUT_FOLDER")


def many_outputs(inputs: list[str], folder: str) -> list[Path]:
    """Output paths for several inputs: ``folder/<name>.mp4`` (``.png`` for images); clashes are a user error."""
    from ..video import IMAGE_SUFFIXES

    outputs = []
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():  # a frame folder (its name may hold a dot)
            outputs.append(Path(folder) / f"{p.name}.mp4")
        else:
            outputs.append(Path(folder) / f"{p.stem}{'.png' if p.suffix.lower() in IMAGE_SUFFIXES else '.mp4'}")
    seen: dict[Path, str] = {}
    for inp, out in zip(inputs, outputs):
        if out in seen:
            raise UserError(f"{seen[out]} and {inp} would both be written to {out}; stylize them separately "
                            "or rename one")
        seen[out] = inp
    return outputs


def check_output_folder(folder: Path) -> None:
    """``-o`` for several inputs: a folder path (no suffix, not a file) whose parent exists; else a UserError."""
    if folder.suffix:
        raise UserError(f"with several inputs -o is a folder (each result is <folder>/<input name>.mp4), "
                        f"got {folder}")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"-o {folder} is a file; with several inputs give a folder")
    if not folder.parent.is_dir():
        raise UserError(f"output folder {folder.parent} does not exist; create it first")
