"""Test configuration: the shared assets must be present (never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
_assets = os.environ.get("STABLESTYLE_ASSETS") or str(ROOT.parent / "shared" / "assets")
ASSETS = Path(_assets).resolve()
if not (ASSETS / "vgg16_features.pth").is_file():
    raise pytest.UsageError(
        f"shared assets not found at {ASSETS}: the tests need ../shared/assets beside the project "
        "(or STABLESTYLE_ASSETS pointing at it)"
    )
os.environ["STABLESTYLE_ASSETS"] = str(ASSETS)
os.environ["STABLESTYLE_VGG16"] = str(ASSETS / "vgg16_features.pth")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def assets() -> Path:
    return ASSETS


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep flow caches and downloads out of the user's home during tests."""
    monkeypatch.setenv("STABLESTYLE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch_home"))
