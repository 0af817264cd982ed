"""``gensc studio``: serve the studio page on 127.0.0.1 (``--host`` to share it) and route its
calls to :class:`gensc.app.studio.jobs.Studio`.

The web stack is the standard library's ``http.server`` (a ``ThreadingHTTPServer``: one thread
per request) serving a plain HTML page, its CSS and JavaScript from this package, and a small
JSON API. Nothing is fetched from elsewhere: the page's Content-Security-Policy allows only this
server. Why not Gradio or Starlette: docs/studio.md.

Routes (``S`` = the tab's session token, sent as the ``X-Studio-Session`` header, or as
``?session=`` on downloads, which a link cannot give a header):

    GET  /  /static/studio.js  /static/studio.css      the page (a fixed table of files)
    GET  /api/options                                  choices, limits, the services' state
    POST /api/session                                  a new tab: {"session": S}
    GET  /api/samples/NAME.png[?thumb=1]               a sample photo (NAME from a fixed list)
    POST /api/upload       S, body = the image file    {"upload_id", "width", "height", ...}
    POST /api/jobs         S, JSON job request          the job (gensc.app.studio.jobs.Studio.submit)
    GET  /api/jobs/ID      S                            the job's state, progress, items, sweep points
    POST /api/jobs/ID/cancel  S
    GET  /api/jobs/ID/files/sweep.json   ?session=S
    GET  /api/items/ID     S                            what the page shows of one sent image
    GET  /api/items/ID/files/KEY         ?session=S     report.json, original.png,
                                                        reconstruction.png, compare.png, item.zip

Requests are bounded: JSON bodies 64 KiB, uploads ``--max-upload-mb`` (the message names the
limit), socket reads 30 s. Bound to a loopback address, the server answers only requests whose
Host header names that address (or localhost), so a web page elsewhere cannot reach it through
DNS rebinding; API calls that change anything need a JSON body or the session header, which a
cross-site form cannot send.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import signal
import sys
import tempfile
import threading
import time
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gensc.app.studio import api
from gensc.app.studio.jobs import Studio
from gensc.app.studio.settings import StudioConfig, StudioError, TooLarge, too_large

log = logging.getLogger("gensc.studio")

DEFAULT_PORT = 8765
MAX_JSON_BYTES = 64 * 1024
DRAIN_LIMIT_BYTES = 256 * 2**20  # an over-size upload is read and dropped up to this, then cut
READ_TIMEOUT_S = 30.0
STATIC = {  # URL path -> (file in static/, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/studio.js": ("studio.js", "text/javascript; charset=utf-8"),
    "/static/studio.css": ("studio.css", "text/css; charset=utf-8"),
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once from the package (``static/``)."""
    folder = resources.files("gensc.app.studio") / "static"
    return {path: ((folder / name).read_bytes(), ctype) for path, (name, ctype) in STATIC.items()}


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """Host headers a server bound to ``host``:``port`` answers; None (any) unless loopback."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        return None
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"{host}:{port}"})


class StudioServer(ThreadingHTTPServer):
    """The HTTP server: ``studio`` does the work, ``hosts`` are the Host headers it answers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], studio: Studio) -> None:
        super().__init__(address, Handler)
        self.studio = studio
        self.files = static_files()
        self.hosts = allowed_hosts(address[0], self.server_address[1])

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"


class Handler(BaseHTTPRequestHandler):
    server: StudioServer
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_S
    server_version = "gensc-studio"
    sys_version = ""

    # ------------------------------------------------------------------ plumbing

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", CSP)
        if self.close_connection:
            self.send_header("Connection", "close")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, (api.json_text(obj, indent=None) + "\n").encode(), "application/json")

    def _error(self, status: int, code: str, message: str) -> None:
        self._json({"error": {"code": code, "message": message}}, status)

    def _token(self, query: dict[str, list[str]]) -> str | None:
        return self.headers.get("X-Studio-Session") or (query.get("session") or [None])[0]

    def _length(self) -> int:
        text = self.headers.get("Content-Length")
        if text is None or not text.isdigit():
            raise StudioError("the request needs a Content-Length")
        return int(text)

    def _body(self, limit: int, what: str) -> bytes:
        """The request body, at most ``limit`` bytes; TooLarge (after draining what it may) otherwise."""
        n = self._length()
        if n > limit:
            self._drain(n)
            raise TooLarge(too_large(n, limit) if what == "upload" else f"{what} over {limit} bytes")
        return self.rfile.read(n)

    def _drain(self, n: int) -> None:
        """Read and drop an unwanted body so the browser sees the answer; cut very large ones."""
        if n > DRAIN_LIMIT_BYTES:
            self.close_connection = True
            return
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 20))
            if not chunk:
                break
            n -= len(chunk)

    def _json_body(self) -> Any:
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self._drain(self._length())
            raise StudioError("send the request as application/json")
        try:
            return json.loads(self._body(MAX_JSON_BYTES, "a JSON request") or b"null")
        except (ValueError, UnicodeDecodeError):
            raise StudioError("the request body is not valid JSON") from None

    def _host_ok(self) -> bool:
        hosts = self.server.hosts
        return hosts is None or (self.headers.get("Host") or "") in hosts

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._route("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = [unquote(p) for p in url.path.split("/") if p]
        if not self._host_ok():
            self.close_connection = True
            self._error(421, "PERMISSION_DENIED", "this studio answers only at its own address")
            return
        try:
            if method == "GET" and url.path in self.server.files:
                body, ctype = self.server.files[url.path]
                self._send(200, body, ctype)
            elif parts[:1] == ["api"]:
                self._api(method, parts[1:], query)
            else:
                raise _NotFound(f"nothing at {url.path[:80]!r}")
        except StudioError as e:
            self._error(e.status, e.code, str(e))
        except api.InvalidInput as e:
            self._error(400, "INVALID_ARGUMENT", str(e))
        except Exception as e:  # noqa: BLE001 - the page gets a sentence, the log the trace
            log.exception("studio request %s %s failed", method, url.path)
            self._error(500, "INTERNAL", f"the studio failed: {type(e).__name__}")

    def _api(self, method: str, p: list[str], query: dict[str, list[str]]) -> None:
        studio, token = self.server.studio, self._token(query)
        route = (method, *p[:1], *(["ID"] if len(p) > 1 else []), *p[2:])
        if route == ("GET", "options"):
            self._json(studio.options())
        elif route == ("POST", "session"):
            self._drain(int(self.headers.get("Content-Length") or 0))
            self._json({"session": studio.new_session()})
        elif route == ("GET", "samples", "ID") and p[1].endswith(".png"):
            thumb = (query.get("thumb") or ["0"])[0] == "1"
            self._send(200, studio.sample_png(p[1][: -len(".png")], thumb), "image/png")
        elif route == ("POST", "upload"):
            if not self.headers.get("X-Studio-Session"):
                self._drain(self._length())
                raise StudioError("an upload needs the tab's X-Studio-Session header")
            data = self._body(studio.config.max_upload_bytes, "upload")
            name = unquote(self.headers.get("X-File-Name") or "upload")
            self._json(studio.upload(token, name, data))
        elif route == ("POST", "jobs"):
            self._json(studio.submit(token, self._json_body()))
        elif route == ("GET", "jobs", "ID"):
            self._json(studio.job(token, p[1]))
        elif route == ("POST", "jobs", "ID", "cancel"):
            self._drain(int(self.headers.get("Content-Length") or 0))
            self._json(studio.cancel(token, p[1]))
        elif route == ("GET", "jobs", "ID", "files", "sweep.json"):
            self._download(*studio.sweep_file(token, p[1]))
        elif route == ("GET", "items", "ID"):
            self._json(studio.item(token, p[1]))
        elif len(p) == 4 and route[:4] == ("GET", "items", "ID", "files"):
            self._download(*studio.item_file(token, p[1], p[3]))
        else:
            raise _NotFound(f"no API route {method} /api/{'/'.join(p)[:80]}")

    def _download(self, body: bytes, ctype: str, name: str) -> None:
        self._send(200, body, ctype, {"Content-Disposition": f'attachment; filename="{name}"'})


class _NotFound(StudioError):
    status, code = 404, "NOT_FOUND"


def make_server(studio: Studio, host: str = "127.0.0.1", port: int = 0) -> StudioServer:
    """The studio's HTTP server bound to ``host``:``port`` (0: a free port); not yet serving."""
    return StudioServer((host, port), studio)


def serve_in_thread(server: StudioServer) -> threading.Thread:
    """Serve on a daemon thread (tests, and the command while local services start)."""
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------------- the command


def _local_services(
    args: argparse.Namespace, studio: Studio, rpc: api.RpcConfig, stop: threading.Event
) -> None:
    """Run receiver, channel and sender as ``gensc demo`` does until ``stop``; tell ``studio``."""
    try:
        profile = api.profile_from(args)
        model_args = ["--profile", profile.name, "--device", args.device, "--dtype", args.dtype]
        if profile.name != "tiny":
            model_args += ["--sd-model", profile.sd_model, "--caption-model", profile.captioner]
        if args.image_size:
            model_args += ["--image-size", str(args.image_size)]
        t0 = time.perf_counter()
        with api.local_stack(Path(args.logs), common=model_args, rpc=rpc) as addrs:
            statement = api.profile_statement(profile)
            studio.serving(addrs["sender"], statement)
            print(
                f"gensc studio: services ready in {time.perf_counter() - t0:.1f} s. {statement}", flush=True
            )
            stop.wait()
    except Exception as e:  # noqa: BLE001 - shown on the page and printed
        studio.failed(str(e).splitlines()[0] if str(e) else type(e).__name__)
        print(f"gensc studio: the local services did not start: {e}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    rpc = api.rpc_config(args)
    config = StudioConfig(
        rpc=rpc, max_upload_bytes=int(args.max_upload_mb * 2**20), symbol_sample=args.symbol_sample
    )
    with tempfile.TemporaryDirectory(prefix="gensc-studio-") as tmp:
        args.logs = args.logs or str(Path(tmp) / "logs")
        studio = Studio(config, Path(tmp) / "items", sender=args.sender)
        try:
            server = make_server(studio, args.host, args.port)
        except OSError as e:
            print(
                f"gensc studio: cannot listen on {args.host}:{args.port}: {e.strerror} (try --port 0)",
                file=sys.stderr,
            )
            return 2
        if server.hosts is None:
            print(
                f"gensc studio: listening on {args.host}: anyone who reaches this machine can use the page "
                "and send images through your services",
                file=sys.stderr,
            )
        stop = threading.Event()
        services = None
        if args.sender is None:
            services = threading.Thread(target=_local_services, args=(args, studio, rpc, stop), daemon=True)
            services.start()
        if args.port_file:
            Path(args.port_file).write_text(f"{server.server_address[1]}\n")
        print(f"gensc studio: {server.url}", flush=True)
        if args.open:
            webbrowser.open(server.url)
        signal.signal(
            signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start()
        )
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            stop.set()
            studio.close()
            if services is not None:
                services.join(timeout=60)
    return 0


def add_command(sub: Any) -> None:
    p = sub.add_parser("studio", help="a local web page: send an image, see every step of its way")
    p.add_argument(
        "--sender",
        default=api.env("GENSC_SENDER_ADDR"),
        help="a running sender's HOST:PORT (env GENSC_SENDER_ADDR); without it the studio starts "
        "the three services locally, as gensc demo does",
    )
    p.add_argument("--host", default="127.0.0.1", help="the page's bind address (0.0.0.0: share it)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="the page's port (0: a free one)")
    p.add_argument("--port-file", default=None, help="write the bound port here")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--max-upload-mb", type=_upload_mb, default=10.0, help="largest upload (default 10 MiB)")
    p.add_argument(
        "--symbol-sample",
        type=int,
        default=512,
        help="received symbols asked of the link per image, for the constellation "
        f"(0..{api.MAX_SYMBOL_SAMPLE}; 0: none)",
    )
    p.add_argument("--logs", default=None, help="local services' logs (default: a temporary folder)")
    api.add_model_args(p)
    api.add_rpc_args(p)
    p.set_defaults(func=run)


def _upload_mb(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0 < v <= 1024:
        raise argparse.ArgumentTypeError(f"must be a number of MiB in (0, 1024], got {text!r}")
    return v
