"""Fast versions of the load, faults, fuzz and bad-images suites (gensc bench load|faults|fuzz|bad-images).

The same code as the benchmarks, on the three services run in this process (``InProcessStack``:
a "crash" stops a server at once, cutting its calls, instead of SIGKILLing a process) and with
fewer images; the full runs and their figures are in benchmarks/results/.
"""

from __future__ import annotations

import pytest

from gensc.benchmarks import bad_images, faults, fuzz, load
from gensc.common.net.rpc_config import RpcConfig

pytestmark = pytest.mark.slow


@pytest.fixture()
def photo(photos):
    return ("astronaut.png", photos["astronaut"])


def test_load_concurrent_streams_without_errors(inproc_stack, photo):
    stack = inproc_stack()
    out = load.load_run(stack["sender"], [photo] * 4, streams=4, rpc=RpcConfig(), warmup=1)
    assert out["images"] == 16 and out["errors"] == 0, out["answers"]
    assert 0 < out["latency_ms"]["p50"] <= out["latency_ms"]["p95"]


@pytest.mark.parametrize("role", ["receiver", "channel"])
def test_a_hop_crashing_mid_stream_loses_no_image(inproc_stack, photo, role):
    """Without client retries every image gets exactly one answer, a result or an explicit error
    (the relay in front of the crashed hop re-sends what it had in flight, at most once); with
    retries on, every image gets a result (the client resends what failed, counted once)."""
    stack = inproc_stack()
    rpc = RpcConfig()
    bare = faults.crash_run(stack, [photo] * 10, role, retries=0, rpc=rpc)
    assert bare["answered_once"] and bare["explicit"], bare
    hit = bare["images"] - bare["ok"] + bare["resent_by_relay"]
    assert hit > 0, f"the crash touched no image: it did not happen mid-stream {bare}"
    assert set(bare["answers"]) <= {"OK", "UNAVAILABLE", "CANCELLED"}, bare["answers"]
    retried = faults.crash_run(stack, [photo] * 10, role, retries=6, rpc=rpc)
    assert retried["answered_once"] and retried["ok"] == retried["images"], retried
    assert max(int(k) for k in retried["attempts"]) > 1 or retried["resent_by_relay"] > 0, retried


def test_a_peer_that_accepts_and_never_answers_is_cut_by_the_deadline(inproc_stack, photo):
    rpc = RpcConfig(item_timeout_s=1.0)
    with faults.silent_peer() as peer:
        stack = inproc_stack(rpc=rpc, receiver_target=peer)
        out = faults.hang_run(stack["sender"], [photo] * 3, rpc, 1.0)
    assert out["cut_by_deadline"], out  # each after 1 s with the proxy, not the 3600 s call deadline
    assert out["seconds"] < 300, out


def test_fuzz_parse_no_crash_no_hang():
    out = fuzz.fuzz_parse(1500, seed=0)
    assert out["crashes"] == 0, out["first_crashes"]
    assert set(out["outcomes"]) == set(fuzz.KINDS)
    assert all(sum(v.values()) > 0 for v in out["outcomes"].values())
    assert out["outcomes"]["garbage"].get("parsed", 0) == 0


def test_fuzz_through_a_running_receiver_answers_every_frame(inproc_stack):
    stack = inproc_stack()
    out = fuzz.fuzz_receiver(stack["receiver"], 40, RpcConfig(), seed=1)
    assert out["answered"] == 40 and out["answered_twice"] == 0 and out["stream_error"] is None, out
    assert out["internal_errors"] == 0 and out["outcomes"].get("image", 0) > 0, out["outcomes"]


def test_bad_images_mid_stream_each_get_an_answer_and_the_stream_goes_on(inproc_stack, photo):
    stack = inproc_stack()
    out = bad_images.bad_image_run(stack["sender"], photo[1], RpcConfig(max_message_mb=1), big=False)
    assert out["answered"] == out["files"] and out["internal_errors"] == 0, out["answers"]
    assert out["good_images_ok"] == out["good_images"]
    per = {f["file"]: f for f in out["per_file"]}
    assert per["'over-the-message-limit.png'"]["answer"] == "RESOURCE_EXHAUSTED"
    assert "not sent" in per["'over-the-message-limit.png'"]["message"]
    assert per["'png-claims-100000x100000.png'"]["answer"] == "INVALID_ARGUMENT"
    assert per["'jpeg-exif-rotated.jpg'"]["answer"] == "OK"
    assert any("EXIF orientation" in n for n in per["'jpeg-exif-rotated.jpg'"]["notes"])
    assert not any("0x" in f["message"] for f in out["per_file"]), "an object repr leaked"
