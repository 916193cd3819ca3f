"""The HTTP server: the page, its JSON API and the result files (standard library only, no network calls).

Routes (``session`` is the page's random id, sent with every call):

* ``GET /`` the page; ``GET /api/config`` styles, stability choices and limits; ``GET /api/thumb/STYLE``;
* ``POST /api/upload?session=&name=&kind=media|checkpoint`` the file as the request body, checked at once
  (size, duration, the CLI's input and checkpoint checks); answers ``{"upload": id}`` or ``{"error": line}``;
* ``POST /api/jobs`` ``{"session", "input": upload id or "demo", "style" or "checkpoint": upload id,
  "stability"}`` queues a job; ``GET /api/jobs/ID?session=`` its status; ``POST /api/jobs/ID/cancel``;
* ``GET /api/jobs/ID/FILE?session=[&download=1]`` a result file (with ranges, for the video player);
* ``POST /api/sessions/ID/alive`` and ``.../close`` (the page's heartbeat and its ``pagehide`` beacon).

Every error is a JSON ``{"error": "one line"}``; a bug is logged with its traceback and never shown.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from ..errors import UserError
from .handlers import Api, ApiError

log = logging.getLogger(__name__)
PAGE = Path(__file__).with_name("page.html")
_CHUNK = 1 << 20


class Handler(BaseHTTPRequestHandler):
    """Routes requests to :class:`~.handlers.Api`; set ``api`` on a subclass."""

    api: Api
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        try:
            self._route(method, parts, query)
        except (UserError, ApiError) as exc:
            status = exc.status if isinstance(exc, ApiError) else HTTPStatus.BAD_REQUEST
            self._json({"error": str(exc)}, status)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the visitor went away
        except Exception:
            log.exception("request %s %s failed", method, url.path)
            self._json({"error": "the server failed on this request (a bug; its log has the details)"},
                       HTTPStatus.INTERNAL_SERVER_ERROR)

    def _route(self, method: str, parts: list[str], query: dict) -> None:
        api = self.api
        if method == "GET" and not parts:
            return self._bytes(PAGE.read_bytes(), "text/html; charset=utf-8")
        if parts[:1] != ["api"]:
            raise ApiError("not found", HTTPStatus.NOT_FOUND)
        route = (method, *parts[1:2], len(parts))
        if route == ("GET", "config", 2):
            return self._json(api.config())
        if route == ("GET", "thumb", 3):
            return self._bytes(api.thumbnail(parts[2]), "image/jpeg")
        if route == ("POST", "upload", 2):
            return self._json(api.upload(query, self._body_to))
        if route == ("POST", "jobs", 2):
            return self._json(api.submit(self._json_body()))
        if route == ("GET", "jobs", 3):
            return self._json(api.status(parts[2], query.get("session", "")))
        if route == ("POST", "jobs", 4) and parts[3] == "cancel":
            return self._json(api.cancel(parts[2], query.get("session", "")))
        if route == ("GET", "jobs", 4):
            return self._file(api.result_file(parts[2], query.get("session", ""), parts[3]), query)
        if route == ("POST", "sessions", 4) and parts[3] in ("alive", "close"):
            self._drain()
            return self._json(api.session(parts[2], parts[3]))
        raise ApiError("not found", HTTPStatus.NOT_FOUND)

    # -- request bodies ----------------------------------------------------------------------
    def _length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value and value.isdigit() else None

    def _drain(self) -> None:
        if self._length():
            self.rfile.read(self._length())

    def _json_body(self) -> dict:
        length = self._length()
        if not length or length > _CHUNK:
            raise ApiError("expected a small JSON body", HTTPStatus.BAD_REQUEST)
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            raise ApiError("the request is not JSON", HTTPStatus.BAD_REQUEST) from None
        if not isinstance(body, dict):
            raise ApiError("the request is not a JSON object", HTTPStatus.BAD_REQUEST)
        return body

    def _body_to(self, path: Path, check_length) -> None:
        """Stream the request body into ``path`` after ``check_length(length)`` accepted its size."""
        length = self._length()
        try:
            check_length(length)
        except UserError:
            self.close_connection = True  # the unread body must not be taken for the next request
            raise
        remaining = length
        with open(path, "wb") as out:
            while remaining:
                chunk = self.rfile.read(min(_CHUNK, remaining))
                if not chunk:
                    raise ApiError("the upload stopped before its end; send it again", HTTPStatus.BAD_REQUEST)
                out.write(chunk)
                remaining -= len(chunk)

    # -- responses ---------------------------------------------------------------------------
    def _json(self, payload: dict, status: int = HTTPStatus.OK) -> None:
        self._bytes(json.dumps(payload).encode(), "application/json", status)

    def _bytes(self, data: bytes, ctype: str, status: int = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _file(self, path: Path, query: dict) -> None:
        size = path.stat().st_size
        start, end = _byte_range(self.headers.get("Range"), size)
        partial = (start, end) != (0, size - 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT if partial else HTTPStatus.OK)
        self.send_header("Content-Type", mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        if query.get("download"):
            self.send_header("Content-Disposition", f'attachment; filename="{path.name}"')
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = f.read(min(_CHUNK, remaining))
                self.wfile.write(chunk)
                remaining -= len(chunk)


def _byte_range(header: str | None, size: int) -> tuple[int, int]:
    """``(first, last)`` byte of a ``Range: bytes=a-b`` header (the whole file when absent or not understood)."""
    whole = (0, max(0, size - 1))
    if not header or not header.startswith("bytes=") or "," in header:
        return whole
    first, _, last = header[6:].partition("-")
    try:
        if not first:
            return max(0, size - int(last)), size - 1
        return int(first), min(int(last) if last else size - 1, size - 1)
    except ValueError:
        return whole


def make_server(api: Api, host: str = "127.0.0.1", port: int = 7860) -> ThreadingHTTPServer:
    """A server for ``api`` bound to ``host:port`` (port 0: any free one); run it with ``serve_forever``."""
    handler = type("BoundHandler", (Handler,), {"api": api})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def start_sweeper(api: Api, every: float = 60.0) -> threading.Event:
    """A daemon thread that closes abandoned sessions every ``every`` seconds; set the event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            api.sessions.sweep()

    threading.Thread(target=loop, name="stablestyle-sweeper", daemon=True).start()
    return stop

