"""Evaluation clips: input frames plus the flow and masks that the temporal metrics need.

A clip is one of

* a video file or a folder of numbered frames (no ground truth): flow is
  *estimated on the input* (``dis`` by default, or ``deepflow``) in both
  directions and masked with Ruder et al. 2016's reliability mask;
* a ground-truth folder in the layout of :func:`stablestyle.synthetic.save_clip`
  (``frames/``, ``flow_bw/`` with ``t -> t-1`` ``.flo`` files, ``valid_bw/``
  with 255 = valid, ...), read with :func:`stablestyle.synthetic.load_ground_truth`;
* MPI Sintel frames with ground-truth forward flow: ``.flo`` files beside the
  frames, or the Sintel tree ``<root>/<pass>/<scene>/`` with
  ``<root>/flow/<scene>/*.flo`` and (optional) ``<root>/occlusions/<scene>/*.png``
  (white = occluded in the next frame).  Sintel only has forward flow
  (``t -> t+1`` on frame ``t``'s grid), so its instability compares ``y_t``
  with ``y_{t+1}`` warped back onto frame ``t`` (:func:`clip_instability`).

Ground truth is used for the instability (Gupta et al. 2017 use Sintel's);
the warping error (Lai et al. 2018) always uses flow estimated on the input,
as its definition prescribes.  ``max_size`` / ``max_frames`` shrink the clip;
ground-truth flow is resized with the frames (vectors scaled, masks kept
conservative: a pixel is valid only if everything it covers was).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from ..runtime import check_at_least
from ..flow import FLOW_METHODS, flow_pair, flow_to_tensor, inbounds_mask, read_flo, reliability_mask
from ..video import IMAGE_SUFFIXES, natural_key, open_source
from .metrics import instability, warping_error_per_frame

log = logging.getLogger(__name__)

__all__ = ["Clip", "GroundTruth", "load_clip", "estimate_clip_flow", "clip_instability",
           "clip_warping_error", "resize_flow", "resize_mask"]


@dataclass
class GroundTruth:
    """Exact flow and validity masks of a clip, ``T - 1`` entries each (float32 tensors).

    ``direction == "backward"``: ``flow[i]`` takes frame ``i+1`` back to frame
    ``i`` and ``mask[i]`` lives on frame ``i+1``'s grid (the package's
    ``flow_bw``).  ``direction == "forward"`` (Sintel): ``flow[i]`` takes frame
    ``i`` to ``i+1`` and ``mask[i]`` lives on frame ``i``'s grid.
    """

    flow: Tensor   # (T-1, 2, H, W) pixels
    mask: Tensor   # (T-1, 1, H, W) 1 = valid
    direction: str
    source: str    # where it came from, for reports

    def __post_init__(self) -> None:
        if self.direction not in ("backward", "forward"):
            raise ValueError(f"direction must be 'backward' or 'forward', got {self.direction!r}")


@dataclass
class Clip:
    """An evaluation clip: decoded input frames and what the metrics need.

    ``path`` is what :func:`stablestyle.video.open_source` reads to replay the
    clip (the speed measurement decodes it again); ``frames`` are the decoded
    ``uint8 (H, W, 3)`` frames after ``max_size`` / ``max_frames``.
    """

    name: str
    path: Path
    frames: list[np.ndarray]
    fps: float
    max_size: int | None
    max_frames: int | None
    flow_method: str = "dis"
    ground_truth: GroundTruth | None = None
    _estimated: tuple[Tensor, Tensor] | None = field(default=None, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """``(W, H)`` of the frames."""
        return (self.frames[0].shape[1], self.frames[0].shape[0])

    @property
    def flow_source(self) -> str:
        """What the instability is measured with: the ground truth, or the estimator's name."""
        return self.ground_truth.source if self.ground_truth is not None else f"estimated ({self.flow_method})"

    def estimated_flow(self) -> tuple[Tensor, Tensor]:
        """``(flow_bw (T-1, 2, H, W), mask (T-1, 1, H, W))`` estimated on the input frames (cached)."""
        if self._estimated is None:
            self._estimated = estimate_clip_flow(self.frames, self.flow_method)
        return self._estimated


def estimate_clip_flow(frames: list[np.ndarray], method: str = "dis") -> tuple[Tensor, Tensor]:
    """Flow and Ruder et al. reliability masks for consecutive input frames.

    Args:
        frames: ``T >= 2`` uint8 ``(H, W, 3)`` RGB frames.
        method: a key of :data:`stablestyle.flow.FLOW_METHODS` (``dis``, ``deepflow``, ...).

    Returns:
        ``flow_bw`` ``(T-1, 2, H, W)`` (entry ``i`` takes frame ``i+1`` to ``i``)
        and ``mask`` ``(T-1, 1, H, W)`` = :func:`~stablestyle.flow.reliability_mask`
        of the backward / forward pair, float32 on the CPU.
    """
    if len(frames) < 2:
        raise UserError(f"a clip needs at least 2 frames for temporal metrics, got {len(frames)}")
    flows, masks = [], []
    for prev, cur in itertools.pairwise(frames):
        bw, fw = flow_pair(prev, cur, method)
        bw_t, fw_t = flow_to_tensor(bw), flow_to_tensor(fw)
        flows.append(bw_t)
        masks.append(reliability_mask(bw_t, fw_t))
    return torch.cat(flows), torch.cat(masks)


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize ``(N, 2, H, W)`` flow to ``size = (W', H')``: area-averaged, vectors scaled by ``W'/W``, ``H'/H``."""
    _, _, h, w = flow.shape
    if (w, h) == tuple(size):
        return flow
    new_w, new_h = size
    mode = "area" if new_w <= w and new_h <= h else "bilinear"
    out = F.interpolate(flow, size=(new_h, new_w), mode=mode, **({} if mode == "area" else {"align_corners": False}))
    scale = torch.tensor([new_w / w, new_h / h], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
    return out * scale


def resize_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a ``(N, 1, H, W)`` {0, 1} mask to ``size = (W', H')`` conservatively (valid only if all covered pixels were)."""
    _, _, h, w = mask.shape
    if (w, h) == tuple(size):
        return mask
    new_w, new_h = size
    if new_w <= w and new_h <= h:
        return (F.interpolate(mask, size=(new_h, new_w), mode="area") >= 1 - 1e-6).to(mask.dtype)
    return F.interpolate(mask, size=(new_h, new_w), mode="nearest")


def clip_instability(outputs: Tensor, clip: Clip) -> Tensor:
    """Per-frame instability ``(T-1,)`` of ``outputs`` ``(T, 3, H, W)``, with the clip's best flow.

    Ground truth when the clip has it (for forward-only ground truth such as
    Sintel the clip is evaluated in reverse time, which compares ``y_t`` with
    ``y_{t+1}`` warped onto frame ``t`` with the exact forward flow and its
    occlusion map; values are returned in forward order, entry ``i`` for the
    pair ``(i, i+1)``), else flow estimated on the input.
    """
    gt = clip.ground_truth
    if gt is None:
        flow, mask = clip.estimated_flow()
        return instability(outputs, flow.to(outputs.device), mask.to(outputs.device))
    flow, mask = gt.flow.to(outputs.device), gt.mask.to(outputs.device)
    if gt.direction == "backward":
        return instability(outputs, flow, mask)
    return instability(outputs.flip(0), flow.flip(0), mask.flip(0)).flip(0)


def clip_warping_error(outputs: Tensor, clip: Clip) -> Tensor:
    """Per-frame warping error ``(T-1,)`` (Lai et al. 2018) with flow estimated on the clip's input."""
    flow, mask = clip.estimated_flow()
    return warping_error_per_frame(outputs, flow.to(outputs.device), mask.to(outputs.device))


# ----------------------------------------------------------------------------- loading

def _image_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".")), key=lambda p: natural_key(p.name))


def _flo_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.glob("*.flo") if p.is_file()), key=lambda p: natural_key(p.name))


def _is_synthetic_layout(path: Path) -> bool:
    return path.is_dir() and (path / "frames").is_dir() and (
        (path / "flow_bw").is_dir() or (path / "flow").is_dir())


def _sintel_ground_truth(frames_dir: Path) -> tuple[list[Path], list[Path] | None] | None:
    """``(flo files, occlusion pngs or None)`` for a Sintel-style frame folder, or ``None`` if it has none."""
    beside = _flo_files(frames_dir)
    if beside:
        occ_dir = frames_dir / "occlusions"
        return beside, (_image_files(occ_dir) if occ_dir.is_dir() else None)
    root, scene = frames_dir.parent.parent, frames_dir.name
    flow_dir = root / "flow" / scene
    if frames_dir.parent.name != "flow" and flow_dir.is_dir() and _flo_files(flow_dir):
        occ_dir = root / "occlusions" / scene
        return _flo_files(flow_dir), (_image_files(occ_dir) if occ_dir.is_dir() else None)
    return None


def _read_masks(files: list[Path], invert: bool) -> Tensor:
    """{0, 1} ``(N, 1, H, W)`` float32 from 8-bit mask images (``> 127`` is set; ``invert`` flips it)."""
    from PIL import Image

    masks = []
    for file in files:
        try:
            with Image.open(file) as img:
                arr = np.asarray(img.convert("L"))
        except (OSError, ValueError) as exc:  # ValueError: a text / ICC chunk past Pillow's limit
            raise UserError(f"{file}: cannot read mask image ({exc})") from None
        on = arr > 127
        masks.append(torch.from_numpy((~on if invert else on).astype(np.float32))[None, None])
    return torch.cat(masks)


def _forward_ground_truth(flo: list[Path], occ: list[Path] | None, n_frames: int, where: Path) -> GroundTruth:
    if len(flo) < n_frames - 1:
        raise UserError(f"{where}: {len(flo)} .flo files for {n_frames} frames; Sintel-style ground truth "
                        f"needs one forward flow per frame pair ({n_frames - 1})")
    flo = flo[:n_frames - 1]
    flow = torch.cat([flow_to_tensor(read_flo(p)) for p in flo])
    mask = inbounds_mask(flow)
    if occ is not None:
        if len(occ) < n_frames - 1:
            raise UserError(f"{where}: {len(occ)} occlusion images for {n_frames - 1} flows")
        occ_masks = _read_masks(occ[:n_frames - 1], invert=True)  # white = occluded
        if occ_masks.shape[2:] != mask.shape[2:]:
            raise UserError(f"{where}: occlusion images are {occ_masks.shape[3]}x{occ_masks.shape[2]} but the "
                            f"flow is {mask.shape[3]}x{mask.shape[2]}")
        mask = mask * occ_masks
    return GroundTruth(flow=flow, mask=mask, direction="forward",
                       source="ground truth (forward .flo" + (" + occlusions)" if occ is not None else ")"))


def _synthetic_ground_truth(path: Path, n_frames: int) -> GroundTruth:
    """Ground truth of a clip folder: exact backward flow (:func:`~stablestyle.synthetic.load_ground_truth`)
    when it has ``flow_bw/``, else Sintel's forward ``flow/`` and ``occlusions/``."""
    if (path / "flow_bw").is_dir():
        from ..synthetic import load_ground_truth

        gt = load_ground_truth(path)
        if gt.flow_bw.shape[0] < n_frames:
            raise UserError(f"{path}: ground truth covers {gt.flow_bw.shape[0]} frames, fewer than the "
                            f"{n_frames} decoded from {path / 'frames'}")
        flow = torch.from_numpy(np.ascontiguousarray(gt.flow_bw[1:n_frames])).permute(0, 3, 1, 2).float()
        valid = torch.from_numpy(np.ascontiguousarray(gt.valid_bw[1:n_frames]))[:, None].float()
        return GroundTruth(flow=flow, mask=valid * inbounds_mask(flow), direction="backward",
                           source="ground truth (flow_bw)")
    occ_dir = path / "occlusions"
    return _forward_ground_truth(_flo_files(path / "flow"), _image_files(occ_dir) if occ_dir.is_dir() else None,
                                 n_frames, path)


def load_clip(path: str | Path, *, max_size: int | None = None, max_frames: int | None = None,
              flow_method: str = "dis", name: str | None = None) -> Clip:
    """Decode an evaluation clip and attach its ground truth, if it has one.

    Args:
        path: video file, frame folder, ground-truth folder (``frames/`` +
            ``flow_bw/`` ...) or Sintel frame folder (see the module docstring).
        max_size: long side limit in pixels (frames and ground truth are resized).
        max_frames: use only the first ``max_frames`` frames (>= 2).
        flow_method: estimator for the warping error and, without ground
            truth, the instability.
        name: the clip's name in reports (default: the file stem / folder name).

    Raises:
        UserError: missing path, unreadable frames, fewer than 2 frames,
            unknown flow method, inconsistent ground truth.
    """
    path = Path(path)
    check_at_least("--max-frames", max_frames, 2)
    if flow_method not in FLOW_METHODS:
        raise UserError(f"unknown flow method {flow_method!r}; valid: {', '.join(sorted(FLOW_METHODS))}")
    if not path.exists():
        raise UserError(f"clip {path}: no such file or folder")
    synthetic = _is_synthetic_layout(path)
    source_path = path / "frames" if synthetic else path
    with open_source(source_path, max_size=max_size) as source:
        frames = list(itertools.islice(source, max_frames))
        fps = source.fps
        full_size = None
        if source.kind == "frames":
            first = _image_files(source_path)[0]
            from PIL import Image

            with Image.open(first) as img:
                full_size = img.size
    if len(frames) < 2:
        raise UserError(f"clip {path} has {len(frames)} frame(s); temporal metrics need at least 2")
    gt = None
    if synthetic:
        gt = _synthetic_ground_truth(path, len(frames))
    elif path.is_dir():
        found = _sintel_ground_truth(path)
        if found is not None:
            gt = _forward_ground_truth(found[0], found[1], len(frames), path)
    if gt is not None:
        flow_w, flow_h = gt.flow.shape[3], gt.flow.shape[2]
        if full_size is not None and (flow_w, flow_h) != tuple(full_size):
            raise UserError(f"{path}: ground-truth flow is {flow_w}x{flow_h} but the frames are "
                            f"{full_size[0]}x{full_size[1]}")
        size = (frames[0].shape[1], frames[0].shape[0])
        gt = GroundTruth(flow=resize_flow(gt.flow, size), mask=resize_mask(gt.mask, size),
                         direction=gt.direction, source=gt.source)
    default_name = path.name if path.is_dir() else path.stem
    clip = Clip(name=name or default_name, path=source_path,
                frames=frames, fps=fps, max_size=max_size, max_frames=max_frames, flow_method=flow_method,
                ground_truth=gt)
    log.info("clip %s: %d frames %dx%d, instability flow: %s", clip.name, len(frames), *clip.size,
             clip.flow_source)
    return clip
