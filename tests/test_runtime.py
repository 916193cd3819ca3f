"""Edge helpers: durations, device names and positive-integer checks."""

from __future__ import annotations

import pytest
import torch

from stablestyle.errors import UserError
from stablestyle.runtime import check_at_least, parse_duration, resolve_device


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90.0), ("20m", 1200.0), ("1.5h", 5400.0), ("8", 480.0), ("0.5", 30.0), (" 2H ", 7200.0), ("7.5M", 450.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "soon", "0", "-5m", "0s", "nan", "infh", "1d", "5 min", "1e400"])
def test_parse_duration_rejects_nonsense(text):
    with pytest.raises(UserError, match="--time-limit must be a positive duration"):
        parse_duration(text)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.parametrize("value, ok", [(None, True), (1, True), (5, True), (0, False), (-1, False), (True, False),
                                       (2.0, False)])
def test_check_at_least(value, ok):
    if ok:
        check_at_least("--frames", value)
    else:
        with pytest.raises(UserError, match="--frames must be a positive integer"):
            check_at_least("--frames", value)


@pytest.mark.parametrize("argv, verbose", [
    (["models"], False), (["-v", "models"], True), (["models", "-v"], True), (["models", "--verbose"], True),
])
def test_verbose_before_or_after_the_command(argv, verbose):
    from stablestyle.cli import build_parser

    args = build_parser().parse_args(argv)
    assert args.verbose is verbose and args.command == "models"


@pytest.mark.parametrize("tty, interval", [(False, 30.0), (True, None)])
def test_progress_redraws_rarely_into_a_log(monkeypatch, tty, interval):
    """Into a file or pipe the bar is redrawn every 30 s at most and transient bars are left out; a terminal keeps
    tqdm's defaults."""
    import io
    import sys

    import tqdm

    from stablestyle.runtime import progress

    seen = {}

    class Spy(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            seen.update(kwargs)
            super().__init__(*args, **{**kwargs, "disable": True})

    stream = io.StringIO()
    stream.isatty = lambda: tty
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(tqdm, "tqdm", Spy)
    assert list(progress(range(3), total=3)) == [0, 1, 2]
    assert seen.get("mininterval") == interval and seen.get("miniters") == (None if tty else 1)
    seen.clear()  # a transient bar (leave=False) only where it can be erased: a terminal
    assert list(progress(range(3), total=3, leave=False)) == [0, 1, 2]
    assert bool(seen) is tty


@pytest.mark.parametrize("tty", [False, True])
def test_training_bar_follows_the_log_settings(monkeypatch, tty):
    import io
    import sys

    from stablestyle.training.loop import _progress_bar

    stream = io.StringIO()
    stream.isatty = lambda: tty
    monkeypatch.setattr(sys, "stderr", stream)
    bar = _progress_bar(total=5, initial=0, quiet=False)
    try:
        assert (bar.mininterval == 30.0 and bar.miniters == 1) is not tty
    finally:
        bar.close()
