"""Training datasets: stills with exact motion, videos with cached flow, the mix, and lenient image loading."""

from __future__ import annotations

import io
import logging
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from stablestyle.data import (
    MixedDataset,
    StillsDataset,
    VideoClipsDataset,
    build_training_data,
    flow_cache_dir,
    scan_images,
)
from stablestyle.errors import UserError
from stablestyle.flow import backward_warp

CROP = 32


@pytest.fixture(scope="module")
def photos(assets, tmp_path_factory):
    """Three small RGB photos (PNG)."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ("ccpl_golden_gate", "ccpl_lenna", "ccpl_chicago"):
        with Image.open(assets / "content" / f"{name}.jpg") as img:
            img.convert("RGB").resize((80, 60)).save(folder / f"{name}.png")
    return sorted(folder.iterdir())


def _check_item(item: dict, seq_len: int, side: int) -> None:
    assert item["frames"].shape == (seq_len, 3, side, side) and item["frames"].dtype == torch.float32
    assert item["flow_bw"].shape == (seq_len, 2, side, side) and item["flow_bw"].dtype == torch.float32
    assert item["mask"].shape == (seq_len, 1, side, side) and item["mask"].dtype == torch.float32
    assert 0 <= item["frames"].min() and item["frames"].max() <= 1
    assert not item["flow_bw"][0].any() and not item["mask"][0].any()
    assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    assert torch.isfinite(item["flow_bw"]).all() and isinstance(item["source"], str)


def _masked_warp_error(item: dict) -> float:
    f, m = item["frames"], item["mask"][1:]
    err = (backward_warp(f[:-1], item["flow_bw"][1:]) - f[1:]).abs() * m
    return (err.sum() / (3 * m.sum())).item()


# ----------------------------------------------------------------------------- stills

def test_stills_items_have_exact_motion(photos):
    ds = StillsDataset(photos, seq_len=3, crop=CROP, foreground_prob=1.0, seed=0)
    assert len(ds) == 3
    for i in range(len(ds)):
        item = ds[i]
        _check_item(item, 3, CROP)
        assert item["source"] == str(photos[i])
        assert 0.3 < item["mask"][1:].mean() and item["flow_bw"].abs().max() > 0.5
        assert _masked_warp_error(item) < 4 / 255


def test_stills_are_deterministic_per_seed_epoch_and_index(photos):
    a = StillsDataset(photos, seq_len=2, crop=CROP, seed=5)
    b = StillsDataset(photos, seq_len=2, crop=CROP, seed=5)
    first = a.get(1, 0)
    assert torch.equal(first["frames"], b[1]["frames"]) and torch.equal(first["flow_bw"], b[1]["flow_bw"])
    assert not torch.equal(first["frames"], a.get(1, 1)["frames"])  # another epoch, another clip
    assert not torch.equal(first["frames"], StillsDataset(photos, 2, CROP, seed=6)[1]["frames"])
    a.set_epoch(1)
    assert torch.equal(a[1]["frames"], b.get(1, 1)["frames"])


def test_stills_with_one_frame_for_per_frame_training(photos):
    item = StillsDataset(photos, seq_len=1, crop=CROP)[0]
    _check_item(item, 1, CROP)


def test_stills_survive_an_image_that_breaks_during_training(photos, tmp_path, caplog):
    files = []
    for p in photos[:2]:
        files.append(tmp_path / p.name)
        files[-1].write_bytes(p.read_bytes())
    ds = StillsDataset(files, seq_len=2, crop=CROP, foreground_prob=0.0)
    files[0].write_bytes(b"gone")
    with caplog.at_level(logging.WARNING, logger="stablestyle"):
        item = ds[0]
    assert item["source"] == str(files[1]) and "unusable" in caplog.text


@pytest.fixture(scope="module")
def sky_photos(tmp_path_factory):
    """Two photos bright at the top, dark at the bottom (a vertical ramp), 80 x 60."""
    folder = tmp_path_factory.mktemp("sky")
    ramp = np.repeat(np.linspace(255, 0, 60).astype(np.uint8)[:, None, None], 80, 1).repeat(3, 2)
    for k in range(2):
        Image.fromarray(ramp).save(folder / f"sky{k}.png")
    return sorted(folder.iterdir())


def _top_minus_bottom(item: dict) -> float:
    frame = item["frames"][0]
    return (frame[:, :4].mean() - frame[:, -4:].mean()).item()


def test_vflip_turns_photos_upside_down_with_the_given_probability(sky_photos):
    upright = StillsDataset(sky_photos, seq_len=3, crop=CROP, foreground_prob=0.0, seed=1)
    turned = StillsDataset(sky_photos, seq_len=3, crop=CROP, foreground_prob=0.0, vflip_prob=1.0, seed=1)
    half = StillsDataset(sky_photos, seq_len=1, crop=CROP, foreground_prob=0.0, vflip_prob=0.5, seed=1)
    for epoch in range(4):
        for i in range(2):
            assert _top_minus_bottom(upright.get(i, epoch)) > 0.1
            item = turned.get(i, epoch)
            assert _top_minus_bottom(item) < -0.1
            assert _masked_warp_error(item) < 4 / 255  # flow and mask follow the turned photo
    signs = {_top_minus_bottom(half.get(i, e)) > 0 for e in range(8) for i in range(2)}
    assert signs == {True, False}


def test_vflip_zero_keeps_the_items_of_a_seed(photos):
    a, b = StillsDataset(photos, 2, CROP, seed=3), StillsDataset(photos, 2, CROP, vflip_prob=0.0, seed=3)
    assert torch.equal(a.get(2, 1)["frames"], b.get(2, 1)["frames"])


@pytest.mark.parametrize("kwargs, match", [
    ({"seq_len": 0}, "seq_len"),
    ({"crop": 4}, "crop"),
    ({"foreground_prob": 1.5}, "foreground_prob"),
    ({"vflip_prob": -0.1}, "vflip_prob"),
])
def test_stills_reject_bad_settings(photos, kwargs, match):
    with pytest.raises(UserError, match=match):
        StillsDataset(photos, **{"seq_len": 2, "crop": CROP, **kwargs})


# ----------------------------------------------------------------------------- videos

def test_video_flow_is_cached_then_reused(bikes_clip, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("STABLESTYLE_CACHE", str(tmp_path / "cache"))
    with caplog.at_level(logging.INFO, logger="stablestyle"):
        ds = VideoClipsDataset([bikes_clip], seq_len=3, crop=CROP, short_side=48, seed=1)
    assert "flow cache hit" not in caplog.text
    entries = list(flow_cache_dir().iterdir())
    assert len(entries) == 1 and {p.name for p in entries[0].iterdir()} == {
        "frames.npy", "flow_bw.npy", "mask.npy", "meta.json"}
    assert np.load(entries[0] / "flow_bw.npy").dtype == np.float16
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="stablestyle"):
        again = VideoClipsDataset([bikes_clip], seq_len=3, crop=CROP, short_side=48, seed=1)
    assert "flow cache hit" in caplog.text
    assert len(ds) == len(again) == 2  # 8 frames, windows of 3 every 3 frames
    for i in range(len(ds)):
        item = ds[i]
        _check_item(item, 3, CROP)
        assert torch.equal(item["flow_bw"], again[i]["flow_bw"])
    # another working resolution is another cache entry
    VideoClipsDataset([bikes_clip], seq_len=3, crop=CROP, short_side=40)
    assert len(list(flow_cache_dir().iterdir())) == 2


def test_estimated_flow_matches_a_known_pan(tmp_path):
    import cv2

    from stablestyle.synthetic import Layer, render_layers, similarity_maps
    from stablestyle.video import write_image

    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.random((120, 140, 3), dtype=np.float32), (0, 0), 2.0)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    centre = np.array([10.0, 10.0]) + np.arange(4)[:, None] * np.array([2.0, 1.0])  # pans 2 px right, 1 down
    clip = render_layers([Layer(tex, similarity_maps(centre, np.zeros((4, 2)), np.ones(4), np.zeros(4)))], (64, 64))
    (tmp_path / "pan").mkdir()
    for t, frame in enumerate(clip.frames):
        write_image(tmp_path / "pan" / f"frame_{t + 1:04d}.png", frame)
    ds = VideoClipsDataset([tmp_path / "pan"], seq_len=4, crop=48, short_side=64, flip_prob=0.0)
    item = ds[0]
    _check_item(item, 4, 48)
    mask = item["mask"][1:, 0] > 0
    assert mask.float().mean() > 0.5
    for c, expected in enumerate((2.0, 1.0)):  # flow_bw points from frame t back to t-1
        assert (item["flow_bw"][1:, c][mask] - expected).abs().median() < 0.25


def test_flip_mirrors_frames_flow_and_mask(bikes_clip):
    plain = VideoClipsDataset([bikes_clip], seq_len=2, crop=CROP, short_side=48, flip_prob=0.0, seed=3)
    flipped = VideoClipsDataset([bikes_clip], seq_len=2, crop=CROP, short_side=48, flip_prob=1.0, seed=3)
    a, b = plain[2], flipped[2]
    assert torch.equal(b["frames"], a["frames"].flip(-1))
    assert torch.equal(b["flow_bw"][:, 0], -a["flow_bw"][:, 0].flip(-1))
    assert torch.equal(b["flow_bw"][:, 1], a["flow_bw"][:, 1].flip(-1))
    assert torch.equal(b["mask"], a["mask"].flip(-1))
    assert a["flow_bw"][1, 0].abs().max() > 0.1


def test_video_mask_excludes_flow_leaving_the_crop(frames_dir):
    ds = VideoClipsDataset([frames_dir], seq_len=2, crop=CROP, short_side=48, stride=1)
    assert len(ds) == 4
    for i in range(len(ds)):
        item = ds[i]
        _check_item(item, 2, CROP)
        grid = torch.arange(CROP, dtype=torch.float32)
        px = grid + item["flow_bw"][1, 0]
        py = grid[:, None] + item["flow_bw"][1, 1]
        outside = (px < 0) | (px > CROP - 1) | (py < 0) | (py > CROP - 1)
        assert not item["mask"][1, 0][outside].any()


def test_bad_and_short_videos_are_skipped_with_a_count(bikes_clip, tmp_path, caplog):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    with caplog.at_level(logging.WARNING, logger="stablestyle"):
        ds = VideoClipsDataset([broken, bikes_clip], seq_len=2, crop=CROP, short_side=48)
    assert len(ds.videos) == 1 and "skipped 1 of 2 training videos (1 unreadable)" in caplog.text
    with pytest.raises(UserError, match="none of the 1 training videos"):
        VideoClipsDataset([bikes_clip], seq_len=9, crop=CROP, short_side=48)
    with pytest.raises(UserError, match="short_side"):
        VideoClipsDataset([bikes_clip], seq_len=2, crop=64, short_side=48)
    with pytest.raises(UserError, match="does not exist"):
        VideoClipsDataset([tmp_path / "nope.mp4"], seq_len=2, crop=CROP)


# ----------------------------------------------------------------------------- mix

@pytest.fixture(scope="module")
def mixed_parts(photos, bikes_clip):
    stills = StillsDataset(photos, seq_len=2, crop=CROP, seed=0)
    videos = VideoClipsDataset([bikes_clip], seq_len=2, crop=CROP, short_side=48, seed=0)
    return stills, videos


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 1 / 3, 1.0])
def test_mixed_dataset_keeps_the_ratio_on_every_prefix(mixed_parts, ratio):
    stills, videos = mixed_parts
    ds = MixedDataset(stills, videos, ratio, length=60)
    kinds = [ds.locate(i)[0] for i in range(len(ds))]
    counts = np.cumsum([k == "videos" for k in kinds])
    np.testing.assert_array_equal(counts, np.floor(np.arange(1, 61) * ratio + 1e-9))
    assert kinds == [MixedDataset(stills, videos, ratio, length=60).locate(i)[0] for i in range(60)]


def test_mixed_dataset_serves_both_kinds(mixed_parts, bikes_clip):
    stills, videos = mixed_parts
    ds = MixedDataset(stills, videos, 0.5)
    assert len(ds) == len(stills) + len(videos)
    sources = [ds[i]["source"] for i in range(4)]
    assert sum(s.startswith(str(bikes_clip)) for s in sources) == 2
    ds.set_epoch(2)
    assert stills.epoch == videos.epoch == 2
    stills.set_epoch(0), videos.set_epoch(0)
    with pytest.raises(UserError, match="needs training videos"):
        MixedDataset(stills, None, 0.5)
    with pytest.raises(UserError, match="seq_len and crop"):
        MixedDataset(StillsDataset(stills.paths, seq_len=3, crop=CROP), videos, 0.5)


def test_worker_processes_give_the_same_batches(mixed_parts):
    stills, videos = mixed_parts
    ds = MixedDataset(stills, videos, 0.5)
    videos._open(0)  # memory maps opened in the parent must not travel to the workers
    serial = list(DataLoader(ds, batch_size=2, num_workers=0))
    parallel = list(DataLoader(ds, batch_size=2, num_workers=2))
    assert len(serial) == len(parallel) == 4  # 3 stills + 4 windows, in pairs
    for a, b in zip(serial, parallel):
        assert a["frames"].shape[1:] == (2, 3, CROP, CROP) and a["source"] == b["source"]
        for key in ("frames", "flow_bw", "mask"):
            assert torch.equal(a[key], b[key])
    # spawn / forkserver workers receive a pickled copy: no open memory maps travel with it
    copy = pickle.loads(pickle.dumps(ds))
    assert copy.videos._arrays == {} and torch.equal(copy[1]["flow_bw"], ds[1]["flow_bw"])


# ----------------------------------------------------------------------------- building

@pytest.fixture
def messy_folder(photos, tmp_path):
    """Good, converted, enlarged and broken images, nested, plus a file that is not an image."""
    folder = tmp_path / "content"
    (folder / "nested").mkdir(parents=True)
    rgb = np.asarray(Image.open(photos[0]))
    Image.fromarray(rgb).save(folder / "good.png")
    Image.fromarray(rgb).save(folder / "nested" / "good2.JPG")
    Image.fromarray(rgb[..., 0], "L").save(folder / "grey.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]), "RGBA").save(folder / "alpha.png")
    Image.fromarray(rgb[:20, :40]).save(folder / "small.png")  # short side 20 >= crop / 2: enlarged
    Image.fromarray(rgb[:8, :8]).save(folder / "tiny.png")  # 8 < crop / 2: skipped
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "readme.txt").write_text("not an image")
    return folder


def test_build_skips_bad_images_with_counted_warnings(messy_folder, caplog):
    with caplog.at_level(logging.INFO, logger="stablestyle"):
        ds = build_training_data([messy_folder], seq_len=2, crop=CROP, quiet=True)
    assert isinstance(ds, StillsDataset)
    assert sorted(p.name for p in ds.paths) == ["alpha.png", "good.png", "good2.JPG", "grey.png", "small.png"]
    assert "skipped 2 of 7 training images (1 too small, 1 unreadable" in caplog.text
    assert "2 training images are not RGB" in caplog.text
    assert "1 training images are smaller than the 32 px crop" in caplog.text
    for i in range(len(ds)):
        _check_item(ds[i], 2, CROP)


def test_scan_without_decoding_finds_header_problems_only(messy_folder):
    scan = scan_images([messy_folder], CROP, verify=False)
    assert [p.name for p in scan.skipped["too small"]] == ["tiny.png"] and "unreadable" not in scan.skipped
    assert len(scan.usable) == 6


def test_build_with_both_kinds_mixes_them(messy_folder, bikes_clip):
    ds = build_training_data([messy_folder / "good.png"], [bikes_clip], seq_len=2, crop=CROP, short_side=48,
                             video_ratio=0.5, quiet=True)
    assert isinstance(ds, MixedDataset) and len(ds) == 1 + 4
    videos_only = build_training_data((), [bikes_clip], seq_len=2, crop=CROP, short_side=48, quiet=True)
    assert isinstance(videos_only, VideoClipsDataset)


def test_build_without_usable_data_is_a_user_error(messy_folder, tmp_path):
    with pytest.raises(UserError, match="no usable training images"):
        build_training_data([messy_folder / "tiny.png", messy_folder / "truncated.jpg"], seq_len=2, crop=CROP)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="none found"):
        build_training_data([tmp_path / "empty"], seq_len=2, crop=CROP)
    with pytest.raises(UserError, match="does not exist"):
        build_training_data([tmp_path / "missing"], seq_len=2, crop=CROP)
    with pytest.raises(UserError, match="no training data"):
        build_training_data(seq_len=2, crop=CROP)


@pytest.mark.parametrize("names, held_out, wanted, unwanted", [
    (["truncated.jpg"], None, ["(1 unreadable;"], ["short side", "validation"]),
    (["tiny.png"], None, ["(1 too small;", "short side of at least 16 px for crop 32"], ["validation"]),
    (["truncated.jpg"], "good.png", ["good.png was held back as the validation image", "at least two usable",
                                     "--val-image"], []),
])
def test_no_usable_images_says_why_and_names_the_held_out_image(messy_folder, names, held_out, wanted, unwanted):
    with pytest.raises(UserError, match="no usable training images") as info:
        build_training_data([messy_folder / n for n in names], seq_len=2, crop=CROP,
                            held_out=held_out and messy_folder / held_out)
    text = str(info.value)
    assert all(w in text for w in wanted) and not any(u in text for u in unwanted), text


def test_no_usable_images_names_at_most_three_entries(tmp_path):
    files = [tmp_path / f"tiny{i}.png" for i in range(5)]
    for path in files:
        Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(UserError, match=r"in .*tiny0\.png, .*tiny1\.png, .*tiny2\.png and 2 more: all 5 found"):
        build_training_data(files, seq_len=2, crop=CROP)
