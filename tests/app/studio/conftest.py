"""The studio's fixtures: real gRPC services in this process (the session's tiny pipelines, or the
``mini`` profile with GENSC_STUDIO_TEST_PROFILE=mini, which the docs' screenshots use), and the
studio's HTTP server on 127.0.0.1, port 0, with a small client for its API."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

PROFILE = os.environ.get("GENSC_STUDIO_TEST_PROFILE", "tiny")


@pytest.fixture(scope="module")
def studio_pipelines(request, tiny_cache):
    """(sender, receiver) pipelines of PROFILE: the session's tiny ones (64 px) unless asked for mini."""
    if PROFILE == "tiny":
        return request.getfixturevalue("sender"), request.getfixturevalue("receiver")
    from gensc.models.loading import resolve_profile
    from gensc.receiver.pipeline import ReceiverPipeline
    from gensc.sender.pipeline import SenderPipeline

    profile = resolve_profile(PROFILE)
    return SenderPipeline(profile, device="cpu"), ReceiverPipeline(profile, device="cpu")


@pytest.fixture(scope="module")
def services(studio_pipelines):
    """The three services as real gRPC servers in this process (helpers.InProcessStack)."""
    from helpers import InProcessStack

    from gensc.common.net.rpc_config import RpcConfig

    stack = InProcessStack(*studio_pipelines, RpcConfig())
    yield stack
    stack.stop()


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict

    def json(self):
        return json.loads(self.body)


class StudioClient:
    """A tab's calls to the studio's HTTP API (urllib; ``session`` after ``open_tab``)."""

    def __init__(self, base: str) -> None:
        self.base, self.session = base, None

    def call(self, method: str, path: str, *, json_body=None, data=None, headers=None) -> Reply:
        h = dict(headers or {})
        if self.session and "X-Studio-Session" not in h:
            h["X-Studio-Session"] = self.session
        if json_body is not None:
            data, h["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return Reply(r.status, r.read(), dict(r.headers))
        except urllib.error.HTTPError as e:
            return Reply(e.code, e.read(), dict(e.headers))

    def open_tab(self) -> StudioClient:
        self.session = self.call("POST", "/api/session", data=b"").json()["session"]
        return self

    def submit(self, **request) -> dict:
        r = self.call("POST", "/api/jobs", json_body=request)
        assert r.status == 200, r.body
        return r.json()

    def wait(self, job: dict, timeout_s: float = 120.0) -> dict:
        import time

        deadline = time.monotonic() + timeout_s
        while job["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, f"job still {job['state']} after {timeout_s} s"
            time.sleep(0.1)
            job = self.call("GET", f"/api/jobs/{job['job_id']}").json()
        return job

    def send(self, source: dict, link: dict, mode: str | None = None) -> dict:
        """Send one image and return the item's view (asserting the job finished)."""
        body = {"mode": mode, "link": link}
        job = self.wait(self.submit(kind="send", source=source, settings=body))
        assert job["state"] == "done", job
        return self.call("GET", f"/api/items/{job['items'][0]}").json()


@pytest.fixture()
def studio_server(tmp_path):
    """``studio_server(sender=ADDRESS, **StudioConfig fields) -> (server, base URL)``; stopped after."""
    from gensc.app.studio.jobs import Studio
    from gensc.app.studio.server import make_server, serve_in_thread
    from gensc.app.studio.settings import StudioConfig

    made = []

    def make(sender: str | None, rpc=None, **config):
        from gensc.common.net.rpc_config import RpcConfig

        studio = Studio(
            StudioConfig(rpc=rpc or RpcConfig(), **config), tmp_path / f"studio{len(made)}", sender
        )
        server = make_server(studio, "127.0.0.1", 0)
        serve_in_thread(server)
        made.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}"

    yield make
    for server in made:
        server.shutdown()
        server.server_close()
        server.studio.close()


@pytest.fixture()
def client():
    return StudioClient
