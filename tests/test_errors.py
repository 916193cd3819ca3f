"""``first_line``: how a library's error is quoted inside a one-line ``UserError``; ``run_script``: the exit status."""

from __future__ import annotations

import pytest

from stablestyle.errors import UserError, first_line


@pytest.mark.parametrize("text, limit, expected", [
    ("invalid load key, 'x'.", 120, "invalid load key, 'x'."),
    ("\n\n  first  \nsecond\n", 120, "first"),
    ("", 120, ""),
    (" \n \n", 120, ""),
    ("abcdefghij", 10, "abcdefghij"),
    ("abcdefghijk", 10, "abcdefg..."),
])
def test_first_line(text, limit, expected):
    assert first_line(text, limit) == expected
    assert len(first_line(text, limit)) <= limit


def test_run_script_exit_statuses(capsys):
    from stablestyle.errors import run_script

    def fails():
        raise UserError("no such clip: x.mp4")

    with pytest.raises(SystemExit) as exit_:
        run_script(fails)
    assert exit_.value.code == 2 and capsys.readouterr().err == "error: no such clip: x.mp4\n"
    with pytest.raises(SystemExit) as exit_:
        run_script(lambda: 0)
    assert exit_.value.code == 0 and capsys.readouterr().err == ""
    with pytest.raises(KeyError):  # a bug keeps its traceback
        run_script(lambda: {}["x"])
