"""``stablestyle app``: the local web page — upload a clip or an image, pick a style, compare stable vs per-frame.

The page uploads a video or an image (or takes the demo clip, or records from the browser's webcam), runs
the chosen style's stable model and its per-frame twin the way ``stablestyle demo`` does, shows both side by
side with their measured instability (numbers and a per-frame plot) and offers the video and the report for
download.  The server is Python's own (:mod:`stablestyle.app.server`): no extra packages, no analytics, no
network calls.  It listens on the loopback address only unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse

HELP = "serve a local web page that stylizes uploaded clips and images and compares stable vs per-frame"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..app.limits import Limits

    d = Limits()
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 shares it on "
                        "your network)")
    p.add_argument("--port", type=int, default=7860, help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb,
                   help="largest upload in MB (default: %(default)s)")
    p.add_argument("--max-seconds", type=float, default=d.max_seconds,
                   help="longest clip in seconds (default: %(default)s)")
    p.add_argument("--max-size", type=int, default=d.max_size,
                   help="long side of the frames in pixels (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="jobs at a time, the rest queue (default: one per CPU)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")


def run(args: argparse.Namespace) -> int:
    import logging
    import signal

    from ..app.handlers import Api
    from ..app.limits import Limits
    from ..app.server import make_server, start_sweeper
    from ..errors import UserError
    from ..runtime import resolve_device

    # the banner's "Ctrl-C stops it" holds however the app was started: a shell ignores SIGINT in what it puts
    # in the background (`stablestyle app &`, nohup), and Python then never turns Ctrl-C into KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    limits = Limits(max_upload_mb=args.max_upload_mb, max_seconds=args.max_seconds, max_size=args.max_size,
                    **({} if args.workers is None else {"workers": args.workers}))
    api = Api(limits, device=resolve_device(args.device))
    try:
        server = make_server(api, args.host, args.port)
    except OSError as exc:
        api.shutdown()
        raise UserError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
                        "choose another --port") from None
    host, port = server.server_address[:2]
    print(f"stablestyle app: http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/  (Ctrl-C stops it)")
    if host in ("127.0.0.1", "::1", "localhost"):
        print("only this machine can open it; to share it on your network: stablestyle app --host 0.0.0.0")
    print(limits.describe(), flush=True)
    logging.getLogger("stablestyle").setLevel(logging.WARNING)  # job logs would drown the one-line banner
    stop = start_sweeper(api)
    try:
        server.serve_forever()
    finally:
        stop.set()
        server.server_close()
        api.shutdown()
    return 0
