"""`stablestyle app` through its HTTP API: jobs end to end, every bad upload's message, cancel and clean-up."""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.request

import av
import pytest
import torch
from PIL import Image

from stablestyle.app.client import AppError, Client
from stablestyle.app.handlers import Api
from stablestyle.app.limits import Limits, check_input
from stablestyle.app.server import make_server
from stablestyle.checkpoint import save_checkpoint
from stablestyle.cli import main
from stablestyle.errors import UserError
from stablestyle.models import TransformerNet
from test_bad_inputs import MARKER, evil_checkpoint, ztxt_bomb

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def app():
    """A server on a free loopback port: tiny frames, one worker, uploads up to 1 MB."""
    api = Api(Limits(max_upload_mb=1, max_seconds=20, max_size=64, workers=1), ttl=3600)
    server = make_server(api, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    api.shutdown()
    assert not api.sessions.root.exists()  # the temporary root goes with the server


@pytest.fixture
def client(app):
    c = Client(app[1], timeout=300)
    yield c
    c.close()


def test_config_offers_the_bundled_styles_and_states_the_limits(client):
    config = client.config()
    assert {"scream", "udnie"} <= set(config["styles"])
    assert config["stabilities"] == ["stable", "per-frame"] and config["dial"] == [0.0, 1.0, 0.25]
    assert "up to 1 MB" in config["limits_text"] and "up to 20 s" in config["limits_text"]


def test_the_page_fetches_nothing_from_elsewhere(app):
    page = urllib.request.urlopen(app[1] + "/", timeout=60).read().decode()
    assert "<title>stablestyle</title>" in page
    outside = re.findall(r"(?:https?:)?//[\w.-]+", page)
    assert set(outside) <= {"http://www.w3.org"}, outside  # the SVG namespace is a name, not a fetch


def test_video_job_gives_the_demo_videos_report_and_cleans_up(app, client, bbb_clip, tmp_path):
    api, _ = app
    status = client.stylize(bbb_clip, style="scream")
    assert status["models"] == {"per-frame": "scream-perframe", "stable": "scream"}
    assert set(status["instability"]) == {"input", "per-frame", "stable"}
    assert {k: len(v) for k, v in status["per_frame"].items()} == {"per-frame": 7, "stable": 7}
    assert status["ratio"] == pytest.approx(status["instability"]["stable"] / status["instability"]["per-frame"])
    video = client.download(status, "stylized", tmp_path / "out.mp4")
    with av.open(str(video)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert len(c.streams.audio) == 1
        assert sum(1 for _ in c.decode(video=0)) == 8
    report = json.loads(client.download(status, "report", tmp_path / "r.json").read_text())
    assert report["instability"] == status["instability"] and report["primary"] == "stable"
    job = api.sessions.jobs.get(status["id"], client.session)
    assert not job.source.exists()  # the upload went when the job ended
    assert sorted(p.name for p in job.result.iterdir()) == ["report.json", "report.md", "side_by_side.mp4",
                                                           "stylized.mp4"]
    client.close()  # the page closed: the results go too
    assert not (api.sessions.root / client.session).exists()
    with pytest.raises(AppError, match="no such job"):
        client.status(status["id"])


def test_per_frame_choice_runs_the_per_frame_model_alone(client, bbb_clip):
    status = client.stylize(bbb_clip, style="udnie", stability="per-frame")
    assert status["models"] == {"per-frame": "udnie-perframe"} and status["primary"] == "per-frame"


def test_a_dial_position_between_runs_the_mix_beside_the_per_frame_model(client, bbb_clip):
    status = client.stylize(bbb_clip, style="scream", stability="0.5")
    assert status["models"] == {"per-frame": "scream-perframe", "stable": "scream@0.5"}
    assert status["instability"]["stable"] < status["instability"]["per-frame"]


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "calm"])
def test_a_dial_position_off_the_scale_is_refused(client, value):
    with pytest.raises(AppError, match="from 0 .per-frame. to 1 .stable."):
        client.submit(None, style="scream", stability=value)


def test_image_and_own_checkpoint(client, tmp_path):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "mine.pt", TransformerNet(width=0.25, recurrent=True), config={"mode": "stable"})
    Image.new("RGB", (80, 60), (200, 120, 40)).save(tmp_path / "photo.png")
    status = client.stylize(tmp_path / "photo.png", checkpoint=tmp_path / "mine.pt")
    assert status["models"] == {"stable": "mine"} and status["instability"] is None
    image = client.download(status, "side_by_side", tmp_path / "sbs.png")
    with Image.open(image) as picture:
        assert picture.size == (128, 48)  # input | mine at 64 px


def _text_as_mp4(d):
    (d / "notes.mp4").write_text("not a video\n")
    return {"source": d / "notes.mp4"}


def _empty(d):
    (d / "empty.mp4").write_bytes(b"")
    return {"source": d / "empty.mp4"}


def _too_big(d):
    (d / "big.mp4").write_bytes(b"\0" * (2 << 20))
    return {"source": d / "big.mp4"}


def _evil(d):
    return {"source": None, "checkpoint": evil_checkpoint(d / "evil.pt", d / MARKER)}


def _ztxt(d):
    return {"source": ztxt_bomb(d / "in.png")}


@pytest.mark.parametrize("make, says", [
    (_text_as_mp4, "notes.mp4: cannot be read as a video"),
    (_empty, "the file is empty"),
    (_too_big, "this server takes uploads up to 1 MB"),
    (_evil, "evil.pt is not a stablestyle checkpoint (refused unrun: it names io.open"),
    (_ztxt, "in.png: not an image Pillow can read"),
], ids=["text-as-mp4", "empty", "too-big", "evil-checkpoint", "ztxt-png"])
def test_bad_uploads_get_one_line_and_leave_nothing(app, client, tmp_path, make, says):
    inputs = make(tmp_path)
    with pytest.raises(AppError) as caught:
        client.submit(inputs.pop("source"), **inputs)
    message = str(caught.value)
    assert says in message and "\n" not in message and "Traceback" not in message
    assert "stablestyle-app-" not in message  # never the server's temporary path
    assert not (tmp_path / MARKER).exists()
    assert list((app[0].sessions.root / client.session).iterdir()) == []


def test_unknown_style_lists_the_valid_ones(client):
    with pytest.raises(AppError, match="unknown style 'nope'; valid: .*scream"):
        client.submit(None, style="nope")


def test_duration_limit_names_the_flag(bbb_clip):
    with pytest.raises(UserError, match=r"bbb.mp4 is 0.3 s long; this server takes clips up to 0.1 s .*--max-seconds"):
        check_input(bbb_clip, Limits(max_seconds=0.1), "bbb.mp4")


def test_cancel_stops_the_job_and_keeps_no_result(app, client, bbb_clip):
    api, _ = app
    job_id = client.submit(bbb_clip)["id"]
    client.cancel(job_id)
    status = client.wait(job_id)
    assert status["state"] == "cancelled" and "files" not in status
    job = api.sessions.jobs.get(job_id, client.session)
    assert not job.source.exists() and not job.result.exists()


def test_abandoned_sessions_are_swept(app, bbb_clip):
    api, url = app
    visitor = Client(url)
    visitor.upload(bbb_clip)
    folder = api.sessions.root / visitor.session
    assert folder.exists()
    api.sessions.ttl, before = 0.0, api.sessions.ttl
    try:
        assert visitor.session in api.sessions.sweep()
    finally:
        api.sessions.ttl = before
    assert not folder.exists()


@pytest.mark.parametrize("argv, says", [
    (["--max-seconds", "0"], "--max-seconds must be positive"),
    (["--workers", "0"], "--workers must be positive"),
    (["--max-size", "100000"], "--max-size must be a whole number of pixels from 16 to 16384"),
    (["--port", "{busy}"], "cannot listen on 127.0.0.1:{busy}"),
])
def test_cli_refuses_bad_limits_and_a_busy_port_in_one_line(argv, says, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        assert main(["app", *(a.replace("{busy}", port) for a in argv)]) == 2
    says = says.replace("{busy}", port)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and "Traceback" not in err


def test_a_job_reports_progress_frame_by_frame_and_stops_when_told(bbb_clip, tmp_path):
    from stablestyle.app.pipeline import Cancelled, run_job

    seen = []
    run_job(bbb_clip, "bbb.mp4", "video", "scream", "stable", tmp_path / "done", limits=Limits(max_size=64),
            fps=25.0, on_progress=lambda *p: seen.append(p))
    for label in ("per-frame", "stable"):
        frames = [(done, total) for stage, done, total, fps in seen if stage == f"{label} model"]
        assert frames == [(i, 8) for i in range(1, 9)]
    assert all(fps > 0 for stage, _, _, fps in seen if stage.endswith("model"))

    def stop_at_third(stage, done, total, fps):
        if done == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        run_job(bbb_clip, "bbb.mp4", "video", "scream", "stable", tmp_path / "stopped", limits=Limits(max_size=64),
                fps=25.0, on_progress=stop_at_third)
    assert list(tmp_path.iterdir()) == [tmp_path / "done"]  # nothing of the stopped job, not even a temporary


def test_the_app_stops_on_ctrl_c_even_when_started_with_sigint_ignored():
    """A shell ignores SIGINT in background jobs and Python keeps that: the app restores Ctrl-C itself."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    # SIGINT is ignored by a small launcher that then execs the app (an ignored signal stays ignored across
    # exec); not preexec_fn, which runs Python in a forked copy of this threaded process and can deadlock there
    launcher = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                "os.execv(sys.executable, [sys.executable, '-m', 'stablestyle', 'app', '--port', '0', '--device', 'cpu'])")
    server = subprocess.Popen([sys.executable, "-c", launcher], cwd=Path(__file__).parents[1],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().startswith("stablestyle app: http://")
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=120) == 130  # the CLI's "interrupted"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
