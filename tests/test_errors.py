"""``first_line``: how a library's error is quoted inside a one-line ``UserError``."""

from __future__ import annotations

import pytest

from stablestyle.errors import first_line


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
