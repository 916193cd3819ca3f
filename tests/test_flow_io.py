"""Middlebury .flo read/write and numpy <-> torch <-> colour conversions."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
import torch

import stablestyle.flow.flo as flo_module
from stablestyle.errors import UserError
from stablestyle.flow import flow_to_color, flow_to_numpy, flow_to_tensor, read_flo, write_flo


@pytest.mark.parametrize("h,w", [(1, 1), (4, 7), (33, 20)])
def test_flo_round_trip_is_bit_exact(tmp_path, h, w):
    rng = np.random.default_rng(h * 100 + w)
    flow = (rng.standard_normal((h, w, 2)) * 20).astype(np.float32)
    flow[0, 0] = [1e10, -1e10]  # Middlebury "unknown" values pass through
    path = tmp_path / "a.flo"
    write_flo(path, flow)
    back = read_flo(path)
    assert back.dtype == np.float32 and back.shape == (h, w, 2)
    assert np.array_equal(back, flow)
    assert os.listdir(tmp_path) == ["a.flo"]  # no temporary file left behind


def test_flo_layout_matches_the_middlebury_spec(tmp_path):
    flow = np.arange(2 * 3 * 2, dtype=np.float64).reshape(2, 3, 2)  # float64 input is written as float32
    path = tmp_path / "layout.flo"
    write_flo(path, flow)
    raw = path.read_bytes()
    assert raw[:4] == b"PIEH"
    assert struct.unpack("<fii", raw[:12]) == (202021.25, 3, 2)  # width first, then height
    assert struct.unpack("<12f", raw[12:]) == tuple(float(v) for v in range(12))  # row-major, (u, v) interleaved
    assert len(raw) == 12 + 2 * 3 * 2 * 4


def _header(width: int, height: int, magic: float = 202021.25) -> bytes:
    return struct.pack("<fii", magic, width, height)


@pytest.mark.parametrize(
    "content,match",
    [
        (_header(3, 2)[:7], "truncated: 7 bytes, a .flo header alone needs 12"),
        (struct.pack("<fii", 1.0, 3, 2) + bytes(48), "not a Middlebury .flo file: magic number"),
        (b"\x89PNG\r\n\x1a\n" + bytes(60), "not a Middlebury .flo file"),
        (_header(3, 2) + bytes(47), "truncated: 59 bytes, a 3x2 flow needs 60"),
        (_header(3, 2) + bytes(52), "4 unexpected trailing bytes"),
        (_header(0, 2), "invalid size 0x2"),
        (_header(-5, 2), "invalid size -5x2"),
        (_header(3, 1 << 20) + bytes(24), "invalid size 3x1048576"),
    ],
)
def test_read_flo_rejects_bad_files_naming_them(tmp_path, content, match):
    path = tmp_path / "bad.flo"
    path.write_bytes(content)
    with pytest.raises(UserError, match=match) as info:
        read_flo(path)
    assert str(path) in str(info.value)


def test_read_flo_missing_file_and_folder(tmp_path):
    with pytest.raises(UserError, match=r"nope\.flo does not exist"):
        read_flo(tmp_path / "nope.flo")
    with pytest.raises(UserError, match="is a folder"):
        read_flo(tmp_path)


@pytest.mark.parametrize(
    "flow,match",
    [
        (np.zeros((4, 5)), r"must be a \(H, W, 2\) array, got shape \(4, 5\)"),
        (np.zeros((1, 2, 4, 5)), r"got shape \(1, 2, 4, 5\).*flow_to_numpy"),
        (np.zeros((4, 5, 3)), r"got shape \(4, 5, 3\)"),
        (np.zeros((0, 5, 2)), "size 5x0 outside"),
        (np.full((2, 2, 2), "a"), "must be numeric"),
    ],
)
def test_write_flo_rejects_bad_arrays(tmp_path, flow, match):
    path = tmp_path / "out.flo"
    with pytest.raises(UserError, match=match):
        write_flo(path, flow)
    assert os.listdir(tmp_path) == []


def test_write_flo_missing_folder(tmp_path):
    with pytest.raises(UserError, match="folder .*missing does not exist"):
        write_flo(tmp_path / "missing" / "a.flo", np.zeros((2, 2, 2), np.float32))


def test_write_flo_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "a.flo"
    old = np.ones((2, 3, 2), np.float32)
    write_flo(path, old)
    new = np.full((5, 4, 2), 7.0, np.float32)

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(flo_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_flo(path, new)
    assert os.listdir(tmp_path) == ["a.flo"]  # temp file removed
    assert np.array_equal(read_flo(path), old)  # old file intact
    monkeypatch.undo()
    write_flo(path, new)  # overwriting replaces it
    assert np.array_equal(read_flo(path), new)


def test_flow_tensor_numpy_round_trip_and_channel_order():
    flow = np.zeros((3, 4, 2), np.float32)
    flow[1, 2] = [5.0, -1.5]  # (x, y) at row 1, column 2
    t = flow_to_tensor(flow)
    assert t.shape == (1, 2, 3, 4) and t.dtype == torch.float32
    assert t[0, 0, 1, 2] == 5.0 and t[0, 1, 1, 2] == -1.5
    flow[1, 2] = 0  # the tensor owns its memory
    assert t[0, 0, 1, 2] == 5.0
    back = flow_to_numpy(t)
    assert back.shape == (3, 4, 2) and back.dtype == np.float32 and back[1, 2, 0] == 5.0
    assert np.array_equal(flow_to_numpy(t[0].double().requires_grad_(True)), back)


def test_conversion_errors():
    with pytest.raises(ValueError, match=r"shape \(H, W, 2\)"):
        flow_to_tensor(np.zeros((1, 2, 3, 4)))
    with pytest.raises(ValueError, match="index a batch first"):
        flow_to_numpy(torch.zeros(2, 2, 3, 4))
    with pytest.raises(ValueError, match="torch.Tensor"):
        flow_to_numpy(np.zeros((3, 4, 2)))
    with pytest.raises(ValueError, match="max_flow must be > 0"):
        flow_to_color(np.zeros((2, 2, 2)), max_flow=0)


def test_flow_to_color_middlebury_wheel():
    flow = np.array([[[0, 0], [4, 0], [-4, 0], [0, 4], [0, -4], [2, 0], [8, 0], [np.nan, 0], [1e10, 0]]], float)
    img = flow_to_color(flow, max_flow=4)
    assert img.shape == (1, 9, 3) and img.dtype == np.uint8
    white, right, left, down, up, half_right, beyond, nan, unknown = img[0].astype(int)
    assert white.tolist() == [255, 255, 255]  # no motion
    assert right.tolist() == [255, 0, 0]  # red
    assert left[0] == 0 and left[2] == 255 and left[1] > 150  # cyan
    assert down[0] == 255 and down[1] > 200 and down[2] == 0  # yellow
    assert up[2] == 255 and up[1] == 0  # blue-violet
    assert half_right.tolist() == [255, 127, 127]  # half saturation
    assert beyond.tolist() == [191, 0, 0]  # over max_flow: dimmed
    assert nan.tolist() == [0, 0, 0] and unknown.tolist() == [0, 0, 0]
    # default normalisation: the largest known magnitude is fully saturated
    assert flow_to_color(np.array([[[3.0, 0.0], [0.0, 0.0]]]))[0, 0].tolist() == [255, 0, 0]


def test_flo_header_whose_pixel_count_is_too_large_is_refused_before_allocating(tmp_path):
    """Each side within bounds, their product not: a sparse file of the right size must not be read."""
    path = tmp_path / "sparse.flo"
    width = height = flo_module.MAX_FLO_SIDE
    with open(path, "wb") as fh:
        fh.write(struct.pack("<fii", flo_module.FLO_MAGIC, width, height))
        fh.truncate(12 + 8 * width * height)  # sparse: no blocks on disk
    with pytest.raises(UserError, match="pixels, more than") as info:
        read_flo(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_flo_with_nan_or_inf_is_refused(tmp_path, bad):
    path = tmp_path / "bad.flo"
    flow = np.zeros((2, 3, 2), np.float32)
    flow[1, 2, 0] = bad
    write_flo(path, flow)
    with pytest.raises(UserError, match="1 NaN or infinite"):
        read_flo(path)


def test_flo_named_pipe_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.flo"
    os.mkfifo(path)
    with pytest.raises(UserError, match="named pipe"):
        read_flo(path)
