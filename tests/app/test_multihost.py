"""The README's "two machines" recipe on separate hosts: each service in its own network namespace.

Client, sender, channel proxy and two receivers each get a network namespace with one veth link
to a bridge (in a sixth namespace), an address of their own on 10.77.0.0/24, and nothing else:
loopback stays down in every namespace, so no byte can ride on it. The proxy's receivers are a
pool (``ip:port,ip:port``). Images stream end to end with the tiny profile; report.json's per-hop
timings and the proxy's own count of what each receiver served are checked.

Needs root and ``ip`` (iproute2); skipped with the reason otherwise. Namespaces and links are
removed whatever happens (deleting a namespace deletes the veth ends inside it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gensc.benchmarks.scale import relay_summaries
from gensc.client.launch import Service, start_service

pytestmark = pytest.mark.slow
SUBNET = "10.77.0"
HOSTS = {"client": 1, "sender": 2, "channel": 3, "receiver-0": 4, "receiver-1": 5}
PORTS = {"sender": 50051, "channel": 50052, "receiver": 50053}
MODEL_ARGS = ["--profile", "tiny", "--image-size", "64", "--device", "cpu"]


def _ip(args: str) -> None:
    subprocess.run(["ip", *args.split()], check=True, capture_output=True, text=True, timeout=30)


class Network:
    """One namespace per host plus a bridge namespace; ``netns(host)`` prefixes a command."""

    def __init__(self) -> None:
        tag = f"g{os.getpid() % 100000}"
        self.bridge = f"{tag}br"
        self.names = {host: f"{tag}{host[0]}{host[-1]}" for host in HOSTS}
        self.made: list[str] = []

    def netns(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.names[host]]

    def address(self, host: str) -> str:
        return f"{SUBNET}.{HOSTS[host]}"

    def up(self) -> None:
        br = self.bridge
        _ip(f"netns add {br}")
        self.made.append(br)
        _ip(f"-n {br} link add br0 type bridge")
        _ip(f"-n {br} link set br0 up")
        for k, (host, ns) in enumerate(self.names.items()):
            _ip(f"netns add {ns}")
            self.made.append(ns)
            _ip(f"link add eth0 netns {ns} type veth peer name port{k} netns {br}")
            _ip(f"-n {ns} addr add {self.address(host)}/24 dev eth0")
            _ip(f"-n {ns} link set eth0 up")  # and lo stays down
            _ip(f"-n {br} link set port{k} master br0")
            _ip(f"-n {br} link set port{k} up")

    def down(self) -> None:
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.made.clear()


@pytest.fixture()
def network():
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("needs root on Linux to create network namespaces and veth links")
    if shutil.which("ip") is None:
        pytest.skip("needs the ip command (iproute2)")
    net = Network()
    try:
        net.up()
    except subprocess.CalledProcessError as e:
        net.down()
        pytest.skip(f"cannot create network namespaces here: {e.stderr.strip()}")
    try:
        for ns in net.names.values():  # no service can reach another over loopback
            lo = subprocess.run(["ip", "-n", ns, "-o", "link", "show", "lo"], capture_output=True, text=True)
            assert "state DOWN" in lo.stdout, lo.stdout
        yield net
    finally:
        net.down()
        assert not set(net.names.values()) & set(
            subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        )


def _wait_ready(net: Network, services: list[Service], timeout_s: float) -> None:
    """Wait for SERVING, asked from the client's namespace (this process cannot reach the hosts)."""
    script = (
        "import sys; from gensc.common.net.rpc import wait_healthy\n"
        "for address in sys.argv[2:]: wait_healthy(address, float(sys.argv[1]))"
    )
    cmd = [*net.netns("client"), sys.executable, "-c", script, str(timeout_s), *(s.address for s in services)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 60)
    if done.returncode != 0:
        tails = "\n".join(f"--- {s.name}\n{s.tail()}" for s in services)
        raise AssertionError(f"not ready: {done.stderr}\n{tails}")


def test_images_stream_across_separate_hosts_to_a_pool_of_two_receivers(
    network, tiny_cache, photos, tmp_path
):
    net, logs, started = network, tmp_path / "logs", []

    def start(role: str, host: str, args: list[str]) -> Service:
        service = start_service(
            role, args, logs, name=host, host=net.address(host), port=PORTS[role], prefix=net.netns(host)
        )
        started.append(service)
        return service

    try:
        pool = ",".join(f"{net.address(h)}:{PORTS['receiver']}" for h in ("receiver-0", "receiver-1"))
        receivers = [start("receiver", h, MODEL_ARGS) for h in ("receiver-0", "receiver-1")]
        channel = start("channel", "channel", ["--receiver", pool, "--no-realtime", "--snr-db", "30"])
        sender = start("sender", "sender", ["--channel", channel.address, *MODEL_ARGS])
        _wait_ready(net, [*receivers, channel, sender], timeout_s=600)

        images = []
        for k in range(8):
            name = ("astronaut", "coffee", "chelsea")[k % 3]
            images.append(tmp_path / f"{k}-{name}.png")
            images[-1].write_bytes(photos[name])
        out = tmp_path / "out"
        send = [*net.netns("client"), sys.executable, "-m", "gensc.app.cli", "send", *map(str, images)]
        send += ["--sender", sender.address, "--out", str(out), "--window", "6"]
        done = subprocess.run(send, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        summaries = relay_summaries(channel.log)
    finally:
        for service in started:
            service.stop()

    report = json.loads((out / "report.json").read_text())
    assert report["summary"] == {"images": 8, "ok": 8, "errors": 0}
    for rec in report["images"]:
        t = rec["timings_ms"]
        assert set(t["hops"]) == {"client-sender", "sender-channel", "channel-receiver"}
        assert all(v > 0 for v in t["hops"].values()), t["hops"]
        assert sum(t["hops"].values()) == pytest.approx(t["transport"], abs=1e-6)
        assert all(t[k] > 0 for k in ("encode", "channel", "reconstruct"))
    # the proxy spread the one client stream over both receivers, each on its own host
    (summary,) = summaries
    served = summary["receiver"]
    assert set(served) == {f"{net.address(h)}:{PORTS['receiver']}" for h in ("receiver-0", "receiver-1")}
    assert sum(served.values()) == 8 and min(served.values()) >= 2, served
    assert Path(sender.log).read_text().count("relay stream done") == 1
