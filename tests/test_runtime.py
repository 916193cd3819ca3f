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
