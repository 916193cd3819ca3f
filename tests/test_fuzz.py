"""Hypothesis fuzzing of the two parsers that read files from strangers: ``.flo`` flow and YAML configs.

Whatever the bytes, the readers either return valid data or raise the project's
:class:`~stablestyle.errors.UserError` naming the file; any other exception is a bug.  Examples are
derandomised and bounded, so CI runs the same cases every time in a few seconds.
"""

from __future__ import annotations

import contextlib
import math
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from stablestyle.errors import UserError  # noqa: E402
from stablestyle.flow.flo import FLO_MAGIC, MAX_FLO_PIXELS, MAX_FLO_SIDE, read_flo  # noqa: E402
from stablestyle.training import TrainConfig, load_config  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def _written(data: bytes, suffix: str) -> Iterator[Path]:
    """``data`` in a fresh temporary file (removed afterwards; hypothesis reruns a test in one tmp_path)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        path = Path(folder) / f"x{suffix}"
        path.write_bytes(data)
        yield path


def _flo_bytes(width: int, height: int, values: list[float], extra: bytes) -> bytes:
    header = struct.pack("<fii", FLO_MAGIC, width, height)
    return header + struct.pack(f"<{len(values)}f", *values) + extra


_floats = st.floats(width=32, allow_nan=True, allow_infinity=True)


@FUZZ
@given(st.one_of(
    st.binary(max_size=64),
    st.builds(_flo_bytes, st.integers(-3, 5), st.integers(-3, 5), st.lists(_floats, max_size=60),
              st.binary(max_size=3)),
    st.builds(_flo_bytes, st.integers(-2**31, 2**31 - 1), st.integers(-2**31, 2**31 - 1), st.just([]),
              st.just(b"")),
))
def test_read_flo_returns_finite_flow_or_a_user_error(data):
    with _written(data, ".flo") as path:
        try:
            flow = read_flo(path)
        except UserError as exc:
            assert str(path) in str(exc)
            return
    h, w, two = flow.shape
    assert two == 2 and 0 < w <= MAX_FLO_SIDE and 0 < h <= MAX_FLO_SIDE and w * h <= MAX_FLO_PIXELS
    assert flow.dtype == np.float32 and np.isfinite(flow).all()
    assert len(data) == 12 + 8 * w * h


_yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                          st.text(max_size=12))
_yaml_values = st.recursive(_yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=6)
_keys = st.one_of(st.sampled_from([f.name for f in TrainConfig.__dataclass_fields__.values()]), st.text(max_size=8))


def _check_config(data: bytes) -> None:
    with _written(data, ".yaml") as path:
        try:
            config = load_config(path)
        except UserError as exc:
            assert str(path) in str(exc), str(exc)
            return
    try:
        config.validate()
    except UserError:
        return
    assert isinstance(config, TrainConfig)
    assert config.steps >= 1 and config.batch >= 1 and math.isfinite(config.lr) and config.lr > 0


@FUZZ
@given(st.dictionaries(_keys, _yaml_values, max_size=4))
def test_load_config_mapping_gives_a_config_or_a_user_error(data):
    _check_config(yaml.safe_dump(data).encode())


@FUZZ
@given(st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode)))
def test_load_config_bytes_give_a_config_or_a_user_error(data):
    _check_config(data)
