"""The README's Python examples run as written (on an 8-frame clip standing in for ``input.mp4``)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import av

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of the README section whose heading is ``section``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end != -1 else None], flags=re.S)


def test_from_python_examples_run(tmp_path, bbb_clip, monkeypatch, capsys, one_thread):
    blocks = python_blocks("From Python")
    assert len(blocks) == 2
    shutil.copy(bbb_clip, tmp_path / "input.mp4")
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md (From Python, block 1)", "exec"), {})
    with av.open("out.mp4") as container:
        assert container.streams.audio, "the audio was not copied"
        assert len(list(container.decode(video=0))) == 8
    capsys.readouterr()
    exec(compile(blocks[1], "README.md (From Python, block 2)", "exec"), {})
    printed = capsys.readouterr().out.strip()
    value = float(re.fullmatch(r"instability (\S+)", printed).group(1))
    assert 0 < value < 0.1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.mp4", "out.mp4"]  # no temporary left behind

