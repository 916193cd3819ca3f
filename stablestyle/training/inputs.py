"""What a run reads: content discovery, the held-out validation image and clip, the training dataset, input checks.

Everything a run will read is checked by :func:`check_inputs` before the
run folder is touched (style image, VGG weights, content, videos and the
validation image), so a bad file is a one-line error at the start, never a
crash hours in.  Training photos are loaded leniently later
(:mod:`stablestyle.data`); the validation image is read strictly
(:func:`stablestyle.video.read_image`), which is why it is checked here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .config import TrainConfig

log = logging.getLogger(__name__)

#: Seed of the validation clip's motion: the same clip for every run and every resume.
VAL_SEED = 20170505


def find_content(entries: Sequence[str]) -> list[Path]:
    """Image files under ``entries`` (:func:`stablestyle.data.find_images`; folders searched recursively).

    Raises :class:`UserError` for a missing entry or an entry without images.
    """
    from ..data import IMAGE_EXTENSIONS, find_images
    from ..video import VIDEO_FILE_SUFFIXES

    files: list[Path] = []
    for entry in entries:
        path = Path(entry).expanduser()
        if path.is_file():
            _check_content_file(path)
        found = find_images([path])
        if not found:
            videos = path.is_dir() and any(p.suffix.lower() in VIDEO_FILE_SUFFIXES for p in path.rglob("*"))
            todo = "pass its videos with --video FILE each" if videos else "give a folder of photos or image files"
            raise UserError(f"content {entry} has no images ({', '.join(IMAGE_EXTENSIONS)}); {todo}")
        files += found
    return files


def _check_content_file(path: Path) -> None:
    """A ``content`` file named explicitly must be an image, not a video (which ``--video`` takes)."""
    from PIL import Image

    from ..data import IMAGE_EXTENSIONS
    from ..video import VIDEO_FILE_SUFFIXES

    if path.suffix.lower() in VIDEO_FILE_SUFFIXES:
        raise UserError(f"content {path} is a video; --content takes images or folders of images, "
                        f"pass videos with --video {path}")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return  # a broken photo is skipped with a counted warning later, as in a folder
    try:
        with Image.open(path):  # reads the header only
            pass
    except Exception:  # noqa: BLE001 - Pillow raises many types for non-images
        raise UserError(f"content {path} is not an image Pillow can read; --content takes images or folders of "
                        f"images ({', '.join(IMAGE_EXTENSIONS)}); if it is a video, pass it with --video") from None


def split_validation(config: TrainConfig) -> tuple[list[Path], Path | None]:
    """``(training stills, validation image)`` per ``config.val_image`` (see :class:`TrainConfig`).

    The validation image is ``None`` only for video-only training without
    ``val_image``; then a video frame stands in (:func:`validation_image`).
    It is read here, strictly as validation will read it: a
    :class:`UserError` names it when it is unusable.
    """
    from ..video import read_image

    stills = find_content(config.content)
    if config.val_image is not None:
        val = Path(config.val_image).expanduser()
        read_image(val)  # a UserError naming the file when it is unusable
        return stills, val
    if len(stills) >= 2:
        stills, val = stills[:-1], stills[-1]
    elif stills:
        log.warning("only one content image: it is also the validation image (set val_image to hold one out)")
        val = stills[0]
    else:
        return stills, None
    _check_held_out(val)
    return stills, val


def _check_held_out(path: Path) -> None:
    """The content image chosen as validation image must pass the strict reader that validation uses.

    Training photos are converted leniently (a greyscale JPEG trains), the
    validation clip is not; unchecked, such an image sorting last ended a
    run at its first validation, before that step's checkpoint was saved.
    """
    from ..video import read_image

    try:
        read_image(path)
    except UserError as exc:
        raise UserError(f"the validation image (the last content image, held out of training) is unusable: "
                        f"{exc}; or choose another with --val-image IMAGE") from None


def validation_image(path: Path | None, videos: Sequence[str]) -> np.ndarray:
    """``uint8 (H, W, 3)`` for the validation clip: ``path``, else the first frame of the first video."""
    from ..video import open_source, read_image

    if path is not None:
        return read_image(path)
    if not videos:
        raise UserError("no image for the validation clip: give content images, videos or val_image")
    log.warning("no content images: the validation clip is made from the first frame of %s, which is also "
                "training data (set val_image to hold an image out)", videos[0])
    with open_source(videos[0]) as source:
        for frame in source:
            return frame
    raise UserError(f"video {videos[0]} has no frames")


def check_inputs(config: TrainConfig) -> None:
    """Check the files a run will read (style image, VGG weights, content, validation image, videos) before
    anything is written: a bad file is then an error before step 1, not a crash at the first validation."""
    from ..video import open_source, read_image

    config.validate()
    if not config.content and not config.video:
        raise UserError("no training data: give --content DIR (still images) and/or --video FILE")
    style = Path(config.style).expanduser()
    if style.is_dir():
        raise UserError(f"style image {config.style} is a folder, not an image file; give one image, "
                        "e.g. --style styles/scream.jpg")
    if not style.exists():
        raise UserError(f"style image {config.style} does not exist")
    read_image(style)
    if config.vgg_weights is not None:  # a missing file or a folder fails here, before the data scan
        from ..models import resolve_vgg16_weights

        resolve_vgg16_weights(config.vgg_weights)
    split_validation(config)
    for entry in config.video:
        path = Path(entry).expanduser()
        if not path.exists():
            raise UserError(f"video {path} does not exist")
        with open_source(path) as source:
            if source.num_frames is not None and source.num_frames < config.sequence_length:
                raise UserError(f"video {path} has {source.num_frames} frames, fewer than seq_len "
                                f"{config.sequence_length}")



def build_dataset(config: TrainConfig, stills: Sequence[Path], quiet: bool = True,
                  held_out: Path | None = None) -> torch.utils.data.Dataset:
    """The training data of ``config``: ``stills`` with synthetic motion and / or ``config.video``.

    :func:`stablestyle.data.build_training_data` with ``seq_len`` items of
    ``data_crop x data_crop`` pixels (``crop`` plus the context margin, if any); items are a function of ``(seed, epoch, index)``.
    ``held_out``, the validation image taken out of the content images, is
    named in the error when no still is usable because of it.
    """
    from ..data import build_training_data
    from ..synthetic import MotionConfig

    return build_training_data([str(p) for p in stills], list(config.video), seq_len=config.sequence_length,
                               crop=config.data_crop, video_ratio=config.video_ratio, vflip_prob=config.vflip,
                               motion=MotionConfig().at_speed(config.max_speed),
                               flow_method=config.flow_method, seed=config.seed, quiet=quiet, held_out=held_out)



def make_validation_clip(image: np.ndarray, size: int, frames: int) -> dict[str, torch.Tensor]:
    """The held-out validation clip: a virtual camera over ``image`` (``uint8 (H, W, 3)``) with exact flow.

    :func:`stablestyle.synthetic.render_clip` with a fixed seed
    (:data:`VAL_SEED`), ``size x size`` pixels, one foreground patch cut from
    the same image (so the clip has occlusions).  Returns ``frames``
    ``(T, 3, H, W)`` in ``[0, 1]``, ``flow_bw`` ``(T, 2, H, W)`` pixels and
    ``mask`` ``(T, 1, H, W)`` (the exact visibility ``valid_bw``; index 0 zeros).
    """
    from ..synthetic import render_clip
    from ..video import to_tensor

    clip = render_clip(image, frames, (size, size), rng=np.random.default_rng(VAL_SEED), foregrounds=(image,))
    return {
        "frames": to_tensor(clip.frames),
        "flow_bw": torch.from_numpy(np.ascontiguousarray(clip.flow_bw)).permute(0, 3, 1, 2).float().contiguous(),
        "mask": torch.from_numpy(np.ascontiguousarray(clip.valid_bw))[:, None].float(),
    }
